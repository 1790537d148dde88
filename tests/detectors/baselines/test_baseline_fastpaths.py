"""The per-event fast paths of the baselines give exactly what the plain code gives."""

from __future__ import annotations

import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Event
from detectors.baselines.composite import BaselineDetector, _round3
from detectors.baselines.features import _base_items, extract
from pipeline.settings import BaselineSettings


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def test_round3_is_round() -> None:
    rng = random.Random(3)
    values = [0.0, -0.0, 1e-9, 0.0005, 0.0015, 0.0025, 1.0005, 2.675, 1e9, 1e12, 1e15, -1.2345]
    values += [float("inf"), float("-inf")]
    for _ in range(200_000):
        values.append(rng.uniform(0, 4e7) / 3600.0)  # spans of event time, in hours
        # exact thousandths and near-halves: where a sloppy x*1000 rounding would differ
        k = rng.randrange(0, 10**9)
        values.append((k + rng.choice((0.5, 0.4999999, 0.5000001, 0.0, 0.25))) / 1000.0)
    for x in values:
        assert _bits(_round3(x)) == _bits(round(x, 3)), x
    nan = _round3(float("nan"))
    assert nan != nan


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["shell", "sql", "http", "file", "tool_call", "other"]),
    command=st.sampled_from(["", "curl https://a-1.x.io/p", "ls /etc/x", "SELECT 1 FROM t_9"]),
    target=st.sampled_from(["", "db-01.int", "https://h.example/x", "10.0.0.1", "a b", "x.y"]),
)
def test_memoised_items_are_the_plain_ones(kind: str, command: str, target: str) -> None:
    action = {"kind": kind, "tool": "t", "command": command, "target": target}
    first = extract({"action": action}, 0.0).items
    again = extract({"action": action}, 0.0).items  # from the memos this time
    assert first == again
    assert tuple(first) == _base_items(kind, f"{kind}:t", command, target)


def test_maturity_memo_follows_learning() -> None:
    det = BaselineDetector(BaselineSettings(warmup_events=2, warmup_hours=0.001))
    for i in range(4):
        ev = Event({"agent_id": "a", "action": {"kind": "shell", "tool": "ls"}}, ts=10.0 * i)
        det.score_one(ev)
        m = det.maturity("a")
        m["added_by_caller"] = True  # the memo hands out copies
        assert det.maturity("a") == {
            "events": i,
            "hours": round(10.0 * max(i - 1, 0) / 3600.0, 3),
            "mature": i >= 2 and 10.0 * (i - 1) >= 3.6,
        }
        det.learn_one(ev)
