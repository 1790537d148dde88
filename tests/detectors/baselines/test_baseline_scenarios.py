"""Simulated agents: a behaviour shift is flagged, peers and gradual change are not."""

from __future__ import annotations

import collections
import copy
import json
import re

import pytest
from fleet_sim import DAY, T0, Fleet, run

from detectors.base import Event
from detectors.baselines import BaselineDetector
from pipeline.settings import BaselineSettings

WARM_DAYS = 12


@pytest.fixture(scope="module")
def warmed() -> tuple[Fleet, BaselineDetector]:
    fleet = Fleet(agents_per_role=5, seed=11)
    det = BaselineDetector(BaselineSettings())
    found = run(det, fleet.benign(WARM_DAYS))
    assert len(found) < 40  # warm-up period: no flood even while baselines form
    return fleet, det


def _clone(fleet: Fleet, det: BaselineDetector) -> tuple[Fleet, BaselineDetector]:
    data = json.loads(json.dumps(det.dump_all()))
    return copy.deepcopy(fleet), BaselineDetector.load_all(det.settings, data)


def test_shifted_agent_is_flagged_and_its_peers_are_not(
    warmed: tuple[Fleet, BaselineDetector],
) -> None:
    fleet, det = _clone(*warmed)
    victim = next(a for a in fleet.agents if a.agent_id == "support-02")
    injected = fleet.shift(victim, day=WARM_DAYS + 1, hour=3.0)
    events = fleet.benign(3, start_day=WARM_DAYS) + injected
    events.sort(key=lambda e: (e.ts, e.agent_id))
    found = run(det, events)
    inj_ids = {e.event_id for e in injected}
    caught = collections.Counter(f.detector for i in inj_ids for f in found.get(i, []))
    # new tool, new destination, off-hours, burst: each baseline sees its part
    for detector in ("baseline.novelty", "baseline.time", "baseline.rate"):
        assert caught[detector] >= 1, caught
    others = [
        (e.agent_id, f.reason)
        for e in events
        if e.agent_id != "support-02"
        for f in found.get(e.event_id, [])
    ]
    # none of its unchanged peers (same role) is flagged; the rest of the fleet stays near-silent
    assert not [o for o in others if o[0].startswith("support-")], others
    assert len(others) <= 2, others
    # the novelty explanation speaks the analyst's language
    reasons = [
        f.reason for i in inj_ids for f in found.get(i, []) if f.detector == "baseline.novelty"
    ]
    assert any(
        re.search(r"first use of tool `http_post` by this agent in 1[23] days of history", r)
        for r in reasons
    ), reasons
    assert any("agents with role support" in r for r in reasons)


def test_gradual_legitimate_change_is_absorbed(warmed: tuple[Fleet, BaselineDetector]) -> None:
    fleet, det = _clone(*warmed)
    agent = next(a for a in fleet.agents if a.agent_id == "analyst-03")
    events: list[Event] = []
    days = 21
    for d in range(days):
        k = d / days
        for a in fleet.agents:
            if a is agent:  # starts 3 h later and works 2x faster by the end, rows grow 4x
                evs = fleet.day_events(a, WARM_DAYS + d, start_shift=3.0 * k, rate_mult=1.0 + k)
                for e in evs:
                    if "rows" in e.data["action"]:
                        e.data["action"]["rows"] = int(e.data["action"]["rows"] * (1 + 3 * k))
                events.extend(evs)
            else:
                events.extend(fleet.day_events(a, WARM_DAYS + d))
    events.sort(key=lambda e: (e.ts, e.agent_id))
    found = run(det, events)
    mine = [e for e in events if e.agent_id == agent.agent_id]
    flagged = sum(len(found.get(e.event_id, [])) for e in mine)
    assert len(mine) > 3000
    assert flagged <= 5, [(e.ts, f.reason) for e in mine for f in found.get(e.event_id, [])]
    benign_rate = sum(len(v) for v in found.values()) / len(events) * 1000
    assert benign_rate < 1.0, benign_rate


def test_warm_up_is_respected() -> None:
    fleet = Fleet(agents_per_role=1, seed=3)
    det = BaselineDetector(BaselineSettings(warmup_events=200, warmup_hours=48))
    agent = fleet.agents[0]
    events = fleet.benign(1)
    # the same agent turns strange within its first day: nothing may fire yet
    events += fleet.shift(agent, day=0, hour=23.0, n=60)
    events.sort(key=lambda e: (e.ts, e.agent_id))
    assert run(det, events) == {}
    m = det.maturity(agent.agent_id)
    assert m["events"] > 0 and m["mature"] is False
    assert det.maturity("nobody") == {"events": 0, "hours": 0.0, "mature": False}
    # after enough events AND hours the agent is mature
    run(det, fleet.benign(6, start_day=1))
    assert det.maturity(agent.agent_id)["mature"] is True


