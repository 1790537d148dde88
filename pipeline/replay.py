"""Replay: the live pipeline's processing over a file, in-process, with no Kafka.

The same :func:`~pipeline.components.build_processor` and :class:`~pipeline.processor.Processor`
as the worker; only the transport differs (lines in, files out). Everything the pipeline writes
derives from event time (the processor's :class:`~pipeline.processor.EventClock`), and time-driven
work (ack timeouts, expiries) runs after every ``batch`` lines at the current event time, so the
same input gives the same output files byte for byte.

Outputs in ``out_dir``: ``enriched.jsonl``, ``alerts.jsonl``, ``enforcement.jsonl``,
``incidents.jsonl``, ``dlq.jsonl`` (one record per bad line, with its line number) and the
incident store ``incidents.db`` (SQLite), recreated on every run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from pipeline.errors import InputError
from pipeline.processor import EventClock, InputRecord, Processor
from pipeline.records import Output
from pipeline.settings import Settings

__all__ = ["ReplayResult", "replay"]

OUTPUT_FILES = {
    "enriched": "enriched.jsonl",
    "alerts": "alerts.jsonl",
    "enforcement": "enforcement.jsonl",
    "incidents": "incidents.jsonl",
    "dlq": "dlq.jsonl",
}
STORE_FILE = "incidents.db"
REPLAY_TOPIC = "replay"


@dataclass
class ReplayResult:
    lines: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    out_dir: Path = Path()
    store_path: Path = Path()


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(stream, start=1):
        stripped = line.rstrip(b"\r\n")
        if stripped.strip() == b"":
            continue  # blank lines are not messages
        yield number, stripped


def replay(
    settings: Settings,
    source: IO[bytes],
    out_dir: Path,
    *,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
    processor: Processor | None = None,
) -> ReplayResult:
    """Run the pipeline over ``source`` (JSON lines) and write every output into ``out_dir``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output directory {out_dir}: {exc.strerror or exc}") from None
    clock = EventClock()
    if processor is None:
        from pipeline.components import build_processor

        # replay mode: no ack timeouts, and commands (a record of what would have been sent,
        # never executed) are signed with the public development key when none is configured
        processor = build_processor(settings, clock=clock, replay=True)
    else:
        processor.clock = clock
    store_path = out_dir / STORE_FILE
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            (out_dir / (STORE_FILE + suffix)).unlink()
    from pipeline.incidents import open_store

    store = open_store(f"sqlite:///{store_path}")
    result = ReplayResult(out_dir=out_dir, store_path=store_path)
    files: dict[str, IO[bytes]] = {}
    from pipeline.gcpolicy import GcPolicy

    # the worker's collector policy: full collections rescanning long-lived state cost replay
    # about a tenth of its CPU (bench.pauses); it does not change any output
    gc_policy = GcPolicy(settings.worker.gc_freeze_seconds, settings.worker.gc_full_collect_seconds,
                         freeze_each_step=settings.worker.gc_freeze_each_step)
    gc_policy.install()
    try:
        for kind, name in OUTPUT_FILES.items():
            files[kind] = (out_dir / name).open("wb")
        pending: list[InputRecord] = []
        day_counts: dict[str, list[int]] = {}

        def flush() -> None:
            outputs = processor.process_actions(pending)
            outputs.extend(processor.tick(clock()))
            _write(files, outputs, result)
            store.apply_outputs(outputs)
            processor.checkpoint()  # replay keeps state in memory; clears the dirty sets
            for o in outputs:
                if o.kind in ("enriched", "dlq"):
                    day = _day(o, clock())
                    counts = day_counts.setdefault(day, [0, 0])
                    counts[0 if o.kind == "enriched" else 1] += 1
            pending.clear()

        for number, raw in _lines(source):
            pending.append(InputRecord(raw, None, REPLAY_TOPIC, 0, number - 1, None, number))
            result.lines += 1
            if len(pending) >= batch:
                flush()
                gc_policy.after_step()
                gc_policy.tick()
                if progress is not None:
                    progress(result.lines)
        if pending:
            flush()
        final = processor.finish()
        _write(files, final, result)
        store.apply_outputs(final)
        if progress is not None:
            progress(result.lines)
        for day, (events, dead) in sorted(day_counts.items()):
            store.record_stats(day, events + dead, dead, source="replay")
        result.duplicates = processor.stats.duplicates
    finally:
        gc_policy.uninstall()
        for f in files.values():
            f.close()
        store.close()
    return result


def _day(out: Output, fallback: float) -> str:
    from pipeline.records import iso_time

    ts = out.value.get("ts") if out.kind == "enriched" else None
    return str(ts)[:10] if isinstance(ts, str) and len(ts) >= 10 else iso_time(fallback)[:10]


def _write(files: dict[str, IO[bytes]], outputs: Iterable[Output], result: ReplayResult) -> None:
    counts = result.counts
    for out in outputs:
        files[out.kind].write(orjson.dumps(out.value) + b"\n")
        counts[out.kind] = counts.get(out.kind, 0) + 1


def open_source(path: str) -> Any:
    """``-`` is standard input; anything else a file, with a one-line error if unreadable."""
    import sys

    if path == "-":
        return contextlib.nullcontext(sys.stdin.buffer)
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {path}")
    if p.is_dir():
        raise InputError(f"{path} is a directory; expected a JSON-lines file")
    try:
        return p.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
