"""Analysts' decisions: written to the store (chained) and turned into control messages.

An analyst assigning or resolving an incident changes it in two places: the store (a chained
timeline entry and a new header version, at once, so the decision is evidence even with no
broker) and the workers (a ``incident_update`` control message on the control topic, so the
tracker, the responder's episode and — for a false positive — the baseline and the suppressions
learn of it). Both carry the same ``control_id``, so the worker's echo of the decision lands on the
same timeline entry and never duplicates it.

Marking an incident **false_positive** closes the loop: the control message carries the
incident's evidence events (up to ``EVIDENCE_EVENTS_MAX``) so the worker tells the agent's
baseline the pattern is normal, and one ``suppression`` control message per rule that fired
(scope ``rule`` for that agent by default, or ``pattern``: the same rule *and* the same command
text) expires after ``incidents.false_positive_suppression_seconds`` and names the analyst. A
different attack by the same agent still alerts.

Nothing here reads the wall clock: the CLI passes ``now``. :class:`ControlPublisher` is the only
part that does I/O on Kafka (kafka-python, like the enforcement-point SDK).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import re2

from pipeline.errors import AgentwatchError, InputError
from pipeline.incidents.store import IncidentStore
from pipeline.incidents.tracker import DISPOSITIONS, TERMINAL
from pipeline.records import deterministic_id, iso_time

__all__ = [
    "EVIDENCE_EVENTS_MAX",
    "ControlPublisher",
    "TriageResult",
    "assign",
    "evidence_events",
    "false_positive_suppressions",
    "resolve",
]

EVIDENCE_EVENTS_MAX = 50
_MAX_SUPPRESSIONS = 10
_MAX_PATTERNS = 10
SuppressScope = Literal["rule", "pattern", "agent", "none"]


@dataclass
class TriageResult:
    """What an analyst action did: the incident's new header, notes, and the control messages
    to publish (already recorded in the store)."""

    incident: dict[str, Any]
    notes: list[str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    published: bool = False


def evidence_events(timeline: list[dict[str, Any]], limit: int = EVIDENCE_EVENTS_MAX) -> list[dict[str, Any]]:
    """The event dicts kept in an incident's timeline, oldest first, at most ``limit``."""
    out = []
    for entry in timeline:
        if entry.get("type") == "event":
            ev = (entry.get("data") or {}).get("event")
            if isinstance(ev, dict):
                out.append(ev)
                if len(out) >= limit:
                    break
    return out


def _rules_of(timeline: list[dict[str, Any]]) -> list[str]:
    """``detector:id`` of every rule behind the incident's alerts (risk alerts: their factors)."""
    rules: list[str] = []

    def add(rule: str) -> None:
        if rule and rule not in rules:
            rules.append(rule)

    for entry in timeline:
        data = entry.get("data") or {}
        if entry.get("type") == "alert" and data.get("kind") != "suppression":
            detector, rule_id = data.get("detector"), data.get("rule_id")
            if detector == "agentwatch":
                continue  # control-loop alerts (ack timeouts...) are never suppressed
            if data.get("kind") == "risk" or str(rule_id or "").startswith("risk:"):
                for factor in (data.get("risk") or {}).get("factors") or ():
                    if factor.get("source") and factor.get("id"):
                        add(f"{factor['source']}:{factor['id']}")
            elif detector and rule_id:
                add(f"{detector}:{rule_id}")
        elif entry.get("type") == "finding":
            f = data.get("finding") or {}
            if f.get("detector") and f.get("id"):
                add(f"{f['detector']}:{f['id']}")
    return rules


def false_positive_suppressions(
    incident: dict[str, Any],
    timeline: list[dict[str, Any]],
    *,
    by: str,
    now: float,
    ttl_seconds: float,
    scope: SuppressScope = "rule",
    reason: str | None = None,
) -> list[dict[str, Any]]:
    """Suppression control messages for a false positive (see the module doc)."""
    if scope == "none":
        return []
    agent = str(incident["agent_id"])
    inc_id = str(incident["incident_id"])
    reason = reason or f"false positive {inc_id}"
    ts = iso_time(now)
    payloads: list[dict[str, Any]] = []
    if scope == "agent":
        payloads.append({"scope": "agent"})
    else:
        rules = _rules_of(timeline)[:_MAX_SUPPRESSIONS]
        if scope == "pattern":
            commands = []
            for ev in evidence_events(timeline):
                cmd = (ev.get("action") or {}).get("command")
                if isinstance(cmd, str) and cmd and len(cmd) <= 500 and cmd not in commands:
                    commands.append(cmd)
            if not commands:
                raise InputError("no evidence command to build a pattern suppression from; use --suppress rule")
            pattern = "^(?:" + "|".join(re2.escape(c) for c in commands[:_MAX_PATTERNS]) + ")$"
            payloads += [{"scope": "pattern", "rule": r, "pattern": pattern, "field": "command"} for r in rules]
        else:
            payloads += [{"scope": "rule", "rule": r} for r in rules]
    out = []
    for payload in payloads:
        payload["ttl_seconds"] = float(ttl_seconds)
        payload["incident_id"] = inc_id
        out.append({
            "schema_version": "1",
            "control_id": deterministic_id("ctl_", inc_id, "suppression", by, ts, orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)),
            "type": "suppression",
            "agent_id": agent,
            "by": by,
            "reason": reason[:2000],
            "ts": ts,
            "payload": payload,
        })
    return out


