"""Drive a fleet's event stream into a sink, with optional live pacing and a ground-truth file.

:func:`simulate` is what ``agentwatch simulate``, the demo and the benchmarks call. The sink is any
callable taking one event dict: :class:`JsonlWriter` for files, or
:meth:`pipeline.sdk.publisher.ActionPublisher.publish` for Kafka, so simulated events reach the
broker through exactly the client code an enforcement point uses.

Pacing is the only place the wall clock matters, and it only decides *when* an event is handed to
the sink, never its content: ``rate`` events per second of wall time, or ``speed`` simulated
seconds per wall second (neither = as fast as possible). The clock and sleep functions are parameters so tests pace without waiting.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from pipeline.errors import InputError
from pipeline.simulator.fleet import Fleet
from pipeline.simulator.scenarios import SCENARIOS, Scenario

__all__ = ["JsonlWriter", "SimulationStats", "simulate"]

Sink = Callable[[dict[str, Any]], None]


@dataclass
class SimulationStats:
    """What a run produced."""

    events: int = 0
    malicious: int = 0
    denied: int = 0
    by_scenario: Counter[str] = field(default_factory=Counter)
    first_ts: str | None = None
    last_ts: str | None = None
    stopped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events, "malicious": self.malicious, "denied": self.denied,
            "by_scenario": dict(sorted(self.by_scenario.items())), "first_ts": self.first_ts,
            "last_ts": self.last_ts, "stopped": self.stopped,
        }


class JsonlWriter:
    """Write dicts as JSON lines (orjson, key order kept) to a path or a binary stream.

    ``"-"`` means standard output. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, target: str | Path | IO[bytes]) -> None:
        self._own = False
        if isinstance(target, str | Path):
            if str(target) == "-":
                import sys

                self._fh: IO[bytes] = sys.stdout.buffer
            else:
                try:
                    self._fh = open(target, "wb")  # closed in close()
                except OSError as exc:
                    raise InputError(f"cannot write {target}: {exc.strerror or exc}") from None
                self._own = True
        else:
            self._fh = target
        self.lines = 0

    def __call__(self, obj: dict[str, Any]) -> None:
        self._fh.write(orjson.dumps(obj) + b"\n")
        self.lines += 1

    def close(self) -> None:
        if self._own:
            self._fh.close()
        else:
            self._fh.flush()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def simulate(
    fleet: Fleet,
    emit: Sink,
    *,
    duration_hours: float = 24.0,
    attacks: Sequence[Scenario] = SCENARIOS,
    truth: Sink | None = None,
    rate: float | None = None,
    speed: float | None = None,
    max_events: int | None = None,
    on_progress: Callable[[int, int, SimulationStats], None] | None = None,
    progress_every: int = 500,
    should_stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SimulationStats:
    """Send ``fleet``'s events to ``emit`` (and each truth record to ``truth``); return stats.

    Pacing: ``rate`` hands over that many events per second of wall time; ``speed`` follows the
    events' own times, ``speed`` simulated seconds per wall second (1.0 = real time: with a fleet
    started "now" the events arrive when their ``ts`` says); neither = as fast as possible.

    ``on_progress(elapsed_sim_ms, total_sim_ms, stats)`` is called every ``progress_every``
    events and at the end. ``should_stop()`` is polled at the same points (and between paced
    events) so a caller can end a live run early; ``stats.stopped`` tells.
    """
    if rate is not None and not rate > 0:
        raise InputError(f"rate must be more than 0 events per second, got {rate!r}")
    if speed is not None and not speed > 0:
        raise InputError(f"speed must be more than 0 simulated seconds per second, got {speed!r}")
    if rate is not None and speed is not None:
        raise InputError("pace by rate or by speed, not both")
    stats = SimulationStats()
    total_ms = round(duration_hours * 3_600_000) if duration_hours > 0 else 0
    t0 = clock()
    for ev, rec in fleet.events(duration_hours=duration_hours, attacks=attacks):
        if max_events is not None and stats.events >= max_events:
            break
        if rate is not None or speed is not None:
            if rate is not None:
                due = t0 + stats.events / rate
            else:
                assert speed is not None
                due = t0 + _elapsed(fleet, ev) / 1000.0 / speed
            now = clock()
            if due > now:
                sleep(due - now)
        emit(ev)
        if truth is not None:
            truth(rec)
        stats.events += 1
        if stats.first_ts is None:
            stats.first_ts = ev["ts"]
        stats.last_ts = ev["ts"]
        if rec["malicious"]:
            stats.malicious += 1
            stats.by_scenario[rec["scenario"]] += 1
        if ev["decision"] in ("deny", "denied"):
            stats.denied += 1
        if stats.events % progress_every == 0 or speed is not None or (rate is not None and rate < progress_every):
            if on_progress is not None:
                on_progress(_elapsed(fleet, ev), total_ms, stats)
            if should_stop is not None and should_stop():
                stats.stopped = True
                break
    if on_progress is not None:
        on_progress(total_ms if not stats.stopped else _elapsed_ts(fleet, stats.last_ts), total_ms, stats)
    return stats


def _elapsed(fleet: Fleet, ev: dict[str, Any]) -> int:
    return _elapsed_ts(fleet, ev["ts"])


def _elapsed_ts(fleet: Fleet, ts: str | None) -> int:
    from pipeline.simulator.fleet import parse_start

    return 0 if ts is None else max(0, parse_start(ts) - fleet.start_ms)
