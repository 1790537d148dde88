"""Isolation commands: the ladder, Ed25519 signing, key files and the read-only policy."""

from pipeline.enforcement.ladder import RELEASE, RUNGS, build_command, rung_index, target_rung
from pipeline.enforcement.policy import is_read_only
from pipeline.enforcement.signing import (
    KeyEntry,
    Keyring,
    Signer,
    VerificationError,
    canonical_json,
    dev_signer,
)

__all__ = [
    "RELEASE",
    "RUNGS",
    "KeyEntry",
    "Keyring",
    "Signer",
    "VerificationError",
    "build_command",
    "canonical_json",
    "dev_signer",
    "is_read_only",
    "rung_index",
    "target_rung",
]
