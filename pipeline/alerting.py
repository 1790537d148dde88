"""Alerts for SOC analysts: grouping, suppressions and a per-agent rate limit (pure logic).

Contract: :class:`Alerter` turns findings and risk into alert documents
(``schemas/alert.schema.json``). It keeps no per-agent state itself: the caller (the
:class:`~pipeline.response.Responder`) owns each agent's state dict and passes it in, so the
alert state checkpoints together with the ladder state. Fleet-wide suppressions live here.

- **When**: a finding at or above ``alerts.min_severity`` alerts on its own (kind ``detection``);
  lower findings only add risk, and an agent whose accumulated risk reaches
  ``risk.alert_threshold`` gets one ``risk`` alert (risk-based alerting). The responder adds
  kinds about the control loop (``ack_timeout``, ``enforcement_rejected``,
  ``isolation_ineffective``, ``enforcement_withheld``) and ``suppression`` audit records.
- **Grouping**: findings of one agent and one rule (``alerts.group_by``) within
  ``group_window_seconds`` of event time from the group's first finding are one alert, with the
  count, first/last seen and up to ``max_event_ids`` evidence event ids. The alert id is
  ``deterministic_id("alr_", agent_id, group_key, window_start)``.
- **Versions**: an alert is emitted when it opens (``version`` 1) and re-emitted as it grows, at
  most once per ``update_interval_seconds`` unless its severity rises; :meth:`Alerter.tick` emits
  pending updates and the final (``status: closed``) version when the window ends. Consumers keep
  the highest version per ``alert_id``.
- **Suppressions** (scope ``agent``, ``rule`` or ``pattern``; author, reason, expiry): a
  suppressed finding raises no alert. Control-loop alerts are never suppressed.
- **Rate limit**: new alerts per agent pass a token bucket (``rate_limit_per_minute``,
  ``rate_limit_burst``) in event time; beyond it they fold into one ``rate_limited`` alert per
  window that counts what was held back. Control-loop alerts bypass it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar

import re2

from detectors.events import Event, Finding, Severity, Value
from pipeline.enforcement.ladder import matches_rule
from pipeline.records import deterministic_id, iso_time
from pipeline.risk import RiskAssessment, level_for
from pipeline.settings import AlertSettings, RiskSettings

__all__ = ["SYSTEM_KINDS", "AlertContext", "Alerter", "Suppression", "SuppressionError"]

SCHEMA_VERSION = "1"
#: alert kinds about the pipeline's own control loop: never suppressed or rate limited
SYSTEM_KINDS = frozenset(
    {"ack_timeout", "enforcement_rejected", "isolation_ineffective", "enforcement_withheld", "suppression"}
)
_RATE_KEY = "ratelimit"
_RANK = {s.label: int(s) for s in Severity}
_RISK_KEY = "risk:agent_risk"


class SuppressionError(ValueError):
    """A suppression cannot be used (bad scope, pattern or expiry)."""


class AlertContext(Value):
    """What every alert names about its agent.

    Not a dataclass (nor is :class:`Suppression`): the responder makes one for every event of an
    agent it holds state about, and in the compiled build a dataclass's ``__init__`` stays an
    interpreted function (:class:`~detectors.events.Value` says more)."""

    __slots__ = ("agent_id", "agent_role", "enforcement_point", "environment", "incident_id", "maturity", "owner")
    _NAMES: ClassVar[tuple[str, ...]] = ("agent_id", "owner", "enforcement_point", "environment", "agent_role",
                                         "incident_id", "maturity")

    def __init__(self, agent_id: str, owner: str | None = None, enforcement_point: str | None = None,
                 environment: str | None = None, agent_role: str | None = None, incident_id: str | None = None,
                 maturity: dict[str, Any] | None = None) -> None:
        self.agent_id = agent_id
        self.owner = owner
        self.enforcement_point = enforcement_point
        self.environment = environment
        self.agent_role = agent_role
        self.incident_id = incident_id
        self.maturity = maturity


_pattern_cache: OrderedDict[str, Any] = OrderedDict()


def _compile(pattern: str) -> Any:
    compiled = _pattern_cache.get(pattern)
    if compiled is None:
        try:
            compiled = re2.compile(pattern)
        except re2.error as exc:
            raise SuppressionError(f"pattern {pattern[:80]!r} is not a valid RE2 expression: {exc}") from None
        _pattern_cache[pattern] = compiled
        if len(_pattern_cache) > 4096:
            _pattern_cache.popitem(last=False)
    else:
        _pattern_cache.move_to_end(pattern)
    return compiled


class Suppression(Value):
    """An analyst's decision that matching findings raise no alert until ``expires_at``.

    ``scope`` ``agent``: everything of ``agent_id``; ``rule``: findings matching ``rule`` (same
    patterns as the ladder: ``detector:id``, ``id`` or ``prefix*``), of ``agent_id`` if given;
    ``pattern``: events whose ``action[field]`` matches the RE2 ``pattern`` (search), narrowed by
    ``agent_id`` and ``rule`` when given. ``agent_id`` None means fleet-wide.
    """

    __slots__ = ("_compiled", "agent_id", "author", "control_id", "created_at", "expires_at", "field", "pattern",
                 "reason", "rule", "scope", "suppression_id")
    _NAMES: ClassVar[tuple[str, ...]] = ("suppression_id", "scope", "author", "reason", "created_at", "expires_at",
                                         "agent_id", "rule", "pattern", "field", "control_id")

    def __init__(self, suppression_id: str, scope: str, author: str, reason: str, created_at: float,
                 expires_at: float, agent_id: str | None = None, rule: str | None = None,
                 pattern: str | None = None, field: str = "command", control_id: str | None = None) -> None:
        self.suppression_id = suppression_id
        self.scope = scope
        self.author = author
        self.reason = reason
        self.created_at = created_at
        self.expires_at = expires_at
        self.agent_id = agent_id
        self.rule = rule
        self.pattern = pattern
        self.field = field
        self.control_id = control_id
        self._compiled: Any = None
        self._check()

    def _check(self) -> None:
        if self.scope not in ("agent", "rule", "pattern"):
            raise SuppressionError(f"unknown suppression scope {self.scope!r}; expected agent, rule or pattern")
        if not self.author.strip():
            raise SuppressionError("a suppression needs a named author")
        if self.scope == "agent" and not self.agent_id:
            raise SuppressionError("an agent suppression needs agent_id")
        if self.scope == "rule" and not self.rule:
            raise SuppressionError("a rule suppression needs rule")
        if self.scope == "pattern":
            if not self.pattern:
                raise SuppressionError("a pattern suppression needs pattern")
            self._compiled = _compile(self.pattern)
        if self.field not in ("command", "target", "tool"):
            raise SuppressionError(f"pattern field must be command, target or tool, not {self.field!r}")

    def active(self, now: float) -> bool:
        return now < self.expires_at

    def matches(self, event: Event, finding: Finding | None, rule_key: str | None = None) -> bool:
        """Whether this suppression covers ``finding`` (or, with None, the event's risk alert)."""
        if self.agent_id is not None and self.agent_id != event.agent_id:
            return False
        if self.scope == "agent":
            return True
        if self.rule is not None:
            if finding is not None:
                if not matches_rule(self.rule, finding):
                    return False
            elif not (rule_key and (self.rule == rule_key or (self.rule.endswith("*") and rule_key.startswith(self.rule[:-1])))):
                return False
        if self.scope == "pattern":
            value = event.action.get(self.field) if isinstance(event.data.get("action"), dict) else None
            return isinstance(value, str) and self._compiled.search(value) is not None
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "suppression_id": self.suppression_id, "scope": self.scope, "agent_id": self.agent_id,
            "rule": self.rule, "pattern": self.pattern, "field": self.field, "author": self.author,
            "reason": self.reason, "created_at": self.created_at, "expires_at": self.expires_at,
            "control_id": self.control_id,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Suppression:
        return cls(
            suppression_id=str(d["suppression_id"]), scope=str(d["scope"]), author=str(d["author"]),
            reason=str(d.get("reason", "")), created_at=float(d["created_at"]),
            expires_at=float(d["expires_at"]), agent_id=d.get("agent_id"), rule=d.get("rule"),
            pattern=d.get("pattern"), field=str(d.get("field") or "command"), control_id=d.get("control_id"),
        )


def add_bounded(items: list[Suppression], new: Suppression, cap: int) -> list[Suppression]:
    """Replace a suppression with the same id, else append; beyond ``cap`` drop the earliest expiring."""
    out = [s for s in items if s.suppression_id != new.suppression_id]
    out.append(new)
    if len(out) > cap:
        out.sort(key=lambda s: (s.expires_at, s.suppression_id))
        out = out[len(out) - cap:]
    return out


class Alerter:
    """Alert policy over per-agent state dicts owned by the caller; fleet suppressions here."""

    def __init__(self, settings: AlertSettings, risk: RiskSettings) -> None:
        self.settings = settings
        self.risk = risk
        self.min_severity = Severity.parse(settings.min_severity)
        self.fleet_suppressions: list[Suppression] = []
        self._agent_supp_cache: dict[int, list[Suppression]] = {}
        self.stats: dict[str, int] = {"suppressed": 0, "rate_limited": 0}

    # -- suppressions ------------------------------------------------------------------------

    def add_suppression(self, st: dict[str, Any] | None, sup: Suppression) -> None:
        """Fleet-wide when ``sup.agent_id`` is None (st ignored), else into the agent's state."""
        if sup.agent_id is None:
            self.fleet_suppressions = add_bounded(self.fleet_suppressions, sup, self.settings.max_suppressions)
            return
        assert st is not None
        current = [Suppression.from_dict(d) for d in st.get("suppressions", [])]
        st["suppressions"] = [s.to_dict() for s in add_bounded(current, sup, self.settings.max_suppressions)]

    def _agent_suppressions(self, st: dict[str, Any], now: float) -> list[Suppression]:
        raw = st.get("suppressions")
        if not raw:
            return []
        live = [d for d in raw if float(d["expires_at"]) > now]
        if len(live) != len(raw):
            st["suppressions"] = live
        return [Suppression.from_dict(d) for d in live]

    def suppressed(self, st: dict[str, Any], event: Event, finding: Finding | None,
                   rule_key: str | None = None) -> Suppression | None:
        now = float(event.ts)
        self.fleet_suppressions = [s for s in self.fleet_suppressions if s.active(now)]
        for sup in (*self.fleet_suppressions, *self._agent_suppressions(st, now)):
            if sup.matches(event, finding, rule_key):
                return sup
        return None

    def unsuppressed(self, st: dict[str, Any], event: Event, findings: list[Finding]) -> list[Finding]:
        if not findings or (not self.fleet_suppressions and not st.get("suppressions")):
            return findings
        return [f for f in findings if self.suppressed(st, event, f) is None]

    # -- alerts from events ------------------------------------------------------------------

    def on_event(self, st: dict[str, Any], ctx: AlertContext, event: Event, findings: list[Finding],
                 ra: RiskAssessment) -> list[dict[str, Any]]:
        """Alerts to emit now for this event (findings already filtered by suppressions)."""
        ts = float(event.ts)
        out: list[dict[str, Any]] = []
        out += self._close_expired(st, ctx, ts)
        by_group: dict[str, list[Finding]] = {}
        for f in findings:
            if f.severity >= self.min_severity:
                key = f"{f.detector}:{f.id}" if self.settings.group_by == "rule" else f.detector
                by_group.setdefault(key, []).append(f)
        for key in sorted(by_group):
            group_findings = by_group[key]
            top = max(group_findings, key=lambda f: (int(f.severity), f.score))
            out += self._add(st, ctx, key=key, kind="detection", ts=ts, event=event,
                             severity=top.severity.label, detector=top.detector,
                             rule_id=top.id if self.settings.group_by == "rule" else "*",
                             title=f"{top.detector}:{top.id} on {ctx.agent_id}", reason=top.reason,
                             ra=ra, factors=ra.factors, findings=group_findings)
        # only scored events join the risk alert: its evidence is what added to the risk; and it
        # is raised only when some contributing factor has no detection alert of its own (else
        # the analyst would get the same story twice)
        if ra.agent_risk >= self.risk.alert_threshold and ra.score > 0 and self._risk_adds_news(st, ra):
            if self.suppressed(st, event, None, _RISK_KEY) is None:
                severity = level_for(ra.agent_risk, self.risk.levels)
                out += self._add(st, ctx, key=_RISK_KEY, kind="risk", ts=ts, event=event,
                                 severity=severity, detector="risk", rule_id="agent_risk",
                                 title=f"accumulated risk {ra.agent_risk} on {ctx.agent_id}",
                                 reason=_risk_reason(ra), ra=ra, factors=ra.agent_factors, findings=[])
            else:
                self.stats["suppressed"] += 1
        return out

    def _risk_adds_news(self, st: dict[str, Any], ra: RiskAssessment) -> bool:
        groups = st.get("groups") or {}
        if _RISK_KEY in groups:
            return True
        for f in ra.agent_factors:
            key = f"{f['source']}:{f['id']}" if self.settings.group_by == "rule" else f["source"]
            if key not in groups:
                return True
        return False

    def system_alert(self, st: dict[str, Any], ctx: AlertContext, *, kind: str, ts: float, severity: str,
                     reason: str, event_ids: list[str] | tuple[str, ...] = (),
                     context: dict[str, Any] | None = None, group: str | None = None) -> list[dict[str, Any]]:
        """An alert about the control loop (never suppressed or rate limited)."""
        out = self._close_expired(st, ctx, ts)
        key = f"system:{group or kind}"
        out += self._add(st, ctx, key=key, kind=kind, ts=ts, event=None, event_ids=list(event_ids),
                         severity=severity, detector="agentwatch", rule_id=kind,
                         title=f"{kind.replace('_', ' ')} for {ctx.agent_id}", reason=reason,
                         ra=None, factors=[], findings=[], context=context)
        return out

    def audit_record(self, ctx: AlertContext, *, kind: str, ts: float, reason: str,
                     context: dict[str, Any], record_id: str) -> dict[str, Any]:
        """A one-off info alert recording an analyst action (e.g. a suppression); not grouped."""
        alert = self._new_alert(ctx, key=f"audit:{record_id}", kind=kind, ts=ts, severity="info",
                                detector="agentwatch", rule_id=kind, title=f"{kind} recorded for {ctx.agent_id}",
                                reason=reason)
        alert["alert_id"] = deterministic_id("alr_", ctx.agent_id, kind, record_id)
        alert["context"] = context
        alert["status"] = "closed"
        alert["version"] = 1
        return _public(alert)

    # -- group mechanics ---------------------------------------------------------------------

    def _new_alert(self, ctx: AlertContext, *, key: str, kind: str, ts: float, severity: str,
                   detector: str, rule_id: str, title: str, reason: str) -> dict[str, Any]:
        window = self.settings.group_window_seconds
        return {
            "schema_version": SCHEMA_VERSION,
            "alert_id": deterministic_id("alr_", ctx.agent_id, key, repr(ts)),
            "version": 0,
            "status": "open",
            "kind": kind,
            "severity": severity,
            "title": title[:300],
            "reason": reason[:1000],
            "agent_id": ctx.agent_id,
            "owner": ctx.owner,
            "enforcement_point": ctx.enforcement_point,
            "environment": ctx.environment,
            "agent_role": ctx.agent_role,
            "detector": detector,
            "rule_id": rule_id,
            "count": 0,
            "first_seen": iso_time(ts),
            "last_seen": iso_time(ts),
            "window_start": iso_time(ts),
            "window_end": iso_time(ts + window),
            "event_ids": [],
            "event_ids_truncated": False,
            "risk": {"score": 0, "agent_risk": 0, "factors": []},
            "baseline_maturity": ctx.maturity,
            "techniques": [],
            "tactics": [],
            "incident_id": ctx.incident_id,
            "created_at": iso_time(ts),
            "updated_at": iso_time(ts),
            "_key": key,
            "_start": ts,
            "_first": ts,
            "_last": ts,
            "_last_emit": None,
            "_dirty": False,
        }

    def _take_token(self, st: dict[str, Any], ts: float) -> bool:
        cap = float(self.settings.rate_limit_burst)
        tokens, last = st.get("bucket") or [cap, ts]
        tokens = min(cap, float(tokens) + max(0.0, ts - float(last)) * self.settings.rate_limit_per_minute / 60.0)
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        st["bucket"] = [tokens, max(ts, float(last))]
        return ok

    def _add(self, st: dict[str, Any], ctx: AlertContext, *, key: str, kind: str, ts: float,
             event: Event | None, severity: str, detector: str, rule_id: str, title: str, reason: str,
             ra: RiskAssessment | None, factors: list[dict[str, Any]], findings: list[Finding],
             event_ids: list[str] | None = None, context: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        groups: dict[str, dict[str, Any]] = st.setdefault("groups", {})
        out: list[dict[str, Any]] = []
        alert = groups.get(key)
        if alert is not None and ts >= alert["_start"] + self.settings.group_window_seconds:
            out += self._close(st, key)
            alert = None
        severity_rose = False
        if alert is None:
            if kind not in SYSTEM_KINDS and key != _RATE_KEY and not self._take_token(st, ts):
                self.stats["rate_limited"] += 1
                return out + self._add(
                    st, ctx, key=_RATE_KEY, kind="rate_limited", ts=ts, event=event, severity="low",
                    detector="agentwatch", rule_id="rate_limit",
                    title=f"alert rate limit reached for {ctx.agent_id}",
                    reason=f"more than {self.settings.rate_limit_per_minute:g} new alerts/min "
                           f"(burst {self.settings.rate_limit_burst}); further alerts are counted here",
                    ra=ra, factors=factors, findings=findings, event_ids=event_ids,
                    context={"held_back": [title[:200]]})
            alert = self._new_alert(ctx, key=key, kind=kind, ts=ts, severity=severity, detector=detector,
                                    rule_id=rule_id, title=title, reason=reason)
            groups[key] = alert
            out += self._evict_groups(st, ctx)
        elif _RANK[severity] > _RANK[alert["severity"]]:
            alert["severity"] = severity
            alert["reason"] = reason[:1000]
            severity_rose = True
        # grow the group
        ids = list(event_ids or [])
        if event is not None:
            ids.insert(0, event.event_id)
        new_ids = [i for i in ids if i not in alert["event_ids"]]
        if event is None:
            alert["count"] += max(1, len(new_ids))
        elif event.event_id != alert.get("_last_event"):  # one event joins a group once
            alert["count"] += 1
            alert["_last_event"] = event.event_id
        room = self.settings.max_event_ids - len(alert["event_ids"])
        alert["event_ids"].extend(new_ids[:max(0, room)])
        if len(new_ids) > room:
            alert["event_ids_truncated"] = True
        alert["_first"] = min(alert["_first"], ts)
        alert["_last"] = max(alert["_last"], ts)
        alert["first_seen"] = iso_time(alert["_first"])
        alert["last_seen"] = iso_time(alert["_last"])
        alert["updated_at"] = iso_time(alert["_last"])
        if ctx.maturity is not None:
            alert["baseline_maturity"] = ctx.maturity
        if ctx.incident_id and not alert["incident_id"]:
            alert["incident_id"] = ctx.incident_id
        for attr in ("owner", "enforcement_point", "environment", "agent_role"):
            if getattr(ctx, attr) is not None:
                alert[attr] = getattr(ctx, attr)
        if ra is not None:
            risk = alert["risk"]
            if ra.score >= risk["score"] or not risk["factors"]:
                risk["factors"] = [dict(f) for f in factors[:5]]
            risk["score"] = max(risk["score"], ra.score)
            risk["agent_risk"] = max(risk["agent_risk"], ra.agent_risk)
        for f in findings:
            if f.technique and f.technique not in alert["techniques"] and len(alert["techniques"]) < 20:
                alert["techniques"].append(f.technique)
            if f.tactic and f.tactic not in alert["tactics"] and len(alert["tactics"]) < 20:
                alert["tactics"].append(f.tactic)
        if context:
            merged = dict(alert.get("context") or {})
            for k, v in context.items():
                if k == "held_back" and isinstance(v, list):
                    held = list(merged.get("held_back", []))
                    held.extend(x for x in v if x not in held)
                    merged[k] = held[:20]
                else:
                    merged[k] = v
            alert["context"] = merged
        alert["_dirty"] = True
        last = alert["_last_emit"]
        if last is None or severity_rose or ts - last >= self.settings.update_interval_seconds:
            out.append(self._emit(alert, ts))
        return out

    def _emit(self, alert: dict[str, Any], now: float) -> dict[str, Any]:
        alert["version"] += 1
        alert["_last_emit"] = now
        alert["_dirty"] = False
        return _public(alert)

    def _close(self, st: dict[str, Any], key: str) -> list[dict[str, Any]]:
        alert = st["groups"].pop(key)
        alert["status"] = "closed"
        # the closing version is emitted only if it says something new
        if alert["_dirty"]:
            return [self._emit(alert, alert["_last"])]
        return []

    def _close_expired(self, st: dict[str, Any], ctx: AlertContext, now: float) -> list[dict[str, Any]]:
        groups = st.get("groups")
        if not groups:
            return []
        out: list[dict[str, Any]] = []
        for key in sorted(k for k, a in groups.items() if now >= a["_start"] + self.settings.group_window_seconds):
            out += self._close(st, key)
        return out

    def _evict_groups(self, st: dict[str, Any], ctx: AlertContext) -> list[dict[str, Any]]:
        groups = st["groups"]
        out: list[dict[str, Any]] = []
        while len(groups) > self.settings.max_groups_per_agent:
            oldest = min(groups, key=lambda k: (groups[k]["_start"], k))
            out += self._close(st, oldest)
        return out

    # -- time --------------------------------------------------------------------------------

    def next_due(self, st: dict[str, Any]) -> float | None:
        """The earliest time :meth:`tick` has something to do for this agent."""
        due: float | None = None
        for alert in (st.get("groups") or {}).values():
            t = alert["_start"] + self.settings.group_window_seconds
            if alert["_dirty"] and alert["_last_emit"] is not None:
                t = min(t, alert["_last_emit"] + self.settings.update_interval_seconds)
            due = t if due is None else min(due, t)
        return due

    def tick(self, st: dict[str, Any], ctx: AlertContext, now: float) -> list[dict[str, Any]]:
        """Close ended windows and emit pending updates whose interval has passed."""
        out = self._close_expired(st, ctx, now)
        for key in sorted(st.get("groups") or {}):
            alert = st["groups"][key]
            if alert["_dirty"] and (alert["_last_emit"] is None
                                    or now - alert["_last_emit"] >= self.settings.update_interval_seconds):
                out.append(self._emit(alert, now))
        return out

    def flush(self, st: dict[str, Any]) -> list[dict[str, Any]]:
        """Close every open group (end of a replay); emits those with unsent updates."""
        out: list[dict[str, Any]] = []
        for key in sorted(st.get("groups") or {}):
            out += self._close(st, key)
        return out


def _risk_reason(ra: RiskAssessment) -> str:
    parts = [f"{f['source']}:{f['id']} {f['contribution']:g}" + (f" x{f['count']}" if f.get("count", 1) > 1 else "")
             for f in ra.agent_factors[:3]]
    return f"accumulated risk {ra.agent_risk} over the window: " + ", ".join(parts)


def _public(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert document without internal bookkeeping (keys starting with ``_``)."""
    out = {k: v for k, v in alert.items() if not k.startswith("_")}
    out["event_ids"] = list(alert["event_ids"])
    out["risk"] = {**alert["risk"], "factors": [dict(f) for f in alert["risk"]["factors"]]}
    out["techniques"] = list(alert["techniques"])
    out["tactics"] = list(alert["tactics"])
    if "context" in out and out["context"] is not None:
        out["context"] = dict(out["context"])
    return out
