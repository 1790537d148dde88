"""Alerts: grouping and versions, risk-based alerts, suppressions, rate limits, schema."""

from __future__ import annotations

import jsonschema
import pytest

import schemas
from pipeline.records import incident_id_for, iso_time

from .helpers import T0, Harness, event, finding

ALERT = jsonschema.Draft202012Validator(schemas.load("alert"), format_checker=jsonschema.FormatChecker())


def no_enforcement(**alerts) -> Harness:
    return Harness(enforcement={"enabled": False}, alerts=alerts)


def test_same_rule_in_window_is_one_alert_with_growing_versions() -> None:
    h = no_enforcement(update_interval_seconds=30, group_window_seconds=600)
    first = h.alerts(h.send(event(1, ts=T0), [finding(technique="T1485", tactic="TA0040")],
                            maturity={"events": 12, "mature": False}))
    assert len(first) == 1
    a = first[0]
    assert (a["version"], a["count"], a["status"], a["kind"], a["severity"]) == (1, 1, "open", "detection", "high")
    assert a["agent_id"] == "agent-1" and a["owner"] == "alice@example.com" and a["enforcement_point"] == "ep-1"
    assert a["baseline_maturity"] == {"events": 12, "mature": False}
    assert a["risk"]["factors"][0]["id"] == "destructive.rm_rf" and a["risk"]["factors"][0]["contribution"] == 70.0
    assert a["techniques"] == ["T1485"] and a["tactics"] == ["TA0040"]
    assert a["incident_id"] == incident_id_for("agent-1", "e-1")
    # within the update interval: no new message, the change waits for a tick
    assert h.alerts(h.send(event(2, ts=T0 + 5), [finding()])) == []
    assert h.alerts(h.send(event(3, ts=T0 + 10), [finding()])) == []
    upd = h.alerts(h.tick(T0 + 40))
    assert [(u["alert_id"], u["version"], u["count"], u["event_ids"]) for u in upd] == \
        [(a["alert_id"], 2, 3, ["e-1", "e-2", "e-3"])]
    assert upd[0]["first_seen"] == iso_time(T0) and upd[0]["last_seen"] == iso_time(T0 + 10)
    # a severity rise is emitted at once
    rise = h.alerts(h.send(event(4, ts=T0 + 41), [finding(severity="critical", score=95)]))
    assert [(r["version"], r["severity"], r["count"]) for r in rise] == [(3, "critical", 4)]
    # the window ends: the final version is emitted only if it has news; a new window is a new id
    h.send(event(5, ts=T0 + 50), [finding()])
    closed = h.alerts(h.tick(T0 + 601))
    assert [(c["version"], c["status"], c["count"]) for c in closed] == [(4, "closed", 5)]
    assert h.alerts(h.tick(T0 + 2000)) == []
    new = h.alerts(h.send(event(6, ts=T0 + 700), [finding()]))
    assert new[0]["alert_id"] != a["alert_id"] and new[0]["version"] == 1
    for out in h.alerts():
        ALERT.validate(out)


def test_alert_id_is_deterministic_and_rules_group_separately() -> None:
    runs = []
    for _ in range(2):
        h = no_enforcement()
        h.send(event(1), [finding("a"), finding("b", "critical", 90)])
        runs.append([(x["alert_id"], x["rule_id"], x["severity"]) for x in h.alerts()])
    assert runs[0] == runs[1] and [r[1] for r in runs[0]] == ["a", "b"]
    h = no_enforcement(group_by="detector")
    h.send(event(1), [finding("a"), finding("b", "critical", 90)])
    assert [(x["rule_id"], x["severity"], x["count"]) for x in h.alerts()] == [("*", "critical", 1)]


def test_event_ids_are_bounded_but_count_is_exact() -> None:
    h = no_enforcement(max_event_ids=3, update_interval_seconds=0)
    for i in range(6):
        h.send(event(i, ts=T0 + i), [finding()])
    last = h.alerts()[-1]
    assert last["count"] == 6 and last["event_ids"] == ["e-0", "e-1", "e-2"] and last["event_ids_truncated"]


def test_low_findings_do_not_alert_alone_but_accumulated_risk_does() -> None:
    h = no_enforcement()
    for i in range(5):
        assert h.send(event(i, ts=T0 + i), [finding(f"weak.{i}", "low", 10)]) == []
    out = h.alerts(h.send(event(5, ts=T0 + 5), [finding("weak.5", "low", 10)]))
    assert [(a["kind"], a["risk"]["agent_risk"], a["severity"]) for a in out] == [("risk", 60, "medium")]
    assert [f["id"] for f in out[0]["risk"]["factors"]][:2] == ["weak.0", "weak.1"]
    assert out[0]["event_ids"] == ["e-5"] and out[0]["detector"] == "risk"
    ALERT.validate(out[0])


