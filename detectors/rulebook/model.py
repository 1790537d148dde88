"""What a loaded rule is, and the problems loading or linting can report.

A :class:`Rule` is one Sigma rule (parsed by pySigma) plus agentwatch's metadata, kept in custom
fields of the same YAML document:

``risk_score`` (0-100 risk contribution), ``tests`` (``match`` / ``no_match`` events),
``exceptions`` (structured carve-outs), ``predicate`` (name of a registered Python predicate: the
escape hatch), ``enabled`` (default true) and ``reason`` (a one-line template; ``{match}`` is the
matched text).

Its id is the Sigma ``name`` field (``<family>.<file stem>``, e.g. ``destructive.rm_rf_root`` in
``destructive/rm_rf_root.yml``); Sigma's ``id`` keeps the UUID. Plain Sigma rules without a
``name`` use their UUID.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors.base import Severity

__all__ = [
    "EXCEPTION_COMPS",
    "LEVELS",
    "ExceptionSpec",
    "Problem",
    "Rule",
    "RuleLoadError",
]

#: Sigma levels -> our severities (Sigma says ``informational``; we also accept ``info``)
LEVELS: dict[str, Severity] = {
    "informational": Severity.INFO,
    "info": Severity.INFO,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}
#: risk contribution when a rule gives none
DEFAULT_RISK = {
    Severity.INFO: 5,
    Severity.LOW: 20,
    Severity.MEDIUM: 40,
    Severity.HIGH: 65,
    Severity.CRITICAL: 90,
}
EXCEPTION_COMPS = ("equals", "startswith", "endswith", "contains", "in", "cidr")


@dataclass(frozen=True, slots=True)
class Problem:
    """One error or warning about a rule file, printed as ``file:line: message``."""

    path: str
    line: int
    message: str
    severity: str = "error"  # "error" or "warning"
    rule_id: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class RuleLoadError(Exception):
    """Rule files could not be loaded; ``problems`` lists every error (``file:line: message``)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = str(problems[0]) if problems else "rule files could not be loaded"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


@dataclass(slots=True)
class ExceptionSpec:
    """A structured exception: the rule does not fire when, for one of ``values`` (a tuple per
    entry, one item per field), every ``fields[i]`` compares true with ``comps[i]``."""

    name: str
    fields: list[str]
    comps: list[str]
    values: list[list[Any]]
    path: str = ""
    line: int = 0


@dataclass(slots=True)
class Rule:
    id: str
    title: str
    path: str
    line: int
    sigma: Any  # sigma.rule.SigmaRule
    description: str = ""
    status: str = "experimental"
    level: Severity = Severity.MEDIUM
    risk_score: float = 40.0
    tactics: list[str] = field(default_factory=list)
    techniques: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    category: str | None = None
    family: str = ""
    builtin: bool = False
    enabled: bool = True
    exceptions: list[ExceptionSpec] = field(default_factory=list)
    tests: dict[str, list[Any]] = field(default_factory=dict)
    predicate: str | None = None
    reason: str | None = None
    sigma_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    #: pySigma condition trees (one per Sigma condition; OR-ed)
    condition: list[Any] = field(default_factory=list)
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)

    @property
    def tactic(self) -> str | None:
        return self.tactics[0] if self.tactics else None

    @property
    def technique(self) -> str | None:
        return self.techniques[0] if self.techniques else None

    def line_of(self, *path: Any) -> int:
        """Line of the YAML key at ``path`` (or the closest parent that has one)."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.line
