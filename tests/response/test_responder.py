"""The isolation ladder, the safety bundle and the closed loop, in-process."""

from __future__ import annotations

import json

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from detectors.events import Event
from pipeline.enforcement.signing import Keyring, dev_signer
from pipeline.records import deterministic_id, iso_time
from pipeline.response import Responder
from pipeline.settings import Settings

from .helpers import T0, Harness, event, finding

COMMAND = jsonschema.Draft202012Validator(schemas.load("enforcement-command"), format_checker=jsonschema.FormatChecker())
ALERT = jsonschema.Draft202012Validator(schemas.load("alert"), format_checker=jsonschema.FormatChecker())
RING = Keyring.of([dev_signer()])


def ack(cmd: dict, status: str = "applied", at: float | None = None, code: str | None = None) -> dict:
    out = {"schema_version": "1", "ack_id": deterministic_id("ack_", cmd["command_id"], status),
           "command_id": cmd["command_id"], "agent_id": cmd["agent_id"], "enforcement_point": cmd["enforcement_point"],
           "status": status, "action": cmd["action"], "ts": iso_time(T0 + 1 if at is None else at)}
    if code:
        out["code"] = code
    return out


def release(agent: str = "agent-1", by: str = "carol@example.com", cid: str = "rel-1", **payload) -> dict:
    return {"schema_version": "1", "control_id": cid, "type": "release", "agent_id": agent, "by": by,
            "reason": "verified with the owner", "ts": iso_time(T0), "payload": payload}


def test_rising_risk_climbs_the_ladder_and_never_steps_down_by_itself() -> None:
    h = Harness()
    actions = []
    # weak signals from different rules: agent risk 20, 40, 50, 60, 70, 85, 95...
    plan = [(20, "low"), (20, "low"), (10, "low"), (10, "low"), (10, "low"), (15, "low"), (10, "low")]
    for i, (score, sev) in enumerate(plan):
        out = h.send(event(i, ts=T0 + i), [finding(f"r{i}", sev, score)])
        actions += [c["action"] for c in h.commands(out)]
    assert actions == ["require_approval", "step_down", "revoke_tokens", "isolate"]
    cmds = h.commands()
    assert [c["sequence"] for c in cmds] == [1, 2, 3, 4]
    assert [c["previous_action"] for c in cmds] == [None, "require_approval", "step_down", "revoke_tokens"]
    assert h.resp.agent_isolated("agent-1") == "isolate"
    # clean events (risk still high) and even a quiet hour inside the TTL do not de-escalate
    assert h.commands(h.send(event(50, ts=T0 + 60), [])) == []
    assert h.resp.agent_isolated("agent-1") == "isolate"
    for c in cmds:
        COMMAND.validate(c)
        assert RING.verify(c, now=0) and c["mode"] == "enforce" and c["issued_by"] == "agentwatch"
        assert c["incident_id"] == cmds[0]["incident_id"]
        assert c["reason"].startswith("agent risk") and "top factors" in c["reason"]


def test_a_critical_finding_isolates_at_once() -> None:
    h = Harness()
    out = h.send(event(1), [finding("destructive.rm_rf", "critical", 95)])
    assert [c["action"] for c in h.commands(out)] == ["isolate"]
    cmd = h.commands(out)[0]
    assert cmd["expires_at"] == iso_time(T0 + 8 * 3600) and cmd["trigger_event_id"] == "e-1"
    assert cmd["factors"] == [{"source": "rules", "id": "destructive.rm_rf", "contribution": "95.00"}]


def test_rule_triggers_and_never_expiring_policy() -> None:
    h = Harness(enforcement={"triggers": {"revoke_tokens": {"rules": ["cred.*"]}}, "ttl_seconds": {"revoke_tokens": None}})
    out = h.send(event(1), [finding("cred.aws_keys", "low", 5)])
    cmd = h.commands(out)[0]
    assert cmd["action"] == "revoke_tokens" and cmd["expires_at"] is None and cmd["ttl_seconds"] is None
    assert "cred.aws_keys matches cred.*" in cmd["reason"]
    h.tick(T0 + 10**7)
    assert h.resp.agent_isolated("agent-1") == "revoke_tokens"


