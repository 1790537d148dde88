"""Signing-key files: generation, rotation, and loading for the pipeline and enforcement points.

Layout (the directory of ``enforcement.signing_key_path``, default ``.agentwatch/keys/``):

- ``signing.key``  the pipeline's Ed25519 private key, PKCS#8 PEM, file mode 0600. Only the
  workers read it; it can instead come from ``AGENTWATCH_ENFORCEMENT__SIGNING_KEY`` (a secret).
- ``keyring.json`` the public keys enforcement points trust: ``{"version": 1, "keys": [{"key_id",
  "alg", "public_key" (base64 raw 32 bytes), "created_at", "not_after" (RFC 3339 or null)}]}``.
  Distribute this file (it holds no secrets) to every enforcement point.

Rotation writes a new private key, adds its public key to the keyring, and gives the previous
public key a ``not_after`` of now + overlap: commands signed by the old key (still in flight, or
from workers not yet restarted) keep verifying during the overlap and are refused after it.
The previous private key is deleted, not archived: nothing needs it once workers sign anew.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from pipeline.enforcement.signing import (
    ALGORITHM,
    KeyEntry,
    Keyring,
    Signer,
    dev_signer,
    public_key_b64,
    public_key_from_b64,
)
from pipeline.errors import AgentwatchError, InputError
from pipeline.records import iso_time

__all__ = [
    "KEYRING_NAME",
    "KeyFileError",
    "generate_key",
    "keyring_path_for",
    "load_keyring",
    "load_signer",
    "read_keyring_entries",
    "rotate_key",
    "signer_from_secret",
]

KEYRING_NAME = "keyring.json"


class KeyFileError(AgentwatchError):
    """A key or keyring file is missing, unreadable or malformed."""


def keyring_path_for(key_path: Path) -> Path:
    return Path(key_path).parent / KEYRING_NAME


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _parse_private(data: bytes, source: str) -> Ed25519PrivateKey:
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = load_pem_private_key(text, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{source}: not a readable unencrypted PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{source}: the private key is not Ed25519")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{source}: neither PEM nor base64") from None
    if len(raw) != 32:
        raise KeyFileError(f"{source}: a base64 Ed25519 seed has 32 bytes, not {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def signer_from_secret(secret: str, source: str = "signing key") -> Signer:
    return Signer(_parse_private(secret.encode("utf-8"), source))


def _entry_json(signer: Signer, now: float) -> dict[str, Any]:
    return {"key_id": signer.key_id, "alg": ALGORITHM, "public_key": public_key_b64(signer.public_key),
            "created_at": iso_time(now), "not_after": None}


def read_keyring_entries(path: Path) -> list[dict[str, Any]]:
    """The raw entries of a keyring file ([] if it does not exist)."""
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"cannot read keyring {path}: {exc}") from None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise KeyFileError(f"malformed keyring {path}: expected {{\"keys\": [...]}}")
    return keys


def _write_keyring(path: Path, entries: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": 1, "keys": entries}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def generate_key(key_path: Path, *, now: float, force: bool = False) -> Signer:
    """Create a new signing key at ``key_path`` and add its public key to the keyring."""
    key_path = Path(key_path)
    if key_path.exists() and not force:
        raise InputError(f"{key_path} already exists; use `agentwatch keys rotate` (or --force to overwrite)")
    signer = Signer(Ed25519PrivateKey.generate())
    ring_path = keyring_path_for(key_path)
    entries = [e for e in read_keyring_entries(ring_path) if e.get("key_id") != signer.key_id]
    _write_private(key_path, _pem(signer._key))
    _write_keyring(ring_path, [*entries, _entry_json(signer, now)])
    return signer


def rotate_key(key_path: Path, *, now: float, overlap_seconds: float) -> tuple[str, Signer]:
    """Replace the signing key; the old public key verifies until ``now + overlap_seconds``."""
    key_path = Path(key_path)
    if not key_path.exists():
        raise InputError(f"no signing key at {key_path}; create one with `agentwatch keys generate`")
    old = signer_from_secret(key_path.read_text(encoding="utf-8"), str(key_path))
    new = Signer(Ed25519PrivateKey.generate())
    ring_path = keyring_path_for(key_path)
    entries = read_keyring_entries(ring_path)
    if not any(e.get("key_id") == old.key_id for e in entries):
        entries.append(_entry_json(old, now))
    for entry in entries:
        if entry.get("key_id") == old.key_id and entry.get("not_after") is None:
            entry["not_after"] = iso_time(now + overlap_seconds)
    entries.append(_entry_json(new, now))
    _write_private(key_path, _pem(new._key))
    _write_keyring(ring_path, entries)
    return old.key_id, new


def _parse_time(text: Any, path: Path) -> float | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise KeyFileError(f"malformed keyring {path}: not_after {text!r} is not RFC 3339") from None


def load_keyring(path: Path | str) -> Keyring:
    """The trusted public keys from a keyring file (what an enforcement point loads)."""
    path = Path(path)
    if not path.exists():
        raise KeyFileError(f"no keyring at {path}; copy it from the pipeline's key directory")
    ring = Keyring()
    for entry in read_keyring_entries(path):
        try:
            ring.add(KeyEntry(str(entry["key_id"]), public_key_from_b64(str(entry["public_key"])),
                              _parse_time(entry.get("not_after"), path)))
        except (KeyError, ValueError) as exc:
            raise KeyFileError(f"malformed keyring {path}: {exc}") from None
    return ring


def load_signer(enforcement: Any) -> Signer:
    """The pipeline's signer from ``EnforcementSettings``: the secret, else the key file.

    Without either, the development key is used only if ``allow_dev_key`` is set; otherwise this
    raises :class:`KeyFileError` telling the user how to create a key.
    """
    secret = enforcement.signing_key
    if secret is not None and secret.get_secret_value().strip():
        return signer_from_secret(secret.get_secret_value(), "AGENTWATCH_ENFORCEMENT__SIGNING_KEY")
    path = Path(enforcement.signing_key_path)
    if path.exists():
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise KeyFileError(f"cannot read signing key {path}: {exc.strerror or exc}") from None
        return Signer(_parse_private(data, str(path)))
    if enforcement.allow_dev_key:
        return dev_signer()
    raise KeyFileError(
        f"no signing key at {path}; create one with `agentwatch keys generate` "
        "(or set enforcement.allow_dev_key for backtests)"
    )
