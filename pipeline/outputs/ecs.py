"""Elastic Common Schema (ECS 8.17) documents, one JSON object per record.

Attribution: the accountable human owner is ``user.*``; the AI agent acting for them is
``user.effective.*`` (ECS's field for the identity an action was really performed as, like the
target of sudo); the enforcement point that reported and enforces is ``service.*`` (with the
deployment ``service.environment``). Risk goes to ``event.risk_score``/``event.risk_score_norm``
(0-100), ATT&CK tags to ``threat.*``, the strongest finding to ``rule.*``. Everything agentwatch
knows that ECS has no field for (findings, risk factors, session, decision, delegation, unknown
extra fields of the event) is kept under the custom ``agentwatch.*`` namespace, so nothing is lost.

Field-by-field table: ``docs/integrations.md``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

import orjson

from pipeline.outputs.common import (
    PRODUCT,
    agentwatch_meta,
    alert_risk,
    alert_rule,
    attack_tags,
    attack_url,
    record_severity,
    top_finding,
)

__all__ = ["ECS_VERSION", "encode_alert", "encode_enriched", "to_ecs_alert", "to_ecs_enriched"]

ECS_VERSION = "8.17.0"

#: action.kind -> (event.category, event.type); see the ECS categorization allowed values
_CATEGORIES: dict[str, tuple[list[str], list[str]]] = {
    "shell": (["process"], ["start"]),
    "file": (["file"], ["access"]),
    "sql": (["database"], ["access"]),
    "http": (["network", "web"], ["access"]),
    "tool_call": (["api"], ["access"]),
}
_OUTCOME = {"allow": "success", "approved": "success", "deny": "failure", "denied": "failure"}
#: event fields mapped to ECS fields; the rest is kept in agentwatch.extra
_MAPPED = frozenset(
    {
        "schema_version", "event_id", "ts", "agent_id", "owner", "session_id", "environment",
        "enforcement_point", "action", "decision", "agent_role", "tenant", "approver", "source_ip",
        "delegation", "agentwatch",
    }
)  # fmt: skip
_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """Drop None, empty strings and empty containers, recursively."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _clean(v)
        if v is None or v == "" or v == [] or v == {}:
            continue
        out[k] = v
    return out


def _threat(items: Any) -> dict[str, Any]:
    tags = attack_tags(items or ())
    techniques = [t for t, _ in tags if t]
    tactics = list(dict.fromkeys(a for _, a in tags if a))
    if not techniques and not tactics:
        return {}
    return {
        "framework": "MITRE ATT&CK",
        "technique": {"id": techniques, "reference": [u for u in map(attack_url, techniques) if u]},
        "tactic": {"id": tactics, "reference": [u for u in map(attack_url, tactics) if u]},
    }


def _people(value: Mapping[str, Any]) -> dict[str, Any]:
    owner = value.get("owner")
    agent = value.get("agent_id")
    role = value.get("agent_role")
    return {
        "user": {
            "name": owner,
            "id": owner,
            "effective": {"name": agent, "id": agent, "roles": [role] if role else None},
        },
        "service": {
            "name": value.get("enforcement_point"),
            "type": "enforcement-point",
            "environment": value.get("environment"),
        },
        "organization": {"id": value.get("tenant")},
        "related": {"user": [u for u in dict.fromkeys((owner, agent)) if u]},
    }


