"""What every benchmark shares: machine facts, result files, and a broker to run against."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["EMBEDDED_BROKER", "dev_settings", "machine", "main_thread_cpu_seconds", "percentile", "process_cpu_seconds",
           "write_json"]

#: how results name the broker started by the benchmarks themselves
EMBEDDED_BROKER = "Tansu (embedded, in-memory)"


def dev_settings() -> Any:
    """Default settings that sign isolation commands with the public development key: the
    in-process benchmarks run the processor with no signing key configured, as replay does."""
    from pipeline.settings import Settings

    settings = Settings()
    settings.enforcement.allow_dev_key = True
    return settings


def source_commit(tree: Path | None = None) -> str | None:
    """The commit the benchmark ran from (or ``tree`` holds), ``+`` when the tree had changes
    (None outside git)."""
    root = str(tree or Path(__file__).resolve().parent.parent)
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=root, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=root, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+" if dirty else "")) or None


def machine() -> dict[str, Any]:
    """Where a figure came from (benchmarks on shared machines mean little without it), and
    from which code."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                          if line.startswith("MemTotal")))
    except (OSError, StopIteration, ValueError):
        mem_kb = 0
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m": round(load[0], 2),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": source_commit(),
        "build": build(),
    }


def build() -> str:
    """``python`` (the default install), ``mypyc`` (``AGENTWATCH_COMPILE=1``: the hot path
    compiled, see ``pipeline/native.py``) or ``partial`` (some of it: a broken build)."""
    from pipeline.native import COMPILED, compiled_modules

    found = len(compiled_modules())
    return "python" if found == 0 else "mypyc" if found == len(COMPILED) else f"partial ({found}/{len(COMPILED)})"


def write_json(path: str | None, result: dict[str, Any]) -> None:
    if not path:
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _stat_cpu_seconds(path: str) -> float | None:
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc; None elsewhere or without a pid)."""
    return None if pid is None else _stat_cpu_seconds(f"/proc/{pid}/stat")


def main_thread_cpu_seconds(pid: int | None) -> float | None:
    """The same for the process's main thread alone: in a worker, the event loop that runs the
    processing stage (the others: faust's consumer thread, the incident store's writes)."""
    return None if pid is None else _stat_cpu_seconds(f"/proc/{pid}/task/{pid}/stat")


def main_thread_switches(pid: int | None) -> dict[str, float] | None:
    """The main thread's context switches so far (voluntary: it waited, e.g. for the interpreter
    lock; involuntary: the kernel preempted it) and its system CPU seconds (Linux /proc)."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/task/{pid}/status").read_text().splitlines()
        fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    out = {line.split(":")[0]: float(line.split()[1]) for line in status
           if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))}
    out["system_seconds"] = int(fields[12]) / os.sysconf("SC_CLK_TCK")
    out["minor_faults"] = float(fields[7])
    return out if len(out) == 4 else None


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (0..1) of ``values``; None when there are none."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]
