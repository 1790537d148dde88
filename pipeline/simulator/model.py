"""The simulator's small value types: an agent, one step it takes, and a seeded drawing helper.

A :class:`Step` is what a role's task generator returns: the ``action`` of one event plus its
policy decision and the wait before it. The fleet turns steps into contract events (ids, times,
identity fields); generators never see time, ids or the wall clock, so they stay pure functions of
their :class:`Draw` (a ``random.Random`` seeded from the fleet seed) and the :class:`Agent`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

__all__ = ["Agent", "Draw", "Step", "call_text"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Step:
    """One action an agent takes: the event's ``action`` object plus decision and pacing.

    ``gap_s`` is the wait in seconds before this step (after the previous one ends).
    """

    kind: str
    tool: str
    command: str
    target: str | None = None
    args: dict[str, Any] | None = None
    bytes_out: int | None = None
    rows: int | None = None
    decision: str = "allow"
    approver: str | None = None
    gap_s: float = 0.0

    def action(self) -> dict[str, Any]:
        """The contract's ``action`` object (optional fields only when known)."""
        out: dict[str, Any] = {"kind": self.kind, "tool": self.tool, "command": self.command}
        if self.target is not None:
            out["target"] = self.target
        if self.args is not None:
            out["args"] = self.args
        if self.bytes_out is not None:
            out["bytes_out"] = self.bytes_out
        if self.rows is not None:
            out["rows"] = self.rows
        return out


@dataclass(frozen=True, slots=True)
class Agent:
    """One simulated AI agent and the identity fields its events carry.

    Working hours are in the agent's local time (``utc_offset_h``); ``focus`` holds the subsets of
    :mod:`pipeline.simulator.pools` this agent usually works on (its habits).
    """

    agent_id: str
    role: str
    owner: str
    environment: str
    enforcement_point: str
    tenant: str
    source_ip: str
    region: str
    utc_offset_h: int
    work_start_h: int
    work_end_h: int
    workdays: frozenset[int]
    engine: str
    unix_user: str
    focus: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def local_hour(self, ts_ms: int) -> float:
        """Hour of day (0-24, fractional) in the agent's local time."""
        return ((ts_ms / 3_600_000.0) + self.utc_offset_h) % 24.0

    def local_weekday(self, ts_ms: int) -> int:
        """0 = Monday ... 6 = Sunday, in the agent's local time (the epoch was a Thursday)."""
        days = math.floor((ts_ms + self.utc_offset_h * 3_600_000) / 86_400_000)
        return (days + 3) % 7

    def is_working(self, ts_ms: int) -> bool:
        """Inside the agent's working hours on one of its working days."""
        hour = self.local_hour(ts_ms)
        return self.local_weekday(ts_ms) in self.workdays and self.work_start_h <= hour < self.work_end_h


class Draw:
    """Seeded choices for task generators; every random decision goes through here."""

    __slots__ = ("agent", "pools", "r")

    def __init__(self, r: random.Random, agent: Agent, pools: Mapping[str, Sequence[str]]) -> None:
        self.r = r
        self.agent = agent
        self.pools = pools

    def pick(self, pool: str, stray: float = 0.08) -> str:
        """Mostly from the agent's focus subset of ``pool``; with probability ``stray`` from all."""
        focus = self.agent.focus.get(pool)
        if focus and self.r.random() >= stray:
            return self.r.choice(focus)
        return self.r.choice(tuple(self.pools[pool]))

    def one(self, seq: Sequence[T]) -> T:
        return self.r.choice(seq)

    def n(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return self.r.randint(lo, hi)

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def hex(self, n: int) -> str:
        return f"{self.r.getrandbits(4 * n):0{n}x}"

    def gap(self, median: float, spread: float = 0.8, lo: float = 0.3, hi: float = 900.0) -> float:
        """Seconds, log-normal around ``median`` (agents act in bursts with a long tail)."""
        value = self.r.lognormvariate(math.log(median), spread)
        return round(min(max(value, lo), hi), 3)

    def volume(self, median: int, spread: float = 1.0, lo: int = 0) -> int:
        """A log-normal count (rows, bytes) around ``median``."""
        return max(lo, int(self.r.lognormvariate(math.log(max(median, 1)), spread)))


def call_text(tool: str, args: Mapping[str, Any]) -> str:
    """How a tool call reads in ``action.command``: ``send_email(to="a@b", subject="...")``."""
    parts = [f"{k}={orjson.dumps(v).decode()}" for k, v in args.items()]
    return f"{tool}({', '.join(parts)})"
