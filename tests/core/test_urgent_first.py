"""The live worker's urgent-first order through a fetch (Processor.process_urgent_first), with
the real rule detectors, baselines, risk, response and incidents."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from pipeline.components import build_processor
from pipeline.processor import InputRecord, Processor
from pipeline.records import Output
from pipeline.settings import Settings
from pipeline.simulator import SCENARIOS, Fleet

ATTACK = "rm -rf / --no-preserve-root"


def processor() -> Processor:
    settings = Settings()
    settings.enforcement.allow_dev_key = True
    return build_processor(settings, clock=time.time)


def action(agent: str, n: int, command: str, tool: str = "ls") -> bytes:
    return orjson.dumps({
        "schema_version": "1", "event_id": f"{agent}-{n}", "ts": "2026-11-02T09:00:00.000Z",
        "agent_id": agent, "owner": "dev@example.com", "session_id": f"s-{agent}", "environment": "prod",
        "enforcement_point": "ep-1", "action": {"kind": "shell", "tool": tool, "command": command},
        "decision": "allow",
    })


def records(values: list[bytes]) -> list[InputRecord]:
    return [InputRecord(v, v[:8], "agent.actions", 0, i) for i, v in enumerate(values)]


def summary(out: Output) -> tuple[Any, ...]:
    """What must not depend on the order agents are interleaved in (no wall-clock fields)."""
    v = out.value
    if out.kind == "enriched":
        meta = v["agentwatch"]
        return ("enriched", v["event_id"], meta["risk_score"], tuple(f["id"] for f in meta["findings"]))
    if out.kind == "enforcement":
        return ("enforcement", v["agent_id"], v["action"], v.get("trigger_event_id"))
    if out.kind == "alerts":
        return ("alerts", v["agent_id"], v.get("severity"), v.get("rule_id"))
    if out.kind == "dlq":
        return ("dlq", v.get("error", {}).get("code"))
    return (out.kind, out.key)


def per_agent(outputs: list[Output]) -> dict[str | None, list[tuple[Any, ...]]]:
    got: dict[str | None, list[tuple[Any, ...]]] = {}
    for o in outputs:
        if o.kind != "incidents":  # incident records carry the wall-clock time they were written
            got.setdefault(o.value.get("agent_id"), []).append(summary(o))
    return got


def test_an_attack_at_the_end_of_a_fetch_is_answered_first() -> None:
    values = [action(f"dev-{i % 20}", i, "git status", "git") for i in range(300)]
    values.append(action("intruder", 0, ATTACK, "rm"))
    steps = [step for step in processor().process_urgent_first(records(values), step=32) if step]
    first = steps[0]
    assert [o.value["agent_id"] for o in first if o.kind == "enforcement"] == ["intruder"]
    assert {o.value.get("agent_id") for o in first if o.kind != "incidents"} == {"intruder"}, \
        "nobody else's outputs come before the command"
    rest = [o for step in steps[1:] for o in step]
    assert sum(o.kind == "enriched" for o in rest) == 300


def test_same_outputs_per_agent_as_strict_order_on_a_simulated_fleet() -> None:
    fleet = Fleet(seed=5, agents=30, start="2026-11-02T08:00:00Z")
    values = [orjson.dumps(ev) for ev, _ in fleet.events(duration_hours=6, attacks=SCENARIOS)][:4000]
    values[100:100] = [b"not json", action("intruder", 0, ATTACK, "rm"), action("intruder", 1, "ls", "ls")]
    strict, urgent = processor(), processor()
    got_strict: list[Output] = []
    got_urgent: list[Output] = []
    for start in range(0, len(values), 400):
        fetch = records(values[start : start + 400])
        got_strict.extend(strict.process_actions(fetch))
        for step in urgent.process_urgent_first(fetch, step=32):
            got_urgent.extend(step)
    assert any(o.kind == "enforcement" for o in got_strict)
    assert per_agent(got_urgent) == per_agent(got_strict)
    assert strict.stats.outputs == urgent.stats.outputs


@pytest.mark.parametrize("where", [0, 50, 99])
def test_dead_letters_keep_their_place_among_the_unhurried(where: int) -> None:
    values = [action(f"dev-{i % 5}", i, "ls -la", "ls") for i in range(100)]
    values[where] = b"{broken"
    values.append(action("intruder", 0, ATTACK, "rm"))
    outputs = [o for step in processor().process_urgent_first(records(values), step=16) for o in step]
    unhurried = [o for o in outputs if o.value.get("agent_id") != "intruder" and o.kind in ("enriched", "dlq")]
    assert [o.kind for o in unhurried].index("dlq") == where


def test_the_caller_gets_a_turn_every_slice() -> None:
    """A slice with nothing urgent still yields (empty), so the worker's event loop runs at least
    every ``prepare`` events and a command handed to the producer goes out meanwhile."""
    values = [action(f"dev-{i % 7}", i, "git status", "git") for i in range(300)]
    steps = list(processor().process_urgent_first(records(values), step=32, prepare=32))
    assert [len(s) for s in steps[:10]] == [0] * 10  # one per prepared slice of 32 (10 slices)
    assert len(steps) == 20 and sum(len(s) for s in steps) == 300