def test_expiry_de_escalates_and_the_agent_can_climb_again() -> None:
    h = Harness(enforcement={"ttl_seconds": {"isolate": 600}})
    h.send(event(1), [finding(severity="critical", score=95)])
    h.resp.on_ack(ack(h.commands()[0]))
    h.tick(T0 + 599)
    assert h.resp.agent_isolated("agent-1") == "isolate"
    h.tick(T0 + 600)
    assert h.resp.agent_isolated("agent-1") is None and h.resp.stats["expired_commands"] == 1
    again = h.commands(h.send(event(2, ts=T0 + 700), [finding("x", severity="critical", score=95)]))
    assert [(c["action"], c["sequence"]) for c in again] == [("isolate", 2)]


def test_release_only_by_a_named_human_and_recorded_in_the_command() -> None:
    h = Harness()
    h.send(event(1), [finding(severity="critical", score=95)])
    assert h.resp.on_control(release(by="")) == []  # no named human: refused
    assert h.resp.on_control({**release(), "reason": ""}) == []
    out = h.resp.on_control(release())
    rel = h.commands(out)[0]
    assert rel["action"] == "release" and rel["previous_action"] == "isolate" and rel["sequence"] == 2
    assert rel["issued_by"] == "carol@example.com"
    assert rel["requested_by"] == {"by": "carol@example.com", "reason": "verified with the owner", "control_id": "rel-1"}
    COMMAND.validate(rel)
    assert h.resp.agent_isolated("agent-1") is None
    # the accumulated risk the analyst saw does not re-isolate; a new critical finding does
    assert h.commands(h.send(event(2, ts=T0 + 5), [finding("low.x", "low", 5)])) == []
    assert h.commands(h.send(event(20, ts=T0 + 5), [])) == []
    new = h.commands(h.send(event(3, ts=T0 + 6), [finding("exfil", "critical", 95)]))
    assert [c["action"] for c in new] == ["isolate"]


def test_release_of_unknown_agent_needs_the_enforcement_point() -> None:
    h = Harness()
    assert h.resp.on_control(release("ghost")) == []
    out = h.resp.on_control(release("ghost", enforcement_point="ep-9"))
    assert out[0].key == "ep-9" and out[0].value["action"] == "release"


def test_shadow_mode_emits_marked_commands_counts_would_have_and_isolates_nobody() -> None:
    h = Harness(enforcement={"shadow_mode": True})
    out = h.send(event(1), [finding("destructive.rm_rf", "critical", 95)])
    cmd = h.commands(out)[0]
    assert cmd["mode"] == "shadow" and cmd["action"] == "isolate"
    COMMAND.validate(cmd)
    assert h.resp.agent_isolated("agent-1") is None
    assert h.resp.stats["would_have"] == {"isolate|rules:destructive.rm_rf": 1}
    assert h.resp.stats["shadow_commands"] == {"isolate": 1} and h.resp.stats["commands"] == {}
    # the shadow ladder remembers its rung: no repeat per event; no ack is expected
    assert h.commands(h.send(event(2, ts=T0 + 1), [finding("destructive.rm_rf", "critical", 95)])) == []
    assert [a["kind"] for a in h.alerts(h.tick(T0 + 100))] == ["detection"]  # the group update only


def test_never_isolate_agents_get_an_alert_instead() -> None:
    h = Harness(enforcement={"never_isolate": ["prod-db-*"]})
    out = h.send(event(1, agent="prod-db-7"), [finding(severity="critical", score=95)])
    assert h.commands(out) == []
    withheld = [a for a in h.alerts(out) if a["kind"] == "enforcement_withheld"]
    assert withheld and withheld[0]["context"]["withheld_because"] == "never_isolate"
    assert h.commands(h.send(event(2, agent="prod-web-1"), [finding(severity="critical", score=95)]))


