"""OCSF 1.5.0 events, built and validated with the ``ocsf-emitter`` models.

- alerts -> **Detection Finding** (class 2004, Findings);
- enriched agent actions -> the closest activity class by ``action.kind``:
  ``shell`` -> Process Activity (1007), ``file`` -> File System Activity (1001),
  ``sql`` -> Datastore Activity (6005), ``tool_call`` and ``http`` -> API Activity (6003)
  (HTTP Activity 4002 has no ``actor`` in OCSF 1.5.0, so it could not carry attribution).

Attribution is the same in every class: the AI agent is the ``actor`` (``actor.app_uid`` /
``actor.app_name``), the accountable owner is ``actor.user``, the session is ``actor.session``,
the enforcement point is the ``device`` (and ``metadata.log_provider``). Findings and the risk
score ride in ``enrichments`` (activity classes have no risk or ATT&CK attributes), everything
else that OCSF has no attribute for goes to ``unmapped``. Every event is validated by the models
(types, enums, required attributes, class/category/type_uid invariants, pinned version) before
it is returned; the tests also check it against the official OCSF 1.5.0 JSON Schema.

The field-by-field mapping is in ``docs/integrations.md``.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ocsf_emitter import models as m
from ocsf_emitter.defaults import OCSF_SCHEMA_VERSION
from pydantic import ValidationError

from detectors.base import Severity
from pipeline.errors import AgentwatchError
from pipeline.outputs.common import (
    PRODUCT,
    VENDOR,
    agentwatch_meta,
    alert_factors,
    alert_risk,
    alert_rule,
    attack_tags,
    attack_url,
    record_severity,
    to_ms,
)

__all__ = [
    "OCSF_VERSION",
    "OcsfMappingError",
    "encode_alert",
    "encode_enriched",
    "to_ocsf_alert",
    "to_ocsf_enriched",
]

#: the OCSF schema version every event declares (``metadata.version``); pinned by ocsf-emitter
OCSF_VERSION = OCSF_SCHEMA_VERSION
if OCSF_VERSION != "1.5.0":  # the mapping below was reviewed against 1.5.0 only
    raise ImportError(
        f"ocsf-emitter pins OCSF {OCSF_VERSION}; agentwatch maps to 1.5.0: review the mapping"
    )


class OcsfMappingError(AgentwatchError):
    """A record could not be turned into a valid OCSF event (it does not have the documented shape)."""


SEVERITY_ID = {
    Severity.INFO: 1,  # Informational
    Severity.LOW: 2,
    Severity.MEDIUM: 3,
    Severity.HIGH: 4,
    Severity.CRITICAL: 5,
}
_SEVERITY_NAME = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}

#: profiles every event declares: ``host`` gives application classes a ``device`` (the
#: enforcement point) and findings an ``actor``; ``security_control`` gives activity classes the
#: enforcement decision (action/disposition), ``risk_score``/``risk_level`` and ATT&CK ``attacks``
PROFILES = ["host", "security_control"]

#: decision at the enforcement point -> (action_id, action, disposition_id, disposition)
_CONTROL = {
    "allow": (1, "Allowed", 1, "Allowed"),
    "approved": (1, "Allowed", 8, "Approved"),
    "deny": (2, "Denied", 2, "Blocked"),
    "denied": (2, "Denied", 25, "Rejected"),
    "approval_required": (99, "Approval Required", 14, "Delayed"),
}
#: decision at the enforcement point -> (status_id, status): Success / Failure / Other
_STATUS = {
    "allow": (1, "Success"),
    "approved": (1, "Success"),
    "deny": (2, "Failure"),
    "denied": (2, "Failure"),
    "approval_required": (99, "Approval Required"),
}

#: class_uid, class name, category uid, category name per action kind
_CLASSES: dict[str, tuple[int, str, int, str]] = {
    "shell": (1007, "Process Activity", 1, "System Activity"),
    "file": (1001, "File System Activity", 1, "System Activity"),
    "sql": (6005, "Datastore Activity", 6, "Application Activity"),
    "tool_call": (6003, "API Activity", 6, "Application Activity"),
    "http": (6003, "API Activity", 6, "Application Activity"),
}
_MODELS: dict[int, type[Any]] = {
    1007: m.ProcessActivity,
    1001: m.FileActivity,
    6005: m.DatastoreActivity,
    6003: m.ApiActivity,
}

# Verb -> activity, per class. A verb is looked up in the tool name (and for files, the command).
_WORDS = re.compile(r"[a-z]+")
_FILE_ACTIVITY = {
    "create": (1, "Create"), "touch": (1, "Create"), "mkdir": (1, "Create"), "new": (1, "Create"),
    "read": (2, "Read"), "cat": (2, "Read"), "get": (2, "Read"), "head": (2, "Read"),
    "tail": (2, "Read"), "less": (2, "Read"), "open": (14, "Open"), "download": (2, "Read"),
    "write": (3, "Update"), "edit": (3, "Update"), "append": (3, "Update"), "put": (3, "Update"),
    "save": (3, "Update"), "update": (3, "Update"), "upload": (3, "Update"), "patch": (3, "Update"),
    "delete": (4, "Delete"), "rm": (4, "Delete"), "unlink": (4, "Delete"), "remove": (4, "Delete"),
    "shred": (4, "Delete"), "rename": (5, "Rename"), "mv": (5, "Rename"), "move": (5, "Rename"),
    "chmod": (7, "Set Security"), "chown": (7, "Set Security"), "stat": (8, "Get Attributes"),
    "list": (8, "Get Attributes"), "ls": (8, "Get Attributes"),
}  # fmt: skip
_API_ACTIVITY = {
    "create": (1, "Create"), "add": (1, "Create"), "post": (1, "Create"), "send": (1, "Create"),
    "insert": (1, "Create"), "new": (1, "Create"), "run": (1, "Create"), "exec": (1, "Create"),
    "get": (2, "Read"), "read": (2, "Read"), "list": (2, "Read"), "search": (2, "Read"),
    "fetch": (2, "Read"), "query": (2, "Read"), "describe": (2, "Read"), "head": (2, "Read"),
    "options": (2, "Read"), "download": (2, "Read"), "export": (2, "Read"),
    "update": (3, "Update"), "edit": (3, "Update"), "set": (3, "Update"), "put": (3, "Update"),
    "patch": (3, "Update"), "write": (3, "Update"), "modify": (3, "Update"),
    "delete": (4, "Delete"), "remove": (4, "Delete"), "drop": (4, "Delete"), "revoke": (4, "Delete"),
}  # fmt: skip
_SQL_ACTIVITY = {
    "select": (4, "Query"), "with": (4, "Query"), "show": (4, "Query"), "describe": (4, "Query"),
    "explain": (4, "Query"), "insert": (5, "Write"), "copy": (5, "Write"), "update": (2, "Update"),
    "merge": (2, "Update"), "upsert": (2, "Update"), "alter": (2, "Update"),
    "delete": (7, "Delete"), "truncate": (7, "Delete"), "drop": (7, "Delete"),
    "create": (6, "Create"), "grant": (99, "Other"), "revoke": (99, "Other"),
}  # fmt: skip
_HTTP_METHODS = frozenset(
    {"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE", "CONNECT"}
)
_OCSF_HTTP_METHODS = _HTTP_METHODS - {"PATCH"}
_MAX_RELATED_EVENTS = 100
#: event fields given an OCSF attribute; everything else goes to unmapped.event
_MAPPED = frozenset(
    {"schema_version", "event_id", "ts", "agent_id", "owner", "session_id", "enforcement_point",
     "decision", "tenant", "source_ip", "agentwatch"}
)  # fmt: skip
_ACTION_MAPPED = frozenset({"kind", "tool", "command", "target"})


def _ip(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _words(*texts: Any) -> list[str]:
    out: list[str] = []
    for t in texts:
        if isinstance(t, str):
            out.extend(_WORDS.findall(t.lower()))
    return out


def _activity(table: Mapping[str, tuple[int, str]], words: list[str]) -> tuple[int, str]:
    for w in words:
        hit = table.get(w)
        if hit is not None:
            return hit
    return 99, "Other"


def _metadata(uid: Any, version: Any, **extra: Any) -> dict[str, Any]:
    md: dict[str, Any] = {
        "version": OCSF_VERSION,
        "profiles": PROFILES,
        "product": {
            "name": PRODUCT,
            "vendor_name": VENDOR,
            "version": str(version) if version else None,
        },
        "uid": str(uid) if uid is not None else None,
    }
    md.update({k: v for k, v in extra.items() if v is not None})
    return md


def _device(enforcement_point: Any) -> dict[str, Any]:
    name = str(enforcement_point) if enforcement_point else "unknown"
    return {"type_id": 99, "type": "Enforcement Point", "name": name, "uid": name}


def _actor(value: Mapping[str, Any]) -> dict[str, Any]:
    agent = str(value.get("agent_id") or "unknown")
    actor: dict[str, Any] = {"app_uid": agent, "app_name": agent}
    owner = value.get("owner")
    if owner:
        actor["user"] = {"name": str(owner), "uid": str(owner), "type_id": 1, "type": "User"}
    session: dict[str, Any] = {}
    if value.get("session_id"):
        session["uid"] = str(value["session_id"])
    delegation = value.get("delegation")
    if isinstance(delegation, Mapping):
        if delegation.get("token_id"):
            session["credential_uid"] = str(delegation["token_id"])
        exp = to_ms(delegation.get("expires_at"))
        if exp is not None:
            session["expiration_time"] = exp
    if session:
        actor["session"] = session
    return actor


def _observables(
    value: Mapping[str, Any], kind: str | None, action: Mapping[str, Any]
) -> list[dict[str, Any]]:
    obs: list[dict[str, Any]] = []
    if value.get("agent_id"):
        obs.append(
            {
                "name": "actor.app_uid",
                "type_id": 10,
                "type": "Resource UID",
                "value": str(value["agent_id"]),
            }
        )
    if value.get("owner"):
        obs.append(
            {
                "name": "actor.user.name",
                "type_id": 4,
                "type": "User Name",
                "value": str(value["owner"]),
            }
        )
    ip = _ip(value.get("source_ip"))
    if ip:
        obs.append({"name": "src_endpoint.ip", "type_id": 2, "type": "IP Address", "value": ip})
    target = action.get("target")
    if kind == "shell" and action.get("command"):
        obs.append(
            {
                "name": "process.cmd_line",
                "type_id": 13,
                "type": "Command Line",
                "value": str(action["command"]),
            }
        )
    elif kind == "file" and isinstance(target, str) and target:
        obs.append({"name": "file.path", "type_id": 45, "type": "File Path", "value": target})
    elif kind == "http" and isinstance(target, str) and target:
        obs.append(
            {
                "name": "http_request.url.url_string",
                "type_id": 6,
                "type": "URL String",
                "value": target,
            }
        )
    return obs


def _attacks(items: Any) -> list[dict[str, Any]]:
    out = []
    for tech, tac in attack_tags(items or ()):
        a: dict[str, Any] = {}
        if tech:
            a["technique"] = {"uid": tech, "src_url": attack_url(tech)}
        if tac:
            a["tactic"] = {"uid": tac, "src_url": attack_url(tac)}
        out.append(a)
    return out


def _finding_enrichment(f: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": "agentwatch.finding",
        "value": str(f.get("id", "")),
        "type": str(f.get("detector", "finding")),
        "desc": str(f.get("reason", "")),
        "provider": PRODUCT,
        "data": dict(f),
    }


def _build(payload: dict[str, Any]) -> Any:
    """Validate the payload with its OCSF class model; raise OcsfMappingError if it is invalid.

    One pass of the model's validation (types, enums, required attributes). The OCSF invariants
    that ocsf-emitter's ``validate()`` adds (class/category identity, ``type_uid`` =
    ``class_uid*100 + activity_id``, pinned version) hold by construction here, so the hot path
    skips its second full re-validation; the tests run ``validate()`` and the official JSON
    Schema on every mapping.
    """
    cls = _MODELS.get(payload["class_uid"], m.DetectionFinding)
    try:
        return cls.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise OcsfMappingError(
            f"record is not mappable to OCSF {payload.get('class_name')}: {loc}: {err['msg']}"
        ) from None


def _dump(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def _dump_bytes(model: Any) -> bytes:
    out: str = model.model_dump_json(by_alias=True, exclude_none=True)
    return out.encode("utf-8")


def to_ocsf_enriched(value: Mapping[str, Any]) -> dict[str, Any]:
    """The OCSF activity event (as a dict) for one enriched record."""
    return _dump(_enriched_model(value))


def to_ocsf_alert(value: Mapping[str, Any]) -> dict[str, Any]:
    """The OCSF Detection Finding (as a dict) for one alert."""
    return _dump(_alert_model(value))


def _enriched_model(value: Mapping[str, Any]) -> Any:
    meta = agentwatch_meta(value)
    raw_action = value.get("action")
    action: Mapping[str, Any] = raw_action if isinstance(raw_action, Mapping) else {}
    kind = str(action.get("kind", ""))
    class_uid, class_name, category_uid, category_name = _CLASSES.get(kind, _CLASSES["tool_call"])
    tool = str(action.get("tool") or kind or "unknown")
    command = action.get("command")
    target = action.get("target")
    severity = record_severity("enriched", value)
    sev_id = SEVERITY_ID[severity]
    status_id, status = _STATUS.get(str(value.get("decision")), (0, "Unknown"))
    findings = [f for f in meta.get("findings") or () if isinstance(f, Mapping)]
    time_ms = to_ms(value.get("ts"))
    env = value.get("environment")

    risk = meta.get("risk_score")
    enrichments = [
        {
            "name": "agentwatch.risk_score",
            "value": str(risk if risk is not None else 0),
            "type": "risk",
            "provider": PRODUCT,
            "data": {
                "risk_score": risk,
                "agent_risk": meta.get("agent_risk"),
                "risk_factors": meta.get("risk_factors") or [],
                "attacks": _attacks(findings),
            },
        },
        *(_finding_enrichment(f) for f in findings),
    ]
    unmapped_meta = {k: v for k, v in meta.items() if k != "findings"}
    unmapped: dict[str, Any] = {"agentwatch": unmapped_meta}
    event_rest = {k: v for k, v in value.items() if k not in _MAPPED}
    rest_action = {k: v for k, v in action.items() if k not in _ACTION_MAPPED}
    event_rest.pop("action", None)
    if rest_action:
        event_rest["action"] = rest_action
    if value.get("source_ip") and not _ip(value.get("source_ip")):
        event_rest["source_ip"] = value.get("source_ip")
    if event_rest:
        unmapped["event"] = event_rest

    risk_int = round(float(risk)) if isinstance(risk, int | float) else None
    payload: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "time": time_ms if time_ms is not None else 0,
        "severity_id": sev_id,
        "severity": _SEVERITY_NAME[sev_id],
        "status_id": status_id,
        "status": status,
        "status_detail": str(value.get("decision")) if value.get("decision") else None,
        "message": f"{value.get('agent_id')} {kind} {tool}",
        "metadata": _metadata(
            value.get("event_id"),
            meta.get("pipeline_version"),
            correlation_uid=str(value["session_id"]) if value.get("session_id") else None,
            original_time=value.get("ts") if isinstance(value.get("ts"), str) else None,
            processed_time=to_ms(meta.get("processed_at")),
            log_provider=str(value.get("enforcement_point"))
            if value.get("enforcement_point")
            else None,
            tenant_uid=str(value["tenant"]) if value.get("tenant") else None,
            labels=[f"environment:{env}"] if env else None,
        ),
        "actor": _actor(value),
        "device": _device(value.get("enforcement_point")),
        "observables": _observables(value, kind, action),
        "enrichments": enrichments,
        "unmapped": unmapped,
        # security_control profile: what the enforcement point decided, risk and ATT&CK
        "risk_score": risk_int,
        "risk_level_id": _risk_level(risk_int),
        "risk_level": _RISK_LEVEL_NAME.get(_risk_level(risk_int)),  # type: ignore[arg-type]
        "risk_details": _factors_text(meta.get("risk_factors")),
        "attacks": _attacks(findings) or None,
    }
    control = _CONTROL.get(str(value.get("decision")))
    if control is not None:
        (
            payload["action_id"],
            payload["action"],
            payload["disposition_id"],
            payload["disposition"],
        ) = control
    src_endpoint: dict[str, Any] = {"name": str(value.get("agent_id") or "unknown")}
    ip = _ip(value.get("source_ip"))
    if ip:
        src_endpoint["ip"] = ip

    if class_uid == 1007:  # Process Activity: the agent ran a command line
        activity_id, activity = 1, "Launch"
        # one action = one process launch; OCSF wants pid/uid/cpid and the event id is its uid
        payload["process"] = {
            "name": tool,
            "uid": str(value.get("event_id") or ""),
            "cmd_line": str(command) if command is not None else None,
        }
    elif class_uid == 1001:  # File System Activity
        activity_id, activity = _activity(_FILE_ACTIVITY, _words(tool, command))
        path = str(target) if target else None
        payload["file"] = {
            "name": (posixpath.basename(path) or path) if path else tool,
            "path": path,
            "type_id": 0,
        }
    elif class_uid == 6005:  # Datastore Activity: a SQL statement
        activity_id, activity = _activity(_SQL_ACTIVITY, _words(command)[:1])
        payload["src_endpoint"] = src_endpoint
        payload["database"] = {"name": tool, "type_id": 0}
        payload["type_id"], payload["type"] = (3, "Table") if target else (1, "Database")
        if target:
            payload["table"] = {"name": str(target)}
        if command is not None:
            payload["query_info"] = {
                "query_string": str(command),
                "uid": str(value.get("event_id") or ""),
            }
    else:  # API Activity: a tool call or an HTTP request
        payload["src_endpoint"] = src_endpoint
        api: dict[str, Any] = {
            "operation": tool,
            "request": {"uid": str(value.get("event_id") or "")},
        }
        if isinstance(action.get("args"), Mapping):
            api["request"]["data"] = action["args"]
        if kind == "http":
            method = str(command or "").split(" ", 1)[0].upper()
            activity_id, activity = _activity(_API_ACTIVITY, [method.lower()])
            if method in _HTTP_METHODS:
                api["operation"] = method
                if method in _OCSF_HTTP_METHODS:  # OCSF 1.5.0's enum has no PATCH
                    payload.setdefault("http_request", {})["http_method"] = method
            if isinstance(target, str) and target:
                parts = urlsplit(target)
                url = {
                    "url_string": target,
                    "scheme": parts.scheme or None,
                    "path": parts.path or None,
                }
                if parts.hostname:
                    url["hostname"] = parts.hostname
                    payload["dst_endpoint"] = {"hostname": parts.hostname}
                payload.setdefault("http_request", {})["url"] = url
            api["service"] = {"name": tool}
        else:
            activity_id, activity = _activity(_API_ACTIVITY, _words(tool))
            api["service"] = {"name": tool}
            if target:
                payload["resources"] = [{"name": str(target), "type": "tool target"}]
        payload["api"] = api

    payload["activity_id"] = activity_id
    payload["activity_name"] = activity
    payload["type_uid"] = class_uid * 100 + activity_id
    payload["type_name"] = f"{class_name}: {activity}"
    return _build(payload)


def _alert_model(value: Mapping[str, Any]) -> Any:
    rule = alert_rule(value)
    severity = record_severity("alerts", value)
    sev_id = SEVERITY_ID[severity]
    count = value.get("count") if isinstance(value.get("count"), int) else None
    version = value.get("version") if isinstance(value.get("version"), int) else None
    if value.get("status") == "closed":
        activity_id, activity = 3, "Close"  # the grouping window ended: final version
    elif (version or 1) > 1 or (version is None and (count or 0) > 1):
        activity_id, activity = 2, "Update"
    else:
        activity_id, activity = 1, "Create"
    first = to_ms(value.get("first_seen"))
    last = to_ms(value.get("last_seen"))
    created = to_ms(value.get("created_at"))
    time_ms = last if last is not None else (created if created is not None else first)
    detector = str(value.get("detector") or "")
    risk, _ = alert_risk(value)
    risk_int = round(risk) if risk is not None else None
    factors = alert_factors(value)
    event_ids = [str(e) for e in value.get("event_ids") or () if e is not None]
    title = str(value.get("title") or value.get("reason") or rule)

    finding_info: dict[str, Any] = {
        "uid": str(value.get("alert_id") or ""),
        "title": title,
        "desc": str(value.get("reason")) if value.get("reason") else None,
        "types": [detector] if detector else None,
        "analytic": {
            "uid": rule,
            "name": rule,
            "type_id": 2 if detector.startswith("baseline") else 1,
            "type": "Behavioral" if detector.startswith("baseline") else "Rule",
        },
        "attacks": _attacks([value]) or None,
        "first_seen_time": first,
        "last_seen_time": last,
        "created_time": created,
        "data_sources": ["agent.actions"],
        "related_events": [
            {"uid": e, "type": "agent action"} for e in event_ids[:_MAX_RELATED_EVENTS]
        ]
        or None,
        "related_events_count": len(event_ids) if event_ids else None,
    }
    rest = {
        k: v
        for k, v in value.items()
        if k
        not in {
            "alert_id",
            "severity",
            "agent_id",
            "owner",
            "enforcement_point",
            "count",
            "first_seen",
            "last_seen",
            "title",
            "reason",
        }
    }
    payload: dict[str, Any] = {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": 2004 * 100 + activity_id,
        "type_name": f"Detection Finding: {activity}",
        "time": time_ms if time_ms is not None else 0,
        "start_time": first,
        "end_time": last,
        "count": count,
        "severity_id": sev_id,
        "severity": _SEVERITY_NAME[sev_id],
        "status_id": 1,
        "status": "New",
        "is_alert": True,
        "message": title,
        "risk_score": risk_int,
        "risk_level_id": _risk_level(risk_int),
        "risk_level": _RISK_LEVEL_NAME.get(_risk_level(risk_int)),  # type: ignore[arg-type]
        "risk_details": _factors_text(factors),
        "metadata": _metadata(
            value.get("alert_id"),
            value.get("pipeline_version"),
            log_provider=str(value.get("enforcement_point"))
            if value.get("enforcement_point")
            else None,
        ),
        "finding_info": finding_info,
        "device": _device(value.get("enforcement_point")),
        "actor": _actor(value),
        "evidences": [{"actor": _actor(value)}],
        "observables": _observables(value, None, {}),
        "unmapped": {"alert": rest} if rest else None,
    }
    return _build(payload)


def _factors_text(factors: Any) -> str | None:
    parts = [
        f"{f.get('source', '')}:{f.get('id', '')} +{f.get('contribution', '')} ({f.get('reason', '')})"
        for f in factors or ()
        if isinstance(f, Mapping)
    ]
    return "; ".join(parts) or None


_RISK_LEVEL_NAME = {0: "Info", 1: "Low", 2: "Medium", 3: "High", 4: "Critical"}


def _risk_level(score: int | None) -> int | None:
    if score is None:
        return None
    return 0 if score < 20 else 1 if score < 40 else 2 if score < 60 else 3 if score < 80 else 4


def encode_enriched(value: Mapping[str, Any]) -> bytes:
    return _dump_bytes(_enriched_model(value))


def encode_alert(value: Mapping[str, Any]) -> bytes:
    return _dump_bytes(_alert_model(value))
