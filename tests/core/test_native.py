"""The compiled build (``AGENTWATCH_COMPILE=1``, see ``pipeline/native.py``) is the same program.

``make test`` runs these against the default pure-Python tree; ``make test-compiled`` runs the
whole suite (but the broker tests) in a compiled copy of the tree and tells these tests so with
``AGENTWATCH_TEST_EXPECT_COMPILED=1`` and, in ``AGENTWATCH_TEST_SOURCE_TREE``, where the pure
sources are: the replay below then compares the compiled build against them byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from pipeline.native import COMPILED, compiled_modules, module_name

ROOT = Path(__file__).resolve().parents[2]
EXPECT_COMPILED = os.environ.get("AGENTWATCH_TEST_EXPECT_COMPILED") == "1"
SOURCE_TREE = Path(os.environ.get("AGENTWATCH_TEST_SOURCE_TREE") or ROOT)
OUTPUTS = ("enriched.jsonl", "alerts.jsonl", "enforcement.jsonl", "dlq.jsonl")


def test_every_compiled_module_is_a_source_file_of_the_package() -> None:
    assert len(COMPILED) == len(set(COMPILED)) >= 20
    for path in COMPILED:
        assert (ROOT / path).is_file(), path
        assert path.split("/")[0] in ("pipeline", "detectors")
    assert module_name("detectors/parsing/sql.py") == "detectors.parsing.sql"
    assert "detectors/base.py" not in COMPILED  # mypyc rejects runtime_checkable protocols


def test_this_tree_runs_the_build_it_claims() -> None:
    """All of the hot path compiled in the compiled run; none of it in the default tree (a stale
    extension beside a source file would silently shadow edits to it)."""
    found = compiled_modules()
    if EXPECT_COMPILED:
        assert found == [module_name(p) for p in COMPILED]
        assert sys.modules["pipeline.processor"].__file__.endswith(".so")
    else:
        assert found == [], f"compiled extensions in a source tree: {found} (make clean)"


def _simulated(path: Path, n: int) -> None:
    from pipeline.simulator import SCENARIOS, Fleet

    fleet = Fleet(seed=11, agents=30, start="2026-11-02T08:00:00Z")
    with path.open("wb") as fh:
        for i, (ev, _) in enumerate(fleet.events(duration_hours=48.0, attacks=SCENARIOS)):
            if i == n:
                break
            fh.write(orjson.dumps(ev) + b"\n")
            if i % 997 == 0:  # bad lines too: they take the dead-letter path
                fh.write(b'{"not": "an event"}\n')


def _replay(tree: Path, events: Path, out: Path, hash_seed: str) -> dict[str, bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWATCH_")}
    env.update(AGENTWATCH_ENFORCEMENT__ALLOW_DEV_KEY="true", PYTHONHASHSEED=hash_seed)
    # -m with cwd=tree: that tree's `pipeline` package comes first on sys.path
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "replay", str(events), "--out", str(out)],
                          cwd=tree, env=env, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return {name: (out / name).read_bytes() for name in OUTPUTS}


@pytest.mark.slow
def test_replay_is_byte_identical_across_processes_and_builds(tmp_path: Path) -> None:
    """This tree against the pure sources, in two processes with different hash seeds: in the
    compiled run a compiled build against the pure one, in the default run the pure build against
    itself (set and dict orders must not leak into output)."""
    events = tmp_path / "events.jsonl"
    _simulated(events, 6000)
    here = _replay(ROOT, events, tmp_path / "here", "1")
    reference = _replay(SOURCE_TREE, events, tmp_path / "reference", "2")
    assert here["enriched.jsonl"].count(b"\n") == 6000
    assert here["alerts.jsonl"] and here["dlq.jsonl"].count(b"\n") == 7
    for name in OUTPUTS:
        assert here[name] == reference[name], f"{name} differs between {ROOT} and {SOURCE_TREE}"


def test_compiled_modules_import_compiled_classes_from_where_mypyc_sees_them() -> None:
    """mypyc analyses only the compiled files (``--follow-imports=skip``): a name imported from
    any other module is ``Any`` to it. A compiled class imported through a re-export of an
    interpreted module (``from detectors.base import Event``) therefore compiles to generic
    attribute lookups and calls on every use, as it did for the event and its findings until
    the ninth session. Each compiled class must be imported from a compiled module."""
    import ast
    import importlib

    compiled = {module_name(p) for p in COMPILED}
    wrong = []
    for path in COMPILED:
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level or node.module in compiled:
                continue
            if not (node.module or "").startswith(("pipeline", "detectors")):
                continue
            mod = importlib.import_module(node.module or "")
            for alias in node.names:
                obj = getattr(mod, alias.name, None)
                home = getattr(obj, "__module__", None)
                if isinstance(obj, type) and home in compiled:
                    wrong.append(f"{path}:{node.lineno} imports {alias.name} from {node.module}, not from {home}")
    assert not wrong, "\n".join(wrong)


def test_the_per_event_value_classes_copy_and_pickle_as_their_dataclasses_did() -> None:
    """``Output``, ``InputRecord``, ``RiskAssessment`` and ``Features`` are plain classes (a
    dataclass's ``__init__`` stays interpreted in the compiled build); a compiled class copies
    and pickles only through its ``__reduce__``, so each keeps what the dataclass gave."""
    import copy
    import pickle

    from detectors.baselines.features import Features
    from pipeline.processor import InputRecord
    from pipeline.records import Output
    from pipeline.risk import RiskAssessment

    values = [
        Output("enriched", "agent-1", {"a": [1, 2]}, 3),
        InputRecord(b"{}", b"k", "agent.actions", 2, 17, 1700000000000, 5),
        RiskAssessment(40, 55, [{"source": "rules", "id": "x"}], [], "medium", "high"),
        Features("shell", "bash", "shell:bash", [("binary", "curl")], 9, 480000, 28800000, 20000, 3.5, None, 3000,
                 None, True),
    ]
    for v in values:
        for clone in (copy.copy(v), copy.deepcopy(v), pickle.loads(pickle.dumps(v))):
            assert type(clone) is type(v) and clone == v and clone is not v
            assert repr(clone) == repr(v)
    changed = copy.deepcopy(values[3])
    changed.items.append(("host", "example.com"))
    assert changed != values[3] and values[3].items == [("binary", "curl")], "a deep copy shares no list"
