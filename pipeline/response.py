"""The automated response: alerts, the isolation ladder, acknowledgements and analyst controls.

Contract (pure logic, deterministic; time comes only from the event, the messages and ``clock``):

- ``Responder(settings, clock)``; ``clock()`` returns epoch seconds: the wall clock in the live
  worker, the current event time in replay. Commands' ``issued_at``/``expires_at`` and the
  blast-radius minute use it; alert windows and rate limits use event time.
- ``on_event(event, findings, ra, maturity=...)`` -> alerts (``Output("alerts", agent_id, alert)``)
  and signed commands (``Output("enforcement", enforcement_point, command)``).
- ``on_ack(ack)`` correlates acknowledgements from ``agent.enforcement.acks``; rejections,
  expiries before application and acks for commands we never issued raise alerts.
- ``on_control(msg)`` applies an analyst's ``release``, ``suppression`` or ``incident_update``
  (``schemas/control.schema.json``); invalid messages are counted and ignored.
- ``on_tick(now)`` raises ack-timeout alerts, expires commands (de-escalation by expiry) and
  emits pending alert updates; call it after every batch. ``flush()`` closes every alert group
  (end of a replay).
- ``agent_isolated(agent_id)`` is the agent's enforced rung (None if none, shadow, or rejected).

Safety bundle (all in :class:`~pipeline.settings.EnforcementSettings`): rung triggers; shadow mode
(commands carry ``"mode": "shadow"``, enforcement points verify but never apply or ack them, and
they are counted per action and rule in ``stats["would_have"]``); ``never_isolate`` agents (alert
``enforcement_withheld`` instead); a fleet-wide blast-radius cap per minute (then alerts only);
release only from a control message naming a human (``by``) and a reason; ``enabled: false``
for alerts only.

For one risk window after a release the agent-risk trigger counts only the risk of events
after the release (the analyst judged what came before); event-level triggers (a new critical
finding) still fire at once. An episode (one incident) starts at the first event that
raised an alert or command while none was open and ends when the incident tracker resolves it
(``incident_update``) or after ``alerts.episode_idle_seconds`` without activity while no rung is
in force; its id is :func:`pipeline.records.incident_id_for`.

State: ``Stateful`` per agent (a JSON dict: meta, alert groups, suppressions, ladder, episode),
plus the fleet-wide state (fleet suppressions, blast-radius window) under the key ``"*"``.
"""

from __future__ import annotations

import bisect
import heapq
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import fastjsonschema

import schemas
from detectors.events import Event, Finding
from pipeline.alerting import AlertContext, Alerter, Suppression, SuppressionError
from pipeline.enforcement.keys import KeyFileError, load_signer
from pipeline.enforcement.ladder import (
    RELEASE,
    RUNGS,
    build_command,
    matches_agent,
    rung_index,
    target_rung,
)
from pipeline.enforcement.policy import is_read_only
from pipeline.enforcement.signing import Signer, dev_signer
from pipeline.records import Output, deterministic_id, incident_id_for
from pipeline.risk import RiskAssessment, RiskScorer
from pipeline.settings import Settings

__all__ = ["FLEET_KEY", "Responder", "compile_schema"]

log = logging.getLogger(__name__)

FLEET_KEY = "*"
_RECENT_COMMANDS = 16
#: what the responder keeps about each agent from its events (``st["meta"]``), texts cut to 256
_META_KEYS = ("owner", "enforcement_point", "environment", "agent_role")
_MISSING = object()
_FORGERY_CODES = frozenset({"bad_signature", "unknown_key", "unsigned", "key_expired", "bad_algorithm"})


def compile_schema(name: str) -> Callable[[Any], Any]:
    """A fastjsonschema validator for ``schemas/<name>.schema.json``.

    Our schemas keep to keywords that mean the same in draft 7 and 2020-12, so they compile as
    draft 7 (fastjsonschema's newest); formats are checked by the code that parses them.
    """
    schema = dict(schemas.load(name))
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(schema, use_default=False, use_formats=False)


