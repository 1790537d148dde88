"""Rule detectors: declarative Sigma-style rules compiled into one linear-time matcher.

    RuleDetector(settings.rules)   the catalog (built-in + settings.rules.directories) as a Detector
    PolicyDetector(settings.rules) per-agent/config policy signals (Detector + Stateful)
    load_rules(settings, dirs)     load and compile a rule set; raises RuleLoadError(file:line ...)
    lint(dirs) / run_tests(ruleset) what `agentwatch rules lint|test` run

See docs/rules.md for the rule format, the built-in catalog and measured costs.
"""

from __future__ import annotations

from detectors.rulebook.detector import RuleDetector, RuleSet, load_rules
from detectors.rulebook.lint import lint
from detectors.rulebook.model import Problem, Rule, RuleLoadError
from detectors.rulebook.policy import PolicyDetector, is_destructive
from detectors.rulebook.testing import CaseResult, make_event, run_tests

__all__ = [
    "CaseResult",
    "PolicyDetector",
    "Problem",
    "Rule",
    "RuleDetector",
    "RuleLoadError",
    "RuleSet",
    "is_destructive",
    "lint",
    "load_rules",
    "make_event",
    "run_tests",
]
