"""The fleet simulator: determinism, the event contract, ground truth, realism."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from pipeline.errors import InputError
from pipeline.simulator import ROLES, SCENARIOS, Fleet, Scenario, select_scenarios
from pipeline.simulator.fleet import iso_ms, parse_start
from pipeline.validation import parse_ts, validate_event


def _bytes(fleet: Fleet, hours: float, attacks=SCENARIOS) -> tuple[bytes, bytes]:
    evs, truths = [], []
    for ev, truth in fleet.events(duration_hours=hours, attacks=attacks):
        evs.append(orjson.dumps(ev))
        truths.append(orjson.dumps(truth))
    return b"\n".join(evs), b"\n".join(truths)


# ---------------------------------------------------------------- determinism


def test_same_seed_same_bytes() -> None:
    a = _bytes(Fleet(seed=11, agents=15, start="2026-11-02T08:00:00Z"), 6)
    b = _bytes(Fleet(seed=11, agents=15, start="2026-11-02T08:00:00Z"), 6)
    assert a == b
    assert a[0].count(b"\n") > 200


def test_different_seed_different_events() -> None:
    a, _ = _bytes(Fleet(seed=11, agents=15), 6)
    b, _ = _bytes(Fleet(seed=12, agents=15), 6)
    assert a != b
    ids_a = {orjson.loads(line)["event_id"] for line in a.splitlines()}
    ids_b = {orjson.loads(line)["event_id"] for line in b.splitlines()}
    assert not ids_a & ids_b  # two runs never share an event id (the pipeline dedups on it)


def test_start_time_only_shifts_nothing_reads_the_wall_clock() -> None:
    fleet = Fleet(seed=3, agents=8, start="2031-05-05T00:00:00Z")
    times = [parse_ts(ev["ts"]) for ev, _ in fleet.events(duration_hours=3, attacks=())]
    start = datetime(2031, 5, 5, tzinfo=UTC).timestamp()
    assert times and all(start <= t < start + 3 * 3600 for t in times)


def test_fleet_composition_is_deterministic_and_covers_every_role(day) -> None:
    again = Fleet(seed=7, agents=40, start="2026-11-02T08:00:00Z")
    assert again.agents == day.fleet.agents
    assert {a.role for a in day.fleet.agents} == set(ROLES)
    assert len(day.fleet.agents) == 40
    assert len({a.agent_id for a in day.fleet.agents}) == 40
    assert len({a.source_ip for a in day.fleet.agents}) == 40
    assert len({a.owner for a in day.fleet.agents}) > 5  # humans own several agents each


# ---------------------------------------------------------------- the event contract


def test_every_event_validates_against_the_schema(day) -> None:
    schema = schemas.load("agent-action")
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for ev, _ in day.pairs:
        errors = list(validator.iter_errors(ev))
        assert not errors, (ev, errors[0].message)
        validate_event(ev)  # the pipeline's own edge check (stricter on ts) agrees


def test_events_are_ordered_unique_and_carry_no_truth(day) -> None:
    times = [parse_ts(ev["ts"]) for ev, _ in day.pairs]
    assert times == sorted(times)
    ids = [ev["event_id"] for ev, _ in day.pairs]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 5 for i in ids[:100])
    for ev, truth in day.pairs:
        assert ev["event_id"] == truth["event_id"] and ev["agent_id"] == truth["agent_id"]
        assert set(truth) == {"event_id", "agent_id", "scenario", "malicious"}
        text = orjson.dumps(ev)
        assert b"malicious" not in text and b"scenario" not in text


def test_event_fields_follow_the_agent_identity(day) -> None:
    agents = {a.agent_id: a for a in day.fleet.agents}
    for ev, _ in day.pairs:
        a = agents[ev["agent_id"]]
        assert (ev["owner"], ev["environment"], ev["enforcement_point"], ev["agent_role"], ev["tenant"], ev["source_ip"]) == \
            (a.owner, a.environment, a.enforcement_point, a.role, a.tenant, a.source_ip)
        if ev["decision"] in ("approved", "denied"):
            assert ev["approver"] == a.owner
        if "delegation" in ev:
            assert a.role in ("support", "release") and ev["delegation"]["scopes"]


def test_all_action_kinds_and_decisions_occur(day) -> None:
    kinds = Counter(ev["action"]["kind"] for ev, _ in day.pairs)
    assert set(kinds) == {"shell", "sql", "tool_call", "http", "file"}
    decisions = Counter(ev["decision"] for ev, _ in day.pairs)
    assert set(decisions) == {"allow", "deny", "approval_required", "approved", "denied"}
    benign = [ev for ev, t in day.pairs if not t["malicious"]]
    denied = sum(ev["decision"] == "deny" for ev in benign)
    assert 0 < denied < 0.03 * len(benign)  # occasional denies, not noise


# ---------------------------------------------------------------- scenarios and ground truth


def test_each_scenario_is_injected_into_its_planned_agent(day) -> None:
    by_scenario = defaultdict(list)
    for ev, truth in day.pairs:
        assert truth["malicious"] == (truth["scenario"] is not None)
        if truth["malicious"]:
            by_scenario[truth["scenario"]].append(ev)
    assert set(by_scenario) == {s.name for s in SCENARIOS}
    for inj in day.plan:
        evs = by_scenario[inj.scenario.name]
        assert len(evs) >= 3
        assert {e["agent_id"] for e in evs} == {inj.agent.agent_id}
        assert inj.agent.role in inj.scenario.roles
        assert evs[0]["ts"] == inj.at
        assert len({e["session_id"] for e in evs}) == 1


def _commands(day, name: str) -> str:
    return "\n".join(ev["action"]["command"] for ev, t in day.pairs if t["scenario"] == name)


def test_scenarios_contain_their_signature_actions(day) -> None:
    cred = _commands(day, "credential_theft")
    assert "~/.aws/credentials" in cred and "~/.ssh/" in cred and "169.254.169.254" in cred
    recon = _commands(day, "reconnaissance")
    assert "nmap" in recon and sum(c in recon.split("\n") for c in ("whoami", "id", "sudo -l", "uname -a", "hostname -f")) >= 1
    priv = _commands(day, "privilege_escalation")
    assert "sudo -l" in priv
    assert any(s in priv for s in ("sudoers", "u+s", "4755", "--privileged", "privileged", "usermod"))
    export = _commands(day, "offhours_bulk_export")
    assert "SELECT * FROM customers" in export
    destructive = _commands(day, "destructive")
    assert any(s in destructive for s in ("DROP ", "TRUNCATE", "DELETE FROM", "rm -rf", "terraform destroy", "delete namespace"))


def test_offhours_export_happens_at_the_agents_night(day) -> None:
    inj = next(i for i in day.plan if i.scenario.name == "offhours_bulk_export")
    assert inj.agent.role == "data-analyst"
    assert 2 <= inj.agent.local_hour(inj.at_ms) < 4
    assert not inj.agent.is_working(inj.at_ms)
    rows = [ev["action"].get("rows", 0) for ev, t in day.pairs if t["scenario"] == "offhours_bulk_export"]
    assert max(rows) >= 100_000  # bulk: no LIMIT


@pytest.mark.parametrize("role, needle", [("support", "send_email"), ("sre", "tar czf"), ("coding", "git push mirror")])
def test_exfiltration_adapts_to_the_agents_tools(role, needle) -> None:
    fleet = Fleet(seed=5, agents=20)
    agent = next(a for a in fleet.agents if a.role == role)
    sc = next(s for s in SCENARIOS if s.name == "exfiltration").at(3.0, agent_id=agent.agent_id)
    evs = [ev for ev, t in fleet.events(duration_hours=6, attacks=[sc]) if t["malicious"]]
    assert needle in "\n".join(e["action"]["command"] for e in evs)
    big = max(e["action"].get("bytes_out", 0) for e in evs)
    assert big >= 1_000_000
    assert parse_ts(evs[0]["ts"]) == parse_start("2026-11-02T11:00:00Z") / 1000


def test_support_exfiltration_mails_an_external_recipient_with_an_attachment() -> None:
    fleet = Fleet(seed=5, agents=20)
    agent = next(a for a in fleet.agents if a.role == "support")
    sc = next(s for s in SCENARIOS if s.name == "exfiltration").at(1.0, agent_id=agent.agent_id)
    mail = [ev for ev, t in fleet.events(duration_hours=2, attacks=[sc]) if t["malicious"] and ev["action"]["tool"] == "send_email"]
    assert len(mail) == 1
    args = mail[0]["action"]["args"]
    assert args["attachments"] and not args["to"].endswith(".internal") and mail[0]["action"]["target"] == args["to"]


def test_no_attacks_means_no_malicious_events() -> None:
    pairs = list(Fleet(seed=2, agents=10).events(duration_hours=4, attacks=()))
    assert pairs and not any(t["malicious"] for _, t in pairs)


def test_pinned_scenario_outside_the_run_is_an_error() -> None:
    with pytest.raises(InputError, match="outside the run"):
        Fleet(agents=10).plan(2, [SCENARIOS[0].at(5)])
    with pytest.raises(InputError, match="no agent"):
        Fleet(agents=10).plan(2, [SCENARIOS[0].at(1, agent_id="nobody")])


def test_select_scenarios() -> None:
    assert select_scenarios("all") == SCENARIOS
    assert select_scenarios("none") == ()
    assert [s.name for s in select_scenarios("reconnaissance, exfiltration")] == ["reconnaissance", "exfiltration"]
    with pytest.raises(InputError, match="unknown scenario 'nope'"):
        select_scenarios("nope")
    assert isinstance(SCENARIOS[0], Scenario)


# ---------------------------------------------------------------- realism


def test_benign_activity_has_variety_per_role(day) -> None:
    commands: dict[str, set[str]] = defaultdict(set)
    tools: dict[str, set[str]] = defaultdict(set)
    for ev, t in day.pairs:
        if not t["malicious"]:
            commands[ev["agent_role"]].add(ev["action"]["command"])
            tools[ev["agent_role"]].add(ev["action"]["tool"])
    assert set(commands) == set(ROLES)
    for role in ("sre", "data-analyst", "support", "coding", "release"):
        assert len(commands[role]) >= 200, (role, len(commands[role]))
    assert len(commands["research"]) >= 100
    assert len(tools["sre"]) >= 20 and len(tools["coding"]) >= 10 and len(tools["support"]) >= 8


def test_agents_have_habits_and_working_hours(day) -> None:
    per_agent = defaultdict(list)
    for ev, t in day.pairs:
        if not t["malicious"]:
            per_agent[ev["agent_id"]].append(ev)
    agents = {a.agent_id: a for a in day.fleet.agents}
    assert len(per_agent) == 40  # every agent is active during a weekday
    at_work = sum(agents[a].is_working(round(parse_ts(ev["ts"]) * 1000)) for a, evs in per_agent.items() for ev in evs)
    total = sum(len(evs) for evs in per_agent.values())
    assert at_work / total > 0.8
    # the analysts' scheduled job runs at 02:00 local: benign night-time SQL exists
    nightly = [ev for ev, t in day.pairs if not t["malicious"] and ev["agent_role"] == "data-analyst"
               and "REFRESH MATERIALIZED VIEW" in ev["action"]["command"]]
    assert nightly
    for ev in nightly:
        assert 2 <= agents[ev["agent_id"]].local_hour(round(parse_ts(ev["ts"]) * 1000)) < 3


def test_small_fleets_still_host_every_scenario() -> None:
    pairs = list(Fleet(seed=1, agents=2).events(duration_hours=12))
    assert {t["scenario"] for _, t in pairs} - {None} == {s.name for s in SCENARIOS}
    with pytest.raises(InputError, match="data-analyst"):
        Fleet(agents=1).plan(24)


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize("kwargs, message", [
    ({"agents": 0}, "agents"), ({"seed": -1}, "seed"), ({"start": "yesterday"}, "RFC 3339"),
    ({"start": "2026-11-02T08:00:00"}, "RFC 3339"), ({"activity": 0}, "activity"), ({"tenant": "a b"}, "tenant"),
])
def test_bad_parameters_are_one_line_input_errors(kwargs, message) -> None:
    with pytest.raises(InputError, match=message) as info:
        Fleet(**kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("hours", [0, -1, float("nan"), 10_000])
def test_bad_duration(hours) -> None:
    with pytest.raises(InputError, match="duration"):
        list(Fleet(agents=3).events(duration_hours=hours))


def test_iso_ms_round_trips() -> None:
    ms = parse_start("2026-11-02T08:00:00.123Z")
    assert iso_ms(ms) == "2026-11-02T08:00:00.123Z"
    assert parse_start(datetime(2026, 11, 2, 8, tzinfo=UTC)) == ms - 123


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**40), agents=st.integers(2, 14), hours=st.floats(0.5, 30),
       start_h=st.integers(0, 23), activity=st.floats(0.2, 3))
def test_any_fleet_yields_valid_ordered_events_with_every_scenario(seed, agents, hours, start_h, activity) -> None:
    fleet = Fleet(seed=seed, agents=agents, start=f"2026-03-{start_h % 28 + 1:02d}T{start_h:02d}:30:00Z", activity=activity)
    last = 0.0
    seen = set()
    for ev, truth in fleet.events(duration_hours=hours):
        t = validate_event(ev)
        assert t >= last
        last = t
        seen.add(truth["scenario"])
    assert seen - {None} == {s.name for s in SCENARIOS}
