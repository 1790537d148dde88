"""What every baseline shares: the per-event observation and how a finding is made.

A baseline component has ``name``, ``score(obs) -> list[Finding]`` (pure: reads state, may
write its signals into ``obs.signals`` for the multivariate model) and ``learn(obs)`` (updates the
agent's state and its role profile). Components are called in a fixed order by
:class:`~detectors.baselines.composite.BaselineDetector`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors.base import Event, Finding, Severity
from detectors.baselines.features import Features
from detectors.baselines.state import AgentState, RoleProfile

__all__ = ["Obs", "fmt_bytes", "fmt_span", "make_finding"]


@dataclass(slots=True)
class Obs:
    """One event as the baselines see it, with the state it is judged against."""

    event: Event
    f: Features
    st: AgentState | None
    role: RoleProfile
    fleet: RoleProfile
    mature: bool
    #: per item index: (key, packed meta or -1, novel?) filled by the novelty baseline
    item_keys: list[tuple[int, int, bool]] = field(default_factory=list)
    #: 0-1 signals the multivariate model reads (0 = usual, 1 = very unusual)
    signals: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


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