def test_memory_is_bounded_under_a_flood_of_distinct_items() -> None:
    s = BaselineSettings(
        warmup_events=0, warmup_hours=0, max_items_per_agent=64, max_transitions_per_agent=32
    )
    det = BaselineDetector(s)
    sizes = []
    for i in range(20_000):
        ev = Event(
            {
                "event_id": str(i),
                "agent_id": "attacker",
                "agent_role": f"role{i % 500}",
                "action": {
                    "kind": "tool_call",
                    "tool": f"tool{i}",
                    "command": f"curl https://h{i}.evil.net/x",
                    "args": {"to": f"u{i}@d{i}.com", "iban": f"DE{i:020d}", "channel": f"c{i}"},
                },
            },
            T0 + i,
        )
        det.score_one(ev)
        det.learn_one(ev)
        if i % 5000 == 4999:
            sizes.append(len(json.dumps(det.dump_state("attacker"))))
    st = det._agents["attacker"]
    assert len(st.items) == 64 and len(st.trans) == 32
    assert max(sizes) == min(sizes) or max(sizes) - min(sizes) < 64  # constant, not growing
    assert max(sizes) < 3000
    # a flood of role names (one per new agent) is folded into "(other)"
    for i in range(300):
        ev = Event(
            {
                "event_id": f"r{i}",
                "agent_id": f"a{i}",
                "agent_role": f"role{i}",
                "action": {"kind": "shell", "tool": "ls", "command": "ls"},
            },
            T0 + i,
        )
        det.learn_one(ev)
    assert len(det._shared.roles) == s.max_roles
    assert "(other)" in det._shared.roles
    assert len(json.dumps(det.dump_shared())) < 2_000_000


def test_same_input_same_output(warmed: tuple[Fleet, BaselineDetector]) -> None:
    outs = []
    for _ in range(2):
        fleet, det = _clone(*warmed)
        victim = fleet.agents[3]
        events = fleet.benign(2, start_day=WARM_DAYS) + fleet.shift(victim, day=WARM_DAYS, hour=1.0)
        events.sort(key=lambda e: (e.ts, e.agent_id))
        found = run(det, events)
        outs.append(
            (
                json.dumps({k: [f.to_dict() for f in v] for k, v in found.items()}, sort_keys=True),
                json.dumps(det.dump_all(), sort_keys=True),
            )
        )
    assert outs[0] == outs[1]
    assert len(outs[0][0]) > 10


def test_state_round_trips_through_json_exactly(warmed: tuple[Fleet, BaselineDetector]) -> None:
    fleet, det = _clone(*warmed)
    victim = fleet.agents[7]
    probe = fleet.benign(1, start_day=WARM_DAYS) + fleet.shift(
        victim, day=WARM_DAYS, hour=2.0, n=30
    )
    probe.sort(key=lambda e: (e.ts, e.agent_id))
    # restore every agent and the shared state from JSON text, as the tables would
    restored = BaselineDetector(det.settings)
    restored.load_shared(json.loads(json.dumps(det.dump_shared())))
    for agent_id in det.agents():
        restored.load_state(agent_id, json.loads(json.dumps(det.dump_state(agent_id))))
    a = {k: [f.to_dict() for f in v] for k, v in run(det, copy.deepcopy(probe)).items()}
    b = {k: [f.to_dict() for f in v] for k, v in run(restored, copy.deepcopy(probe)).items()}
    assert a == b and a
    for agent_id in det.agents():
        assert det.dump_state(agent_id) == restored.dump_state(agent_id)
    assert det.dump_shared() == restored.dump_shared()


def test_mark_normal_learns_withheld_events(warmed: tuple[Fleet, BaselineDetector]) -> None:
    fleet, det = _clone(*warmed)
    agent = fleet.agents[0]
    ev = fleet.event(
        agent,
        T0 + (WARM_DAYS + 1) * DAY + 10 * 3600,
        {
            "kind": "tool_call",
            "tool": "export_report",
            "command": "export_report()",
            "args": {"url": "https://reports.partner.io/in"},
        },
    )
    first = det.score_one(ev)
    assert any(f.detector == "baseline.novelty" for f in first)
    det.mark_normal(agent.agent_id, [ev])
    assert agent.agent_id in det.dirty_agents()
    again = fleet.event(agent, ev.ts + 60, ev.data["action"])
    assert not any(f.detector == "baseline.novelty" for f in det.score_one(again))


def test_observe_one_counts_without_learning(warmed: tuple[Fleet, BaselineDetector]) -> None:
    fleet, det = _clone(*warmed)
    agent = fleet.agents[5]
    before = det.dump_state(agent.agent_id)
    ev = fleet.event(
        agent,
        T0 + (WARM_DAYS + 1) * DAY + 3 * 3600,
        {"kind": "shell", "tool": "nc", "command": "nc -l 4444"},
    )
    det.observe_one(ev)
    after = det.dump_state(agent.agent_id)
    assert after["it"] == before["it"] and after["rate"] == before["rate"]  # nothing learned
    assert after["mc"] >= 1 and after["prev"] == "shell:nc"  # but counted


def test_score_one_changes_nothing(warmed: tuple[Fleet, BaselineDetector]) -> None:
    fleet, det = _clone(*warmed)
    det.dirty_agents()
    det.shared_dirty()
    snapshot = json.dumps(det.dump_all(), sort_keys=True)
    for e in fleet.benign(1, start_day=WARM_DAYS)[:500]:
        det.score_one(e)
    assert json.dumps(det.dump_all(), sort_keys=True) == snapshot
    assert det.dirty_agents() == set() and det.shared_dirty() is False
