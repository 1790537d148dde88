"""The processor's cost per event in CPU instructions, counted by valgrind's callgrind.

    python -m bench.cost [--events 8000] [--warm 2000] [--part processor ...] [--json PATH]

Timings on a shared machine move by 10-40% between runs (see the README), more than most single
optimisations gain. An instruction count does not: the same code, input and environment give
the same count whatever else the machine runs (``PYTHONHASHSEED`` is pinned, replay's event
clock stands in for the wall clock, the garbage collector sees the same allocations). So this
benchmark is the referee for changes to the hot path; ``bench.throughput`` says what they buy in
events per second.

Each part runs in a child process under ``valgrind --tool=callgrind``, twice: over the first
``--warm`` simulated events, and over ``--warm + --events``. The difference, divided by
``--events``, is the cost of one event of that stretch of the stream, without the start-up
(imports, rule compilation: ~9 billion instructions) that both runs share. Parts:

``decode``     decode + validate (``decode_event``);
``rules``, ``policy``, ``baseline``   decode, then one detector's ``score_one`` + ``learn_one``,
               minus ``decode``;
``processor``  the whole processor, replay's strict order (``process_actions`` in 500-event
               fetches, a checkpoint after each);
``live``       the live worker's way through the same fetches (``process_urgent_first``).

With ``--native`` it also splits the processor's instructions by the C function that ran them
(``callgrind_annotate``, grouped): the interpreter's own loop, allocation, dictionaries, strings,
the garbage collector, the rest of CPython, and the native libraries we call (orjson, RE2,
jsonschema-rs: their shared objects carry no symbols, so callgrind names them ``???``).

The children install the worker's collector policy (:class:`~pipeline.gcpolicy.GcPolicy`: what
start-up allocated is frozen, no automatic full collections) but not its once-a-second freezes,
which follow the wall clock; the young collections are counted with the rest. valgrind runs the children about
50 times slower than normal: a part takes 1.5-3 minutes, two run at once.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import dev_settings, machine, source_commit, write_json

PARTS = ("decode", "rules", "policy", "baseline", "processor", "live")
FETCH = 500


def run_part(part: str, path: str, n: int) -> None:
    """The child: run ``part`` over the first ``n`` events of ``path`` (one event per line)."""
    from pipeline.components import build_processor
    from pipeline.gcpolicy import GcPolicy
    from pipeline.processor import EventClock, InputRecord
    from pipeline.validation import decode_event

    values = Path(path).read_bytes().splitlines()[:n]
    settings = dev_settings()
    processor = build_processor(settings, clock=EventClock(), replay=True)
    records = [InputRecord(v, None, "bench", i % 4, i) for i, v in enumerate(values)] if part in ("processor", "live") else []
    # the worker's collector policy: start-up frozen, no automatic full collections (its timed
    # freezes are left out: they follow the wall clock, and counts must not)
    policy = GcPolicy(settings.worker.gc_freeze_seconds, settings.worker.gc_full_collect_seconds)
    policy.install()
    if records:
        for i in range(0, len(records), FETCH):
            fetch = records[i : i + FETCH]
            if part == "live":
                for _ in processor.process_urgent_first(fetch):
                    policy.after_step()
            else:
                processor.process_actions(fetch)
                policy.after_step()
            processor.checkpoint()
        return
    # one event at a time, kept by nothing: a list of every decoded event would survive into the
    # collector's older generations and make each collection scan it (the processor drops each
    # event when done with it)
    det = None if part == "decode" else next(d for d in processor.detectors if d.name == part)
    for v in values:
        ev = decode_event(v, 65536)
        if det is not None and not isinstance(ev, Exception):
            det.score_one(ev)
            det.learn_one(ev)


#: C function (file:function as callgrind_annotate names it) -> group, first match wins
NATIVE_GROUPS = (
    ("interpreter", ("ceval.c", "frame.c", "pycore_frame.h", "object.h:_PyEval", "object.h:_PyFrame")),
    ("garbage collector", ("gcmodule.c",)),
    ("allocation", ("obmalloc.c", "malloc.c", "dealloc", "_Py_NewReference", "memset", "memmove")),
    ("dictionaries", ("dictobject.c", "pyhash.c")),
    ("strings", ("unicodeobject.c", "stringlib", "bytesobject.c")),
    ("regex (Python's re)", ("_sre",)),
    ("hashing, base64 (hashlib, binascii)", ("sha", "blake2", "binascii")),
    # the compiled build: our modules as mypyc wrote them, and mypyc's runtime library
    ("our code compiled by mypyc", ("__native_", "lib-rt/")),
    ("objects, numbers, calls (the rest of CPython)", ("Python-3.",)),
    ("native code without symbols (orjson, RE2, jsonschema-rs)", ("???",)),
)


def _by_function(out: Path) -> dict[str, int]:
    # --auto=no: only the table of functions. With source annotation on (callgrind_annotate's
    # default where it finds the sources, as it does for a compiled build's C files) the output
    # goes on with per-line counts and "=>" call lines in the same format, and they were summed too
    text = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", str(out)], capture_output=True,
                          text=True, check=True).stdout
    return parse_annotate(text)


def parse_annotate(text: str) -> dict[str, int]:
    """Instructions per function (``file:function``) from ``callgrind_annotate``'s table of
    functions: the rows after its ``file:function`` header, up to the first blank line (any
    annotated source after it has rows of the same shape)."""
    totals: dict[str, int] = {}
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.rstrip().endswith("file:function")), None)
    if start is None:
        return totals
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)", line)
        if m:
            name = re.sub(r" \[.*\]$", "", m.group(2))
            totals[name] = totals.get(name, 0) + int(m.group(1).replace(",", ""))
    return totals


def native_split(before: dict[str, int], after: dict[str, int], events: int) -> dict[str, float]:
    """Thousand instructions per event by group (see :data:`NATIVE_GROUPS`), from the per-function
    totals of the short and the long run."""
    groups: dict[str, float] = {}
    for name, n in after.items():
        delta = n - before.get(name, 0)
        group = next((g for g, keys in NATIVE_GROUPS if any(k in name for k in keys)), "other C code")
        groups[group] = groups.get(group, 0.0) + delta
    return {g: round(v / events / 1000.0, 1) for g, v in sorted(groups.items(), key=lambda kv: -kv[1])}


def _count(part: str, path: str, n: int, tmp: Path) -> int:
    out = tmp / f"callgrind.{part}.{n}.out"
    # no AGENTWATCH_* settings from the caller's environment: they would change what is counted
    # (run_part allows the development signing key on its own settings: dev_settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWATCH_")}
    env["PYTHONHASHSEED"] = "0"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           sys.executable, "-m", "bench.cost", "--child", part, path, str(n)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          cwd=str(Path(__file__).resolve().parent.parent))
    if proc.returncode != 0:
        raise RuntimeError(f"{part} ({n} events) failed:\n{proc.stderr[-2000:]}")
    text = out.read_text()
    m = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
    if m is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(m.group(1))


def measure(parts: list[str], warm: int, events: int, native: bool = False) -> dict[str, Any]:
    from bench.throughput import simulated_events

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        path = tmp / "events.jsonl"
        path.write_bytes(b"\n".join(simulated_events(warm + events)) + b"\n")
        need = sorted(set(parts) | ({"decode"} if set(parts) & {"rules", "policy", "baseline"} else set()))
        jobs = [(p, n) for p in need for n in (warm, warm + events)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = dict(zip(jobs, pool.map(lambda j: _count(j[0], str(path), j[1], tmp), jobs), strict=True))
        split = None
        if native and "processor" in need:
            split = native_split(_by_function(tmp / f"callgrind.processor.{warm}.out"),
                                 _by_function(tmp / f"callgrind.processor.{warm + events}.out"), events)
    per = {p: (counts[(p, warm + events)] - counts[(p, warm)]) / events for p in need}
    out: dict[str, float] = {}
    for p in parts:
        v = per[p] - per["decode"] if p in ("rules", "policy", "baseline") else per[p]
        out[p] = round(v / 1000.0, 1)
    return {"thousand_instructions_per_event": out, **({"processor_by_c_function": split} if split else {})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=8000, help="events measured (after --warm)")
    ap.add_argument("--warm", type=int, default=2000, help="events run before the measured stretch")
    ap.add_argument("--part", action="append", choices=PARTS, help="repeatable; default: all")
    ap.add_argument("--native", action="store_true", help="split the processor by C function")
    ap.add_argument("--json", dest="json_path")
    ap.add_argument("--child", nargs=3, metavar=("PART", "FILE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        run_part(args.child[0], args.child[1], int(args.child[2]))
        return 0
    if shutil.which("valgrind") is None:
        print("bench.cost needs valgrind (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2

    from rich.console import Console
    from rich.table import Table

    parts = args.part or list(PARTS)
    if args.native and "processor" not in parts:
        parts.append("processor")
    commit = source_commit()  # before the children run: what they measure
    try:
        measured = measure(parts, args.warm, args.events, args.native)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"bench.cost: {exc}", file=sys.stderr)
        return 1
    result: dict[str, Any] = {"benchmark": "cost", "machine": machine(), "commit": commit,
                              "warm": args.warm, "events": args.events, **measured}
    table = Table(title=f"instructions per event, events {args.warm:,}-{args.warm + args.events:,} of the simulated stream")
    table.add_column("part")
    table.add_column("thousand instructions / event", justify="right")
    for k, v in result["thousand_instructions_per_event"].items():
        table.add_row(k, f"{v:,.1f}")
    for group, v in result.get("processor_by_c_function", {}).items():
        table.add_row(f"  processor: {group}", f"{v:,.1f}")
    Console().print(table)
    write_json(args.json_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
