"""Incident tracking: alerts and enforcement turn into incidents with a timeline. Pure logic.

:class:`IncidentTracker` sees what the responder produced for each event (alerts, enforcement
commands), the enforcement points' acknowledgements and the analysts' control messages, and
returns incident record versions (``Output(kind="incidents", key=incident_id, value=record)``).

*Episodes.* One incident per agent episode. Alerts and commands carry the episode's id
(``pipeline.records.incident_id_for(agent_id, first_event_id)``, chosen by the responder); an
alert or command for an agent that names no incident joins the agent's most recent open incident,
or opens one keyed by the current event. New alerts for an agent with an open incident join it.
An incident stays open (and the agent's baseline does not learn: :meth:`has_open`) until an
analyst resolves it or marks it false_positive.

*Status.* ``open -> triaged -> contained -> resolved`` or ``false_positive``. Status only moves
forward (:data:`STATUS_RANK`): automatic containment (an isolate command acknowledged as applied)
can come before triage, and assigning a contained incident does not un-contain it.

*Records.* Each version carries the incident's header (ids, owner, enforcement point, severity,
peak risk, status, assignee, times, counts) and the timeline entries **added by that version**
(``timeline``; ``timeline_total`` counts all). The store accumulates entries by their
deterministic ``entry_id``, so replays and duplicates never duplicate them, and merges headers with
:func:`merge_headers`, which is order-independent: the worker and an analyst's CLI can both write.

*State.* Per agent a small JSON blob (open incidents' headers, recent entry ids, recent command
ids), bounded by the settings; the timeline itself is not kept in memory. Times come from the
``clock`` callable (event time in replay, the wall clock live) or from the messages themselves.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from detectors.events import Event, Severity
from pipeline.records import Output, deterministic_id, incident_id_for, iso_time
from pipeline.settings import IncidentSettings

__all__ = [
    "DISPOSITIONS",
    "STATUSES",
    "STATUS_RANK",
    "TERMINAL",
    "IncidentTracker",
    "alert_risk",
    "analyst_update",
    "merge_headers",
    "parse_time",
    "trim_event",
]

STATUSES = ("open", "triaged", "contained", "resolved", "false_positive")
STATUS_RANK = {"open": 0, "triaged": 1, "contained": 2, "resolved": 3, "false_positive": 3}
TERMINAL = frozenset({"resolved", "false_positive"})
#: how an analyst closes an incident; false_positive also sets the status false_positive
DISPOSITIONS = ("true_positive", "false_positive", "benign", "duplicate", "inconclusive")

SCHEMA_VERSION = "1"
_SEEN_CAP = 512  # recent entry ids per incident: cheap dedup of duplicated acks/controls
_CMD_CAP = 64  # recent commands per incident, to correlate acknowledgements
_ALERT_IDS_CAP = 100
_TECHNIQUES_CAP = 32
_SUMMARY_CHARS = 200
_SEVERITIES = tuple(s.label for s in Severity)
#: alert kinds that record an analyst action rather than detect anything: never open an incident
_NO_INCIDENT = frozenset({"suppression"})


def parse_time(value: Any) -> float | None:
    """Epoch seconds from an RFC 3339 string or a number; None if absent or unparseable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return _parse_text(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=8192)
def _parse_text(value: str) -> float | None:
    # cached: the same few timestamps are compared many times per incident update
    from pipeline.validation import ValidationFailure, parse_ts

    try:
        return parse_ts(value)
    except ValidationFailure:
        return None


def _copy_header(h: dict[str, Any]) -> dict[str, Any]:
    """A copy deep enough for headers (flat values, one dict, two lists); deepcopy is 10x slower."""
    out = dict(h)
    out["counts"] = dict(h["counts"])
    out["alert_ids"] = list(h["alert_ids"])
    out["techniques"] = list(h["techniques"])
    return out


def _severity(value: Any) -> str:
    try:
        return Severity.parse(value).label
    except (ValueError, TypeError):
        return "info"


