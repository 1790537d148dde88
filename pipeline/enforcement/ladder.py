"""The isolation ladder: rungs, their triggers, and the command documents (pure logic).

Rungs, mildest first — what an enforcement point does on each:

=====================  =======================================================================
``require_approval``   hold every action of the agent until a human approves it
``step_down``          read-only: only actions the policy marks read-only pass
``revoke_tokens``      revoke the agent's delegated tokens/credentials; deny actions needing them
``isolate``            block every action of the agent
``release``            undo all of the above (issued only on a named human's request)
=====================  =======================================================================

A rung fires when any condition of its :class:`~pipeline.settings.RungTrigger` holds; the target is
the highest firing rung. Climbing is automatic and may skip rungs; coming down happens only by a
release from a named human or by the command's expiry.

Rule patterns: ``detector:id`` (exact), ``id`` (exact, any detector) or a pattern ending in ``*``
(prefix of ``detector:id`` or of ``id``). Plain prefix checks, no regular expressions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from detectors.events import Finding, Severity
from pipeline.records import deterministic_id, iso_time

__all__ = [
    "RELEASE",
    "RUNGS",
    "build_command",
    "matches_agent",
    "matches_rule",
    "rung_index",
    "target_rung",
]

RUNGS: tuple[str, ...] = ("require_approval", "step_down", "revoke_tokens", "isolate")
RELEASE = "release"
SCHEMA_VERSION = "1"


def rung_index(rung: str | None) -> int:
    """0 for no rung, 1..4 for the rungs mildest first.

    >>> rung_index(None), rung_index("require_approval"), rung_index("isolate")
    (0, 1, 4)
    """
    if rung is None or rung == RELEASE:
        return 0
    return RUNGS.index(rung) + 1


def matches_rule(pattern: str, finding: Finding) -> bool:
    """>>> from detectors.base import Finding, Severity
    >>> f = Finding("rules", "cred.aws_keys", Severity.HIGH, 80, "x")
    >>> [matches_rule(p, f) for p in ("rules:cred.aws_keys", "cred.aws_keys", "cred.*", "rules:*", "exfil.*")]
    [True, True, True, True, False]
    """
    full = f"{finding.detector}:{finding.id}"
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        return full.startswith(prefix) or finding.id.startswith(prefix)
    return pattern in (full, finding.id)


def matches_agent(patterns: Iterable[str], agent_id: str) -> bool:
    for p in patterns:
        if (p.endswith("*") and agent_id.startswith(p[:-1])) or p == agent_id:
            return True
    return False


#: severity names as settings spell them -> rank (``Severity.parse`` per event and rung was the
#: most frequent interpreted call on the response path)
_RANKS: dict[str, int] = {}


def _severity_rank(name: str) -> int:
    rank = _RANKS.get(name)
    if rank is None:
        rank = int(Severity.parse(name))
        if len(_RANKS) < 64:  # names come from settings: a handful
            _RANKS[name] = rank
    return rank


def target_rung(
    triggers: Mapping[str, Any], *, agent_risk: int, event_score: int, findings: list[Finding],
    above: str | None = None,
) -> tuple[str | None, str]:
    """The highest rung whose trigger fires, and a one-line why (``(None, "")`` if none).

    With ``above`` (the rung in force), only a higher rung counts: the search stops there. An
    agent under a rung sends most of its events with its risk still over that rung's trigger,
    and each would otherwise have its why written out and thrown away.

    >>> from types import SimpleNamespace as T
    >>> trig = T(min_agent_risk=60, min_event_score=None, min_severity=None, rules=())
    >>> target_rung({"require_approval": trig}, agent_risk=70, event_score=0, findings=[])
    ('require_approval', 'agent risk 70 >= 60')
    >>> target_rung({"require_approval": trig}, agent_risk=70, event_score=0, findings=[], above="require_approval")
    (None, '')
    """
    top = max((int(f.severity) for f in findings), default=-1)
    floor = rung_index(above)
    for i in range(len(RUNGS) - 1, floor - 1, -1):
        rung = RUNGS[i]
        trig = triggers.get(rung)
        if trig is None:
            continue
        if trig.min_agent_risk is not None and agent_risk >= trig.min_agent_risk:
            return rung, f"agent risk {agent_risk} >= {trig.min_agent_risk}"
        if trig.min_event_score is not None and event_score >= trig.min_event_score:
            return rung, f"event score {event_score} >= {trig.min_event_score}"
        if trig.min_severity is not None and top >= _severity_rank(trig.min_severity):
            return rung, f"a {Severity(top).label} finding (>= {trig.min_severity})"
        for pattern in trig.rules:
            for f in findings:
                if matches_rule(pattern, f):
                    return rung, f"rule {f.detector}:{f.id} matches {pattern}"
    return None, ""


def build_command(
    *,
    agent_id: str,
    enforcement_point: str,
    action: str,
    sequence: int,
    issued_at: float,
    ttl_seconds: float | None,
    reason: str,
    factors: list[dict[str, Any]],
    incident_id: str | None,
    mode: str,
    previous: str | None,
    trigger_event_id: str | None = None,
    requested_by: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An unsigned command document (schemas/enforcement-command.schema.json).

    The id and nonce derive from the agent, its command sequence and the trigger, so a replay of
    the same input gives the same command while two commands never share a nonce.
    """
    command_id = deterministic_id("cmd_", agent_id, sequence, action, trigger_event_id or "", issued_at)
    cmd: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "command_id": command_id,
        "agent_id": agent_id,
        "enforcement_point": enforcement_point,
        "action": action,
        "mode": mode,
        "reason": reason[:1000],
        "factors": [
            {"source": str(f.get("source", "")), "id": str(f.get("id", "")),
             # no floats in signed documents (canonical JSON): the contribution as decimal text
             "contribution": f"{float(f.get('contribution', 0)):.2f}"}
            for f in factors[:5]
        ],
        "incident_id": incident_id,
        "issued_at": iso_time(issued_at),
        "expires_at": iso_time(issued_at + ttl_seconds) if ttl_seconds is not None else None,
        "ttl_seconds": round(ttl_seconds) if ttl_seconds is not None else None,
        "sequence": int(sequence),
        "nonce": deterministic_id("", command_id, "nonce"),
        "previous_action": previous,
        "issued_by": "agentwatch" if requested_by is None else str(requested_by.get("by", "")),
    }
    if trigger_event_id is not None:
        cmd["trigger_event_id"] = trigger_event_id
    if requested_by is not None:
        cmd["requested_by"] = {k: str(v) for k, v in requested_by.items()}
    return cmd
