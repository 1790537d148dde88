"""What every baseline shares: the per-event observation and how a finding is made.

A baseline component has ``name``, ``score(obs) -> list[Finding]`` (pure: reads state, may
record what it computed in the ``Obs`` for learning and for the multivariate model) and
``learn(obs)`` (updates the agent's state and its role profile). Components are called in a fixed
order by :class:`~detectors.baselines.composite.BaselineDetector`.
"""

from __future__ import annotations

from typing import Any

from detectors.baselines.features import Features
from detectors.baselines.state import AgentState, RoleProfile
from detectors.events import Event, Finding, Severity

__all__ = ["Obs", "fmt_bytes", "fmt_span", "make_finding"]


class Obs:
    """One event as the baselines see it, with the state it is judged against, and what the
    baselines computed about it while scoring (so learning does not compute it again).

    A plain ``__slots__`` object rather than dicts of signals: it is built for every event.
    """

    __slots__ = (
        "count",
        "event",
        "f",
        "findings",
        "fleet",
        "item_keys",
        "mature",
        "mv_fired",
        "mv_raw",
        "mv_x",
        "nov_new",
        "nov_seen",
        "nov_write",
        "novel",
        "role",
        "seq_from",
        "seq_p",
        "seq_pair",
        "seq_prev",
        "st",
        "vol_z",
    )

    def __init__(
        self,
        event: Event,
        f: Features,
        st: AgentState | None,
        role: RoleProfile,
        fleet: RoleProfile,
        mature: bool,
    ) -> None:
        self.event = event
        self.f = f
        self.st = st
        self.role = role
        self.fleet = fleet
        self.mature = mature
        #: per item: (key, packed meta or -1, novel?, index in the agent's item table or -1)
        self.item_keys: list[tuple[int, int, bool, int]] = []
        self.findings: list[Finding] = []
        self.count = 1  # actions in the current minute, this one included (rate)
        self.novel = 0.0  # summed strength of this event's first uses (novelty, mature agents)
        self.nov_seen = 0  # bit per category of the event's items (novelty)
        self.nov_new = 0  # bit per category with a new item
        self.nov_write = False  # learning writes the item table (new item, first use of a day)
        self.vol_z = 0.0  # largest volume z-score against the agent's own norm
        self.seq_prev = ""  # previous action symbol ("^" at a session start)
        #: transition-table lookups: (key, meta or -1, index or -1) of "from prev" and the pair
        self.seq_from: tuple[int, int, int] | None = None
        self.seq_pair: tuple[int, int, int] | None = None
        self.seq_p = 1.0  # smoothed probability of the transition
        self.mv_x: tuple[int, ...] | None = None  # multivariate vector (grid steps)
        self.mv_raw: float | None = None  # its raw HST score
        self.mv_fired = False


def make_finding(
    component: str,
    check: str,
    strength: float,
    reason: str,
    context: dict[str, Any],
    technique: str | None = None,
    tactic: str | None = None,
) -> Finding:
    """A baseline finding. ``strength`` in [0, 1] maps to a 20-80 risk contribution: baselines
    say "unusual", which alone never makes a critical; rules and the risk formula escalate."""
    s = max(0.0, min(1.0, strength))
    if s >= 0.8:
        sev = Severity.HIGH
    elif s >= 0.55:
        sev = Severity.MEDIUM
    else:
        sev = Severity.LOW
    ctx = dict(context)
    ctx["strength"] = round(s, 3)
    return Finding(
        detector=f"baseline.{component}",
        id=f"baseline.{component}.{check}",
        severity=sev,
        score=round(20.0 + 60.0 * s, 1),
        reason=reason,
        technique=technique,
        tactic=tactic,
        context=ctx,
    )


def fmt_bytes(n: float) -> str:
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000.0 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"  # pragma: no cover


def fmt_span(seconds: float) -> str:
    """A history span as an analyst says it: "14 days", "5 hours"."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{max(1, round(seconds / 60)):.0f} minutes"


def fmt_pct(x: float) -> str:
    p = 100.0 * x
    if p == 0:
        return "0%"
    if p < 1:
        return f"{p:.1f}%"
    return f"{p:.0f}%"
