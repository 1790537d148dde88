"""Which modules a compiled build compiles with mypyc, and which of them this process runs.

The hot path is plain Python that mypy checks. ``AGENTWATCH_COMPILE=1 pip install .`` compiles
the same sources with mypyc (``setup.py`` reads :data:`COMPILED` from this file), which takes
about a quarter off the processor's CPU per event (README, "Throughput"). Nothing else differs:
CI runs the test suite against both builds, and a replay gives byte-identical output. The
default install stays pure Python so that editing a source file changes what runs.

This module imports nothing but the standard library: ``setup.py`` runs it on its own, before
the package's dependencies exist.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util

__all__ = ["COMPILED", "compiled_modules", "module_name"]

#: source files compiled into one mypyc extension group. Every module on the per-event path that
#: is CPU-bound Python; left out: ``detectors/base.py`` (mypyc rejects its ``runtime_checkable``
#: protocols; the event, finding and severity it re-exports are compiled, in
#: ``detectors/events.py``), and everything that waits on I/O (the faust stages, sinks, stores),
#: where compiled code would not be faster.
COMPILED: tuple[str, ...] = (
    "detectors/events.py",
    "pipeline/enforcement/ladder.py",
    "pipeline/processor.py",
    "pipeline/validation.py",
    "pipeline/records.py",
    "pipeline/risk.py",
    "pipeline/response.py",
    "pipeline/alerting.py",
    "pipeline/incidents/tracker.py",
    "detectors/baselines/common.py",
    "detectors/baselines/composite.py",
    "detectors/baselines/features.py",
    "detectors/baselines/multivariate.py",
    "detectors/baselines/novelty.py",
    "detectors/baselines/peer.py",
    "detectors/baselines/rate.py",
    "detectors/baselines/sequence.py",
    "detectors/baselines/state.py",
    "detectors/baselines/stats.py",
    "detectors/baselines/timeofday.py",
    "detectors/baselines/volume.py",
    "detectors/parsing/shell.py",
    "detectors/parsing/sql.py",
    "detectors/rulebook/compiler.py",
    "detectors/rulebook/fields.py",
    "detectors/rulebook/predicates.py",
    "detectors/rulebook/policy.py",
    "detectors/rulebook/detector.py",
)


def module_name(path: str) -> str:
    """``"detectors/parsing/sql.py"`` -> ``"detectors.parsing.sql"``."""
    return path.removesuffix(".py").replace("/", ".")


def compiled_modules() -> list[str]:
    """The modules of :data:`COMPILED` that this interpreter loads from a compiled extension
    (all of them in a compiled build, none in the default one), without importing any."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    found = []
    for path in COMPILED:
        name = module_name(path)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None and spec.origin.endswith(suffixes):
            found.append(name)
    return found
