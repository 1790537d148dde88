"""A reference command gate: what an enforcement point does with each rung of the ladder.

    gate = Gate()                       # receiver callback: gate.apply, on_expire: gate.expire
    decision = gate.check(event)        # "allow" | "deny" | "approval_required"

Per agent, the rung in force decides (each rung is stricter than the one before):

=====================  ======================================================================
(none)                 allow
``require_approval``   approval_required for every action (a human approves it; then the
                       proxy publishes the event with decision ``approved``)
``step_down``          allow read-only actions (``read_only(action)``), deny the rest
``revoke_tokens``      like step_down, and deny any action that uses a delegated token
``isolate``            deny everything
=====================  ======================================================================

A ``release`` clears the rung; a command past its ``expires_at`` (by ``clock``) no longer counts.
The gate is thread-safe: the receiver thread applies commands while request threads check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pipeline.enforcement.ladder import RELEASE
from pipeline.enforcement.policy import is_read_only
from pipeline.records import epoch_of

__all__ = ["Gate"]




class Gate:
    """Refuses actions of agents under a rung of the isolation ladder."""

    def __init__(self, *, read_only: Callable[[Mapping[str, Any]], bool] = is_read_only,
                 clock: Callable[[], float] = time.time) -> None:
        self.read_only = read_only
        self.clock = clock
        self._lock = threading.Lock()
        self._rungs: dict[str, tuple[str, float | None, str]] = {}  # agent -> (rung, expires, command_id)
        self.applied: list[str] = []  # command ids in the order applied (bounded)

    def apply(self, command: Mapping[str, Any]) -> None:
        """Receiver callback: put the command's rung in force (or clear it on release)."""
        agent = str(command["agent_id"])
        action = str(command["action"])
        with self._lock:
            if action == RELEASE:
                self._rungs.pop(agent, None)
            else:
                self._rungs[agent] = (action, epoch_of(command.get("expires_at")), str(command["command_id"]))
            self.applied.append(str(command["command_id"]))
            del self.applied[:-10_000]

    def expire(self, command: Mapping[str, Any]) -> None:
        """Receiver ``on_expire``: drop the rung if this command is still the one in force."""
        with self._lock:
            current = self._rungs.get(str(command["agent_id"]))
            if current is not None and current[2] == command.get("command_id"):
                del self._rungs[str(command["agent_id"])]

    def rung(self, agent_id: str) -> str | None:
        with self._lock:
            current = self._rungs.get(agent_id)
        if current is None:
            return None
        rung, expires, _ = current
        if expires is not None and self.clock() >= expires:
            return None
        return rung

    def isolated(self) -> dict[str, str]:
        """Every agent with a rung in force now."""
        with self._lock:
            agents = list(self._rungs)
        return {a: r for a in agents if (r := self.rung(a)) is not None}

    def check(self, event: Mapping[str, Any]) -> str:
        """The decision for an agent-action event (or any mapping with agent_id and action)."""
        rung = self.rung(str(event.get("agent_id", "")))
        if rung is None:
            return "allow"
        if rung == "isolate":
            return "deny"
        if rung == "require_approval":
            return "approval_required"
        action = event.get("action")
        action = action if isinstance(action, Mapping) else {}
        if rung == "revoke_tokens" and event.get("delegation"):
            return "deny"
        return "allow" if self.read_only(action) else "deny"
