"""Record builders shaped like the responder's output (alerts, commands), acks and control messages."""

from __future__ import annotations

from typing import Any

from detectors.base import Event
from pipeline.records import Output, deterministic_id, incident_id_for, iso_time

T0 = 1_790_000_000.0  # 2026-09-21T...Z, a fixed event-time origin


class Clock:
    """A settable clock (the tracker's ``clock`` argument)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def event(agent: str = "agent-1", n: int = 1, ts: float = T0, command: str = "ls -la", **extra: Any) -> Event:
    data = {
        "schema_version": "1",
        "event_id": f"{agent}-ev-{n}",
        "ts": iso_time(ts),
        "agent_id": agent,
        "owner": "alice@example.com",
        "session_id": "s-1",
        "environment": "prod",
        "enforcement_point": "gate-1",
        "action": {"kind": "shell", "tool": "bash", "command": command},
        "decision": "allow",
    }
    data.update(extra)
    return Event(data=data, ts=ts)


def alert(ev: Event, *, severity: str = "high", score: float = 80, rule: str = "cred.read_shadow",
          version: int = 1, incident: str | None = "auto", first_event: Event | None = None,
          kind: str = "detection", count: int = 1) -> Output:
    first = first_event or ev
    inc = incident_id_for(ev.agent_id, first.event_id) if incident == "auto" else incident
    value = {
        "schema_version": "1",
        "alert_id": deterministic_id("alr_", ev.agent_id, rule, repr(first.ts)),
        "version": version,
        "status": "open",
        "kind": kind,
        "severity": severity,
        "title": f"{rule} by {ev.agent_id}",
        "reason": f"rule {rule} matched",
        "agent_id": ev.agent_id,
        "owner": ev.data["owner"],
        "enforcement_point": ev.data["enforcement_point"],
        "environment": ev.data["environment"],
        "agent_role": "ops",
        "detector": "rules",
        "rule_id": rule,
        "count": count,
        "first_seen": iso_time(first.ts),
        "last_seen": iso_time(ev.ts),
        "window_start": iso_time(first.ts),
        "window_end": iso_time(first.ts + 900),
        "event_ids": [first.event_id, ev.event_id] if first is not ev else [ev.event_id],
        "event_ids_truncated": False,
        "risk": {"score": score, "agent_risk": score, "factors": [{"source": "rules", "id": rule, "contribution": score}]},
        "baseline_maturity": {"events": 10, "mature": False},
        "techniques": ["T1003"],
        "tactics": ["TA0006"],
        "incident_id": inc,
        "created_at": iso_time(first.ts),
        "updated_at": iso_time(ev.ts),
    }
    return Output("alerts", ev.agent_id, value)


def command(ev: Event, action: str = "isolate", *, incident: str | None = "auto", seq: int = 1,
            issued: float | None = None, mode: str = "enforce") -> Output:
    inc = incident_id_for(ev.agent_id, ev.event_id) if incident == "auto" else incident
    issued = ev.ts if issued is None else issued
    value = {
        "schema_version": "1",
        "command_id": deterministic_id("cmd_", ev.agent_id, seq, action, ev.event_id, issued),
        "agent_id": ev.agent_id,
        "enforcement_point": "gate-1",
        "action": action,
        "mode": mode,
        "reason": "accumulated risk 96",
        "factors": [{"source": "rules", "id": "cred.read_shadow", "contribution": "80.00"}],
        "incident_id": inc,
        "issued_at": iso_time(issued),
        "expires_at": iso_time(issued + 3600),
        "ttl_seconds": 3600,
        "sequence": seq,
        "nonce": deterministic_id("", ev.agent_id, seq, action, "nonce"),
        "previous_action": None,
        "issued_by": "agentwatch",
        "key_id": "k1",
        "alg": "Ed25519",
        "signature": "A" * 86 + "==",
    }
    return Output("enforcement", "gate-1", value)


def ack(cmd: Output, status: str = "applied", at: float | None = None) -> dict[str, Any]:
    c = cmd.value
    at = (parse(c["issued_at"]) + 0.25) if at is None else at
    return {
        "schema_version": "1",
        "ack_id": deterministic_id("ack_", c["command_id"], status),
        "command_id": c["command_id"],
        "agent_id": c["agent_id"],
        "enforcement_point": c["enforcement_point"],
        "action": c["action"],
        "status": status,
        "ts": iso_time(at),
    }


def control(agent: str, incident_id: str, *, by: str = "carol", ts: float = T0 + 600, **payload: Any) -> dict[str, Any]:
    body = {"incident_id": incident_id, **payload}
    return {
        "schema_version": "1",
        "control_id": deterministic_id("ctl_", agent, incident_id, by, ts, sorted(payload.items())),
        "type": "incident_update",
        "agent_id": agent,
        "by": by,
        "reason": payload.get("comment") or "triage",
        "ts": iso_time(ts),
        "payload": body,
    }


def parse(text: str) -> float:
    from pipeline.incidents.tracker import parse_time

    value = parse_time(text)
    assert value is not None
    return value


