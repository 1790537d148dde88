"""The values every detector and pipeline part passes around: :class:`Event`, :class:`Finding`
and the :class:`Severity` scale. (``detectors.base`` re-exports them beside the contracts.)

They live apart from the contracts so that the compiled build (``pipeline/native.py``) can
compile them: every per-event part reads an event's fields and builds findings, and as classes of
an interpreted module each such read was a generic attribute lookup in the compiled code (about
a hundred instructions) where a compiled class gives a field read. ``detectors.base`` itself
cannot be compiled: mypyc does not take its ``runtime_checkable`` protocols.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Event", "Finding", "Severity", "Value"]


class _ByValue:
    """What :class:`Value` and :class:`FrozenValue` share: ``==``, ``repr``, copy and pickle by
    the fields that a subclass names in ``_NAMES``."""

    __slots__ = ()
    _NAMES: ClassVar[tuple[str, ...]] = ()
    _SHOWN: ClassVar[int] = 64

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._NAMES])

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._NAMES[: self._SHOWN])
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._NAMES[: self._SHOWN])

    def __ne__(self, other: object) -> bool:
        # written out: mypyc fails to derive it from an inherited __eq__
        if type(other) is not type(self):
            return NotImplemented
        return not self.__eq__(other)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._values())


class Value(_ByValue):
    """Base of the per-event value classes that would be dataclasses but for the compiled build
    (``Output``, ``InputRecord``, ``RiskAssessment``, ``Features``, the rule engine's ``View``,
    the shell parser's ``SimpleCommand``): there a dataclass keeps the ``__init__`` that
    ``dataclasses`` generates, an interpreted function, where a class that writes its own
    compiles to a field fill. A subclass writes ``__init__`` and names its parameters, in order,
    in ``_NAMES``; this gives it the dataclass's ``==`` and ``repr`` (over the first ``_SHOWN`` of
    them: the rest are like ``compare=False, repr=False`` fields), its copy and pickle (through
    ``__init__``: a compiled class has no other way) and no hash."""

    __slots__ = ()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclasses these replace


class FrozenValue(_ByValue):
    """:class:`Value` for what was a frozen dataclass (the parsers' results): hashed by its
    fields as well. (A sibling of ``Value`` rather than a subclass: mypyc cannot compile a
    ``__hash__`` method over a base's ``__hash__ = None``.) Nothing stops a write to its fields
    (a compiled class cannot refuse one cheaply); treat it as read-only, as its users share it
    (parses are cached)."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._values())


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        """``Severity.parse("high") is Severity.HIGH``; raises ValueError on unknown names."""
        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {value!r}; expected one of {names}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class Event:
    """One validated agent-action event.

    ``data`` is the JSON object exactly as the enforcement point published it (unknown extra
    fields included: they pass through to the enriched topic). ``ts`` is its event time in
    seconds since the epoch (UTC), parsed from ``data["ts"]``. ``derived`` is a per-event cache
    that detectors fill lazily (parsed shell sub-commands, SQL statement kind, ...) so parsing
    happens once per event whatever the number of rules.

    ``agent_id`` and ``event_id`` are read from ``data`` once, here: the pipeline asks for the
    agent about nine times per event (dedup, state, every detector, risk, response), and as
    properties those reads were the most frequent interpreted call left in the compiled build.
    A validated event always has both as strings; for a hand-made event without them they are
    ``""``. Treat ``data`` as read-only once the event exists (nothing in the pipeline writes it).
    """

    __slots__ = ("agent_id", "data", "derived", "event_id", "ts")

    def __init__(self, data: dict[str, Any], ts: float, derived: dict[str, Any] | None = None) -> None:
        self.data = data
        self.ts = ts
        self.derived: dict[str, Any] = {} if derived is None else derived
        self.agent_id: str = _id_text(data.get("agent_id"))
        self.event_id: str = _id_text(data.get("event_id"))

    def __repr__(self) -> str:
        return f"Event(data={self.data!r}, ts={self.ts!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # copy, deepcopy and pickle rebuild it through __init__ (a compiled class has no other way)
        return (Event, (self.data, self.ts, self.derived))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.data == other.data and self.ts == other.ts and self.derived == other.derived

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    @property
    def action(self) -> dict[str, Any]:
        action: dict[str, Any] = self.data["action"]
        return action


def _id_text(value: Any) -> str:
    return value if type(value) is str else "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a detector found suspicious about one event.

    ``detector`` names the detector family (``rules``, ``baseline.novelty``, ...), ``id`` the rule
    or check inside it. ``reason`` is one line an analyst understands without reading code.
    ``technique``/``tactic`` are MITRE ATT&CK ids (``T1485``, ``TA0040``) when known; ``field``
    and ``span`` locate the matched text (``span`` is ``(start, end)`` into that field's value).
    ``context`` carries what a triager needs to judge it (e.g. baseline vs observed values); it
    must be JSON-serialisable.
    """

    detector: str
    id: str
    severity: Severity
    score: float
    reason: str
    technique: str | None = None
    tactic: str | None = None
    field: str | None = None
    span: tuple[int, int] | None = None
    context: dict[str, Any] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # as Event's: copy, deepcopy and pickle of the compiled class go through __init__
        return (Finding, (self.detector, self.id, self.severity, self.score, self.reason, self.technique,
                          self.tactic, self.field, self.span, self.context))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "detector": self.detector,
            "id": self.id,
            "severity": self.severity.label,
            "score": round(float(self.score), 3),
            "reason": self.reason,
        }
        if self.technique:
            out["technique"] = self.technique
        if self.tactic:
            out["tactic"] = self.tactic
        if self.field:
            out["field"] = self.field
        if self.span is not None:
            out["span"] = [int(self.span[0]), int(self.span[1])]
        if self.context:
            out["context"] = self.context
        return out