def _update_message(incident: dict[str, Any], *, by: str, ts: str, status: str, reason: str,
                    **payload: Any) -> dict[str, Any]:
    body = {"incident_id": incident["incident_id"], "status": status}
    body.update({k: v for k, v in payload.items() if v is not None})
    return {
        "schema_version": "1",
        "control_id": deterministic_id("ctl_", incident["incident_id"], "incident_update", by, ts,
                                       status, payload.get("assignee"), payload.get("disposition")),
        "type": "incident_update",
        "agent_id": incident["agent_id"],
        "by": by,
        "reason": reason[:2000],
        "ts": ts,
        "payload": body,
    }


def _load(store: IncidentStore, incident_id: str) -> dict[str, Any]:
    full = store.find_incident(incident_id) if not store.get_incident(incident_id, timeline=False) else incident_id
    incident = store.get_incident(full) if full else None
    if incident is None:
        raise InputError(f"no incident {incident_id!r} in the store (or the prefix matches several)")
    return incident


def assign(store: IncidentStore, incident_id: str, *, to: str, by: str, now: float,
           comment: str | None = None) -> TriageResult:
    """Assign an incident (an open one becomes triaged)."""
    incident = _load(store, incident_id)
    if incident["status"] in TERMINAL:
        raise InputError(f"incident {incident['incident_id']} is already {incident['status']}")
    ts = iso_time(now)
    status = "triaged" if incident["status"] == "open" else incident["status"]
    msg = _update_message(incident, by=by, ts=ts, status=status, reason=comment or f"assigned to {to}",
                          assignee=to, comment=comment)
    header, notes = store.analyst_action(incident["incident_id"], by=by, ts=ts, control_id=msg["control_id"],
                                         status=status, assignee=to, comment=comment)
    return TriageResult(header, notes, [msg])


def resolve(store: IncidentStore, incident_id: str, *, disposition: str, by: str, now: float,
            comment: str | None = None, suppress: SuppressScope = "rule",
            suppress_seconds: float = 30 * 24 * 3600) -> TriageResult:
    """Close an incident with a disposition; ``false_positive`` also suppresses and teaches the
    baseline (see the module doc)."""
    if disposition not in DISPOSITIONS:
        raise InputError(f"unknown disposition {disposition!r}; expected one of {', '.join(DISPOSITIONS)}")
    incident = _load(store, incident_id)
    if incident["status"] in TERMINAL:
        raise InputError(f"incident {incident['incident_id']} is already {incident['status']}")
    ts = iso_time(now)
    status = "false_positive" if disposition == "false_positive" else "resolved"
    timeline = incident.get("timeline") or []
    reason = comment or f"{status} ({disposition})"
    messages: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    payload: dict[str, Any] = {"disposition": disposition, "comment": comment}
    if status == "false_positive":
        sups = false_positive_suppressions(incident, timeline, by=by, now=now, ttl_seconds=suppress_seconds,
                                           scope=suppress, reason=reason)
        messages += sups
        extra["suppressions"] = [dict(m["payload"], control_id=m["control_id"]) for m in sups]
        payload["evidence_events"] = evidence_events(timeline)
        payload["suppressions"] = [m["control_id"] for m in sups]
    msg = _update_message(incident, by=by, ts=ts, status=status, reason=reason, **payload)
    header, notes = store.analyst_action(incident["incident_id"], by=by, ts=ts, control_id=msg["control_id"],
                                         status=status, disposition=disposition, comment=comment, extra=extra)
    return TriageResult(header, notes, [msg, *messages])


class PublishFailed(AgentwatchError):
    """Control messages could not be published; the message is one line."""


class ControlPublisher:
    """Publishes validated control messages (key ``agent_id``) with kafka-python.

    The constructor checks the broker answers (raising
    :class:`~pipeline.kafka.BrokerUnreachable` in one line) so a caller can refuse to act before
    writing anything.
    """

    def __init__(self, bootstrap: str, topic: str, *, timeout: float = 10.0) -> None:
        from pipeline.kafka import bootstrap_servers, check_reachable

        check_reachable(bootstrap, timeout=min(timeout, 3.0))
        from kafka import KafkaProducer

        self.topic = topic
        self.timeout = timeout
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers(bootstrap),
            client_id="agentwatch-triage",
            acks="all",
            max_block_ms=int(timeout * 1000),
            request_timeout_ms=int(timeout * 1000),
        )

    def publish(self, messages: list[dict[str, Any]]) -> int:
        """Send and wait for every message; raises :class:`PublishFailed` in one line."""
        import schemas

        check = schemas.validator("control")
        futures = []
        try:
            for msg in messages:
                errors = sorted(check.iter_errors(msg), key=lambda e: list(e.path))
                if errors:
                    raise PublishFailed(f"control message {msg.get('control_id')} is invalid: {errors[0].message}")
                futures.append(self._producer.send(self.topic, key=str(msg["agent_id"]).encode("utf-8"),
                                                   value=orjson.dumps(msg)))
            self._producer.flush(timeout=self.timeout)
            for fut in futures:
                fut.get(timeout=self.timeout)
        except AgentwatchError:
            raise
        except Exception as exc:  # kafka-python raises many types; the analyst needs one line
            raise PublishFailed(f"could not publish to {self.topic}: {type(exc).__name__}: {exc}") from None
        return len(futures)

    def close(self) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            self._producer.close(timeout=self.timeout)

    def __enter__(self) -> ControlPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