def _sev_rank(label: str | None) -> int:
    return _SEVERITIES.index(label) if label in _SEVERITIES else -1


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def alert_risk(alert: dict[str, Any]) -> float:
    """An alert's risk on 0-100: the larger of its event score and the agent's accumulated risk
    (``risk: {score, agent_risk}``); flat ``risk_score`` / ``agent_risk`` fields are read too."""
    risk = alert.get("risk")
    values = [alert.get("risk_score"), alert.get("agent_risk")]
    if isinstance(risk, dict):
        values += [risk.get("score"), risk.get("agent_risk")]
    else:
        values.append(risk)
    nums = [n for n in (_number(v) for v in values) if n is not None]
    return max(nums) if nums else 0.0


def _one_line(text: Any, limit: int = _SUMMARY_CHARS) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def trim_event(data: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """An event dict bounded to about ``max_bytes`` of JSON, still a valid event.

    Small events are returned as they are. Larger ones keep every field but long strings are cut
    (and ``agentwatch_truncated: true`` marks the copy), so evidence kept per incident and
    per-agent state stay bounded whatever an agent sends.
    """
    if len(orjson.dumps(data)) <= max_bytes:
        return data
    limit = max(64, max_bytes // 16)

    def cut(value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return value if len(value) <= limit else value[:limit] + "…[truncated]"
        if isinstance(value, dict):
            if depth > 4:
                return {}
            items = list(value.items())[:32]
            return {str(k)[:limit]: cut(v, depth + 1) for k, v in items}
        if isinstance(value, list):
            return [cut(v, depth + 1) for v in value[:32]] if depth <= 4 else []
        return value

    out = cut(data)
    out["agentwatch_truncated"] = True
    if len(orjson.dumps(out)) > max_bytes and isinstance(out.get("action"), dict):
        out["action"].pop("args", None)  # the last resort: args is optional in the contract
    return out


# -- header rules shared by the tracker, the store and the CLI --------------------------------


def _earliest(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    ta, tb = parse_time(a), parse_time(b)
    if ta is None or tb is None:
        return min(a, b)
    return a if ta <= tb else b


def _later(a: str | None, b: str | None) -> bool:
    """True if time ``b`` is after time ``a`` (None counts as earliest)."""
    if b is None:
        return False
    if a is None:
        return True
    ta, tb = parse_time(a), parse_time(b)
    if ta is None or tb is None:
        return b > a
    return tb > ta


def merge_headers(stored: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """Merge two versions of an incident header; the result does not depend on arrival order.

    Severity and peak risk take the maximum, first/opened/triaged/contained times the earliest,
    status the furthest along (a closed incident stays closed with its first closure's
    disposition), the assignee the most recently assigned, counts the maximum, id lists the union.
    """
    out = dict(stored)
    for key, value in incoming.items():
        if key not in out or out[key] is None:
            out[key] = value
    if _sev_rank(incoming.get("severity")) > _sev_rank(stored.get("severity")):
        out["severity"] = incoming["severity"]
    out["peak_risk"] = max(_number(stored.get("peak_risk")) or 0, _number(incoming.get("peak_risk")) or 0)
    for key in ("opened_at", "first_event_at", "detected_at", "triaged_at", "contained_at"):
        out[key] = _earliest(stored.get(key), incoming.get(key))
    if _later(stored.get("updated_at"), incoming.get("updated_at")):
        out["updated_at"] = incoming["updated_at"]
    s_rank = STATUS_RANK.get(stored.get("status", "open"), 0)
    i_rank = STATUS_RANK.get(incoming.get("status", "open"), 0)
    if i_rank > s_rank:
        out["status"] = incoming["status"]
        if incoming.get("status") in TERMINAL:
            for key in ("disposition", "resolved_at", "resolved_by"):
                out[key] = incoming.get(key)
    elif s_rank == i_rank == 3:
        # both closed: the earlier closure stands (ties by text so the order does not matter)
        a = (parse_time(stored.get("resolved_at")) or 0, str(stored.get("disposition")))
        b = (parse_time(incoming.get("resolved_at")) or 0, str(incoming.get("disposition")))
        if b < a:
            for key in ("status", "disposition", "resolved_at", "resolved_by"):
                out[key] = incoming.get(key)
    if _later(stored.get("assigned_at"), incoming.get("assigned_at")) or (
        stored.get("assigned_at") == incoming.get("assigned_at")
        and str(incoming.get("assignee") or "") > str(stored.get("assignee") or "")
    ):
        out["assignee"] = incoming.get("assignee")
        out["assigned_at"] = incoming.get("assigned_at")
    counts = dict(stored.get("counts") or {})
    for key, value in (incoming.get("counts") or {}).items():
        counts[key] = max(int(counts.get(key, 0)), int(value))
    out["counts"] = counts
    for key, cap in (("alert_ids", _ALERT_IDS_CAP), ("techniques", _TECHNIQUES_CAP)):
        merged = list(stored.get(key) or [])
        for item in incoming.get(key) or []:
            if item not in merged and len(merged) < cap:
                merged.append(item)
        out[key] = merged
    out["timeline_total"] = max(int(stored.get("timeline_total", 0)), int(incoming.get("timeline_total", 0)))
    out["version"] = max(int(stored.get("version", 0)), int(incoming.get("version", 0)))
    return out


def analyst_update(
    header: dict[str, Any],
    *,
    by: str,
    ts: str,
    status: str | None = None,
    assignee: str | None = None,
    disposition: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Apply an analyst's decision to a header; returns ``(new_header, notes)``.

    ``notes`` says what changed or why nothing did (a closed incident is not reopened; status
    never moves backwards). Used by the tracker for control messages and by the CLI directly.
    """
    h = dict(header)
    notes: list[str] = []
    current = h.get("status", "open")
    if current in TERMINAL:
        return h, [f"incident already {current}; nothing changed"]
    if assignee:
        h["assignee"], h["assigned_at"] = assignee, ts
        notes.append(f"assigned to {assignee}")
        if current == "open" and status is None:
            status = "triaged"
    if disposition == "false_positive" and status in (None, "resolved"):
        status = "false_positive"
    if status in TERMINAL and disposition is None:
        disposition = "false_positive" if status == "false_positive" else "true_positive"
    if status is not None:
        if status not in STATUS_RANK:
            notes.append(f"unknown status {status!r} ignored")
        elif STATUS_RANK[status] < STATUS_RANK.get(current, 0) or (status == current):
            notes.append(f"status stays {current}")
        else:
            h["status"] = status
            notes.append(f"status {current} -> {status}")
            if status == "triaged":
                h["triaged_at"] = h.get("triaged_at") or ts
            elif status == "contained":
                h["contained_at"] = h.get("contained_at") or ts
            elif status in TERMINAL:
                h["disposition"] = disposition
                h["resolved_at"] = ts
                h["resolved_by"] = by
                h["triaged_at"] = h.get("triaged_at") or ts
                notes.append(f"disposition {disposition}")
    h["updated_at"] = ts if _later(h.get("updated_at"), ts) else h.get("updated_at")
    return h, notes


def new_header(
    incident_id: str,
    agent_id: str,
    *,
    opened_at: str,
    first_event_at: str | None,
    detected_at: str | None = None,
    owner: str | None = None,
    enforcement_point: str | None = None,
    environment: str | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "incident_id": incident_id,
        "version": 0,
        "agent_id": agent_id,
        "owner": owner,
        "enforcement_point": enforcement_point,
        "environment": environment,
        "title": title,
        "severity": "info",
        "peak_risk": 0,
        "status": "open",
        "assignee": None,
        "assigned_at": None,
        "disposition": None,
        "resolved_by": None,
        "opened_at": opened_at,
        "first_event_at": first_event_at or opened_at,
        "detected_at": detected_at or first_event_at or opened_at,
        "triaged_at": None,
        "contained_at": None,
        "resolved_at": None,
        "updated_at": opened_at,
        "alert_ids": [],
        "techniques": [],
        "counts": {"events": 0, "findings": 0, "alerts": 0, "commands": 0, "acks": 0, "analyst_actions": 0},
        "timeline_total": 0,
        "timeline_dropped": 0,
    }


def make_entry(
    incident_id: str, kind: str, ref: str, ts: str, actor: str, summary: str,
    data: dict[str, Any], *extra_key: object, entry_id: str | None = None,
) -> dict[str, Any]:
    """One timeline entry; its id derives from the incident, kind and reference only (a caller
    that already derived it, to check it against the entries seen, passes it as ``entry_id``)."""
    return {
        "entry_id": entry_id or deterministic_id("tle_", incident_id, kind, ref, *extra_key),
        "ts": ts,
        "type": kind,
        "ref": ref,
        "actor": actor,
        "summary": _one_line(summary),
        "data": data,
    }


# -- the tracker --------------------------------------------------------------------------------


class _Touched:
    """Incidents touched while handling one input: the entries added and the header before."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.before: dict[tuple[str, str], dict[str, Any] | None] = {}

    def touch(self, agent_id: str, inc: dict[str, Any]) -> list[dict[str, Any]]:
        key = (agent_id, inc["h"]["incident_id"])
        if key not in self.entries:
            self.before[key] = _copy_header(inc["h"]) if inc["h"]["version"] else None
            self.entries[key] = []
        return self.entries[key]


class IncidentTracker:
    """Opens incidents from alerts and commands and keeps their headers; see the module doc.

    Implements :class:`detectors.base.Stateful`: ``dirty_agents()`` returns the agents changed
    since its previous call and clears that set.
    """

    name = "incidents"

    def __init__(self, settings: IncidentSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self._agents: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()

    # -- Stateful ---------------------------------------------------------------------------

    def load_state(self, agent_id: str, blob: Any | None) -> None:
        state: dict[str, Any] = {"open": {}}
        if isinstance(blob, dict) and isinstance(blob.get("open"), dict):
            for inc_id, inc in blob["open"].items():
                if isinstance(inc, dict) and isinstance(inc.get("h"), dict):
                    state["open"][str(inc_id)] = copy.deepcopy(inc)
        self._agents[agent_id] = state

    def dump_state(self, agent_id: str) -> Any | None:
        state = self._agents.get(agent_id)
        if not state or not state["open"]:
            return None
        return state  # live, not a copy: checkpoint blobs are encoded before the next event

    def dirty_agents(self) -> set[str]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def forget(self, agent_id: str) -> None:
        self._agents.pop(agent_id, None)

    # -- queries ----------------------------------------------------------------------------

    def has_open(self, agent_id: str) -> bool:
        """True while the agent has an incident that is not resolved (no baseline learning)."""
        state = self._agents.get(agent_id)
        return bool(state and state["open"])

    def open_incidents(self, agent_id: str) -> list[dict[str, Any]]:
        """Headers of the agent's open incidents, oldest first (copies)."""
        state = self._agents.get(agent_id)
        return [copy.deepcopy(inc["h"]) for inc in state["open"].values()] if state else []

    # -- inputs -----------------------------------------------------------------------------

    def on_outputs(self, event: Event | None, outputs: Iterable[Output]) -> list[Output]:
        """Alerts and enforcement commands produced for ``event`` (or by a timer when None)."""
        if isinstance(outputs, list) and not outputs:
            return []  # the common case: called for every event, most produce nothing
        touched = _Touched()
        enriched: dict[str, Any] | None = None
        items: list[Output] = []
        audit: list[Output] = []
        for out in outputs:
            if out.kind == "enforcement" or (out.kind == "alerts" and out.value.get("kind") not in _NO_INCIDENT):
                items.append(out)
            elif out.kind == "alerts":
                audit.append(out)
            elif out.kind == "enriched" and event is not None:
                enriched = out.value.get("agentwatch") if isinstance(out.value, dict) else None
        for out in items:
            value = out.value
            agent_id = str(value.get("agent_id") or (event.agent_id if event is not None else ""))
            if not agent_id:
                continue
            this_event = event if event is not None and event.agent_id == agent_id else None
            inc = self._incident_for(agent_id, value, this_event)
            if this_event is not None:
                self._add_event(inc, touched.touch(agent_id, inc), this_event, enriched)
            if out.kind == "alerts":
                self._add_alert(inc, touched.touch(agent_id, inc), value)
            else:
                self._add_command(inc, touched.touch(agent_id, inc), value)
        for out in audit:
            # audit records (a suppression created) join an open incident but never open one
            state = self._agents.get(str(out.value.get("agent_id") or ""))
            if state and state["open"]:
                inc = state["open"].get(str(out.value.get("incident_id") or "")) or list(state["open"].values())[-1]
                self._add_alert(inc, touched.touch(inc["h"]["agent_id"], inc), out.value, count=False)
        if not items and event is not None and enriched and enriched.get("findings"):
            # a suspicious event of an agent under investigation is evidence even without an alert
            state = self._agents.get(event.agent_id)
            if state and state["open"]:
                inc = list(state["open"].values())[-1]
                self._add_event(inc, touched.touch(event.agent_id, inc), event, enriched)
        return self._emit(touched)

    def on_ack(self, ack: dict[str, Any]) -> list[Output]:
        """An enforcement acknowledgement (applied / rejected / expired) joins the timeline."""
        agent_id = str(ack.get("agent_id") or "")
        state = self._agents.get(agent_id)
        if not state or not state["open"]:
            return []
        command_id = str(ack.get("command_id") or "")
        inc = None
        for candidate in state["open"].values():
            if command_id and command_id in candidate["cmds"]:
                inc = candidate
                break
        if inc is None:
            inc = state["open"].get(str(ack.get("incident_id") or "")) or list(state["open"].values())[-1]
        h = inc["h"]
        status = str(ack.get("status") or ack.get("result") or "unknown")
        ack_ts = parse_time(ack.get("acked_at") or ack.get("ts"))
        ts = iso_time(ack_ts) if ack_ts is not None else iso_time(self.clock())
        action, issued = (inc["cmds"].get(command_id) or [ack.get("action"), None])[:2]
        data = dict(ack)
        if issued is not None and ack_ts is not None:
            data["ack_seconds"] = round(max(0.0, ack_ts - float(issued)), 3)
        data["command_action"] = action
        where = ack.get("enforcement_point") or h.get("enforcement_point") or "enforcement point"
        took = f" after {data['ack_seconds']:.3f}s" if "ack_seconds" in data else ""
        entry = make_entry(h["incident_id"], "ack", command_id or str(ack.get("ack_id")), ts, str(where),
                           f"{action or 'command'} {status} at {where}{took}", data, status)
        touched = _Touched()
        entries = touched.touch(agent_id, inc)
        if self._append(inc, entries, entry, "acks") and status == "applied" \
                and action in self.settings.containment_actions \
                and STATUS_RANK.get(h["status"], 0) < STATUS_RANK["contained"]:
            h["status"] = "contained"
            h["contained_at"] = _earliest(h.get("contained_at"), ts)
        return self._emit(touched)

    def on_control(self, msg: dict[str, Any]) -> list[Output]:
        """Analyst actions: ``incident_update`` changes an incident; ``release`` and
        ``suppression`` are recorded on the agent's open incident's timeline."""
        kind = msg.get("type")
        agent_id = str(msg.get("agent_id") or "")
        state = self._agents.get(agent_id)
        if not state or not state["open"]:
            return []
        raw_payload = msg.get("payload")
        payload: dict[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
        by = str(msg.get("by") or "unknown")
        ts_num = parse_time(msg.get("ts"))
        ts = iso_time(ts_num) if ts_num is not None else iso_time(self.clock())
        control_id = str(msg.get("control_id") or deterministic_id("ctl_", agent_id, kind, ts, by))
        comment = payload.get("comment") or msg.get("reason")
        touched = _Touched()
        if kind == "incident_update":
            inc = state["open"].get(str(payload.get("incident_id") or ""))
            if inc is None:
                return []
            h, notes = analyst_update(
                inc["h"], by=by, ts=ts, status=payload.get("status"),
                assignee=payload.get("assignee"), disposition=payload.get("disposition"),
            )
            data = {"action": "incident_update", "by": by, "comment": comment, "notes": notes}
            for key in ("status", "assignee", "disposition"):
                if payload.get(key) is not None:
                    data[key] = payload[key]
            if payload.get("suppression"):
                data["suppression"] = payload["suppression"]
            entry = make_entry(h["incident_id"], "analyst", control_id, ts, by,
                               f"{by}: {'; '.join(notes) or 'comment'}" + (f" — {comment}" if comment else ""), data)
            if self._append(inc, touched.touch(agent_id, inc), entry, "analyst_actions"):
                inc["h"], _ = analyst_update(
                    inc["h"], by=by, ts=ts, status=payload.get("status"),
                    assignee=payload.get("assignee"), disposition=payload.get("disposition"),
                )
        elif kind in ("release", "suppression"):
            inc = list(state["open"].values())[-1]
            h = inc["h"]
            data = {"action": kind, "by": by, "comment": comment, "payload": payload}
            what = "released the agent" if kind == "release" else "created a suppression"
            entry = make_entry(h["incident_id"], "analyst", control_id, ts, by,
                               f"{by} {what}" + (f" — {comment}" if comment else ""), data)
            self._append(inc, touched.touch(agent_id, inc), entry, "analyst_actions")
        else:
            return []
        return self._emit(touched)

    # -- internals --------------------------------------------------------------------------

    def _incident_for(self, agent_id: str, value: dict[str, Any], event: Event | None) -> dict[str, Any]:
        state = self._agents.setdefault(agent_id, {"open": {}})
        named = value.get("incident_id")
        if named and named in state["open"]:
            return state["open"][named]
        if not named and state["open"]:
            return list(state["open"].values())[-1]
        if not named:
            first = event.event_id if event is not None else str(
                (value.get("event_ids") or [None])[0] or value.get("alert_id") or value.get("command_id"))
            named = incident_id_for(agent_id, first)
        data = event.data if event is not None else {}
        now = iso_time(self.clock())
        first_ts = parse_time(value.get("first_seen")) or (event.ts if event is not None else None)
        detected_ts = event.ts if event is not None else parse_time(value.get("last_seen"))
        h = new_header(
            str(named), agent_id,
            opened_at=now,
            first_event_at=iso_time(first_ts) if first_ts is not None else None,
            detected_at=iso_time(detected_ts) if detected_ts is not None else None,
            owner=value.get("owner") or data.get("owner"),
            enforcement_point=value.get("enforcement_point") or data.get("enforcement_point"),
            environment=value.get("environment") or data.get("environment"),
        )
        inc = {"h": h, "seen": [], "cmds": {}, "nev": 0, "nfind": 0}
        state["open"][str(named)] = inc
        while len(state["open"]) > self.settings.max_open_per_agent:
            # the oldest leaves this worker's memory; it stays open in the store for analysts
            state["open"].pop(next(iter(state["open"])))
        return inc

    def _append(self, inc: dict[str, Any], entries: list[dict[str, Any]], entry: dict[str, Any],
                counter: str | None) -> bool:
        """Add ``entry`` unless seen recently; returns whether it was added."""
        seen = inc["seen"]
        if entry["entry_id"] in seen:
            return False
        h = inc["h"]
        if h["timeline_total"] >= self.settings.max_timeline_entries and entry["type"] in ("event", "finding"):
            h["timeline_dropped"] = h.get("timeline_dropped", 0) + 1
            return False
        seen.append(entry["entry_id"])
        if len(seen) > _SEEN_CAP:
            del seen[: len(seen) - _SEEN_CAP]
        entries.append(entry)
        h["timeline_total"] += 1
        if counter:
            h["counts"][counter] = h["counts"].get(counter, 0) + 1
        if _later(h.get("updated_at"), entry["ts"]):
            h["updated_at"] = entry["ts"]
        return True

    def _add_event(self, inc: dict[str, Any], entries: list[dict[str, Any]], event: Event,
                   enriched: dict[str, Any] | None) -> None:
        h = inc["h"]
        inc_id = h["incident_id"]
        entry_id = deterministic_id("tle_", inc_id, "event", event.event_id)
        if entry_id in inc["seen"]:
            return
        if inc["nev"] >= self.settings.max_evidence_events:
            h["counts"]["events"] += 1  # counted, not kept
            h["timeline_dropped"] = h.get("timeline_dropped", 0) + 1
            inc["seen"].append(entry_id)
            return
        action = event.action
        data: dict[str, Any] = {"event": trim_event(event.data, self.settings.evidence_event_max_bytes)}
        if enriched:
            data["risk_score"] = enriched.get("risk_score")
            risk = _number(enriched.get("risk_score"))
            if risk is not None and risk > h["peak_risk"]:
                h["peak_risk"] = risk
        summary = f"{action.get('kind')} {action.get('tool')}: {action.get('command')} [{event.data.get('decision')}]"
        entry = make_entry(inc_id, "event", event.event_id, iso_time(event.ts), event.agent_id, summary, data,
                           entry_id=entry_id)
        if self._append(inc, entries, entry, "events"):
            inc["nev"] += 1
            first = h.get("first_event_at")
            h["first_event_at"] = _earliest(first, entry["ts"])
            for f in (enriched or {}).get("findings") or ():
                self._add_finding(inc, entries, f, event.event_id, entry["ts"])

    def _add_finding(self, inc: dict[str, Any], entries: list[dict[str, Any]], finding: dict[str, Any],
                     event_id: str, ts: str) -> None:
        if not isinstance(finding, dict) or inc["nfind"] >= self.settings.max_findings:
            return
        h = inc["h"]
        ref = f"{finding.get('detector')}:{finding.get('id')}"
        entry = make_entry(h["incident_id"], "finding", ref, ts, str(finding.get("detector") or "detector"),
                           f"[{finding.get('severity')}] {ref}: {finding.get('reason')}",
                           {"event_id": event_id, "finding": finding}, event_id)
        if self._append(inc, entries, entry, "findings"):
            inc["nfind"] += 1
            technique = finding.get("technique")
            if technique and technique not in h["techniques"] and len(h["techniques"]) < _TECHNIQUES_CAP:
                h["techniques"].append(technique)

    def _add_alert(self, inc: dict[str, Any], entries: list[dict[str, Any]], alert: dict[str, Any],
                   count: bool = True) -> None:
        h = inc["h"]
        if not count:
            title = alert.get("title") or alert.get("kind") or "record"
            ts_num = parse_time(alert.get("created_at") or alert.get("last_seen"))
            ts = iso_time(ts_num) if ts_num is not None else iso_time(self.clock())
            entry = make_entry(h["incident_id"], "alert", str(alert.get("alert_id")), ts, "agentwatch",
                               f"[{_severity(alert.get('severity'))}] {title}", dict(alert), "audit")
            self._append(inc, entries, entry, None)
            return
        alert_id = str(alert.get("alert_id") or deterministic_id("alr_", orjson.dumps(alert, option=orjson.OPT_SORT_KEYS)))
        severity = _severity(alert.get("severity"))
        risk = alert_risk(alert)
        if _sev_rank(severity) > _sev_rank(h["severity"]):
            h["severity"] = severity
        if risk > h["peak_risk"]:
            h["peak_risk"] = risk
        title = alert.get("title") or alert.get("summary") or alert.get("reason") or alert.get("rule") or "alert"
        if not h.get("title"):
            h["title"] = _one_line(title, 160)
        for key in ("owner", "enforcement_point", "environment"):
            if not h.get(key) and alert.get(key):
                h[key] = alert[key]
        first = parse_time(alert.get("first_seen"))
        if first is not None:
            h["first_event_at"] = _earliest(h.get("first_event_at"), iso_time(first))
        ts_num = parse_time(alert.get("last_seen") or alert.get("created_at") or alert.get("ts"))
        ts = iso_time(ts_num) if ts_num is not None else iso_time(self.clock())
        data = {k: v for k, v in alert.items() if k not in ("evidence", "evidence_events")}
        n = alert.get("count")
        what = f"[{severity}] {title}" + (f" (x{n})" if isinstance(n, int) and n > 1 else "")
        # one entry per alert and severity: a grouped alert that grows does not flood the timeline
        entry = make_entry(h["incident_id"], "alert", alert_id, ts, "agentwatch", what, data, severity)
        self._append(inc, entries, entry, None)
        if alert_id not in h["alert_ids"]:
            if len(h["alert_ids"]) < _ALERT_IDS_CAP:
                h["alert_ids"].append(alert_id)
            h["counts"]["alerts"] += 1
        for ev in alert.get("evidence_events") or alert.get("evidence") or ():
            if isinstance(ev, dict) and "event_id" in ev and "agent_id" in ev:
                ev_ts = parse_time(ev.get("ts"))
                if ev_ts is not None:
                    self._add_event(inc, entries, Event(data=ev, ts=ev_ts), None)
        for technique in alert.get("techniques") or ():
            if technique not in h["techniques"] and len(h["techniques"]) < _TECHNIQUES_CAP:
                h["techniques"].append(technique)

    def _add_command(self, inc: dict[str, Any], entries: list[dict[str, Any]], cmd: dict[str, Any]) -> None:
        h = inc["h"]
        command_id = str(cmd.get("command_id") or deterministic_id("cmd_", orjson.dumps(cmd, option=orjson.OPT_SORT_KEYS)))
        action = str(cmd.get("action") or "command")
        issued = parse_time(cmd.get("issued_at"))
        ts = iso_time(issued) if issued is not None else iso_time(self.clock())
        mode = cmd.get("mode")
        where = cmd.get("enforcement_point") or h.get("enforcement_point")
        reason = cmd.get("reason")
        if isinstance(reason, list):
            reason = ", ".join(str(r.get("name") or r.get("id") or r) if isinstance(r, dict) else str(r) for r in reason[:3])
        summary = f"{action} sent to {where}" + (f" ({mode})" if mode and mode != "enforce" else "") + (f": {reason}" if reason else "")
        entry = make_entry(h["incident_id"], "command", command_id, ts, str(cmd.get("issued_by") or "agentwatch"), summary, dict(cmd))
        if self._append(inc, entries, entry, "commands"):
            cmds = inc["cmds"]
            cmds[command_id] = [action, issued]
            while len(cmds) > _CMD_CAP:
                cmds.pop(next(iter(cmds)))

    def _emit(self, touched: _Touched) -> list[Output]:
        outputs: list[Output] = []
        for (agent_id, inc_id), entries in touched.entries.items():
            state = self._agents.get(agent_id)
            inc = state["open"].get(inc_id) if state else None
            if state is None or inc is None:
                continue
            self._dirty.add(agent_id)
            h = inc["h"]
            if not entries and h == touched.before.get((agent_id, inc_id)):
                continue
            h["version"] += 1
            record = _copy_header(h)
            record["timeline"] = entries
            outputs.append(Output("incidents", inc_id, record))
            if h["status"] in TERMINAL:
                del state["open"][inc_id]
        return outputs
