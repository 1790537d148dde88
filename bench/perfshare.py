"""Where the whole live worker's CPU goes, by native function, sampled by ``perf``.

    python -m bench.perfshare [--events 40000] [--freq 1000] [--top 30] [--json PATH]
                              [--data PATH [--from-data]]

Runs one full worker (the one ``bench.throughput`` measures, from this tree: run it from
``build/compiled`` for the compiled build) over a backlog of simulated events on the embedded
broker, and samples every thread of it with ``perf record -e cpu-clock`` while it works through
them. Then it sums the samples by native function and puts each function in a group: the
collector, the allocator, dictionaries, the bytecode loop, the rest of CPython, our compiled code,
orjson, RE2, jsonschema-rs, aiokafka's record code, the kernel's page faults, the rest of the
kernel (scheduling, system calls, loopback networking), and so on.

What it says that the other benchmarks cannot: ``bench.profile`` (py-spy ``--native``) splits the
main thread by *our* functions but slows the worker ~50-fold and cannot unwind through orjson or
jsonschema-rs; ``bench.cost`` counts instructions in-process, where the heap, the collector's
survivors and the kernel's share differ from the worker's. perf's clock sampling costs the worker
about 1% and sees every native function, the kernel included. These machines have no hardware
performance counters (so no cache-miss counts), but the software clock works there. It needs
``perf`` (Debian's ``linux-perf``) and ``kernel.perf_event_paranoid`` at 2 or lower (it samples
a child of ours, in user and kernel mode as the paranoia level allows).

Shares are of all samples of the worker (every thread), not of the main thread alone; the figure
per event is the samples' CPU time over the events processed while sampling, so it includes the
worker's start of the backlog, not its start-up.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.common import machine, source_commit, write_json

__all__ = ["GROUPS", "group_of", "parse_report", "summarise"]

#: (group, dso pattern, symbol pattern): the first match wins. Symbol patterns are matched from
#: the start of the function's name.
GROUPS: tuple[tuple[str, str, str], ...] = (
    ("kernel: page faults", r"\[kernel", r"(clear_page|.*page_fault|do_anonymous_page|.*handle_mm_fault|"
                                         r".*memcg|.*folio|alloc_pages|__alloc_frozen_pages|get_page_from_freelist|"
                                         r".*pte_offset|charge_memcg|.*lruvec|mod_memcg|count_memcg)"),
    ("kernel: scheduling, system calls, network", r"\[kernel", r""),
    ("collector (collections, object tracking)", r"libpython", r"(gc_|visit_|.*_traverse$|_PyObject_GC_|PyObject_GC_|_PyGC_|"
                                     r"update_refs|subtract_refs|move_unreachable)"),
    ("allocator", r"libpython", r"(_PyObject_Malloc|_PyObject_Free|_PyObject_Realloc|_PyObject_Calloc|"
                                r"allocate_from_new_pool|insert_to_freepool|insert_to_usedpool|_PyMem_|PyMem_|"
                                r"PyObject_Malloc|PyObject_Free|new_arena|_PyObject_ArenaMmap)"),
    ("allocator", r"libc\.", r"(malloc|free|_int_malloc|_int_free|_int_realloc|realloc|calloc|sysmalloc|"
                             r"unlink_chunk|malloc_consolidate|cfree)"),
    ("dictionaries", r"libpython", r"(_Py_dict_lookup|unicodekeys_lookup|insertdict|dict_|_PyDict_|PyDict_|"
                                   r"free_keys_object|new_keys_object|lookdict|insert_to_emptydict|dictresize|"
                                   r"dictkeys_|build_indices)"),
    ("bytecode loop", r"libpython", r"(_PyEval_|PyEval_)"),
    ("CPython: the rest (objects, calls, strings, ints)", r"libpython", r""),
    ("memory copies (libc)", r"libc\.", r"(__mem|mem)"),
    ("libc: the rest", r"libc\.", r""),
    ("agentwatch, compiled (mypyc)", r"agentwatch_native", r""),
    ("orjson", r"orjson", r""),
    ("RE2", r"(_re2|libre2)", r""),
    ("jsonschema-rs", r"jsonschema_rs", r""),
    ("aiokafka records", r"(default_records|legacy_records|memory_records|cutil|_crecords)", r""),
    ("hashing (OpenSSL, BLAKE2)", r"(libcrypto|_blake2|_hashlib)", r""),
    ("SQLite", r"libsqlite", r""),
    ("other libraries", r"", r""),
)
_COMPILED = [(name, re.compile(dso), re.compile(sym)) for name, dso, sym in GROUPS]
#: ``perf report -F sample,dso,sym`` line: samples, the binary, ``[.]`` or ``[k]``, the function
_LINE = re.compile(r"^\s*(\d+)\s+(\S+)\s+\[[.kgu]\]\s+(.+?)\s*$")


def group_of(dso: str, symbol: str) -> str:
    """The group a function is counted in (the last group, "other libraries", catches all)."""
    for name, dso_re, sym_re in _COMPILED:
        if dso_re.search(dso) and sym_re.match(symbol):
            return name
    raise AssertionError("unreachable: the last group matches everything")  # pragma: no cover


def parse_report(lines: Iterable[str]) -> Counter[tuple[str, str]]:
    """Samples per (binary, function) from ``perf report --stdio --no-children -g none --sort dso,sym
    -F sample,dso,sym``. Comment lines, blank lines and anything else not of that shape are skipped."""
    samples: Counter[tuple[str, str]] = Counter()
    for line in lines:
        if line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m:
            samples[(m.group(2), m.group(3))] += int(m.group(1))
    return samples


def summarise(samples: Counter[tuple[str, str]], *, freq: int, events: int, top: int) -> dict[str, Any]:
    """Shares per group and per function, and each group's CPU µs per event."""
    total = sum(samples.values())
    if not total:
        raise ValueError("no samples")
    groups: Counter[str] = Counter()
    for (dso, sym), n in samples.items():
        groups[group_of(dso, sym)] += n
    per_event = 1e6 / freq / events if events else 0.0
    return {
        "samples": total,
        "cpu_us_per_event": round(total * per_event, 1) if events else None,
        "groups": [{"group": g, "share": round(n / total, 4), "us_per_event": round(n * per_event, 2) if events else None}
                   for g, n in groups.most_common()],
        "functions": [{"function": sym, "binary": Path(dso).name, "group": group_of(dso, sym),
                       "share": round(n / total, 4)} for (dso, sym), n in samples.most_common(top)],
    }


