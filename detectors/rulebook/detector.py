"""``RuleDetector``: the rule catalog as a :class:`detectors.base.Detector`.

``RuleDetector(settings)`` loads the built-in catalog plus ``settings.directories`` and compiles
them into one matcher; a broken rule file at start-up raises :class:`RuleLoadError` listing every
``file:line: message``. ``score_one(event)`` returns one :class:`Finding` per rule that fires
(no state change); ``learn_one`` is a no-op. ``reload_if_changed()`` compares the rule files'
(path, mtime, size) with the last load — cheap enough to call every second — and re-loads on
change; if the new files are invalid the previous rule set stays active and the problems are
returned as ``["file:line: message", ...]``. ``reload()`` forces it (for SIGHUP).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors.events import Event, Finding
from detectors.rulebook.compiler import Hit, Matcher, compile_rules
from detectors.rulebook.fields import event_value
from detectors.rulebook.loader import BUILTIN_DIR, Catalog, load_catalog
from detectors.rulebook.model import Problem, Rule, RuleLoadError
from detectors.rulebook.predicates import PREDICATES, PredicateContext

if TYPE_CHECKING:
    from pipeline.settings import RulesSettings

__all__ = ["RuleDetector", "RuleSet", "load_rules"]

_SNIPPET = 160


@dataclass(slots=True)
class RuleSet:
    """A compiled rule set and what loading it reported (warnings only: errors raise)."""

    matcher: Matcher
    rules: list[Rule]
    catalog: Catalog
    warnings: list[Problem]

    @property
    def rule_count(self) -> int:
        return len(self.matcher.rules)


def _settings_lists(settings: RulesSettings | None) -> dict[str, list[str]]:
    if settings is None:
        return {}
    return {
        "internal_domains": list(settings.internal_domains),
        "sensitive_tables": [t.lower() for t in settings.sensitive_tables],
    }


def load_rules(
    settings: RulesSettings | None = None,
    directories: Sequence[Path | str] | None = None,
    *,
    builtin: bool | None = None,
) -> RuleSet:
    """Load and compile rules: the built-in catalog (unless ``builtin`` is false or
    ``settings.builtin`` is false) plus ``directories`` (default ``settings.directories``).

    Raises :class:`RuleLoadError` with every error found (``file:line: message``).
    """
    dirs = [
        Path(d)
        for d in (
            directories if directories is not None else (settings.directories if settings else [])
        )
    ]
    use_builtin = (
        builtin if builtin is not None else (settings.builtin if settings is not None else True)
    )
    cat = load_catalog(dirs, builtin=use_builtin, lists=_settings_lists(settings))
    problems = list(cat.problems)
    # duplicate ids: the later file loses
    seen: dict[str, Rule] = {}
    rules: list[Rule] = []
    for r in cat.rules:
        first = seen.get(r.id)
        if first is not None:
            problems.append(
                Problem(
                    r.path,
                    r.line,
                    f"duplicate rule id {r.id!r} (first defined at {first.path}:{first.line})",
                    "error",
                    r.id,
                )
            )
            continue
        seen[r.id] = r
        rules.append(r)
    disabled = set(settings.disabled_rules) if settings is not None else set()
    active = [r for r in rules if r.id not in disabled]
    internal = (
        tuple(settings.internal_domains) if settings is not None else ("internal", "corp", "local")
    )
    ctx = PredicateContext(
        internal_domains=internal,
        sensitive_tables=tuple(cat.lists.get("sensitive_tables", [])),
    )
    matcher, compile_problems = compile_rules(
        active,
        cat.lists,
        [(e.rule, e.spec) for e in cat.extensions],
        internal,
        PREDICATES,
        ctx,
        cache_entries=settings.command_cache_entries if settings is not None else 20_000,
        cache_bytes=int((settings.command_cache_mib if settings is not None else 32.0) * 2**20),
    )
    problems.extend(compile_problems)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise RuleLoadError(errors)
    return RuleSet(matcher, rules, cat, [p for p in problems if p.severity != "error"])


def _snippet(text: str) -> str:
    s = " ".join(text.split())
    return s if len(s) <= _SNIPPET else s[: _SNIPPET - 1] + "…"


class RuleDetector:
    """Rule findings for one event at a time. See the module docstring."""

    name = "rules"
    #: score_one reads only the event and the rule set; learn_one does nothing (see detectors.base)
    stateless = True

    def __init__(
        self,
        settings: RulesSettings | None = None,
        *,
        directories: Sequence[Path | str] | None = None,
    ) -> None:
        self.settings = settings
        self._dirs = [
            Path(d)
            for d in (
                directories
                if directories is not None
                else (settings.directories if settings else [])
            )
        ]
        self._ruleset = load_rules(settings, self._dirs)
        self._signature = self._stat()

    # -- Detector ------------------------------------------------------------------------------

    def score_one(self, event: Event) -> list[Finding]:
        matcher = self._ruleset.matcher
        return [self._finding(hit, event, matcher) for hit in matcher.match(event)]

    def learn_one(self, event: Event) -> None:
        return None

    # -- rule set ------------------------------------------------------------------------------

    @property
    def rule_count(self) -> int:
        return self._ruleset.rule_count

    @property
    def ruleset(self) -> RuleSet:
        return self._ruleset

    @property
    def warnings(self) -> list[str]:
        return [str(p) for p in self._ruleset.warnings]

    def reload_if_changed(self) -> list[str]:
        """Re-load when a rule file changed; returns the problems (empty when all is well)."""
        sig = self._stat()
        if sig == self._signature:
            return []
        return self._reload(sig)

    def reload(self) -> list[str]:
        """Re-load now (SIGHUP); on error the previous rule set stays active."""
        return self._reload(self._stat())

    def _reload(self, sig: tuple[Any, ...]) -> list[str]:
        self._signature = sig  # don't retry a broken file on every call; retry when it changes
        try:
            new = load_rules(self.settings, self._dirs)
        except RuleLoadError as exc:
            return exc.lines()
        self._ruleset = new
        return []

    def _stat(self) -> tuple[Any, ...]:
        roots = [BUILTIN_DIR] if (self.settings is None or self.settings.builtin) else []
        roots += self._dirs
        out: list[tuple[str, int, int]] = []
        for root in roots:
            _walk(str(root), out, 0)
        return tuple(out)

    # -- findings ------------------------------------------------------------------------------

    def _finding(self, hit: Hit, event: Event, matcher: Matcher) -> Finding:
        cr = hit.rule
        rule = cr.rule
        fname: str | None = None
        span: tuple[int, int] | None = None
        matched = ""
        if hit.view is not None:
            fname = hit.view.source_field
            span = hit.view.span
            matched = hit.view.text
        elif hit.pid is not None:
            pred = matcher.preds[hit.pid]
            values = event_value(event.data, pred.field)
            fname = pred.field
            if values:
                value = values[0]
                span = matcher.span_of(hit.pid, value) if values is not None else None
                matched = (
                    value[span[0] : span[1]]
                    if span is not None and pred.op in ("contains", "re")
                    else value
                )
            else:  # a derived field (target.host, args.values, ...)
                from detectors.rulebook.fields import EventFields

                derived = EventFields(event, matcher.internal_domains).get(pred.field)
                matched = derived[0] if derived else ""
                span = None
        snippet = _snippet(matched)
        if rule.reason:
            try:
                reason = rule.reason.format(match=snippet, title=rule.title)
            except (KeyError, IndexError, ValueError):
                reason = f"{rule.title}: {snippet}"
        else:
            reason = f"{rule.title}: {snippet}" if snippet else rule.title
        return Finding(
            detector=self.name,
            id=rule.id,
            severity=rule.level,
            score=rule.risk_score,
            reason=reason,
            technique=rule.technique,
            tactic=rule.tactic,
            field=fname,
            span=span,
            context={"title": rule.title, "matched": snippet, "status": rule.status},
        )


def _walk(path: str, out: list[tuple[str, int, int]], depth: int) -> None:
    if depth > 16:
        return
    try:
        st = os.stat(path)
    except OSError:
        out.append((path, -1, -1))
        return
    out.append((path, st.st_mtime_ns, st.st_size))
    if os.path.isdir(path):
        try:
            names = sorted(os.listdir(path))
        except OSError:
            return
        for name in names:
            if name.startswith(".") or name == "__pycache__":
                continue
            full = os.path.join(path, name)
            if name.endswith((".yml", ".yaml")) or os.path.isdir(full):
                _walk(full, out, depth + 1)