def test_blast_radius_caps_isolations_per_minute_fleet_wide() -> None:
    h = Harness(enforcement={"max_isolations_per_minute": 3})
    issued, withheld = [], 0
    for i in range(6):
        out = h.send(event(i, agent=f"a{i}", ts=T0 + i), [finding(severity="critical", score=95)])
        issued += h.commands(out)
        withheld += sum(a["kind"] == "enforcement_withheld" for a in h.alerts(out))
    assert [c["agent_id"] for c in issued] == ["a0", "a1", "a2"] and withheld == 3
    assert h.resp.stats["withheld"] == {"blast_radius": 3}
    # a minute later the cap has room again
    assert h.commands(h.send(event(9, agent="a9", ts=T0 + 61), [finding(severity="critical", score=95)]))
    # require_approval is below blast_radius_min_rung (step_down) and never capped
    h2 = Harness(enforcement={"max_isolations_per_minute": 0})
    out = h2.send(event(1), [finding(severity="high", score=20)])
    assert [c["action"] for c in h2.commands(out)] == ["require_approval"]


def test_disabled_enforcement_is_alerts_only() -> None:
    h = Harness(enforcement={"enabled": False})
    out = h.send(event(1), [finding(severity="critical", score=95)])
    assert h.commands(out) == [] and h.alerts(out)


def test_acks_are_correlated_and_timeouts_alert() -> None:
    h = Harness(enforcement={"ack_timeout_seconds": 5})
    h.send(event(1), [finding(severity="critical", score=95)])
    h.send(event(2, agent="b"), [finding(severity="critical", score=95)])
    c1, c2 = h.commands()
    assert h.resp.on_ack(ack(c1, at=T0 + 0.2)) == []
    assert h.resp.ack_latencies == [0.2] or abs(h.resp.ack_latencies[0] - 0.2) < 1e-6
    assert h.tick(T0 + 4) == []
    late = h.alerts(h.tick(T0 + 5))
    assert [(a["kind"], a["agent_id"], a["severity"]) for a in late] == [("ack_timeout", "b", "critical")]
    assert late[0]["context"]["command_id"] == c2["command_id"]
    ALERT.validate(late[0])
    assert h.tick(T0 + 50) == []  # once only


def test_replay_mode_expects_no_acks() -> None:
    h = Harness(replay=True)
    h.send(event(1), [finding(severity="critical", score=95)])
    assert h.alerts(h.tick(T0 + 3600)) == []


def test_rejections_expiries_and_forged_commands_alert() -> None:
    h = Harness()
    h.send(event(1), [finding(severity="critical", score=95)])
    cmd = h.commands()[0]
    rej = h.alerts(h.resp.on_ack(ack(cmd, "rejected", code="stale")))
    assert [(a["kind"], a["severity"]) for a in rej] == [("enforcement_rejected", "critical")]
    assert h.resp.agent_isolated("agent-1") is None  # rejected: not in force
    forged = {**ack(cmd, "rejected", code="bad_signature"), "command_id": "cmd_forged"}
    out = h.alerts(h.resp.on_ack(forged))
    assert out and "never issued" in out[0]["reason"]
    assert h.resp.on_ack({"status": "applied"}) == [] and h.resp.stats["invalid_acks"] == 1
    h2 = Harness()
    h2.send(event(1), [finding(severity="critical", score=95)])
    c = h2.commands()[0]
    h2.resp.on_ack(ack(c))
    assert h2.resp.on_ack(ack(c, "rejected", code="replay")) == []  # redelivery of an applied command
    assert h2.resp.on_ack(ack(c, "expired", at=T0 + 9)) == []  # expired after applying: no alert
    assert h2.resp.agent_isolated("agent-1") is None


def test_isolated_agent_whose_actions_are_still_allowed_raises_its_own_alert() -> None:
    h = Harness()
    h.send(event(1, ts=T0), [finding(severity="critical", score=95)])
    cmd = h.commands()[0]
    # before the ack nothing is judged; after it, an allowed action means the isolation failed
    assert not [a for a in h.alerts(h.send(event(2, ts=T0 + 0.5), [])) if a["kind"] == "isolation_ineffective"]
    h.resp.on_ack(ack(cmd, at=T0 + 1))
    assert not h.alerts(h.send(event(3, ts=T0 + 2, decision="deny"), []))
    out = h.alerts(h.send(event(4, ts=T0 + 3, decision="allow"), []))
    assert [(a["kind"], a["severity"], a["event_ids"]) for a in out] == [("isolation_ineffective", "critical", ["e-4"])]


