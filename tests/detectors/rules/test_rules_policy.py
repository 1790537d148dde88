"""PolicyDetector: denied spikes, role tool sets, change freezes, working hours, state round-trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from detectors.base import Detector, Stateful
from detectors.rulebook import PolicyDetector, is_destructive, make_event
from pipeline.settings import RulesSettings

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp()  # Monday 10:00 UTC


def ev(ts: float = T0, **patch):  # type: ignore[no-untyped-def]
    case = {"ts": datetime.fromtimestamp(ts, UTC).isoformat(), "action.command": "ls", **patch}
    return make_event(case, "shell")


def ids(det: PolicyDetector, event) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.id for f in det.score_one(event)]


def test_protocols() -> None:
    det = PolicyDetector(RulesSettings())
    assert isinstance(det, Detector) and isinstance(det, Stateful) and det.name == "policy"
    assert ids(det, ev()) == []


def test_denied_spike_fires_once_per_window() -> None:
    det = PolicyDetector(RulesSettings(denied_spike_threshold=3, denied_spike_window_seconds=60))
    seen = []
    for i in range(6):
        e = ev(T0 + i, decision="deny")
        seen.append(ids(det, e))
        det.learn_one(e)
    assert seen == [[], [], ["policy.denied_spike"], [], [], []]
    later = ev(T0 + 200, decision="denied")
    assert ids(det, later) == []  # the window has emptied: one denial is no spike
    # score_one alone never changes state
    before = det.dump_state("agent-test")
    det.score_one(ev(T0 + 201, decision="deny"))
    assert det.dump_state("agent-test") == before


def test_denied_spike_uses_event_time_not_arrival() -> None:
    det = PolicyDetector(RulesSettings(denied_spike_threshold=3, denied_spike_window_seconds=60))
    for t in (T0, T0 + 1000, T0 + 2000):
        e = ev(t, decision="deny")
        assert ids(det, e) == []
        det.learn_one(e)


def test_state_round_trip_and_bounds() -> None:
    det = PolicyDetector(RulesSettings(denied_spike_threshold=3, denied_spike_window_seconds=3600))
    for i in range(100):
        det.learn_one(ev(T0 + i, decision="deny"))
    assert det.dirty_agents() == {"agent-test"} and det.dirty_agents() == set()
    blob = det.dump_state("agent-test")
    assert len(blob["denied"]) <= 12  # 4 x threshold
    json.dumps(blob)
    other = PolicyDetector(
        RulesSettings(denied_spike_threshold=3, denied_spike_window_seconds=3600)
    )
    other.load_state("agent-test", json.loads(json.dumps(blob)))
    e = ev(T0 + 100, decision="deny")
    assert ids(other, e) == ids(det, e)
    other.forget("agent-test")
    assert other.dump_state("agent-test") is None
    other.load_state("x", {"denied": ["junk", True, 3.0], "quiet_until": "no"})
    assert other.dump_state("x") == {"denied": [3.0]}


def test_role_allowed_tools() -> None:
    det = PolicyDetector(RulesSettings(role_allowed_tools={"support": ["zendesk.search", "kb.*"]}))
    assert ids(det, ev(agent_role="support", **{"action.tool": "kb.read"})) == []
    assert ids(det, ev(agent_role="support", **{"action.tool": "zendesk.search"})) == []
    assert ids(det, ev(agent_role="support", **{"action.tool": "psql"})) == [
        "policy.tool_not_allowed"
    ]
    assert ids(det, ev(agent_role="other", **{"action.tool": "psql"})) == []


def test_change_freeze() -> None:
    freeze = {
        "start": "2026-03-02T00:00:00Z",
        "end": "2026-03-03T00:00:00Z",
        "environments": ["prod"],
        "name": "Q1 close",
    }
    det = PolicyDetector(RulesSettings(change_freezes=[freeze]))
    destructive = {"environment": "prod", "action.command": "kubectl delete deploy api -n payments"}
    (f,) = det.score_one(ev(**destructive))
    assert f.id == "policy.change_freeze" and "Q1 close" in f.reason
    assert ids(det, ev(environment="prod", **{"action.command": "kubectl get pods"})) == []
    assert (
        ids(det, ev(environment="staging", **{"action.command": "kubectl delete deploy api"})) == []
    )
    assert ids(det, ev(T0 + 86400 * 2, **destructive)) == []


def test_is_destructive() -> None:
    assert is_destructive(
        make_event({"action.kind": "sql", "action.command": "DELETE FROM t WHERE id=1"}, "sql")
    )
    assert is_destructive(make_event("terraform apply -auto-approve"))
    assert is_destructive(make_event("aws ec2 terminate-instances --instance-ids i-1"))
    assert not is_destructive(make_event("terraform plan"))
    assert not is_destructive(
        make_event({"action.kind": "sql", "action.command": "SELECT 1"}, "sql")
    )


def test_working_hours_per_owner_and_default() -> None:
    settings = RulesSettings(
        working_hours={
            "owner@example.com": {"timezone": "America/New_York", "start": "09:00", "end": "17:00"}
        },
        default_working_hours={"timezone": "UTC", "start": "08:00", "end": "18:00"},
    )
    det = PolicyDetector(settings)
    # 10:00 UTC Monday is 05:00 in New York: outside
    (f,) = det.score_one(ev())
    assert f.id == "policy.off_hours" and "Mon 05:00" in f.reason
    assert ids(det, ev(T0 + 5 * 3600)) == []  # 10:00 New York
    assert ids(det, ev(owner="someone@else.org")) == []  # default: 10:00 UTC is inside
    assert ids(det, ev(T0 + 5 * 86400, owner="someone@else.org")) == [
        "policy.off_hours"
    ]  # Saturday


def test_overnight_shift() -> None:
    det = PolicyDetector(
        RulesSettings(default_working_hours={"start": "22:00", "end": "06:00", "days": ["mon"]})
    )
    monday_23 = datetime(2026, 3, 2, 23, 0, tzinfo=UTC).timestamp()
    tuesday_03 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC).timestamp()
    tuesday_23 = datetime(2026, 3, 3, 23, 0, tzinfo=UTC).timestamp()
    assert ids(det, ev(monday_23)) == [] and ids(det, ev(tuesday_03)) == []
    assert ids(det, ev(tuesday_23)) == ["policy.off_hours"]