def _parse_time(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if dt.tzinfo is None:
            return None
        return dt.timestamp()
    return None


class Responder:
    """Alerts and isolation commands from assessed events (see the module docstring)."""

    def __init__(self, settings: Settings, clock: Callable[[], float], *, signer: Signer | None = None,
                 replay: bool = False) -> None:
        """``replay=True`` (backtests): no enforcement point will answer, so no ack timeouts, and
        without a configured key commands are signed with the public development key.
        Otherwise a missing key raises :class:`~pipeline.enforcement.keys.KeyFileError`."""
        self.settings = settings
        self.clock = clock
        self.enf = settings.enforcement
        if signer is None:
            try:
                signer = load_signer(settings.enforcement)
            except KeyFileError:
                if not replay:
                    raise
                signer = dev_signer()
        self.signer = signer
        self.expect_acks = not replay
        self.alerter = Alerter(settings.alerts, settings.risk)
        self._scorer = RiskScorer(settings.risk)  # only for re-scoring after suppressions
        self._agents: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}
        self._blast: dict[str, list[float]] = {"enforce": [], "shadow": []}
        self._validate_control = compile_schema("control")
        self._validate_ack = compile_schema("enforcement-ack")
        self.stats: dict[str, Any] = {
            "commands": {}, "shadow_commands": {}, "would_have": {}, "withheld": {}, "acks": {},
            "ack_timeouts": 0, "ineffective": 0, "controls": {}, "invalid_controls": 0,
            "invalid_acks": 0, "unknown_acks": 0, "alerts": {}, "expired_commands": 0,
        }
        #: recent acknowledgement latencies in seconds (applied acks), newest last, bounded
        self.ack_latencies: list[float] = []

    # -- state -------------------------------------------------------------------------------

    def _state(self, agent_id: str) -> dict[str, Any]:
        st = self._agents.get(agent_id)
        if st is None:
            st = self._agents[agent_id] = {"meta": {}, "ladder": {"rung": None, "mode": None, "seq": 0}}
        return st

    def _touch(self, agent_id: str) -> None:
        self._dirty.add(agent_id)
        self._schedule(agent_id)

    def _schedule(self, agent_id: str) -> None:
        st = self._agents.get(agent_id)
        if st is None:
            return
        due = self.alerter.next_due(st)
        lad = st["ladder"]
        for p in lad.get("pending", []):
            due = p["deadline"] if due is None else min(due, p["deadline"])
        cmd = lad.get("command")
        if lad.get("rung") and cmd and cmd.get("expires_at") is not None:
            due = cmd["expires_at"] if due is None else min(due, cmd["expires_at"])
        if due is None:
            self._due.pop(agent_id, None)
            return
        if self._due.get(agent_id) != due:
            self._due[agent_id] = due
            heapq.heappush(self._heap, (due, agent_id))

    def load_state(self, agent_id: str, blob: Any | None) -> None:
        if agent_id == FLEET_KEY:
            blob = blob or {}
            self.alerter.fleet_suppressions = [Suppression.from_dict(d) for d in blob.get("suppressions", [])]
            blast = blob.get("blast") or {}
            self._blast = {m: [float(t) for t in blast.get(m, [])] for m in ("enforce", "shadow")}
            return
        if not blob:
            self._agents.pop(agent_id, None)
            self._due.pop(agent_id, None)
            return
        st = dict(blob)
        st.setdefault("meta", {})
        st.setdefault("ladder", {"rung": None, "mode": None, "seq": 0})
        self._agents[agent_id] = st
        self._schedule(agent_id)

    def dump_state(self, agent_id: str) -> Any | None:
        if agent_id == FLEET_KEY:
            return {"suppressions": [s.to_dict() for s in self.alerter.fleet_suppressions],
                    "blast": {m: list(v) for m, v in self._blast.items()}}
        return self._agents.get(agent_id)

    def dirty_agents(self) -> set[str]:
        """Agents whose state changed since the last call (``"*"`` for the fleet state); clears."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    def forget(self, agent_id: str) -> None:
        self._agents.pop(agent_id, None)
        self._due.pop(agent_id, None)
        self._dirty.discard(agent_id)

    # -- helpers -----------------------------------------------------------------------------

    def _ctx(self, agent_id: str, st: dict[str, Any], maturity: dict[str, Any] | None = None) -> AlertContext:
        meta = st["meta"]
        ep = st.get("episode")
        return AlertContext(agent_id=agent_id, owner=meta.get("owner"),
                            enforcement_point=meta.get("enforcement_point"),
                            environment=meta.get("environment"), agent_role=meta.get("agent_role"),
                            incident_id=ep["incident_id"] if ep else None, maturity=maturity)

    def _alert_outputs(self, alerts: list[dict[str, Any]]) -> list[Output]:
        out = []
        for a in alerts:
            sev = self.stats["alerts"]
            if a["version"] == 1:
                sev[a["severity"]] = sev.get(a["severity"], 0) + 1
            out.append(Output(kind="alerts", key=a["agent_id"], value=a))
        return out

    def _count(self, bucket: str, key: str) -> None:
        d = self.stats[bucket]
        d[key] = d.get(key, 0) + 1

    def unsuppressed(self, event: Event, findings: list[Finding]) -> list[Finding]:
        """The findings no active suppression covers (call before risk scoring if you can)."""
        st = self._agents.get(event.agent_id) or {}
        return self.alerter.unsuppressed(st, event, findings)

    def agent_isolated(self, agent_id: str) -> str | None:
        st = self._agents.get(agent_id)
        if st is None:
            return None
        lad = st["ladder"]
        cmd = lad.get("command") or {}
        if not lad.get("rung") or lad.get("mode") != "enforce":
            return None
        if (cmd.get("ack") or {}).get("status") in ("rejected", "expired"):
            return None
        if cmd.get("expires_at") is not None and self.clock() >= cmd["expires_at"]:
            return None
        rung: str = lad["rung"]
        return rung

    # -- events ------------------------------------------------------------------------------

    def on_event(self, event: Event, findings: list[Finding], ra: RiskAssessment, *,
                 maturity: dict[str, Any] | None = None) -> list[Output]:
        agent_id = event.agent_id
        if not findings and ra.score == 0 and agent_id not in self._agents:
            return []  # hot path: a clean event of an agent we hold nothing about
        ts = float(event.ts)
        st = self._state(agent_id)
        changed = self._update_meta(st, event)
        lad = st["ladder"]
        out: list[Output] = []
        now = self.clock()
        changed |= self._expire(st, now)

        # close an idle episode (none while a rung is in force)
        ep = st.get("episode")
        if ep and not lad.get("rung") and ts - ep["last_activity"] > self.settings.alerts.episode_idle_seconds:
            st["episode"] = None
            ep = None
            changed = True
        tentative = ep["incident_id"] if ep else incident_id_for(agent_id, event.event_id)
        ctx = self._ctx(agent_id, st, maturity)
        ctx.incident_id = tentative

        alerts: list[dict[str, Any]] = []
        alerts += self._check_effective(st, ctx, event)

        kept = self.alerter.unsuppressed(st, event, findings)
        if len(kept) != len(findings):
            self.alerter.stats["suppressed"] += len(findings) - len(kept)
            if ra.scorer is not None:  # take the suppressed findings out of the agent's risk too
                ra = ra.scorer.exclude(event, kept)
            else:
                raw, factors = self._scorer.event_factors(kept)
                ra = RiskAssessment(min(100, round(raw)), ra.agent_risk, factors, ra.agent_factors)
        event_score = ra.score
        if kept or ra.score > 0 or st.get("groups"):
            alerts += self.alerter.on_event(st, ctx, event, kept, ra)

        commands, more_alerts = self._climb(st, ctx, event, kept, ra, event_score, now)
        alerts += more_alerts
        if alerts or commands:
            if ep is None:
                st["episode"] = {"incident_id": tentative, "start_event_id": event.event_id, "started_at": ts,
                                 "last_activity": ts}
            else:
                ep["last_activity"] = max(ep["last_activity"], ts)
            changed = True
        out += self._alert_outputs(alerts)
        out += commands
        if changed or alerts or commands or kept or st.get("groups"):
            self._touch(agent_id)
        return out

    def _update_meta(self, st: dict[str, Any], event: Event) -> bool:
        d = event.data
        meta = st["meta"]
        # the common case first, without building anything: the same strings as last time
        # (a value that is not a short string goes the long way, which stores its text)
        if len(meta) == len(_META_KEYS):
            for k in _META_KEYS:
                v = d.get(k)
                if not (v is None or (type(v) is str and len(v) <= 256)) or meta.get(k, _MISSING) != v:
                    break
            else:
                return False
        new = {k: (str(v)[:256] if v is not None else None) for k in _META_KEYS for v in (d.get(k),)}
        if meta != new:
            st["meta"] = new
            return True
        return False

    def _check_effective(self, st: dict[str, Any], ctx: AlertContext, event: Event) -> list[dict[str, Any]]:
        """An enforced, applied rung whose agent still gets actions allowed: the isolation failed."""
        lad = st["ladder"]
        rung = lad.get("rung")
        cmd = lad.get("command") or {}
        ack = cmd.get("ack") or {}
        if not rung or lad.get("mode") != "enforce" or ack.get("status") != "applied":
            return []
        if event.data.get("decision") != "allow" or float(event.ts) <= float(ack["ts"]):
            return []
        # the rungs' meaning at the gate (pipeline/sdk/gate.py): step_down lets read-only actions
        # pass, revoke_tokens too unless they use a delegated token; the others allow nothing
        if rung in ("step_down", "revoke_tokens") and is_read_only(event.action) and not (
                rung == "revoke_tokens" and event.data.get("delegation")):
            return []
        self.stats["ineffective"] += 1
        return self.alerter.system_alert(
            st, ctx, kind="isolation_ineffective", ts=float(event.ts), severity="critical",
            reason=f"agent is under {rung} (applied at {cmd.get('issued_at_iso', '')}) but an action "
                   f"was allowed at the enforcement point",
            event_ids=[event.event_id], context={"command_id": cmd.get("command_id"), "rung": rung})

    def _climb(self, st: dict[str, Any], ctx: AlertContext, event: Event, findings: list[Finding],
               ra: RiskAssessment, event_score: int, now: float) -> tuple[list[Output], list[dict[str, Any]]]:
        enf = self.enf
        if not enf.enabled:
            return [], []
        lad = st["ladder"]
        mode = "shadow" if enf.shadow_mode else "enforce"
        agent_risk = ra.agent_risk
        released_at = lad.get("released_at")
        if released_at is not None:
            if now >= released_at + self.settings.risk.window_seconds:
                lad.pop("released_at", None)
                lad.pop("risk_since_release", None)
            else:
                # the releasing analyst judged the risk so far: count only what came after
                agent_risk = min(100, int(lad.get("risk_since_release", 0)) + event_score)
                lad["risk_since_release"] = agent_risk
        current = lad.get("rung") if lad.get("mode") == mode else None
        target, why = target_rung(enf.triggers, agent_risk=agent_risk, event_score=event_score, findings=findings,
                                  above=current)
        if target is None:
            return [], []
        if rung_index(target) > rung_index(enf.uncorroborated_max_rung):
            # Behavioural anomalies alone hold actions for a human; revoking or isolating needs a
            # rule or policy finding of this agent in the risk window to corroborate them.
            sources = {f.detector for f in findings} | {str(fa.get("source", "")) for fa in ra.agent_factors}
            corroborating = enf.corroborating_detectors
            if not any(src == d or src.startswith(d + ".") for src in sources for d in corroborating):
                target = enf.uncorroborated_max_rung
                why += f"; capped at {target}: no {'/'.join(corroborating)} finding corroborates it"
        if rung_index(target) <= rung_index(current):  # (capped to the rung in force or below)
            return [], []
        factors = ra.factors or ra.agent_factors
        top_rule = f"{factors[0]['source']}:{factors[0]['id']}" if factors else "risk:agent_risk"
        ts = float(event.ts)
        if matches_agent(enf.never_isolate, ctx.agent_id):
            return [], self._withhold(st, ctx, target, "never_isolate", why, event, ts, top_rule)
        if rung_index(target) >= rung_index(enf.blast_radius_min_rung):
            window = self._blast[mode]
            drop = bisect.bisect_right(window, now - 60.0)  # kept sorted (insort)
            if drop:
                del window[:drop]
            if len(window) >= enf.max_isolations_per_minute:
                return [], self._withhold(st, ctx, target, "blast_radius", why, event, ts, top_rule)
            bisect.insort(window, now)
            self._dirty.add(FLEET_KEY)
        reason = why + ("; top factors: " + ", ".join(
            f"{f['source']}:{f['id']} ({f['contribution']:g})" for f in factors[:3]) if factors else "")
        cmd = self._issue(st, ctx, action=target, mode=mode, now=now, reason=reason, factors=factors,
                          trigger_event_id=event.event_id)
        if mode == "shadow":
            self._count("would_have", f"{target}|{top_rule}")
        return [cmd], []

    def _withhold(self, st: dict[str, Any], ctx: AlertContext, target: str, why_code: str, why: str,
                  event: Event, ts: float, top_rule: str) -> list[dict[str, Any]]:
        self._count("withheld", why_code)
        text = {"never_isolate": "the agent is on the never-isolate list",
                "blast_radius": f"the fleet-wide cap of {self.enf.max_isolations_per_minute} "
                                f"isolations per minute was reached"}[why_code]
        return self.alerter.system_alert(
            st, ctx, kind="enforcement_withheld", ts=ts, severity="high",
            reason=f"would have issued {target} ({why}) but {text}; alert only",
            event_ids=[event.event_id], context={"would_have": target, "withheld_because": why_code,
                                                 "rule": top_rule})

    def _issue(self, st: dict[str, Any], ctx: AlertContext, *, action: str, mode: str, now: float, reason: str,
               factors: list[dict[str, Any]], trigger_event_id: str | None = None,
               requested_by: Mapping[str, Any] | None = None) -> Output:
        lad = st["ladder"]
        ep = ctx.enforcement_point or st["meta"].get("enforcement_point") or ""
        lad["seq"] = int(lad.get("seq", 0)) + 1
        ttl = self.enf.ttl_seconds.get(action)
        previous = lad.get("rung") if lad.get("mode") == mode else None
        doc = build_command(agent_id=ctx.agent_id, enforcement_point=ep, action=action, sequence=lad["seq"],
                            issued_at=now, ttl_seconds=ttl, reason=reason, factors=factors,
                            incident_id=ctx.incident_id, mode=mode, previous=previous,
                            trigger_event_id=trigger_event_id, requested_by=requested_by)
        signed = self.signer.sign(doc)
        expires = now + ttl if ttl is not None else None
        if action == RELEASE:
            lad["rung"] = None
        else:
            lad["rung"] = action
        lad["mode"] = mode
        lad["command"] = {"command_id": signed["command_id"], "action": action, "issued_at": now,
                          "issued_at_iso": signed["issued_at"], "expires_at": expires, "ack": None}
        recent = lad.setdefault("recent", {})
        recent[signed["command_id"]] = {"action": action, "issued_at": now, "mode": mode, "status": None}
        while len(recent) > _RECENT_COMMANDS:
            recent.pop(next(iter(recent)))
        if mode == "enforce" and self.expect_acks:
            lad.setdefault("pending", []).append(
                {"command_id": signed["command_id"], "deadline": now + self.enf.ack_timeout_seconds,
                 "action": action})
        self._count("commands" if mode == "enforce" else "shadow_commands", action)
        self._touch(ctx.agent_id)
        return Output(kind="enforcement", key=ep, value=signed)

    def _expire(self, st: dict[str, Any], now: float) -> bool:
        lad = st["ladder"]
        cmd = lad.get("command")
        if lad.get("rung") and cmd and cmd.get("expires_at") is not None and now >= cmd["expires_at"]:
            lad["rung"] = None  # de-escalation by expiry: the enforcement point drops it too
            self.stats["expired_commands"] += 1
            return True
        return False

    # -- acknowledgements --------------------------------------------------------------------

    def on_ack(self, ack: dict[str, Any]) -> list[Output]:
        try:
            self._validate_ack(ack)
        except fastjsonschema.JsonSchemaException:
            self.stats["invalid_acks"] += 1
            return []
        status = ack["status"]
        self._count("acks", status)
        agent_id = str(ack["agent_id"])
        st = self._state(agent_id)
        lad = st["ladder"]
        ack_ts = _parse_time(ack.get("ts"))
        if ack_ts is None:
            ack_ts = self.clock()
        entry = (lad.get("recent") or {}).get(ack["command_id"])
        ctx = self._ctx(agent_id, st)
        if ctx.enforcement_point is None:
            ctx.enforcement_point = str(ack.get("enforcement_point"))
        if entry is None:
            self.stats["unknown_acks"] += 1
            if status == "rejected" and ack.get("code") in _FORGERY_CODES:
                self._touch(agent_id)
                return self._alert_outputs(self.alerter.system_alert(
                    st, ctx, kind="enforcement_rejected", ts=ack_ts, severity="high", group="forged",
                    reason=f"{ack.get('enforcement_point')} refused a command agentwatch never issued "
                           f"({ack.get('code')}: {str(ack.get('reason', ''))[:200]}); someone may be "
                           f"writing to the enforcement topic",
                    context={"command_id": ack["command_id"], "code": ack.get("code")}))
            return []
        lad["pending"] = [p for p in lad.get("pending", []) if p["command_id"] != ack["command_id"]]
        previous = entry.get("status")
        if previous == "applied" and status == "rejected" and ack.get("code") in ("replay", "duplicate"):
            self._touch(agent_id)
            return []  # a redelivered command the enforcement point had already applied
        entry["status"] = status
        cmd = lad.get("command") or {}
        is_current = cmd.get("command_id") == ack["command_id"]
        if is_current:
            cmd["ack"] = {"status": status, "ts": ack_ts}
        alerts: list[dict[str, Any]] = []
        if status == "applied":
            latency = max(0.0, ack_ts - float(entry["issued_at"]))
            self.ack_latencies.append(latency)
            del self.ack_latencies[:-1000]
        elif status == "rejected":
            alerts = self.alerter.system_alert(
                st, ctx, kind="enforcement_rejected", ts=ack_ts,
                severity="critical" if entry["action"] == "isolate" else "high",
                reason=f"{ack.get('enforcement_point')} rejected {entry['action']} "
                       f"({ack.get('code', 'rejected')}: {str(ack.get('reason', ''))[:200]})",
                context={"command_id": ack["command_id"], "code": ack.get("code"), "action": entry["action"]})
        elif status == "expired":
            if is_current and lad.get("rung") == entry["action"]:
                lad["rung"] = None
            if previous != "applied":
                alerts = self.alerter.system_alert(
                    st, ctx, kind="enforcement_rejected", ts=ack_ts, severity="high",
                    reason=f"{entry['action']} expired at {ack.get('enforcement_point')} before it was applied",
                    context={"command_id": ack["command_id"], "code": "expired", "action": entry["action"]})
        self._touch(agent_id)
        return self._alert_outputs(alerts)

    # -- analyst controls --------------------------------------------------------------------

    def on_control(self, msg: dict[str, Any]) -> list[Output]:
        try:
            self._validate_control(msg)
        except fastjsonschema.JsonSchemaException as exc:
            self.stats["invalid_controls"] += 1
            log.warning("ignoring invalid control message: %s", str(exc)[:200])
            return []
        kind = msg["type"]
        self._count("controls", kind)
        if kind == "release":
            return self._release(msg)
        if kind == "suppression":
            return self._suppress(msg)
        if kind == "incident_update":
            self._incident_update(msg)
        return []

    def _release(self, msg: dict[str, Any]) -> list[Output]:
        agent_id = str(msg["agent_id"])
        payload = msg.get("payload") or {}
        st = self._state(agent_id)
        ctx = self._ctx(agent_id, st)
        ep = payload.get("enforcement_point") or ctx.enforcement_point
        if not ep:
            self.stats["invalid_controls"] += 1
            log.warning("release for agent %r ignored: enforcement point unknown", agent_id[:80])
            return []
        ctx.enforcement_point = str(ep)
        lad = st["ladder"]
        mode = lad.get("mode") if lad.get("rung") and lad.get("mode") else "enforce"
        now = self.clock()
        requested = {"by": msg["by"], "reason": msg["reason"], "control_id": msg["control_id"]}
        out = self._issue(st, ctx, action=RELEASE, mode=mode, now=now,
                          reason=f"released by {msg['by']}: {msg['reason']}", factors=[],
                          requested_by=requested)
        lad["released_at"] = now
        lad["risk_since_release"] = 0
        return [out]

    def _suppress(self, msg: dict[str, Any]) -> list[Output]:
        payload = msg.get("payload") or {}
        agent = msg["agent_id"]
        created = _parse_time(msg.get("ts"))
        if created is None:
            created = self.clock()
        expires = _parse_time(payload.get("expires_at"))
        if expires is None and payload.get("ttl_seconds") is not None:
            expires = created + float(payload["ttl_seconds"])
        try:
            if expires is None or expires <= created:
                raise SuppressionError("a suppression needs an expiry after its creation time")
            sup = Suppression(
                suppression_id=deterministic_id("sup_", msg["control_id"]), scope=str(payload.get("scope")),
                author=str(msg["by"]), reason=str(msg["reason"]), created_at=created, expires_at=expires,
                agent_id=None if agent == FLEET_KEY else str(agent), rule=payload.get("rule"),
                pattern=payload.get("pattern"), field=str(payload.get("field") or "command"),
                control_id=str(msg["control_id"]))
        except SuppressionError as exc:
            self.stats["invalid_controls"] += 1
            log.warning("ignoring suppression %r: %s", str(msg.get("control_id"))[:80], exc)
            return []
        if sup.agent_id is None:
            self.alerter.add_suppression(None, sup)
            self._dirty.add(FLEET_KEY)
            ctx = AlertContext(agent_id=FLEET_KEY)
        else:
            st = self._state(sup.agent_id)
            self.alerter.add_suppression(st, sup)
            self._touch(sup.agent_id)
            ctx = self._ctx(sup.agent_id, st)
        record = self.alerter.audit_record(
            ctx, kind="suppression", ts=created,
            reason=f"{sup.scope} suppression by {sup.author} until {datetime.fromtimestamp(expires).isoformat()}: {sup.reason}"[:1000],
            context={"suppression": sup.to_dict()}, record_id=sup.suppression_id)
        return self._alert_outputs([record])

    def _incident_update(self, msg: dict[str, Any]) -> None:
        payload = msg.get("payload") or {}
        st = self._agents.get(str(msg["agent_id"]))
        if st is None:
            return
        ep = st.get("episode")
        if ep and payload.get("status") in ("resolved", "false_positive") and \
                payload.get("incident_id") in (None, ep["incident_id"]):
            st["episode"] = None  # the next alert opens a new incident
            self._touch(str(msg["agent_id"]))

    # -- time --------------------------------------------------------------------------------

    def on_tick(self, now: float) -> list[Output]:
        out: list[Output] = []
        while self._heap and self._heap[0][0] <= now:
            due, agent_id = heapq.heappop(self._heap)
            if self._due.get(agent_id) != due:
                continue  # superseded by a later schedule
            del self._due[agent_id]
            st = self._agents.get(agent_id)
            if st is None:
                continue
            out += self._tick_agent(agent_id, st, now)
            self._dirty.add(agent_id)
            self._schedule(agent_id)
        return out

    def _tick_agent(self, agent_id: str, st: dict[str, Any], now: float) -> list[Output]:
        lad = st["ladder"]
        ctx = self._ctx(agent_id, st)
        alerts: list[dict[str, Any]] = []
        late = [p for p in lad.get("pending", []) if p["deadline"] <= now]
        if late:
            lad["pending"] = [p for p in lad["pending"] if p["deadline"] > now]
            for p in late:
                self.stats["ack_timeouts"] += 1
                alerts += self.alerter.system_alert(
                    st, ctx, kind="ack_timeout", ts=now,
                    severity="critical" if p["action"] == "isolate" else "high",
                    reason=f"{p['action']} was not acknowledged by {ctx.enforcement_point} within "
                           f"{self.enf.ack_timeout_seconds:g}s; the agent may still be acting",
                    context={"command_id": p["command_id"], "action": p["action"]})
        self._expire(st, now)
        alerts += self.alerter.tick(st, ctx, now)
        return self._alert_outputs(alerts)

    def flush(self) -> list[Output]:
        """Close every open alert group of every agent in memory (end of a replay)."""
        out: list[Output] = []
        for agent_id in sorted(self._agents):
            st = self._agents[agent_id]
            if st.get("groups"):
                out += self._alert_outputs(self.alerter.flush(st))
                self._dirty.add(agent_id)
        return out

    def rungs(self) -> dict[str, int]:
        """How many agents in memory sit on each enforced rung (for metrics)."""
        counts = dict.fromkeys(RUNGS, 0)
        for agent_id in self._agents:
            rung = self.agent_isolated(agent_id)
            if rung:
                counts[rung] += 1
        return counts