def test_step_down_lets_read_only_actions_pass_without_alert() -> None:
    h = Harness(enforcement={"triggers": {"step_down": {"rules": ["recon.*"]}}})
    h.send(event(1, ts=T0), [finding("recon.scan", "low", 5)])
    h.resp.on_ack(ack(h.commands()[0], at=T0 + 1))
    assert h.resp.agent_isolated("agent-1") == "step_down"
    ok = h.send(event(2, ts=T0 + 2, kind="shell", tool="ls", command="ls -la"), [])
    assert not [a for a in h.alerts(ok) if a["kind"] == "isolation_ineffective"]
    bad = h.send(event(3, ts=T0 + 3, kind="shell", tool="rm", command="rm x"), [])
    assert [a["kind"] for a in h.alerts(bad)] == ["isolation_ineffective"]


def test_episode_gives_alerts_and_commands_one_incident_and_closes_on_resolution() -> None:
    h = Harness(enforcement={"enabled": False})
    a1 = h.alerts(h.send(event(1), [finding("a")]))[0]
    a2 = h.alerts(h.send(event(2, ts=T0 + 1), [finding("b")]))[0]
    assert a1["incident_id"] == a2["incident_id"] == deterministic_id("inc_", "agent-1", "e-1")
    upd = {"schema_version": "1", "control_id": "u1", "type": "incident_update", "agent_id": "agent-1", "by": "carol",
           "reason": "benign", "ts": iso_time(T0 + 2), "payload": {"incident_id": a1["incident_id"], "status": "resolved"}}
    assert h.resp.on_control(upd) == []
    a3 = h.alerts(h.send(event(3, ts=T0 + 3), [finding("c")]))[0]
    assert a3["incident_id"] == deterministic_id("inc_", "agent-1", "e-3")


def scenario(h: Harness) -> list[dict]:
    for i in range(30):
        agent = f"a{i % 4}"
        fs = [finding(f"r{i % 5}", ["low", "medium", "high", "critical"][i % 4], (i * 7) % 100)] if i % 3 else []
        h.send(event(i, agent=agent, ts=T0 + i * 7), fs)
        if i % 10 == 9:
            h.tick(T0 + i * 7)
    h.resp.on_control(release("a1", cid="r1"))
    h.tick(T0 + 10_000)
    h.outputs += h.resp.flush()
    return [dict(kind=o.kind, key=o.key, value=o.value) for o in h.outputs]


def test_same_input_gives_byte_identical_output() -> None:
    a, b = scenario(Harness()), scenario(Harness())
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    for rec in a:
        (COMMAND if rec["kind"] == "enforcement" else ALERT).validate(rec["value"])


def test_state_round_trip_mid_stream_changes_nothing() -> None:
    """Checkpoint every agent through JSON and restore into fresh objects halfway: same outputs."""
    whole = Harness()
    split = Harness()
    evs = [(event(i, agent=f"a{i % 3}", ts=T0 + i * 11),
            [finding(f"r{i % 4}", ["low", "high", "critical"][i % 3], 20 + i)] if i % 2 else []) for i in range(24)]
    for ev, fs in evs:
        whole.send(ev, fs)
    for n, (ev, fs) in enumerate(evs):
        if n == 12:
            fresh = Harness()
            for name in ("scorer", "resp"):
                part_old, part_new = getattr(split, name), getattr(fresh, name)
                for agent in ["a0", "a1", "a2", "*"]:
                    if name == "scorer" and agent == "*":
                        continue
                    part_new.load_state(agent, json.loads(json.dumps(part_old.dump_state(agent))))
            fresh.outputs = split.outputs
            fresh.clock.t = split.clock.t
            split = fresh
        split.send(ev, fs)
    assert json.dumps([o.value for o in whole.outputs]) == json.dumps([o.value for o in split.outputs])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4), st.sampled_from(["info", "low", "medium", "high", "critical"]),
                          st.integers(0, 100), st.integers(0, 120)), max_size=40))
