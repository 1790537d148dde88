"""Inline rule tests: every rule carries events that must match and events that must not.

A test case is either a string (the command of a ``shell`` event, or the query of a ``sql`` event
when the rule's ``logsource.category`` is ``sql``) or a mapping merged onto a default event;
dotted keys are allowed (``{action.command: "...", environment: prod}``). The default event is
a complete, valid agent action (dev environment, decision allow, Monday 10:00 UTC).

Cases run through the whole compiled rule set, so exceptions (including operators' extension
files) and predicates apply exactly as in the worker.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detectors.base import Event
from detectors.rulebook.detector import RuleSet
from detectors.rulebook.model import Rule

__all__ = ["CaseResult", "make_event", "run_tests"]

DEFAULT_TS = "2026-03-02T10:00:00Z"  # a Monday, within working hours
_DEFAULT_TOOL = {"sql": "postgres", "http": "http", "file": "fs", "tool_call": "mcp"}


@dataclass(frozen=True, slots=True)
class CaseResult:
    rule_id: str
    kind: str  # "match" or "no_match"
    index: int
    passed: bool
    path: str
    line: int
    summary: str  # the command/query or a short form of the event
    detail: str = ""

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    cur = target
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[parts[-1]] = value


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if "." in key:
            _set_dotted(target, key, value)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def make_event(case: Any, category: str | None = None, name: str = "case") -> Event:
    """The event a test case describes (see the module docstring)."""
    kind = category or "shell"
    data: dict[str, Any] = {
        "schema_version": "1",
        "event_id": f"test-{name}",
        "ts": DEFAULT_TS,
        "agent_id": "agent-test",
        "owner": "owner@example.com",
        "session_id": "session-test",
        "environment": "dev",
        "enforcement_point": "test",
        "action": {"kind": kind, "tool": _DEFAULT_TOOL.get(kind, kind), "command": ""},
        "decision": "allow",
    }
    if isinstance(case, str):
        data["action"]["command"] = case
        if kind == "shell":
            first = case.split(None, 1)[0] if case.split() else "sh"
            data["action"]["tool"] = first.rsplit("/", 1)[-1] or "sh"
        elif kind in ("http", "file"):
            data["action"]["target"] = case
    elif isinstance(case, dict):
        _merge(data, case)
        action = data.get("action")
        if (
            isinstance(action, dict)
            and action.get("kind") == "shell"
            and "tool" not in _keys(case, "action")
        ):
            cmd = action.get("command")
            if isinstance(cmd, str) and cmd.split():
                action["tool"] = cmd.split(None, 1)[0].rsplit("/", 1)[-1] or "sh"
    else:
        raise ValueError("a test case must be a command string or an event mapping")
    ts = _epoch(data.get("ts"))
    return Event(data=data, ts=ts)


def _keys(case: dict[str, Any], section: str) -> set[str]:
    out: set[str] = set()
    for k, v in case.items():
        if k == section and isinstance(v, dict):
            out.update(v)
        elif k.startswith(section + "."):
            out.add(k[len(section) + 1 :])
    return out


def _epoch(ts: Any) -> float:
    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
        return float(ts)
    if isinstance(ts, str):
        try:
            return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return datetime.fromisoformat(DEFAULT_TS.replace("Z", "+00:00")).timestamp()


def _summary(case: Any) -> str:
    if isinstance(case, str):
        text = case
    elif isinstance(case, dict):
        got = case.get("action")
        action: dict[str, Any] = got if isinstance(got, dict) else {}
        text = str(case.get("action.command") or action.get("command") or case)
    else:
        text = repr(case)
    text = " ".join(text.split())
    return text if len(text) <= 100 else text[:99] + "…"


def run_tests(ruleset: RuleSet, rules: list[Rule] | None = None) -> list[CaseResult]:
    """Run the inline tests of ``rules`` (default: every rule of the set) through ``ruleset``."""
    out: list[CaseResult] = []
    matcher = ruleset.matcher
    compiled_ids = {cr.rule.id for cr in matcher.rules}
    for rule in rules if rules is not None else ruleset.rules:
        for kind in ("match", "no_match"):
            for i, case in enumerate(rule.tests.get(kind, [])):
                line = rule.line_of("tests", kind, i)
                summary = _summary(case)
                if rule.id not in compiled_ids:
                    out.append(
                        CaseResult(
                            rule.id,
                            kind,
                            i,
                            True,
                            rule.path,
                            line,
                            summary,
                            "rule disabled: not run",
                        )
                    )
                    continue
                try:
                    event = make_event(case, rule.category, f"{rule.id}-{kind}-{i}")
                except ValueError as exc:
                    out.append(
                        CaseResult(rule.id, kind, i, False, rule.path, line, summary, str(exc))
                    )
                    continue
                fired = {h.rule.rule.id for h in matcher.match(event)}
                hit = rule.id in fired
                passed = hit if kind == "match" else not hit
                detail = ""
                if not passed:
                    detail = "did not fire" if kind == "match" else "fired but must not"
                out.append(CaseResult(rule.id, kind, i, passed, rule.path, line, summary, detail))
    return out
