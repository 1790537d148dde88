"""Ed25519 signatures over canonical JSON for enforcement commands (pure logic, no I/O).

Contract shared with every enforcement point, in any language:

- **Canonical form**: the command object without its ``signature`` field, serialised as JSON with
  keys sorted, no whitespace (``,`` and ``:`` separators), UTF-8, non-ASCII characters written as
  themselves (not ``\\u`` escapes). Commands hold only strings, integers, booleans, null, lists and
  objects, never floats, so every JSON library produces the same bytes (a subset of RFC 8785).
- **Signature**: Ed25519 (RFC 8032) over those bytes, standard base64 with padding, in the
  ``signature`` field; ``key_id`` (part of the signed bytes) names the public key that verifies it.
- **Key id**: ``k_`` + the first 16 hex digits of SHA-256 over the raw 32-byte public key, so an
  enforcement point can check a key id against the key itself. The development key (a fixed,
  public seed used only for replay and backtests) has ids starting ``dev_``.

Ed25519 signing is deterministic, so replaying the same input with the same key yields
byte-identical commands. Verification takes ``now`` explicitly: a keyring entry has an optional
``not_after`` (the end of a rotation overlap) after which its key no longer verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "ALGORITHM",
    "KeyEntry",
    "Keyring",
    "Signer",
    "VerificationError",
    "canonical_json",
    "dev_signer",
    "key_id_for",
    "public_key_b64",
    "public_key_from_b64",
]

ALGORITHM = "Ed25519"
_DEV_SEED = hashlib.sha256(b"agentwatch public development key: never trust it").digest()


def canonical_json(obj: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no whitespace, UTF-8, ``signature`` left out.

    >>> canonical_json({"b": 1, "a": "é", "signature": "x"})
    b'{"a":"\\xc3\\xa9","b":1}'
    """
    body = {k: v for k, v in obj.items() if k != "signature"}
    _reject_floats(body)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _reject_floats(value: Any) -> None:
    # Float text differs between JSON libraries; a float here would break cross-language checks.
    if isinstance(value, float):
        raise ValueError("signed documents must not contain floats; use integers or strings")
    if isinstance(value, Mapping):
        for v in value.values():
            _reject_floats(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _reject_floats(v)


def public_key_b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public key is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id_for(key: Ed25519PublicKey, *, prefix: str = "k_") -> str:
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return prefix + hashlib.sha256(raw).hexdigest()[:16]


class Signer:
    """Signs command dicts with one private key; ``key_id`` names its public half."""

    def __init__(self, private_key: Ed25519PrivateKey, key_id: str | None = None) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id or key_id_for(self.public_key)

    def __repr__(self) -> str:  # never shows key material
        return f"Signer(key_id={self.key_id!r})"

    @property
    def is_dev(self) -> bool:
        return self.key_id.startswith("dev_")

    def sign(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``doc`` with ``key_id``, ``alg`` and ``signature`` set (the first two signed)."""
        out = {k: v for k, v in doc.items() if k != "signature"}
        out["key_id"] = self.key_id
        out["alg"] = ALGORITHM
        out["signature"] = base64.b64encode(self._key.sign(canonical_json(out))).decode("ascii")
        return out


def dev_signer() -> Signer:
    """The public development key: for replay and backtests, never for enforcement points."""
    key = Ed25519PrivateKey.from_private_bytes(_DEV_SEED)
    return Signer(key, key_id_for(key.public_key(), prefix="dev_"))


class VerificationError(Exception):
    """A command failed verification: ``code`` is stable (for acks and metrics), ``reason`` human."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class KeyEntry:
    key_id: str
    public_key: Ed25519PublicKey
    #: epoch seconds after which this key no longer verifies (end of a rotation overlap)
    not_after: float | None = None


class Keyring:
    """The public keys an enforcement point trusts, by key id.

    >>> signer = dev_signer()
    >>> ring = Keyring([KeyEntry(signer.key_id, signer.public_key)])
    >>> ring.verify(signer.sign({"action": "isolate"}), now=0)["action"]
    'isolate'
    """

    def __init__(self, entries: Iterable[KeyEntry] = ()) -> None:
        self._entries: dict[str, KeyEntry] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: KeyEntry) -> None:
        prefix = "dev_" if entry.key_id.startswith("dev_") else "k_"
        actual = key_id_for(entry.public_key, prefix=prefix)
        if actual != entry.key_id:
            raise ValueError(f"key id {entry.key_id!r} does not match its public key ({actual})")
        self._entries[entry.key_id] = entry

    @classmethod
    def of(cls, keys: Keyring | Mapping[str, Any] | Iterable[Any]) -> Keyring:
        """Accept a Keyring, ``{key_id: key}`` (key as Ed25519PublicKey or base64), or KeyEntries/Signers."""
        if isinstance(keys, Keyring):
            return keys
        ring = cls()
        if isinstance(keys, Mapping):
            for kid, key in keys.items():
                pub = public_key_from_b64(key) if isinstance(key, str) else key
                ring.add(KeyEntry(str(kid), pub))
            return ring
        for item in keys:
            if isinstance(item, KeyEntry):
                ring.add(item)
            elif isinstance(item, Signer):
                ring.add(KeyEntry(item.key_id, item.public_key))
            else:
                raise TypeError(f"cannot use {type(item).__name__} as a public key")
        return ring

    def key_ids(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._entries

    def verify(self, doc: Mapping[str, Any], *, now: float) -> Mapping[str, Any]:
        """Return ``doc`` if its signature is valid under a trusted, unexpired key; else raise."""
        sig = doc.get("signature")
        kid = doc.get("key_id")
        if not isinstance(sig, str) or not isinstance(kid, str):
            raise VerificationError("unsigned", "the command has no signature or key_id")
        if doc.get("alg", ALGORITHM) != ALGORITHM:
            raise VerificationError("bad_algorithm", f"algorithm {doc.get('alg')!r} is not {ALGORITHM}")
        entry = self._entries.get(kid)
        if entry is None:
            raise VerificationError("unknown_key", f"key id {kid[:40]!r} is not in the keyring")
        if entry.not_after is not None and now > entry.not_after:
            raise VerificationError("key_expired", f"key {kid} was retired (rotation overlap ended)")
        try:
            raw = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationError("bad_signature", "the signature is not base64") from None
        try:
            body = canonical_json(doc)
        except (TypeError, ValueError) as exc:
            raise VerificationError("malformed", f"cannot canonicalise the command: {exc}") from None
        try:
            entry.public_key.verify(raw, body)
        except InvalidSignature:
            raise VerificationError("bad_signature", "the signature does not match the command") from None
        return doc