def test_one_high_finding_does_not_also_raise_a_risk_alert() -> None:
    h = no_enforcement()
    out = h.alerts(h.send(event(1), [finding(score=70)]))
    assert [a["kind"] for a in out] == ["detection"]


def test_rate_limit_folds_new_alerts_into_one_rate_limited_alert() -> None:
    h = no_enforcement(rate_limit_burst=3, rate_limit_per_minute=1, update_interval_seconds=0)
    for i in range(10):
        h.send(event(i, ts=T0 + i), [finding(f"r{i}")])
    kinds = [(a["kind"], a["rule_id"]) for a in h.alerts() if a["version"] == 1]
    assert kinds == [("detection", "r0"), ("detection", "r1"), ("detection", "r2"), ("rate_limited", "rate_limit")]
    limited = [a for a in h.alerts() if a["kind"] == "rate_limited"][-1]
    assert limited["count"] == 7 and "r9" in " ".join(limited["context"]["held_back"])
    # another agent is not affected
    assert h.alerts(h.send(event(99, agent="other", ts=T0 + 11), [finding("x")]))[0]["kind"] == "detection"
    # the bucket refills with event time: 1/min
    assert h.alerts(h.send(event(100, ts=T0 + 200), [finding("late")]))[0]["kind"] == "detection"


def control(kind: str, agent: str = "agent-1", *, cid: str = "c1", by: str = "carol", **payload) -> dict:
    return {"schema_version": "1", "control_id": cid, "type": kind, "agent_id": agent, "by": by,
            "reason": "benign nightly job", "ts": iso_time(T0), "payload": payload}


@pytest.mark.parametrize(("payload", "agent", "suppressed", "not_suppressed"), [
    ({"scope": "agent"}, "agent-1", ("agent-1", "destructive.rm_rf", "rm -rf /x"), ("agent-2", "destructive.rm_rf", "rm -rf /x")),
    ({"scope": "rule", "rule": "destructive.*"}, "*", ("agent-2", "destructive.rm_rf", "x"), ("agent-2", "exfil.curl", "x")),
    ({"scope": "rule", "rule": "rules:destructive.rm_rf"}, "agent-1", ("agent-1", "destructive.rm_rf", "x"), ("agent-2", "destructive.rm_rf", "x")),
    ({"scope": "pattern", "pattern": r"^rm -rf /tmp/build-\d+$"}, "agent-1", ("agent-1", "destructive.rm_rf", "rm -rf /tmp/build-42"), ("agent-1", "destructive.rm_rf", "rm -rf /")),
    ({"scope": "pattern", "pattern": "^rm ", "rule": "other.*"}, "*", ("agent-1", "other.x", "rm a"), ("agent-1", "destructive.rm_rf", "rm a")),
])
def test_suppression_scopes(payload, agent, suppressed, not_suppressed) -> None:
    h = no_enforcement()
    rec = h.alerts(h.resp.on_control(control("suppression", agent, ttl_seconds=3600, **payload)))
    assert len(rec) == 1 and rec[0]["kind"] == "suppression" and rec[0]["severity"] == "info"
    assert rec[0]["context"]["suppression"]["author"] == "carol"
    ALERT.validate(rec[0])
    a, rule, cmd = suppressed
    assert h.alerts(h.send(event(1, agent=a, ts=T0 + 1, command=cmd), [finding(rule)])) == []
    a, rule, cmd = not_suppressed
    assert len(h.alerts(h.send(event(2, agent=a, ts=T0 + 2, command=cmd), [finding(rule)]))) == 1
    assert h.resp.alerter.stats["suppressed"] == 1


def test_suppression_expires_and_invalid_ones_are_refused() -> None:
    h = no_enforcement()
    h.resp.on_control(control("suppression", scope="agent", ttl_seconds=60))
    assert h.send(event(1, ts=T0 + 30), [finding()]) == []
    assert len(h.alerts(h.send(event(2, ts=T0 + 61), [finding()]))) == 1
    bad = [control("suppression", scope="pattern", pattern="(a", ttl_seconds=5, cid="c2"),  # not RE2
           control("suppression", scope="rule", ttl_seconds=5, cid="c3"),  # no rule
           control("suppression", scope="agent", cid="c4"),  # no expiry
           control("suppression", "*", scope="agent", ttl_seconds=5, cid="c5"),  # agent scope for the fleet
           control("suppression", scope="agent", ttl_seconds=5, cid="c6", by="  ")]  # no named author
    for msg in bad:
        assert h.resp.on_control(msg) == []
    assert h.resp.stats["invalid_controls"] == 5


def test_fleet_suppressions_survive_a_state_round_trip() -> None:
    h = no_enforcement()
    h.resp.on_control(control("suppression", "*", scope="rule", rule="destructive.rm_rf", ttl_seconds=600))
    assert "*" in h.resp.dirty_agents()
    blob = h.resp.dump_state("*")
    h2 = no_enforcement()
    h2.resp.load_state("*", blob)
    assert h2.send(event(1, agent="z"), [finding()]) == []
