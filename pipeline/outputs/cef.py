"""ArcSight Common Event Format (CEF:0) lines for syslog-based SIEMs.

``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|key=value key=value ...``

Escaping follows the CEF specification ("Implementing ArcSight CEF", rev. 25):

- header fields: ``\\`` -> ``\\\\`` and ``|`` -> ``\\|``; a header cannot hold a line break, so
  CR/LF become spaces;
- extension values: ``\\`` -> ``\\\\``, ``=`` -> ``\\=``, LF -> ``\\n``, CR -> ``\\r``;
- any other character that a line-oriented reader could take as a line or record break (other
  C0 controls, DEL, NEL, U+2028/U+2029) becomes U+FFFD in both places, so one record is always
  exactly one line whatever an attacker puts in a command.

Extension keys are CEF's own dictionary keys (``suser``, ``dvchost``, ``cs1``/``cs1Label`` ...)
so ArcSight, QRadar, Sentinel and Splunk's CEF add-ons map them without custom parsing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from detectors.base import Severity
from pipeline.outputs.common import (
    PRODUCT,
    VENDOR,
    agentwatch_meta,
    alert_factors,
    alert_risk,
    alert_rule,
    attack_tags,
    record_severity,
    to_ms,
    top_finding,
)

__all__ = ["CEF_SEVERITY", "encode_alert", "encode_enriched", "escape_extension", "escape_header"]

#: agentwatch severity -> CEF 0-10 (CEF bands: 0-3 low, 4-6 medium, 7-8 high, 9-10 very high)
CEF_SEVERITY = {
    Severity.INFO: 1,
    Severity.LOW: 3,
    Severity.MEDIUM: 5,
    Severity.HIGH: 8,
    Severity.CRITICAL: 10,
}

# C0 controls except TAB, LF, CR (handled separately), DEL, C1 NEL, line/paragraph separators
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029]")
_HEADER_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "\n": " ", "\r": " "})
_EXT_ESCAPES = str.maketrans({"\\": "\\\\", "=": "\\=", "\n": "\\n", "\r": "\\r"})
#: longest extension value we write; CEF receivers truncate anyway, we do it visibly
MAX_VALUE_CHARS = 4000


# fast path: most values need no escaping at all, and one regex search is cheaper than translate
_HEADER_SPECIAL = re.compile("[\\\\|\n\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029]")
_EXT_SPECIAL = re.compile("[\\\\=\n\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029]")


def escape_header(text: Any) -> str:
    s = str(text)
    if _HEADER_SPECIAL.search(s) is None:
        return s
    return _UNSAFE.sub("\ufffd", s).translate(_HEADER_ESCAPES)


def escape_extension(text: Any) -> str:
    s = str(text)
    if len(s) > MAX_VALUE_CHARS:
        s = s[: MAX_VALUE_CHARS - 1] + "…"
    if _EXT_SPECIAL.search(s) is None:
        return s
    return _UNSAFE.sub("\ufffd", s).translate(_EXT_ESCAPES)


def _line(
    signature: str, name: str, severity: Severity, version: str, ext: list[tuple[str, Any]]
) -> bytes:
    header = "|".join(
        (
            "CEF:0",
            escape_header(VENDOR),
            escape_header(PRODUCT),
            escape_header(version or "unknown"),
            escape_header(signature),
            escape_header(name),
            str(CEF_SEVERITY[severity]),
        )
    )
    body = " ".join(f"{k}={escape_extension(v)}" for k, v in ext if v is not None and v != "")
    return (header + "|" + body).encode("utf-8", "replace")


def _common(value: Mapping[str, Any], ext: list[tuple[str, Any]]) -> None:
    """Attribution shared by both kinds: owner as user, agent as actor, enforcement point as device."""
    ext += [
        ("suser", value.get("owner")),
        ("cs1Label", "agentId"),
        ("cs1", value.get("agent_id")),
        ("dvchost", value.get("enforcement_point")),
        ("deviceExternalId", value.get("enforcement_point")),
    ]


def _attack(items: Any, ext: list[tuple[str, Any]]) -> None:
    tags = attack_tags(items or ())
    techniques = ",".join(t for t, _ in tags if t)
    tactics = ",".join(dict.fromkeys(a for _, a in tags if a))
    if techniques:
        ext += [("cs4Label", "attackTechniques"), ("cs4", techniques)]
    if tactics:
        ext += [("cs5Label", "attackTactics"), ("cs5", tactics)]


def _factors(factors: Any) -> str:
    parts = []
    for f in factors or ():
        if isinstance(f, Mapping):
            parts.append(f"{f.get('source', '')}:{f.get('id', '')}={f.get('contribution', '')}")
    return "; ".join(parts)


def encode_enriched(value: Mapping[str, Any]) -> bytes:
    meta = agentwatch_meta(value)
    raw_action = value.get("action")
    action: Mapping[str, Any] = raw_action if isinstance(raw_action, Mapping) else {}
    findings = meta.get("findings") or []
    top = top_finding(findings)
    kind = str(action.get("kind", "unknown"))
    tool = str(action.get("tool", ""))
    if top is not None:
        signature = str(top.get("id", "finding"))
        name = str(top.get("reason", signature))
    else:
        signature = f"agent-action.{kind}"
        name = f"agent {kind} action: {tool}"
    ext: list[tuple[str, Any]] = [
        ("rt", to_ms(value.get("ts"))),
        ("externalId", value.get("event_id")),
    ]
    _common(value, ext)
    ext += [
        ("cat", kind),
        ("act", value.get("decision")),
        ("app", tool),
        ("msg", action.get("command")),
        ("src", value.get("source_ip")),
        ("out", action.get("bytes_out") if isinstance(action.get("bytes_out"), int) else None),
        ("cs2Label", "sessionId"),
        ("cs2", value.get("session_id")),
        ("cs6Label", "environment"),
        ("cs6", value.get("environment")),
        ("cn1Label", "riskScore"),
        ("cn1", meta.get("risk_score")),
        ("cn2Label", "agentRisk"),
        ("cn2", meta.get("agent_risk")),
    ]
    target = action.get("target")
    if target:
        if kind == "file":
            ext.append(("filePath", target))
        elif kind == "http":
            ext.append(("request", target))
        else:
            ext.append(("destinationServiceName", target))
    factors = _factors(meta.get("risk_factors"))
    if factors:
        ext += [("cs3Label", "riskFactors"), ("cs3", factors)]
    _attack(findings, ext)
    return _line(
        signature,
        name,
        record_severity("enriched", value),
        str(meta.get("pipeline_version", "")),
        ext,
    )


def encode_alert(value: Mapping[str, Any]) -> bytes:
    rule = alert_rule(value)
    name = str(value.get("title") or value.get("reason") or rule)
    ext: list[tuple[str, Any]] = [
        ("rt", to_ms(value.get("last_seen") or value.get("created_at"))),
        ("externalId", value.get("alert_id")),
    ]
    _common(value, ext)
    ids = value.get("event_ids")
    ext += [
        ("cat", "agentwatch.alert"),
        ("msg", value.get("reason")),
        ("cnt", value.get("count")),
        ("start", to_ms(value.get("first_seen"))),
        ("end", to_ms(value.get("last_seen"))),
        ("cn1Label", "riskScore"),
        ("cn1", alert_risk(value)[0]),
        ("cn2Label", "agentRisk"),
        ("cn2", alert_risk(value)[1]),
        ("cs2Label", "eventIds"),
        ("cs2", ",".join(str(i) for i in ids[:50]) if isinstance(ids, list) else None),
        ("cs6Label", "detector"),
        ("cs6", value.get("detector")),
    ]
    factors = _factors(alert_factors(value))
    if factors:
        ext += [("cs3Label", "riskFactors"), ("cs3", factors)]
    _attack([value], ext)
    return _line(
        rule, name, record_severity("alerts", value), str(value.get("pipeline_version", "")), ext
    )
