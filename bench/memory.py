"""Memory per agent and per-event CPU of the behavioural baselines.

    python -m bench.memory [--json PATH] [--agents 10000,100000] [--events 60000]

Memory: one agent's state is learned from a realistic history (a few tools, hosts, tables and
destinations, two weeks of sessions), then ``N`` agents are loaded with copies of it and the
Python heap growth is measured with ``tracemalloc`` (and RSS growth, for the allocator's view).
Reported for a *typical* agent and for the *worst case* (every bounded table full: an agent an
attacker floods with distinct tools and targets).

CPU: ``score_one`` + ``learn_one`` of the whole baseline set per event over a mixed fleet after
warm-up (best of 3 runs), and each baseline's share; and the same on the product simulator's
stream (``bench.baselines``: the first 48 simulated hours of ``pipeline.simulator.Fleet(seed=7,
agents=40)`` with every attack scenario, decoded by ``pipeline.validation.decode_event``), the
figure the per-process budget is set against. ``python -m bench.baselines`` gives more detail.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import sys
import time
import tracemalloc
from typing import Any

from rich.console import Console
from rich.table import Table

from detectors.base import Event
from detectors.baselines import BaselineDetector
from pipeline.settings import BaselineSettings

T0 = 1_767_225_600
ROLES = {
    "support": (
        "tool_call",
        ["search_kb", "get_ticket", "update_ticket", "send_email", "lookup_customer"],
    ),
    "devops": ("shell", ["kubectl", "git", "grep", "cat", "curl", "ssh"]),
    "analyst": ("sql", ["psql"]),
    "finance": ("tool_call", ["get_invoice", "pay_invoice", "get_report"]),
}


def _action(rng: random.Random, role: str) -> dict[str, Any]:
    kind, tools = ROLES[role]
    tool = rng.choice(tools)
    if kind == "shell":
        host = f"web{rng.randrange(6)}.corp"
        return {
            "kind": kind,
            "tool": tool,
            "command": f"{tool} https://{host}/x /var/log/app.log",
            "target": host,
        }
    if kind == "sql":
        table = rng.choice(["orders", "events", "products"])
        rows = int(rng.lognormvariate(6, 0.7))
        return {
            "kind": kind,
            "tool": tool,
            "command": f"SELECT * FROM {table} LIMIT 10",
            "target": table,
            "rows": rows,
            "bytes_out": rows * 200,
        }
    if tool == "send_email":
        return {
            "kind": kind,
            "tool": tool,
            "command": "send_email",
            "args": {"to": f"c{rng.randrange(10**5)}@gmail.com"},
            "bytes_out": int(rng.lognormvariate(8, 0.5)),
        }
    if tool == "pay_invoice":
        return {
            "kind": kind,
            "tool": tool,
            "command": "pay",
            "args": {"iban": f"DE89370400440532013{rng.randrange(5):03d}"},
        }
    return {
        "kind": kind,
        "tool": tool,
        "command": f"{tool}()",
        "args": {"id": str(rng.randrange(10**6))},
    }


def fleet_events(agents: int, events: int, seed: int = 1) -> list[Event]:
    """``events`` events over ``agents`` agents, in time order, ~1 action per agent-minute."""
    rng = random.Random(seed)
    roles = list(ROLES)
    per_agent = max(1, events // agents)
    out: list[Event] = []
    for a in range(agents):
        role = roles[a % len(roles)]
        t = float(T0 + rng.randrange(3600))
        for i in range(per_agent):
            t += rng.expovariate(1 / 60.0) + (16 * 3600 if i % 400 == 399 else 0)
            data = {
                "event_id": f"{a}-{i}",
                "agent_id": f"agent-{a}",
                "agent_role": role,
                "decision": "allow",
                "action": _action(rng, role),
            }
            out.append(Event(data, t))
    out.sort(key=lambda e: (e.ts, e.data["agent_id"]))
    return out


def _typical_blob(settings: BaselineSettings) -> Any:
    det = BaselineDetector(settings)
    for ev in fleet_events(4, 4 * 3000, seed=2):
        det.score_one(ev)
        det.learn_one(ev)
    return det.dump_state("agent-0")


def _worst_blob(settings: BaselineSettings) -> Any:
    det = BaselineDetector(settings)
    cap = settings.max_items_per_agent + settings.max_transitions_per_agent
    for i in range(cap * 2):
        data = {
            "event_id": str(i),
            "agent_id": "x",
            "agent_role": "support",
            "action": {
                "kind": "tool_call",
                "tool": f"t{i}",
                "command": "c",
                "args": {"to": f"u{i}@d{i}.com"},
                "bytes_out": i,
                "rows": i,
            },
        }
        ev = Event(data, T0 + i)
        det.score_one(ev)
        det.learn_one(ev)
    return det.dump_state("x")


def _rss() -> int:
    with open("/proc/self/statm") as fh:  # Linux: resident pages
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_memory(settings: BaselineSettings, blob: Any, n: int) -> dict[str, float]:
    det = BaselineDetector(settings)
    gc.collect()
    rss0 = _rss()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        det.load_state(f"agent-{i:07d}", blob)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rss1 = _rss()
    result = {
        "agents": n,
        "bytes_per_agent_heap": (after - before) / n,
        "bytes_per_agent_rss": (rss1 - rss0) / n,
    }
    del det
    gc.collect()
    return result


def measure_cpu(settings: BaselineSettings, events: int, repeats: int = 3) -> dict[str, Any]:
    agents = max(50, events // 1200)
    warm = fleet_events(agents, events * 2, seed=3)
    split = len(warm) // 2
    best = float("inf")
    parts_best: dict[str, float] = {}
    for _ in range(repeats):
        det = BaselineDetector(settings)
        for ev in warm[:split]:
            det.score_one(ev)
            det.learn_one(ev)
        probe = [Event(e.data, e.ts) for e in warm[split:]]
        gc.collect()
        t = time.process_time()  # CPU time: the machine is shared, wall time is noisy
        for ev in probe:
            det.score_one(ev)
            det.learn_one(ev)
        dt = (time.process_time() - t) / len(probe)
        if dt < best:
            best = dt
            parts_best = _parts(settings, warm[:split], warm[split:])
    return {
        "events": len(warm) - split,
        "agents": agents,
        "us_per_event": best * 1e6,
        "parts_us": parts_best,
    }


def _parts(settings: BaselineSettings, warm: list[Event], probe: list[Event]) -> dict[str, float]:
    """Per-baseline cost, timed by wrapping each part's score/learn (adds its own overhead)."""
    det = BaselineDetector(settings)
    for ev in warm:
        det.score_one(ev)
        det.learn_one(ev)
    acc: dict[str, float] = {}
    for part in det._parts:
        for meth in ("score", "learn"):
            fn = getattr(part, meth)

            def wrapped(o: Any, fn: Any = fn, key: str = part.name) -> Any:
                t = time.process_time()
                r = fn(o)
                acc[key] = acc.get(key, 0.0) + time.process_time() - t
                return r

            setattr(part, meth, wrapped)
    # the detector resolved its parts' bound methods once: point it at the wrapped ones
    det._scorers = [(p.score, rep) for p, (_, rep) in zip(det._parts, det._scorers, strict=True)]
    det._learners = [p.learn for p in det._parts]
    for e in probe:
        ev = Event(e.data, e.ts)
        det.score_one(ev)
        det.learn_one(ev)
    return {
        k: round(v / len(probe) * 1e6, 2) for k, v in sorted(acc.items(), key=lambda kv: -kv[1])
    }


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n")[0])
    ap.add_argument("--json", dest="json_path", help="write results as JSON to this path")
    ap.add_argument("--agents", default="10000,100000", help="comma-separated agent counts")
    ap.add_argument("--events", type=int, default=60000, help="events timed for the CPU figure")
    args = ap.parse_args(argv)
    settings = BaselineSettings()
    console = Console()
    blobs = {"typical": _typical_blob(settings), "worst": _worst_blob(settings)}
    mem = []
    for n in (int(x) for x in args.agents.split(",")):
        for kind, blob in blobs.items():
            r = measure_memory(settings, blob, n)
            r["state"] = kind
            r["json_bytes"] = len(json.dumps(blob, separators=(",", ":")))
            mem.append(r)
    cpu = measure_cpu(settings, args.events)
    from bench.baselines import stream, time_run

    sim = time_run(stream(48, 40, 7), 0, 3)

    table = Table(title="baselines: memory per agent")
    for col in ("agents", "state", "heap B/agent", "RSS B/agent", "JSON blob B"):
        table.add_column(col, justify="right")
    for r in mem:
        table.add_row(
            f"{r['agents']:,}",
            r["state"],
            f"{r['bytes_per_agent_heap']:,.0f}",
            f"{r['bytes_per_agent_rss']:,.0f}",
            f"{r['json_bytes']:,}",
        )
    console.print(table)
    t2 = Table(
        title=f"baselines: CPU per event (score_one + learn_one), {cpu['events']:,} events, {cpu['agents']} agents"
    )
    t2.add_column("part")
    t2.add_column("µs/event", justify="right")
    t2.add_row("all baselines (best of 3)", f"{cpu['us_per_event']:.1f}")
    t2.add_row(
        f"simulator stream, 48 h from cold ({sim['events']:,} events)",
        f"{sim['us_per_event']:.1f}",
    )
    for k, v in cpu["parts_us"].items():
        t2.add_row(f"  {k} (instrumented)", f"{v:.2f}")
    console.print(t2)
    result = {
        "benchmark": "memory",
        "memory": mem,
        "cpu": cpu,
        "cpu_simulator_48h": sim,
        "settings": settings.model_dump(mode="json"),
        "machine": machine(),
    }
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
