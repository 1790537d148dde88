"""Garbage-collector pauses in the processor, with Python's defaults and with the worker's policy.

    python -m bench.pauses [--events 60000] [--agents 500] [--json PATH]

Runs the latency benchmark's event mix (benign commands from ``--agents`` agents, 1% attacks
from new agents, like ``bench.latency``) through the processor in-process, in chunks of 32 as the
worker does, with a state checkpoint every 512 events; once with CPython's default collector and
once with :class:`pipeline.gcpolicy.GcPolicy` as the worker installs it (its timer ticked every
second of run time). Each run is a fresh subprocess, so the two do not share a heap. Reports,
per generation, the number of collections, their total and their longest pause, and CPU µs/event.
A pause stops the worker: the longest one lands directly on the event -> isolation command p99.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from bench.common import dev_settings, machine, write_json


def _run(mode: str, n: int, agents: int) -> dict[str, Any]:
    import gc

    import orjson

    from bench.latency import ATTACK, _event
    from pipeline.components import build_processor
    from pipeline.gcpolicy import GcPolicy
    from pipeline.processor import InputRecord

    settings = dev_settings()
    settings.enforcement.max_isolations_per_minute = 1_000_000
    benign = [("ls", "ls -la /srv/app"), ("git", "git status"), ("kubectl", "kubectl get pods -n web")]
    raw = []
    for i in range(n):
        if i % 100 == 99:
            raw.append(orjson.dumps(_event(f"attacker-{i}", ATTACK, "rm")))
        else:
            tool, cmd = benign[i % 3]
            raw.append(orjson.dumps(_event(f"agent-{i % agents}", cmd, tool)))
    processor = build_processor(settings, clock=time.time)
    now_ms = int(time.time() * 1000)

    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - started[0])

    w = settings.worker
    policy = GcPolicy(w.gc_freeze_seconds, w.gc_full_collect_seconds) if mode == "policy" else None
    if policy is not None:
        policy.install()
    gc.callbacks.append(on_gc)
    cpu = time.process_time()
    last_tick = time.monotonic()
    for i in range(0, n, 32):  # records made per chunk, as fetched: only the raw bytes (untracked) wait
        processor.process_actions([InputRecord(raw[j], None, "bench", j % 4, j, now_ms) for j in range(i, min(n, i + 32))])
        if policy is not None:
            policy.after_step()
        if i % 512 == 0:
            processor.checkpoint()
        if policy is not None and time.monotonic() - last_tick >= 1.0:
            last_tick = time.monotonic()
            policy.tick(last_tick)
    cpu = time.process_time() - cpu
    gc.callbacks.remove(on_gc)
    out: dict[str, Any] = {"mode": mode, "events": n, "cpu_us_per_event": round(cpu / n * 1e6, 1)}
    for gen, p in pauses.items():
        out[f"gen{gen}"] = {"collections": len(p), "total_ms": round(sum(p) * 1000, 1),
                            "max_ms": round(max(p) * 1000, 1) if p else 0.0}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pauses", description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=60000)
    ap.add_argument("--agents", type=int, default=500)
    ap.add_argument("--json", dest="json_path")
    ap.add_argument("--run", choices=["default", "policy"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run:
        print(json.dumps(_run(args.run, args.events, args.agents)))
        return 0

    from rich.console import Console
    from rich.table import Table

    result: dict[str, Any] = {"benchmark": "pauses", "machine": machine(), "events": args.events,
                              "agents": args.agents, "runs": []}
    for mode in ("default", "policy"):
        proc = subprocess.run([sys.executable, "-m", "bench.pauses", "--run", mode, "--events", str(args.events),
                               "--agents", str(args.agents)], capture_output=True, text=True, check=True)
        result["runs"].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    table = Table(title=f"GC pauses over {args.events:,} events ({args.agents} agents)")
    for col in ("collector", "µs/event", "gen0 n / max ms", "gen1 n / max ms", "gen2 n / max ms", "all pauses ms"):
        table.add_column(col, justify="right")
    for r in result["runs"]:
        total = sum(r[f"gen{g}"]["total_ms"] for g in range(3))
        table.add_row(r["mode"], f"{r['cpu_us_per_event']:.1f}",
                      *(f"{r[f'gen{g}']['collections']} / {r[f'gen{g}']['max_ms']:.1f}" for g in range(3)),
                      f"{total:.0f}")
    Console().print(table)
    write_json(args.json_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
