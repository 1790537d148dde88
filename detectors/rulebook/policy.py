"""``PolicyDetector``: policy signals that need per-agent state or configuration.

- ``policy.denied_spike`` — at least ``denied_spike_threshold`` denied actions (``deny`` or
  ``denied``) of one agent within ``denied_spike_window_seconds`` of event time: an agent probing
  its guardrails. Reported once per window (then quiet until the window has passed).
- ``policy.tool_not_allowed`` — the agent's role has an allowed tool list
  (``role_allowed_tools``; ``*`` suffix = prefix match) and the action's tool is not in it.
- ``policy.change_freeze`` — a destructive action (see :func:`is_destructive`) in an environment
  under a configured change-freeze window.
- ``policy.off_hours`` — activity outside the owner's working hours (``working_hours`` per owner,
  else ``default_working_hours``; off when neither is set), in the owner's time zone.

Only event time (``event.ts``) is used, never the wall clock, so replays give the same findings.
Per-agent state is the recent denied timestamps (at most ``4 x threshold``, capped at 1,024) and
a quiet-until time: a JSON blob via :class:`detectors.base.Stateful`.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from detectors.events import Event, Finding, Severity
from detectors.rulebook.fields import shell_of, sql_of

if TYPE_CHECKING:
    from pipeline.settings import RulesSettings, WorkingHours

__all__ = ["PolicyDetector", "is_destructive"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DESTRUCTIVE_SQL = frozenset({"DROP", "TRUNCATE", "DELETE", "ALTER", "UPDATE", "MERGE"})
_DESTRUCTIVE_PROGRAMS = frozenset(
    {"shred", "wipefs", "mkfs", "dropdb", "fdisk", "parted", "sfdisk"}
)
_SUBCOMMAND_VERBS = {
    "terraform": {"destroy", "apply", "import", "taint"},
    "tofu": {"destroy", "apply"},
    "pulumi": {"destroy", "up"},
    "kubectl": {"delete", "drain", "replace", "scale", "apply", "patch", "cordon", "rollout"},
    "oc": {"delete", "drain", "replace", "scale", "apply", "patch"},
    "helm": {"uninstall", "delete", "rollback", "upgrade", "install"},
    "docker": {"rm", "rmi", "prune", "kill", "stop"},
    "podman": {"rm", "rmi", "prune", "kill", "stop"},
    "systemctl": {"stop", "disable", "mask", "kill", "restart"},
    "git": {"push"},
}
_CLOUD = frozenset({"aws", "gcloud", "az", "doctl", "oci"})
_DANGER_WORDS = ("delete", "destroy", "terminate", "drop", "remove", "purge", "truncate", "wipe")


def is_destructive(event: Event) -> bool:
    """Whether the action changes or destroys production state (shell, SQL or tool call)."""
    for st, _src, _span in sql_of(event):
        if st.kind in _DESTRUCTIVE_SQL:
            return True
    parsed = shell_of(event)
    if parsed is not None:
        for c in parsed.commands:
            p = c.program
            if p in _DESTRUCTIVE_PROGRAMS or p.startswith("mkfs"):
                return True
            if p == "rm" and any(
                a.startswith("-") and ("r" in a or "R" in a or a == "--recursive") for a in c.args
            ):
                return True
            if p == "dd" and any(a.startswith("of=") for a in c.args):
                return True
            verbs = _SUBCOMMAND_VERBS.get(p)
            if verbs is not None and any(a in verbs for a in c.args[:4]):
                return True
            if p in _CLOUD and any(
                a.startswith(_DANGER_WORDS) or a in ("rm", "rb") for a in c.args[:6]
            ):
                return True
            if p == "redis-cli" and any(a.upper() in ("FLUSHALL", "FLUSHDB") for a in c.args):
                return True
    action = event.data.get("action") or {}
    kind = action.get("kind")
    if kind in ("tool_call", "file", "http"):
        words = " ".join(str(action.get(k) or "") for k in ("tool", "command")).lower()
        if kind == "http":
            words = str(action.get("command") or "").lower()
            return words.startswith("delete")
        return any(w in words for w in _DANGER_WORDS)
    return False


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class _Hours:
    __slots__ = ("days", "end", "start", "tz")

    def __init__(self, wh: WorkingHours) -> None:
        self.tz = ZoneInfo(wh.timezone)
        self.start = _minutes(wh.start)
        self.end = _minutes(wh.end)
        self.days = frozenset(_DAYS.index(d) for d in wh.days)

    def outside(self, ts: float) -> tuple[bool, str]:
        local = datetime.fromtimestamp(ts, UTC).astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        if self.start <= self.end:
            inside = local.weekday() in self.days and self.start <= minute < self.end
        else:  # overnight shift: the day is the one the shift started on
            if minute >= self.start:
                inside = local.weekday() in self.days
            elif minute < self.end:
                inside = (local.weekday() - 1) % 7 in self.days
            else:
                inside = False
        return (not inside), local.strftime("%a %H:%M %Z")


class PolicyDetector:
    """Policy findings; implements Detector and Stateful. See the module docstring."""

    name = "policy"
    #: risk contribution of each finding
    SCORES = {
        "policy.denied_spike": (Severity.MEDIUM, 35.0),
        "policy.tool_not_allowed": (Severity.MEDIUM, 40.0),
        "policy.change_freeze": (Severity.HIGH, 60.0),
        "policy.off_hours": (Severity.LOW, 15.0),
    }

    def __init__(self, settings: RulesSettings) -> None:
        self.settings = settings
        self.threshold = int(settings.denied_spike_threshold)
        self.window = float(settings.denied_spike_window_seconds)
        self.maxlen = min(self.threshold * 4, 1024)
        self._denied: dict[str, deque[float]] = {}
        self._quiet: dict[str, float] = {}
        self._dirty: set[str] = set()
        self._allowed: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}
        for role, tools in settings.role_allowed_tools.items():
            exact = frozenset(t.lower() for t in tools if not t.endswith("*"))
            prefixes = tuple(t[:-1].lower() for t in tools if t.endswith("*"))
            self._allowed[role.lower()] = (exact, prefixes)
        self._freezes = [
            (
                f.start.timestamp(),
                f.end.timestamp(),
                frozenset(e.lower() for e in f.environments),
                f.name,
            )
            for f in settings.change_freezes
        ]
        self._hours = {owner: _Hours(wh) for owner, wh in settings.working_hours.items()}
        self._default_hours = (
            _Hours(settings.default_working_hours) if settings.default_working_hours else None
        )

    # -- Detector ------------------------------------------------------------------------------

    def score_one(self, event: Event) -> list[Finding]:
        data = event.data
        out: list[Finding] = []
        agent = str(data.get("agent_id", ""))
        ts = event.ts
        if data.get("decision") in ("deny", "denied"):
            count = self._denied_count(agent, ts) + 1
            if count >= self.threshold and self._quiet.get(agent, float("-inf")) <= ts:
                out.append(
                    self._finding(
                        "policy.denied_spike",
                        f"{count} denied actions within {self.window:g} s (threshold {self.threshold})",
                        {
                            "denied": count,
                            "window_seconds": self.window,
                            "threshold": self.threshold,
                        },
                        "decision",
                    )
                )
        role = data.get("agent_role")
        if isinstance(role, str) and role.lower() in self._allowed:
            tool = str((data.get("action") or {}).get("tool") or "")
            exact, prefixes = self._allowed[role.lower()]
            t = tool.lower()
            if t not in exact and not any(t.startswith(p) for p in prefixes):
                out.append(
                    self._finding(
                        "policy.tool_not_allowed",
                        f"tool {tool!r} is not among the tools allowed for role {role!r}",
                        {
                            "tool": tool,
                            "role": role,
                            "allowed": sorted(exact) + [p + "*" for p in prefixes],
                        },
                        "action.tool",
                    )
                )
        if self._freezes:
            env = str(data.get("environment", "")).lower()
            for start, end, envs, fname in self._freezes:
                if start <= ts < end and env in envs and is_destructive(event):
                    out.append(
                        self._finding(
                            "policy.change_freeze",
                            f"destructive action in {env} during {fname!r}",
                            {"freeze": fname, "environment": env},
                            "action.command",
                            tactic="TA0040",
                        )
                    )
                    break
        owner = data.get("owner")
        hours = self._hours.get(owner) if isinstance(owner, str) else None
        hours = hours or self._default_hours
        if hours is not None:
            outside, local = hours.outside(ts)
            if outside:
                out.append(
                    self._finding(
                        "policy.off_hours",
                        f"activity outside {owner}'s working hours ({local})",
                        {"owner_local_time": local},
                        "ts",
                    )
                )
        return out

    def learn_one(self, event: Event) -> None:
        data = event.data
        if data.get("decision") not in ("deny", "denied"):
            return
        agent = str(data.get("agent_id", ""))
        ts = event.ts
        count = self._denied_count(agent, ts) + 1
        if count >= self.threshold and self._quiet.get(agent, float("-inf")) <= ts:
            self._quiet[agent] = ts + self.window  # reported: quiet until the window has passed
        q = self._denied.get(agent)
        if q is None:
            q = self._denied[agent] = deque(maxlen=self.maxlen)
        q.append(ts)
        newest = max(q)
        while q and q[0] < newest - self.window:
            q.popleft()
        self._dirty.add(agent)

    def _denied_count(self, agent: str, ts: float) -> int:
        q = self._denied.get(agent)
        if not q:
            return 0
        lo = ts - self.window
        return sum(1 for t in q if lo <= t <= ts)

    def _finding(
        self, fid: str, reason: str, context: dict[str, Any], field: str, tactic: str | None = None
    ) -> Finding:
        severity, score = self.SCORES[fid]
        return Finding(self.name, fid, severity, score, reason, None, tactic, field, None, context)

    # -- Stateful ------------------------------------------------------------------------------

    def load_state(self, agent_id: str, blob: Any | None) -> None:
        self._denied.pop(agent_id, None)
        self._quiet.pop(agent_id, None)
        if not isinstance(blob, dict):
            return
        denied = blob.get("denied")
        if isinstance(denied, list):
            vals = [
                float(x) for x in denied if isinstance(x, (int, float)) and not isinstance(x, bool)
            ]
            if vals:
                self._denied[agent_id] = deque(vals[-self.maxlen :], maxlen=self.maxlen)
        quiet = blob.get("quiet_until")
        if isinstance(quiet, (int, float)) and not isinstance(quiet, bool):
            self._quiet[agent_id] = float(quiet)

    def dump_state(self, agent_id: str) -> Any | None:
        q = self._denied.get(agent_id)
        quiet = self._quiet.get(agent_id)
        if not q and quiet is None:
            return None
        blob: dict[str, Any] = {"denied": list(q) if q else []}
        if quiet is not None:
            blob["quiet_until"] = quiet
        return blob

    def dirty_agents(self) -> set[str]:
        out = self._dirty
        self._dirty = set()
        return out

    def forget(self, agent_id: str) -> None:
        self._denied.pop(agent_id, None)
        self._quiet.pop(agent_id, None)
        self._dirty.discard(agent_id)
