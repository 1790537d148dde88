"""What the worker's other work between processing steps costs the processor: caches refilled.

    python -m bench.cachepenalty [--events 20000] [--touch-kib 0 1024 4096] [--repeat 2] [--json PATH]

In the worker the processor runs in steps of 32 events (``pipeline.stages.process.URGENT_CHUNK``),
and between two steps the event loop and the consumer thread run faust, aiokafka and the
producer. The same processor code costs ~1.5-2x as much CPU per event in the worker as in a
plain process (``bench.throughput``'s rows "in the processor, in the worker" and
"processor_total"), and no change to the collector, the step size or the switch interval
explained it (README, eighth session). This benchmark asks how much of that a cache refill
alone can cost: it runs the processor in-process over the simulated stream, in steps of 32 events
as the worker does, and between steps writes one byte per cache line of a ``--touch-kib`` buffer
(the stand-in for the worker's other work: it evicts the processor's working set from the
per-core L2 cache, 1 MiB here, and from the shared L3 cache at larger sizes). The processor's own
thread CPU is read around each step only, so the touching itself is not counted.

Each setting runs ``--repeat`` times, the settings alternated; the table gives the median.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.common import dev_settings, machine, write_json
from bench.throughput import simulated_events
from pipeline.components import build_processor
from pipeline.gcpolicy import GcPolicy
from pipeline.processor import InputRecord
from pipeline.stages.process import URGENT_CHUNK

_LINE = 64  # bytes per cache line


def _run(events: list[bytes], touch: int) -> float:
    """The processor's CPU µs per event over ``events`` (fresh processor, worker's collector
    policy), touching ``touch`` bytes between its steps."""
    settings = dev_settings()
    policy = GcPolicy(settings.worker.gc_freeze_seconds, settings.worker.gc_full_collect_seconds)
    policy.install()
    try:
        processor = build_processor(settings, clock=time.time, replay=True)
        records = [InputRecord(v, None, "bench", 0, i) for i, v in enumerate(events)]
        buffer = bytearray(max(touch, _LINE))
        clock = time.thread_time
        cpu = 0.0
        for start in range(0, len(records), 500):  # one fetch of 500 records at a time
            steps = processor.process_urgent_first(records[start : start + 500], step=URGENT_CHUNK)
            while True:
                t = clock()
                try:
                    next(steps)
                except StopIteration:
                    cpu += clock() - t
                    break
                cpu += clock() - t
                policy.after_step()  # as the worker's stage does between steps
                for i in range(0, touch, _LINE):
                    buffer[i] = (buffer[i] + 1) & 0xFF
            processor.checkpoint()
        return cpu / len(records) * 1e6
    finally:
        policy.uninstall()


def measure(events: int, touches: list[int], repeat: int) -> dict[str, Any]:
    stream = simulated_events(events)
    runs: dict[int, list[float]] = {kib: [] for kib in touches}
    for _ in range(repeat):
        for kib in touches:
            runs[kib].append(round(_run(stream, kib * 1024), 1))
    return {str(kib): {"median_us_per_event": round(statistics.median(v), 1), "runs": v} for kib, v in runs.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--touch-kib", type=int, nargs="+", default=[0, 1024, 4096])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    figures = measure(args.events, args.touch_kib, args.repeat)
    table = Table(title=f"processor CPU per event, steps of {URGENT_CHUNK} events (median of {args.repeat})")
    table.add_column("KiB touched between steps", justify="right")
    table.add_column("µs/event", justify="right")
    table.add_column("runs")
    for kib, row in figures.items():
        table.add_row(kib, f"{row['median_us_per_event']:.1f}", ", ".join(f"{v:.1f}" for v in row["runs"]))
    Console().print(table)
    write_json(args.json_path, {"benchmark": "cachepenalty", "machine": machine(), "events": args.events,
                                "step": URGENT_CHUNK, "touch_kib": figures})


if __name__ == "__main__":
    main()
