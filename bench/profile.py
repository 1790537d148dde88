"""Where the live worker's main thread spends its time, sampled by py-spy inside the worker.

    python -m bench.profile [--events 40000] [--rate 97] [--top 40] [--json PATH] [--raw PATH]

Runs one full worker (the same one ``bench.throughput`` measures, from this tree: run it from
``build/compiled`` for the compiled build) over a backlog of simulated events on the embedded
broker, and samples it with ``py-spy record --native`` for the measured stretch (``pip install
'agentwatch[bench]'`` brings py-spy; it needs ptrace rights over the worker, which a process has
over its own children as root or with ``kernel.yama.ptrace_scope`` 0).

What it says that the other benchmarks cannot: ``bench.cost`` counts instructions in-process, and
the worker's ``agentwatch_processing_cpu_seconds`` says how much of its CPU the processor takes,
but neither says which of the worker's functions take it *in the worker*, nor when the main
thread is not running at all. ``--native`` sees the compiled build's C functions
(``CPyDef_<module>___<function>``) as well as interpreted frames, so it splits the compiled
worker by our own functions; cProfile sees only interpreted frames there.

The main thread's samples are split into:

- **waiting for the interpreter lock** (the innermost frames are a condition-variable wait): another
  thread of the worker (faust's consumer thread, the store's writer) asked for the lock, and the
  main thread handed it over and waits to get it back;
- **idle** in the event loop's ``select`` (nothing to do: the backlog ran dry);
- **running**: every function on the stack of a running sample gets it, so a row is that
  function's inclusive share of the main thread's running samples.

Sampling pauses the worker (``--native`` needs it), which slows it several-fold: events/s under
the profiler mean nothing, and the shares are of samples, not of time at full speed. Compare
shares between trees, not with ``bench.throughput``'s figures.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import machine, source_commit, write_json

__all__ = ["Profile", "parse_raw", "run_sampled_worker"]

#: the innermost frames of a main thread that waits to take the interpreter lock back
_LOCK_WAIT = ("pthread_cond_wait", "pthread_cond_timedwait", "take_gil", "drop_gil")
#: a frame of the event loop waiting for I/O
_IDLE = ("EpollSelector.select", "epoll_wait", "select.epoll.poll")


@dataclass
class Profile:
    """Samples of one thread (the one whose stacks contain ``marker``), split by what it did."""

    running: int = 0
    lock_wait: int = 0
    idle: int = 0
    #: function -> running samples with it on the stack
    inclusive: Counter[str] = field(default_factory=Counter)
    #: the function a lock wait happened in (the innermost Python or compiled frame)
    lock_wait_in: Counter[str] = field(default_factory=Counter)

    def share(self, name: str) -> float:
        return self.inclusive[name] / self.running if self.running else 0.0

    def to_dict(self, top: int) -> dict[str, Any]:
        total = self.running + self.lock_wait + self.idle
        return {
            "samples": total,
            "running": self.running,
            "waiting_for_interpreter_lock": self.lock_wait,
            "idle": self.idle,
            "inclusive_share_of_running": {k: round(v / self.running, 4) for k, v in self.inclusive.most_common(top)}
            if self.running else {},
            "lock_waits_in": dict(self.lock_wait_in.most_common(10)),
        }


def _name(frame: str) -> str:
    """``name (file:line)`` -> ``name`` (py-spy's frame text; some frames have no location)."""
    frame = frame.strip()
    if frame.endswith(")"):
        name, sep, _ = frame.rpartition(" (")
        if sep:
            return name
    return frame


def _ours(name: str) -> bool:
    """A compiled function of ours or a Python frame (not libc, CPython's C or a bare address)."""
    return name.startswith("CPyDef_") or ("." in name and not name.startswith("0x")) or name == "<module>"


def parse_raw(lines: Any, marker: str = "run_worker") -> Profile:
    """Read py-spy's raw output (``frame;frame;... count`` per line, outermost first) and split
    the samples of the thread whose stacks hold ``marker`` (the worker's main thread)."""
    prof = Profile()
    for line in lines:
        line = line.rstrip("\n")
        stack, sep, count = line.rpartition(" ")
        if not sep or not count.isdigit():
            continue
        n = int(count)
        names = [_name(f) for f in stack.split(";")]
        if not any(marker in x for x in names):
            continue
        inner = names[-4:]
        if any(x.startswith(_LOCK_WAIT) for x in inner):
            prof.lock_wait += n
            where = next((x for x in reversed(names) if _ours(x) and not x.startswith(_LOCK_WAIT)), "?")
            prof.lock_wait_in[where] += n
            continue
        if any(x.startswith(_IDLE) for x in inner):
            prof.idle += n
            continue
        prof.running += n
        for x in set(names):
            prof.inclusive[x] += n
    return prof


def run_sampled_worker(events: int, sampler: Callable[[int], list[str]]) -> tuple[dict[str, Any], str]:
    """A full worker (this tree's) over a backlog of ``events`` simulated events on the embedded
    broker, sampled while it works through them by the command ``sampler(worker_pid)``, which is
    stopped with SIGINT (py-spy and perf both write what they have on it). Returns the run's
    figures and the sampler's error output."""
    from bench import throughput as bt
    from pipeline.broker import EmbeddedBroker

    values = bt.simulated_events(events)
    with tempfile.TemporaryDirectory() as tmpdir, EmbeddedBroker() as broker:
        tmp = Path(tmpdir)
        prefix = "profile."
        env = bt._env(broker.bootstrap, prefix, tmp)
        bt._create_topics(env)
        warm = values[:1000]
        asyncio.run(bt._produce(broker.bootstrap, prefix + "agent.actions", warm))
        worker = bt._start_worker("full", env, tmp / "worker.log")
        try:
            got = asyncio.run(bt._read_outputs(broker.bootstrap, prefix + "agent.actions.enriched", len(warm), 120))
            if len(got) < len(warm):
                raise SystemExit("the worker did not start:\n" + (tmp / "worker.log").read_text(errors="replace")[-3000:])
            proc = subprocess.Popen(sampler(worker.pid), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            asyncio.run(bt._produce(broker.bootstrap, prefix + "agent.actions", values[1000:]))
            outs = asyncio.run(bt._read_outputs(broker.bootstrap, prefix + "agent.actions.enriched", len(values), 1800))
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    return {"events": len(outs) - len(warm)}, err.decode(errors="replace")


def _record(out: Path, events: int, rate: int) -> dict[str, Any]:
    """A full worker over a backlog of ``events``, sampled by py-spy while it works through them."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: pip install 'agentwatch[bench]'")
    run, err = run_sampled_worker(events, lambda pid: [
        spy, "record", "--pid", str(pid), "--native", "--rate", str(rate), "--format", "raw",
        "--output", str(out), "--duration", "3600"])
    if not out.exists():
        raise SystemExit(f"py-spy wrote no samples: {err[-2000:]}")
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=40000)
    ap.add_argument("--rate", type=int, default=97, help="samples per second (py-spy's --rate)")
    ap.add_argument("--top", type=int, default=40, help="functions listed")
    ap.add_argument("--raw", help="keep py-spy's raw samples here; with --from-raw, read them instead of running")
    ap.add_argument("--from-raw", action="store_true", help="only summarise the samples in --raw")
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args(argv)
    if args.from_raw and not args.raw:
        ap.error("--from-raw needs --raw PATH")

    from rich.console import Console
    from rich.table import Table

    console = Console()
    with tempfile.TemporaryDirectory() as tmpdir:
        raw = Path(args.raw) if args.raw else Path(tmpdir) / "samples.txt"
        run: dict[str, Any] = {}
        if not args.from_raw:
            console.print(f"full worker over {args.events:,} events, sampled at {args.rate}/s ...")
            run = _record(raw, args.events, args.rate)
        try:
            with raw.open(encoding="utf-8", errors="replace") as f:
                prof = parse_raw(f)
        except OSError as exc:
            raise SystemExit(f"cannot read {raw}: {exc.strerror or exc}") from None
    if not prof.running + prof.lock_wait + prof.idle:
        raise SystemExit("no samples of the worker's main thread")
    total = prof.running + prof.lock_wait + prof.idle
    table = Table(title=f"worker main thread: {total:,} samples; running {prof.running / total:.0%}, waiting for the "
                        f"interpreter lock {prof.lock_wait / total:.0%}, idle {prof.idle / total:.0%}")
    table.add_column("inclusive share of running samples", justify="right")
    table.add_column("function", overflow="fold")
    shown = 0
    for name, n in prof.inclusive.most_common():
        if not _ours(name) or name.startswith(("BaseEventLoop.", "Worker.", "Handle.", "<module>", "_run")):
            continue
        table.add_row(f"{n / prof.running:.1%}", name)
        shown += 1
        if shown >= args.top:
            break
    console.print(table)
    if args.json_path:
        result = {"benchmark": "profile", "machine": machine(), "commit": source_commit(), **run,
                  "rate": args.rate, "main_thread": prof.to_dict(args.top * 3)}
        write_json(args.json_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
