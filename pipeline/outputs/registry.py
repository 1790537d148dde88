"""Extra output destinations: a registry of destination types and the enabled instances.

Besides the Kafka topics the worker always writes, operators can send records to more places:
a JSONL file, a syslog collector (CEF over UDP/TCP), standard output. Each destination type is
one module in ``pipeline/outputs/destinations/`` that registers its class with
:func:`register`; each configured destination (``settings.outputs.destinations``) has a name,
the record kinds it takes, a format and a **minimum severity**. Routing is a loop over the
enabled destinations, never a chain of ifs::

    dests = build_destinations(settings)        # Destinations; empty if none configured
    for out in outputs:                         # pipeline.records.Output
        dests.publish(out.kind, out.value)      # encode + buffer where kind and severity match
    dests.flush()                               # after each batch: write what is buffered
    dests.close()                               # on shutdown

Contract: ``publish`` never raises for a bad record or an unreachable collector; a record that
cannot be encoded is counted as ``failed``; a write that fails keeps the records buffered for the
next ``flush`` (bounded by ``max_buffer``: past it the oldest are dropped and counted as
``dropped``). The Kafka topics stay the system of record, so an outage of a SIEM collector
never stops or slows the pipeline. :meth:`Destinations.stats` exposes the counters for metrics.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, TypeVar

from detectors.base import Severity
from pipeline.outputs import Encoder, OutputFormatError, encoder_for, record_severity

__all__ = [
    "Destination",
    "DestinationStats",
    "Destinations",
    "build_destinations",
    "destination_types",
    "register",
]

log = logging.getLogger(__name__)

_TYPES: dict[str, type[Destination]] = {}
D = TypeVar("D", bound="type[Destination]")


def register(type_name: str) -> Callable[[D], D]:
    """Class decorator: make a destination type available under ``type_name``."""

    def deco(cls: D) -> D:
        if type_name in _TYPES and _TYPES[type_name] is not cls:
            raise ValueError(f"destination type {type_name!r} registered twice")
        cls.type_name = type_name
        _TYPES[type_name] = cls
        return cls

    return deco


def destination_types() -> dict[str, type[Destination]]:
    """Every registered destination type (imports each module of the destinations package)."""
    from pipeline.outputs import destinations as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{info.name}")
    return dict(_TYPES)


@dataclass
class DestinationStats:
    sent: int = 0  # records written
    failed: int = 0  # records that could not be encoded in this format
    dropped: int = 0  # records lost because the buffer was full (collector down too long)
    errors: int = 0  # failed writes (each kept its records for a retry)
    buffered: int = 0  # records waiting for the next flush


class Destination(ABC):
    """One configured destination. Subclasses implement :meth:`write` (and maybe :meth:`frame`)."""

    type_name: ClassVar[str] = ""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.name: str = config.name
        self.format: str = config.format
        self.kinds: frozenset[str] = frozenset(config.kinds)
        self.min_severity = Severity.parse(config.min_severity)
        self._encoders: dict[str, Encoder] = {k: encoder_for(k, config.format) for k in self.kinds}
        self._buffer: deque[tuple[str, bytes]] = deque()
        self._max_buffer: int = config.max_buffer
        self._stats = DestinationStats()
        self._failing = False

    def accepts(self, kind: str, severity: Severity) -> bool:
        return kind in self.kinds and severity >= self.min_severity

    def offer(self, kind: str, value: Mapping[str, Any], severity: Severity) -> None:
        """Encode and buffer one record (the caller checked :meth:`accepts`)."""
        try:
            payload = self._encoders[kind](value)
        except OutputFormatError as exc:
            self._stats.failed += 1
            if self._stats.failed == 1 or self._stats.failed % 1000 == 0:
                log.warning(
                    "output %s: %s record not encodable as %s (%s)",
                    self.name,
                    kind,
                    self.format,
                    exc,
                )
            return
        if len(self._buffer) >= self._max_buffer:
            self._buffer.popleft()
            self._stats.dropped += 1
        self._buffer.append((kind, self.frame(kind, value, severity, payload)))

    def frame(
        self, kind: str, value: Mapping[str, Any], severity: Severity, payload: bytes
    ) -> bytes:
        """Wrap an encoded record for the transport (e.g. a syslog header). Default: as is."""
        return payload

    def flush(self) -> None:
        """Write everything buffered; on failure keep it for the next flush."""
        if not self._buffer:
            return
        batch = list(self._buffer)
        try:
            self.write(batch)
        except OSError as exc:
            self._stats.errors += 1
            if not self._failing:
                log.warning("output %s: write failed, will retry (%s)", self.name, exc)
            self._failing = True
            return
        if self._failing:
            log.info("output %s: writing again", self.name)
        self._failing = False
        self._buffer.clear()
        self._stats.sent += len(batch)

    @abstractmethod
    def write(self, records: list[tuple[str, bytes]]) -> None:
        """Write ``(kind, bytes)`` records, in order. Raise OSError to have them retried."""

    def close(self) -> None:
        """Release files and sockets (after a last :meth:`flush` by the caller)."""
        return None  # nothing held by default

    def stats(self) -> DestinationStats:
        s = DestinationStats(**asdict(self._stats))
        s.buffered = len(self._buffer)
        return s


class Destinations:
    """The enabled destinations, routed by record kind and severity."""

    def __init__(self, items: Iterable[Destination] = ()) -> None:
        self._items = list(items)
        self._by_kind: dict[str, list[Destination]] = {}
        for d in self._items:
            for k in d.kinds:
                self._by_kind.setdefault(k, []).append(d)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Destination]:
        return iter(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def publish(self, kind: str, value: Mapping[str, Any]) -> int:
        """Offer one record to every destination that takes it; returns how many took it."""
        targets = self._by_kind.get(kind)
        if not targets:
            return 0
        severity = record_severity(kind, value)
        n = 0
        for d in targets:
            if severity >= d.min_severity:
                d.offer(kind, value, severity)
                n += 1
        return n

    def publish_outputs(self, outputs: Iterable[Any]) -> None:
        """Offer a batch of :class:`pipeline.records.Output` records."""
        for out in outputs:
            self.publish(out.kind, out.value)

    def flush(self) -> None:
        for d in self._items:
            d.flush()

    def close(self) -> None:
        for d in self._items:
            try:
                d.flush()
            finally:
                d.close()

    def stats(self) -> dict[str, DestinationStats]:
        return {d.name: d.stats() for d in self._items}

    def __enter__(self) -> Destinations:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_destinations(settings: Any) -> Destinations:
    """Instantiate the enabled destinations of ``settings.outputs`` (or an OutputSettings)."""
    outputs = getattr(settings, "outputs", settings)
    types = destination_types()
    items: list[Destination] = []
    for config in outputs.destinations:
        if not config.enabled:
            continue
        cls = types.get(config.type)
        if cls is None:  # pragma: no cover - the settings model only admits registered types
            raise OutputFormatError(
                f"output {config.name}: unknown destination type {config.type!r}"
            )
        items.append(cls(config))
    return Destinations(items)
