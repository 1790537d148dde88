"""The false-positive loop through the real processor, responder and tracker: an analyst marks an
incident false_positive; the second occurrence of the same benign behaviour stays quiet while a
different attack by the same agent still alerts.

The detector here is a small real one written for the test (a per-agent novelty check on two
patterns with ``mark_normal``), because the point is the loop's wiring — store, triage, control
messages, suppressions, the tracker's episode and the baseline hook — not a particular rule set.
"""

from __future__ import annotations

from typing import Any

import orjson

from detectors.base import Event, Finding, Severity
from pipeline.incidents import IncidentStore, open_store
from pipeline.incidents.triage import resolve
from pipeline.processor import EventClock, InputRecord, Processor
from pipeline.records import Output
from pipeline.response import Responder
from pipeline.risk import RiskScorer
from pipeline.settings import load_settings

from .factories import T0, event


class DumpOrShadow:
    """Flags database dumps and /etc/shadow reads that are new for the agent (learned as normal
    through ``mark_normal``)."""

    name = "test"

    def __init__(self) -> None:
        self.normal: dict[str, set[str]] = {}
        self.marked: list[str] = []

    def score_one(self, ev: Event) -> list[Finding]:
        cmd = ev.action["command"]
        if cmd in self.normal.get(ev.agent_id, set()):
            return []
        if "pg_dump" in cmd:
            return [Finding("test", "db_dump", Severity.HIGH, 70, "database dump")]
        if "/etc/shadow" in cmd:
            return [Finding("test", "shadow_read", Severity.CRITICAL, 90, "reads password hashes")]
        return []

    def learn_one(self, ev: Event) -> None:
        pass

    def mark_normal(self, agent_id: str, events: list[Event]) -> None:
        for ev in events:
            self.normal.setdefault(agent_id, set()).add(ev.action["command"])
            self.marked.append(ev.event_id)

    def maturity(self, agent_id: str) -> dict[str, Any]:
        return {"events": 0, "mature": False}


def feed(p: Processor, clock: EventClock, store: IncidentStore, events: list[Event]) -> list[Output]:
    recs = [InputRecord(orjson.dumps(e.data), e.agent_id.encode(), "t", 0, i) for i, e in enumerate(events)]
    out = p.process_actions(recs)
    out += p.tick(clock())
    store.apply_outputs(out)
    return out


def test_false_positive_quiets_the_pattern_but_not_other_attacks(tmp_path) -> None:
    settings = load_settings(None)
    settings.enforcement.allow_dev_key = True
    settings.enforcement.enabled = False  # alerts only: the loop under test is analyst -> pipeline
    clock = EventClock()
    det = DumpOrShadow()
    from pipeline.incidents import IncidentTracker

    p = Processor(settings, detectors=[det], scorer=RiskScorer(settings.risk), responder=Responder(settings, clock),
                  tracker=IncidentTracker(settings.incidents, clock), baselines=det, clock=clock)
    store = open_store(f"sqlite:///{tmp_path}/loop.db")

    backup = "pg_dump -t customers prod > /backups/nightly.sql"
    out = feed(p, clock, store, [event(agent="etl-1", n=1, ts=T0, command=backup)])
    alerts = [o for o in out if o.kind == "alerts"]
    assert alerts and alerts[0].value["rule_id"] == "db_dump"
    inc = store.list_incidents(agents=["etl-1"])
    assert len(inc) == 1 and inc[0]["status"] == "open" and p.tracker.has_open("etl-1")

    # the analyst: a nightly backup, not exfiltration
    result = resolve(store, inc[0]["incident_id"], disposition="false_positive", by="carol", now=T0 + 600,
                     comment="nightly backup job")
    assert [m["type"] for m in result.messages] == ["incident_update", "suppression"]
    # what the worker receives on the control topic
    control_out = p.process_control(result.messages)
    store.apply_outputs(control_out)
    assert det.marked == ["etl-1-ev-1"], "the baseline was told the evidence is normal"
    assert not p.tracker.has_open("etl-1"), "the episode is closed: the baseline learns again"
    assert store.get_incident(inc[0]["incident_id"], timeline=False)["status"] == "false_positive"

    # the next run (within the stream's event-time lead window): the same behaviour stays quiet...
    out = feed(p, clock, store, [event(agent="etl-1", n=2, ts=T0 + 1200, command=backup)])
    assert [o for o in out if o.kind == "alerts"] == []
    # ...a different dump by the same agent is quiet too (the rule is suppressed for this agent)...
    out = feed(p, clock, store, [event(agent="etl-1", n=3, ts=T0 + 1260, command="pg_dump -t payments prod")])
    assert [o for o in out if o.kind == "alerts"] == []
    # ...but a different attack by the same agent still alerts and opens a new incident
    out = feed(p, clock, store, [event(agent="etl-1", n=4, ts=T0 + 1320, command="cat /etc/shadow")])
    alerts = [o for o in out if o.kind == "alerts"]
    assert alerts and alerts[0].value["rule_id"] == "shadow_read"
    incidents = store.list_incidents(agents=["etl-1"])
    assert len(incidents) == 2 and {i["status"] for i in incidents} == {"false_positive", "open"}
    # the suppression was recorded with the analyst's name
    sup_alerts = [a for a in store.list_alerts(agents=["etl-1"]) if a["kind"] == "suppression"]
    assert sup_alerts and "carol" in sup_alerts[0]["reason"]
    assert store.verify().ok
    store.close()
