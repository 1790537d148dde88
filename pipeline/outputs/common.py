"""Helpers every output format shares: record severity, times, ATT&CK tags, attribution.

Every format reads the same two record shapes (see ``docs/integrations.md``):

- an *enriched* record: the agent-action event exactly as published (unknown extra fields
  included) plus an ``agentwatch`` object with ``record_id``, ``risk_score``, ``agent_risk``,
  ``risk_factors``, ``findings``, ``processed_at`` and ``pipeline_version``;
- an *alert* record (``schemas/alert.schema.json``).

Pure functions: no I/O and no wall clock, so encoding the same record twice gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from detectors.base import Severity

__all__ = [
    "PRODUCT",
    "VENDOR",
    "agentwatch_meta",
    "alert_factors",
    "alert_risk",
    "alert_rule",
    "attack_tags",
    "attack_url",
    "record_severity",
    "to_ms",
    "top_finding",
]

PRODUCT = "agentwatch"
VENDOR = "agentwatch"

_SEVERITY_BY_LABEL = {s.label: s for s in Severity}


def _severity(value: Any) -> Severity:
    if isinstance(value, str):
        sev = _SEVERITY_BY_LABEL.get(value.strip().lower())
        if sev is not None:
            return sev
    try:
        return Severity.parse(value)
    except (ValueError, TypeError):
        return Severity.INFO


def agentwatch_meta(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``agentwatch`` block of an enriched record (empty mapping when absent)."""
    meta = value.get("agentwatch")
    return meta if isinstance(meta, Mapping) else {}


def record_severity(kind: str, value: Mapping[str, Any]) -> Severity:
    """The severity a destination's ``min_severity`` is compared with.

    An alert has its own ``severity``. An enriched record is as severe as its most severe
    finding, and ``info`` when nothing was found (every action is still worth archiving).
    Records of other kinds (enforcement commands, incidents) carry a ``severity`` when they
    have one and are ``info`` otherwise.
    """
    if kind == "enriched":
        best = Severity.INFO
        for f in agentwatch_meta(value).get("findings") or ():
            if isinstance(f, Mapping):
                sev = _severity(f.get("severity"))
                if sev > best:
                    best = sev
        return best
    return _severity(value.get("severity"))


def to_ms(ts: Any) -> int | None:
    """RFC 3339 text (or epoch seconds) to integer epoch milliseconds; None if unusable."""
    if ts is None or isinstance(ts, bool):
        return None
    if isinstance(ts, int | float):
        return round(float(ts) * 1000)
    if not isinstance(ts, str):
        return None
    text = ts.strip()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:  # the contract says RFC 3339 (always zoned); treat naive as UTC
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000)


def top_finding(findings: Iterable[Any]) -> Mapping[str, Any] | None:
    """The finding an analyst reads first: highest severity, then score, then first seen."""
    best: Mapping[str, Any] | None = None
    best_key: tuple[int, float] = (-1, -1.0)
    for f in findings:
        if not isinstance(f, Mapping):
            continue
        score = f.get("score")
        key = (
            int(_severity(f.get("severity"))),
            float(score) if isinstance(score, int | float) else 0.0,
        )
        if key > best_key:
            best, best_key = f, key
    return best


def attack_tags(items: Iterable[Any]) -> list[tuple[str | None, str | None]]:
    """Distinct (technique, tactic) pairs of findings or alerts, in first-seen order.

    A finding has one ``technique``/``tactic``; an alert has ``techniques``/``tactics`` lists
    (paired when the alert has exactly one tactic, listed separately otherwise).
    """
    seen: dict[tuple[str | None, str | None], None] = {}
    for f in items:
        if not isinstance(f, Mapping):
            continue
        tech = f.get("technique") or None
        tac = f.get("tactic") or None
        if tech is not None or tac is not None:
            seen.setdefault((str(tech) if tech else None, str(tac) if tac else None), None)
        techs = [str(t) for t in f.get("techniques") or () if t]
        tacs = [str(t) for t in f.get("tactics") or () if t]
        if len(tacs) == 1 and techs:
            for t in techs:
                seen.setdefault((t, tacs[0]), None)
        else:
            for t in techs:
                seen.setdefault((t, None), None)
            for t in tacs:
                seen.setdefault((None, t), None)
    return list(seen)


def attack_url(attack_id: str) -> str | None:
    """MITRE ATT&CK page of a technique (``T1059.004``) or tactic (``TA0040``) id."""
    if attack_id.startswith("TA") and attack_id[2:].isdigit():
        return f"https://attack.mitre.org/tactics/{attack_id}/"
    if attack_id.startswith("T"):
        base, _, sub = attack_id[1:].partition(".")
        if base.isdigit() and (not sub or sub.isdigit()):
            path = f"T{base}/{sub}" if sub else f"T{base}"
            return f"https://attack.mitre.org/techniques/{path}/"
    return None


def alert_rule(alert: Mapping[str, Any]) -> str:
    """The rule (or detector check) that raised an alert."""
    for key in ("rule", "rule_id", "detector_id", "detector"):
        v = alert.get(key)
        if v:
            return str(v)
    return "agentwatch.alert"


def alert_factors(alert: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """An alert's top risk factors (``{source, id, contribution, reason}``)."""
    risk = alert.get("risk")
    candidates = [risk.get("factors")] if isinstance(risk, Mapping) else []
    candidates += [alert.get(k) for k in ("top_factors", "risk_factors", "factors")]
    for v in candidates:
        if isinstance(v, list):
            return [f for f in v if isinstance(f, Mapping)]
    return []


def alert_risk(alert: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(risk score of the alert's evidence, the agent's accumulated risk), 0-100 each."""
    risk = alert.get("risk")
    if isinstance(risk, Mapping):
        score, agent = risk.get("score"), risk.get("agent_risk")
    else:
        score, agent = alert.get("risk_score"), alert.get("agent_risk")
    ok = (int, float)
    return (
        float(score) if isinstance(score, ok) and not isinstance(score, bool) else None,
        float(agent) if isinstance(agent, ok) and not isinstance(agent, bool) else None,
    )
