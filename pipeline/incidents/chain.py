"""The hash chain behind tamper evidence: canonical JSON, entry hashing and verification.

Every incident record version, timeline entry, alert version and analyst action the store keeps is
appended as one *chain entry*::

    {"seq": 17, "entry_id": "...", "kind": "timeline", "incident_id": "inc_...",
     "prev_id": "<entry_id of seq 16>", "prev_hash": "<hash of seq 16>", "body": {...}}

serialised as canonical JSON (:func:`canonical`: sorted keys, no whitespace, UTF-8) and hashed
with SHA-256 (:func:`entry_hash`). Because each entry names the id *and* hash of its predecessor,
:func:`verify_chain` can tell apart the three ways stored evidence can be tampered with:

- **modified**: an entry's text no longer hashes to its stored hash, or an entry was edited and
  re-hashed so its successor's ``prev_hash`` no longer matches;
- **deleted**: an entry names a predecessor that is nowhere in the chain (or the chain ends
  before the recorded head);
- **reordered**: an entry names a predecessor that appears *after* it, or sits at a position
  other than the one it was written at.

The first break found is reported; everything here is pure (no I/O), so the store, the CLI and the
evidence export share it. Truncating the tail is caught against the stored head; an attacker who
can rewrite the whole database including the head can rebuild a consistent chain, which is why the
evidence export prints the head hash for the auditor to anchor outside the system.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import orjson

__all__ = [
    "GENESIS_HASH",
    "ChainRow",
    "VerifyResult",
    "canonical",
    "entry_hash",
    "make_entry",
    "verify_chain",
]

#: the ``prev_hash`` of the first entry
GENESIS_HASH = "0" * 64

Breakage = Literal["modified", "deleted", "reordered"]


def canonical(obj: Any) -> str:
    """Canonical JSON text: sorted keys, no insignificant whitespace, UTF-8 (not ASCII-escaped).

    >>> canonical({"b": 1, "a": [1, 2.5, None]})
    '{"a":[1,2.5,null],"b":1}'
    """
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode("utf-8")


def entry_hash(text: str) -> str:
    """SHA-256 hex digest of an entry's canonical text (which includes the previous hash)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def make_entry(
    *,
    seq: int,
    entry_id: str,
    kind: str,
    incident_id: str | None,
    prev_id: str | None,
    prev_hash: str,
    body: dict[str, Any],
) -> tuple[str, str]:
    """Build one chain entry; returns ``(canonical_text, hash)``."""
    text = canonical(
        {
            "seq": seq,
            "entry_id": entry_id,
            "kind": kind,
            "incident_id": incident_id,
            "prev_id": prev_id,
            "prev_hash": prev_hash,
            "body": body,
        }
    )
    return text, entry_hash(text)


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One stored entry as read back: the position it is stored at, its id, text and hash."""

    seq: int
    entry_id: str
    text: str
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of a chain check.

    ``checked`` counts entries examined; on a break ``first_bad`` names the first entry found
    modified, deleted or reordered (``how``), ``seq`` is where in the stored order it was found and
    ``detail`` is one line for a human. ``head_hash`` is the hash of the last good entry: auditors
    record it to anchor the chain outside the system.
    """

    ok: bool
    checked: int
    first_bad: str | None = None
    how: Breakage | None = None
    seq: int | None = None
    detail: str = ""
    head_hash: str = GENESIS_HASH

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One-line human summary."""
        if self.ok:
            return f"chain OK: {self.checked} entries verified, head {self.head_hash[:16]}…"
        return (
            f"chain BROKEN at position {self.seq}: entry {self.first_bad} was {self.how} "
            f"({self.detail}); {self.checked} entries checked"
        )


def _parse(text: str) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def verify_chain(
    rows: Iterable[ChainRow],
    *,
    head: tuple[int, str, str] | None = None,
) -> VerifyResult:
    """Check a chain read back in stored order; stops at the first break.

    ``head`` is ``(seq, entry_id, hash)`` of the last entry as recorded when it was appended; when
    given, a chain that ends early (tail deleted) or ends on a different entry is a break too.
    Memory: one ``entry_id -> position`` map (ids only) to classify a break.
    """
    rows = iter(rows)
    prev_hash, prev_id = GENESIS_HASH, None
    position: dict[str, int] = {}
    checked = 0
    last_seq = 0
    for row in rows:
        position[row.entry_id] = row.seq
        entry = _parse(row.text)
        if entry is None or entry_hash(row.text) != row.hash or entry.get("entry_id") != row.entry_id:
            return VerifyResult(False, checked, row.entry_id, "modified", row.seq,
                                "its content no longer matches its hash", prev_hash)
        if entry.get("prev_hash") != prev_hash:
            named = entry.get("prev_id")
            if named is not None and named == prev_id:
                # the predecessor is the right entry but hashes differently now: it was edited
                # and re-hashed to hide the edit
                return VerifyResult(False, checked, prev_id, "modified", last_seq,
                                    f"entry {row.entry_id} records a different hash for it", prev_hash)
            if named is not None and named in position:
                return VerifyResult(False, checked, row.entry_id, "reordered", row.seq,
                                    f"it was written after {named} but is stored after {prev_id}", prev_hash)
            later = {r.entry_id for r in rows}
            if named in later:
                return VerifyResult(False, checked, row.entry_id, "reordered", row.seq,
                                    f"it is stored before {named}, which it was written after", prev_hash)
            return VerifyResult(False, checked, str(named), "deleted", row.seq,
                                f"entry {row.entry_id} follows it but it is missing", prev_hash)
        if entry.get("seq") != row.seq:
            return VerifyResult(False, checked, row.entry_id, "reordered", row.seq,
                                f"it was written at position {entry.get('seq')}", prev_hash)
        checked += 1
        prev_hash, prev_id, last_seq = row.hash, row.entry_id, row.seq
    if head is not None:
        head_seq, head_id, head_hash = head
        if head_seq > last_seq:
            return VerifyResult(False, checked, head_id, "deleted", last_seq + 1,
                                f"the chain ends at position {last_seq} but its head is at {head_seq}", prev_hash)
        if head_seq == last_seq and head_hash != prev_hash:
            return VerifyResult(False, checked, prev_id, "modified", last_seq,
                                "the last entry differs from the recorded head", prev_hash)
    return VerifyResult(True, checked, head_hash=prev_hash)