def to_ecs_enriched(value: Mapping[str, Any]) -> dict[str, Any]:
    meta = agentwatch_meta(value)
    raw_action = value.get("action")
    action: Mapping[str, Any] = raw_action if isinstance(raw_action, Mapping) else {}
    kind = str(action.get("kind", ""))
    tool = action.get("tool")
    command = action.get("command")
    target = action.get("target")
    findings = meta.get("findings") or []
    top = top_finding(findings)
    severity = record_severity("enriched", value)
    category, etype = _CATEGORIES.get(kind, (["api"], ["info"]))
    risk = meta.get("risk_score")
    doc: dict[str, Any] = {
        "@timestamp": value.get("ts"),
        "ecs": {"version": ECS_VERSION},
        "message": f"{value.get('agent_id')} {kind} {tool}: {command}",
        "event": {
            "kind": "event",
            "category": category,
            "type": etype,
            "action": kind,
            "outcome": _OUTCOME.get(str(value.get("decision")), "unknown"),
            "id": value.get("event_id"),
            "created": meta.get("processed_at"),
            "dataset": "agentwatch.enriched",
            "module": PRODUCT,
            "provider": value.get("enforcement_point"),
            "severity": int(severity),
            "risk_score": float(risk) if isinstance(risk, int | float) else None,
            "risk_score_norm": float(risk) if isinstance(risk, int | float) else None,
            "reason": top.get("reason") if top else None,
        },
        **_people(value),
        "threat": _threat(findings),
    }
    if top is not None:
        doc["rule"] = {
            "id": top.get("id"),
            "name": top.get("id"),
            "ruleset": top.get("detector"),
            "description": top.get("reason"),
        }
    bytes_out = action.get("bytes_out")
    src = {"ip": value.get("source_ip"), "bytes": bytes_out if isinstance(bytes_out, int) else None}
    if src["ip"] is not None or src["bytes"] is not None:
        doc["source"] = src
        if src["ip"]:
            doc["related"]["ip"] = [src["ip"]]
    if kind == "shell":
        doc["process"] = {"name": tool, "command_line": command}
    elif kind == "file" and isinstance(target, str):
        doc["file"] = {"path": target, "name": posixpath.basename(target) or target}
    elif kind == "http":
        if isinstance(target, str):
            doc["url"] = {"original": target}
        method = str(command or "").split(" ", 1)[0].upper()
        if method in _HTTP_METHODS:
            doc["http"] = {"request": {"method": method}}
    elif kind == "sql" and isinstance(target, str):
        doc["destination"] = {"address": target}
    doc["agentwatch"] = {
        "record_id": meta.get("record_id"),
        "severity": severity.label,
        "agent_id": value.get("agent_id"),
        "session_id": value.get("session_id"),
        "decision": value.get("decision"),
        "approver": value.get("approver"),
        "delegation": value.get("delegation"),
        "action": dict(action),
        "risk_score": risk,
        "agent_risk": meta.get("agent_risk"),
        "risk_factors": meta.get("risk_factors"),
        "findings": findings,
        "pipeline_version": meta.get("pipeline_version"),
        "schema_version": value.get("schema_version"),
        "extra": {k: v for k, v in value.items() if k not in _MAPPED},
    }
    for k, v in meta.items():  # fields the pipeline adds later (e.g. baseline maturity)
        doc["agentwatch"].setdefault(k, v)
    return _clean(doc)


def to_ecs_alert(value: Mapping[str, Any]) -> dict[str, Any]:
    rule = alert_rule(value)
    severity = record_severity("alerts", value)
    risk, agent_risk = alert_risk(value)
    title = value.get("title") or value.get("reason") or rule
    doc: dict[str, Any] = {
        "@timestamp": value.get("updated_at") or value.get("last_seen") or value.get("created_at"),
        "ecs": {"version": ECS_VERSION},
        "message": title,
        "event": {
            "kind": "alert",
            "category": ["intrusion_detection"],
            "type": ["info"],
            "id": value.get("alert_id"),
            "start": value.get("first_seen"),
            "end": value.get("last_seen"),
            "dataset": "agentwatch.alerts",
            "module": PRODUCT,
            "provider": value.get("enforcement_point"),
            "severity": int(severity),
            "risk_score": risk,
            "risk_score_norm": risk,
            "reason": value.get("reason"),
        },
        "rule": {
            "id": rule,
            "name": value.get("title") or rule,
            "ruleset": value.get("detector"),
            "description": value.get("reason"),
        },
        **_people(value),
        "threat": _threat([value]),
        "agentwatch": {
            "severity": severity.label,
            "agent_id": value.get("agent_id"),
            "agent_risk": agent_risk,
            "alert": dict(value),
        },
    }
    return _clean(doc)


def encode_enriched(value: Mapping[str, Any]) -> bytes:
    return orjson.dumps(to_ecs_enriched(value))


def encode_alert(value: Mapping[str, Any]) -> bytes:
    return orjson.dumps(to_ecs_alert(value))