def _perf() -> str:
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("perf is not installed (Debian: apt-get install linux-perf)")
    return perf


def _report(perf: str, data: Path) -> list[str]:
    import subprocess

    done = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
                           "--sort", "dso,sym", "-F", "sample,dso,sym"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"perf report failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.splitlines()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=40000)
    ap.add_argument("--freq", type=int, default=1000, help="samples per second of CPU (perf's -F)")
    ap.add_argument("--top", type=int, default=30, help="functions listed")
    ap.add_argument("--data", help="keep perf's data file here; with --from-data, read it instead of running")
    ap.add_argument("--from-data", action="store_true", help="only summarise the samples in --data")
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args(argv)
    if args.from_data and not args.data:
        ap.error("--from-data needs --data PATH")
    if args.events < 2000 or args.freq <= 0:
        ap.error("--events must be at least 2000 and --freq positive")

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from bench.profile import run_sampled_worker

    perf = _perf()
    console = Console()
    run: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        data = Path(args.data) if args.data else Path(tmpdir) / "perf.data"
        if not args.from_data:
            console.print(f"full worker over {args.events:,} events, sampled by perf at {args.freq}/s of CPU ...")
            run, err = run_sampled_worker(args.events, lambda pid: [
                perf, "record", "-q", "-e", "cpu-clock", "-F", str(args.freq), "-p", str(pid), "-o", str(data)])
            if not data.exists():
                raise SystemExit(f"perf wrote no samples: {err[-2000:]}")
        try:
            samples = parse_report(_report(perf, data))
        except OSError as exc:
            raise SystemExit(f"cannot read {data}: {exc.strerror or exc}") from None
    if not samples:
        raise SystemExit("no samples of the worker")
    result = summarise(samples, freq=args.freq, events=run.get("events", 0), top=args.top)
    per_event = f", {result['cpu_us_per_event']} µs of CPU per event" if result["cpu_us_per_event"] else ""
    table = Table(title=f"the worker's CPU by group: {result['samples']:,} samples{per_event}")
    table.add_column("share", justify="right")
    table.add_column("µs/event", justify="right")
    table.add_column("group")
    for g in result["groups"]:
        table.add_row(f"{g['share']:.1%}", "" if g["us_per_event"] is None else f"{g['us_per_event']:.1f}", g["group"])
    console.print(table)
    table = Table(title=f"the {args.top} functions with most samples")
    table.add_column("share", justify="right")
    table.add_column("function", overflow="fold")
    table.add_column("group")
    for f in result["functions"]:
        table.add_row(f"{f['share']:.1%}", escape(f"{f['function']} ({f['binary']})"), f["group"])
    console.print(table)
    if args.json_path:
        write_json(args.json_path, {"benchmark": "perfshare", "machine": machine(), "commit": source_commit(),
                                    **run, "freq": args.freq, **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
