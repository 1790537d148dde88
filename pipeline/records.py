"""Output records and the helpers every producer of them shares.

An :class:`Output` is one message the pipeline writes: which output (``kind``), its key and its
JSON value. Pure logic returns Outputs; the live worker produces them to Kafka and replay writes
them to files, so both paths share everything but the transport.

Every record carries a deterministic id derived from its inputs (:func:`deterministic_id`), so a
consumer can drop repeats after an at-least-once replay.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import Any, Literal

from detectors.events import Value

__all__ = ["Output", "OutputKind", "deterministic_id", "incident_id_for", "iso_time"]

OutputKind = Literal["enriched", "alerts", "enforcement", "incidents", "dlq"]


class Output(Value):
    """One record to write. ``partition`` is set for records derived from one input record (the
    enriched event, a dead letter): they go to the same partition number as their input, which
    keeps each agent's records in order and lets the sink send them in per-partition batches.

    Not a dataclass: every event makes at least one, and in the compiled build a dataclass's
    ``__init__`` stays an interpreted function (about 0.3 µs a call, and the only interpreted
    frame left on an event's path); :class:`~detectors.events.Value` says more.
    """

    __slots__ = ("key", "kind", "partition", "value")
    _NAMES = ("kind", "key", "value", "partition")

    def __init__(self, kind: OutputKind, key: str | None, value: dict[str, Any], partition: int | None = None) -> None:
        self.kind = kind
        self.key = key
        self.value = value
        self.partition = partition


#: a SHA-256 that nothing updates, copied for each id: in Python 3.11 with OpenSSL 3,
#: ``hashlib.sha256()`` looks the algorithm up by name on every call (``EVP_MD_fetch``, a lock
#: and a table lookup), which cost more than hashing the id's few bytes; a copy skips it
#: (0.88 -> 0.46 µs per id here). The digest is the same.
_SHA256 = hashlib.sha256()


def deterministic_id(prefix: str, *parts: object) -> str:
    """``prefix`` + 32 hex chars of SHA-256 over the parts (unit-separator joined).

    >>> deterministic_id("alr_", "agent-1", "rule-x", 3) == deterministic_id("alr_", "agent-1", "rule-x", 3)
    True
    """
    text = "\x1f".join([p if type(p) is str else str(p) for p in parts])
    h = _SHA256.copy()
    h.update(text.encode("utf-8", "surrogatepass"))
    return prefix + h.hexdigest()[:32]


#: the last day :func:`iso_time` formatted, (its first second, its "YYYY-MM-DDT" text), and the
#: last second, (the second, its "YYYY-MM-DDTHH:MM:SS." text). Times arrive in bursts from the
#: same second and day, so neither is formatted per call. Each is one tuple, replaced whole:
#: threads other than the event loop's format times too, and two list items written one after
#: the other could be read half old, half new.
_iso_day: list[tuple[int, str | None]] = [(1, None)]
_iso_second: list[tuple[int, str]] = [(1, "")]
#: "000Z" ... "999Z": the milliseconds and the zone, looked up rather than formatted
_MILLIS: tuple[str, ...] = tuple(f"{i:03d}Z" for i in range(1000))
#: "00" ... "59": hours, minutes and seconds, looked up too (in the compiled build each ``:02d``
#: field of an f-string is a call to ``format``: three per new second cost ~12k instructions,
#: and replay, stamping records with event time, starts a new second on most events)
_TWO: tuple[str, ...] = tuple(f"{i:02d}" for i in range(60))


def iso_time(ts: float) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-01-02T03:04:05.678Z``.

    Same text as ``datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")`` with
    ``Z`` (the fraction is rounded to microseconds half-even as ``fromtimestamp`` does, then
    truncated to milliseconds), built without a datetime per call: this runs for every record
    (replay stamps every enriched record with event time). The text up to the second is kept
    for the last second seen and the milliseconds come from a table, so a call in the same
    second as the last one formats nothing (0.15 µs instead of 1.3-2.0 µs; the compiled build's
    f-string formatting had been the slower of the two).

    >>> iso_time(0.0), iso_time(1.9995), iso_time(1767323045.678)
    ('1970-01-01T00:00:00.000Z', '1970-01-01T00:00:01.999Z', '2026-01-02T03:04:05.678Z')
    """
    frac, whole = math.modf(ts)
    micros = round(frac * 1e6)
    second = int(whole)
    if micros >= 1_000_000:
        second += 1
        micros -= 1_000_000
    elif micros < 0:
        second -= 1
        micros += 1_000_000
    last_second, prefix = _iso_second[0]
    if last_second != second or not prefix:
        day_start, day_text = _iso_day[0]
        into = second - day_start
        if not 0 <= into < 86400 or day_text is None:
            day_start = second - second % 86400  # UTC days have 86,400 s in POSIX time
            day_text = datetime.fromtimestamp(day_start, tz=UTC).strftime("%Y-%m-%dT") if day_start >= -62135596800 else None
            _iso_day[0] = (day_start, day_text)
            into = second - day_start
        if day_text is None:  # before year 1: let datetime word the error as it did
            return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        rest = into % 3600
        prefix = "".join((day_text, _TWO[into // 3600], ":", _TWO[rest // 60], ":", _TWO[rest % 60], "."))
        _iso_second[0] = (second, prefix)
    return prefix + _MILLIS[micros // 1000]


def incident_id_for(agent_id: str, first_event_id: str) -> str:
    """The incident id of an agent's episode, shared by alerts, commands and the incident store.

    An episode starts at the first event that raised an alert or command for the agent while no
    episode was open; everything the pipeline writes about that episode carries this id.
    """
    return deterministic_id("inc_", agent_id, first_event_id)


def epoch_of(value: object) -> float | None:
    """Epoch seconds of an ISO 8601 / RFC 3339 string (``Z`` allowed); None if it is not one.

    >>> epoch_of("1970-01-01T00:01:00Z"), epoch_of("soon")
    (60.0, None)
    """
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