def test_ladder_never_descends_without_release_or_expiry(steps) -> None:
    h = Harness(enforcement={"ttl_seconds": {r: None for r in ("require_approval", "step_down", "revoke_tokens", "isolate")}})
    order = {None: 0, "require_approval": 1, "step_down": 2, "revoke_tokens": 3, "isolate": 4}
    last: dict[str, int] = {}
    ts = T0
    for i, (agent, rule, sev, score, gap) in enumerate(steps):
        ts += gap
        out = h.send(event(i, agent=f"a{agent}", ts=ts), [finding(f"r{rule}", sev, score)])
        for c in h.commands(out):
            level = order[c["action"]]
            assert level > last.get(c["agent_id"], 0)
            last[c["agent_id"]] = level
            assert c["sequence"] == sum(1 for x in h.commands() if x["agent_id"] == c["agent_id"])
    for a in h.alerts():
        assert a["risk"]["agent_risk"] <= 100


def test_responder_without_key_refuses_to_start_unless_replay(tmp_path) -> None:
    import pytest

    from pipeline.enforcement.keys import KeyFileError

    s = Settings(enforcement={"signing_key_path": str(tmp_path / "missing.key")})
    with pytest.raises(KeyFileError):
        Responder(s, lambda: T0)
    assert Responder(s, lambda: T0, replay=True).signer.is_dev


def test_baseline_anomalies_alone_only_hold_actions_for_approval() -> None:
    """Rungs above require_approval need a rule or policy finding to corroborate the anomaly."""
    h = Harness()
    actions = []
    for i in range(8):  # baseline findings only: agent risk climbs well past isolate's threshold
        out = h.send(event(i, ts=T0 + i), [finding(f"novelty-{i}", "high", 40, detector="baseline.novelty")])
        actions += [c["action"] for c in h.commands(out)]
    assert actions == ["require_approval"]
    assert h.resp.agent_isolated("agent-1") == "require_approval"
    # one rule finding corroborates: the ladder climbs on
    out = h.send(event(20, ts=T0 + 20), [finding("destructive.rm_rf_root", "critical", 90)])
    assert [c["action"] for c in h.commands(out)][-1] == "isolate"


def _meta_as_before(state: dict, data: dict) -> bool:
    """The responder's agent meta update as it was written before its fast path: every event
    built the four-field dict and compared it."""
    new = {k: data.get(k) for k in ("owner", "enforcement_point", "environment", "agent_role")}
    new = {k: (str(v)[:256] if v is not None else None) for k, v in new.items()}
    if state["meta"] != new:
        state["meta"] = new
        return True
    return False


_META_VALUES = st.one_of(st.none(), st.sampled_from(["alice", "bob", "ep-1", "prod", "sre"]),
                         st.text(max_size=300), st.integers(), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional={k: _META_VALUES for k in
                                                     ("owner", "enforcement_point", "environment", "agent_role")}),
                min_size=1, max_size=6),
       st.one_of(st.just({}), st.just({"owner": "alice"}),
                 st.fixed_dictionaries({k: _META_VALUES for k in ("owner", "enforcement_point", "environment",
                                                                   "agent_role")})))
def test_agent_meta_updates_as_the_dict_building_version_did(events: list[dict], start: dict) -> None:
    # a sequence of events' fields from a starting meta (empty, partial, or a full one that may
    # hold values no update would write): the same answers and the same meta after each event
    r = Harness().resp
    mine, ref = {"meta": dict(start)}, {"meta": dict(start)}
    for fields in events:
        data = {"agent_id": "a-1", "event_id": "e-1", **fields}
        assert r._update_meta(mine, Event(data, ts=T0)) == _meta_as_before(ref, data)
        assert mine["meta"] == ref["meta"]
