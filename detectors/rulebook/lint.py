"""Rule linting: what ``agentwatch rules lint`` reports.

Errors (non-zero exit): YAML/Sigma schema errors, unknown rule fields and detection fields,
invalid modifiers or RE2 patterns, bad ATT&CK tags, rules without an ATT&CK tactic or technique,
duplicate rule ids or Sigma UUIDs, ids that do not predict the file name, missing title /
description / level / status, rules without ``match`` or ``no_match`` tests, unknown lists,
predicates or exception targets. Warnings: no risk_score, short descriptions, no Sigma UUID,
skipped non-``ai_agent`` rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from detectors.rulebook.compiler import compile_rules
from detectors.rulebook.loader import BUILTIN_DIR, load_catalog
from detectors.rulebook.model import Problem, Rule
from detectors.rulebook.predicates import PREDICATES, PredicateContext

__all__ = ["lint"]

MIN_DESCRIPTION = 40


def _check_rule(rule: Rule) -> list[Problem]:
    out: list[Problem] = []

    def err(msg: str, *key: str, severity: str = "error") -> None:
        out.append(Problem(rule.path, rule.line_of(*key), msg, severity, rule.id))

    raw = rule.raw
    stem = Path(rule.path).stem
    if "name" not in raw:
        err(
            "no 'name': the rule id defaults to the Sigma id; give a name like '<family>.<file stem>'",
            severity="warning",
        )
    elif rule.id.rsplit(".", 1)[-1] != stem:
        err(f"rule id {rule.id!r} does not predict its file name ({stem}.yml)", "name")
    if rule.builtin and "name" in raw and rule.id.split(".", 1)[0] != Path(rule.path).parent.name:
        err(
            f"rule id {rule.id!r} must start with its family directory '{Path(rule.path).parent.name}.'",
            "name",
        )
    if "id" not in raw:
        err("no Sigma 'id' (a UUID)", severity="error" if rule.builtin else "warning")
    for key in ("title", "description", "level", "status"):
        if not raw.get(key):
            err(f"missing '{key}'")
    desc = str(raw.get("description") or "")
    if raw.get("description") and len(desc.strip()) < MIN_DESCRIPTION:
        err(
            "description is too short: say what it means and how to triage it",
            "description",
            severity="warning",
        )
    if "risk_score" not in raw:
        err("no 'risk_score': the level's default is used", severity="warning")
    if not rule.tactics:
        err("no ATT&CK tactic tag (e.g. attack.impact)", "tags")
    if not rule.techniques:
        err("no ATT&CK technique tag (e.g. attack.t1485)", "tags")
    detection = raw.get("detection")
    if isinstance(detection, dict):
        for block, body in detection.items():
            items = body if isinstance(body, list) else [body]
            for item in items:
                if not isinstance(item, dict):
                    continue
                for key, value in item.items():
                    if isinstance(value, list) and any(v is None for v in value):
                        err(
                            f"{key}: a null in a value list (YAML reads ~ and empty items as null: quote '~')",
                            "detection",
                            block,
                            key,
                        )
    tests = rule.tests
    if not tests.get("match"):
        err("no 'match' test cases", "tests")
    if not tests.get("no_match"):
        err("no 'no_match' test cases", "tests")
    return out


def lint(
    directories: Sequence[Path],
    *,
    builtin: bool = True,
    lists: dict[str, list[str]] | None = None,
    internal_domains: Sequence[str] = ("internal", "corp", "local"),
    only: Sequence[Path] | None = None,
) -> list[Problem]:
    """Every problem in the built-in catalog (if ``builtin``) and ``directories``.

    ``only`` restricts the report to files under those paths (the others are loaded as context:
    lists and rules that exception files refer to).
    """
    cat = load_catalog(list(directories), builtin=builtin, lists=lists)
    problems = list(cat.problems)
    seen_ids: dict[str, Rule] = {}
    seen_uuids: dict[str, Rule] = {}
    for rule in cat.rules:
        problems.extend(_check_rule(rule))
        first = seen_ids.get(rule.id)
        if first is not None:
            problems.append(
                Problem(
                    rule.path,
                    rule.line,
                    f"duplicate rule id {rule.id!r} (first at {first.path}:{first.line})",
                    "error",
                    rule.id,
                )
            )
        else:
            seen_ids[rule.id] = rule
        if rule.sigma_id:
            u = str(uuid.UUID(rule.sigma_id))
            other = seen_uuids.get(u)
            if other is not None:
                problems.append(
                    Problem(
                        rule.path,
                        rule.line_of("id"),
                        f"duplicate Sigma id {u} (also {other.path})",
                        "error",
                        rule.id,
                    )
                )
            else:
                seen_uuids[u] = rule
    ctx = PredicateContext(tuple(internal_domains), tuple(cat.lists.get("sensitive_tables", [])))
    _, compile_problems = compile_rules(
        [r for r in cat.rules if seen_ids.get(r.id) is r],
        cat.lists,
        [(e.rule, e.spec) for e in cat.extensions],
        internal_domains,
        PREDICATES,
        ctx,
    )
    problems.extend(compile_problems)
    if only is not None:
        roots = [Path(p).resolve() for p in only]
        problems = [p for p in problems if _under(Path(p.path), roots)]
    # stable order: file, line
    problems.sort(key=lambda p: (p.path, p.line, p.message))
    return problems


def _under(path: Path, roots: list[Path]) -> bool:
    try:
        rp = path.resolve()
    except OSError:
        return False
    return any(rp == r or r in rp.parents for r in roots)


def builtin_dir() -> Path:
    return BUILTIN_DIR
