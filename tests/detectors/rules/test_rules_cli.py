"""`agentwatch rules test|lint|list`: exit codes and one-line problems for CI."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.cli import main

GOOD = """
title: No netcat listeners
id: 5c0e0a4e-8f43-4a8e-9f51-1b1f2f3c4d5e
name: team.nc_listener
status: test
level: medium
description: Netcat listening on a port exposes a shell or data; triage who connected to it.
tags: [attack.command-and-control, attack.t1095]
logsource: {product: ai_agent, category: shell}
detection:
  selection: {shell.program: [nc, ncat], shell.flags: -l}
  condition: selection
risk_score: 40
tests:
  match: ["nc -lvnp 4444"]
  no_match: ["nc -zv db.internal 5432"]
"""


def team_dir(tmp_path: Path, text: str = GOOD) -> Path:
    d = tmp_path / "team"
    d.mkdir(exist_ok=True)
    (d / "nc_listener.yml").write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return d


def test_rules_test_and_lint_pass_on_the_builtin_catalog(
    capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    assert main(["rules", "test"]) == 0
    assert "0 failed" in capsys.readouterr().out
    assert main(["rules", "lint"]) == 0
    assert "0 errors" in capsys.readouterr().out


def test_user_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    d = team_dir(tmp_path)
    assert main(["rules", "test", str(d)]) == 0
    assert "1 rules, 2 cases: 2 passed" in capsys.readouterr().out
    assert main(["rules", "lint", str(d)]) == 0


def test_failing_case_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    d = team_dir(
        tmp_path, GOOD.replace('no_match: ["nc -zv db.internal 5432"]', 'no_match: ["nc -l 8080"]')
    )
    assert main(["rules", "test", str(d)]) == 1
    assert "1 failed" in capsys.readouterr().out


def test_lint_errors_exit_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    bad = GOOD.replace("attack.t1095", "attack.tx999").replace(
        "tests:\n  match", "tests_:\n  match"
    )
    d = team_dir(tmp_path, bad)
    assert main(["rules", "lint", str(d)]) == 1
    out = capsys.readouterr().out
    assert "unknown ATT&CK tag 'attack.tx999'" in out
    assert "unknown rule field 'tests_'" in out
    assert f"{d / 'nc_listener.yml'}:" in out


def test_broken_file_is_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    d = team_dir(tmp_path, GOOD.replace("shell.program: [nc, ncat]", "shell.program: [nc, ncat"))
    assert main(["rules", "test", str(d)]) == 1
    err = capsys.readouterr().err
    assert "nc_listener.yml:" in err and "Traceback" not in err


def test_lint_catches_yaml_null_in_value_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    d = team_dir(tmp_path, GOOD.replace("shell.program: [nc, ncat]", "shell.program: [nc, ~]"))
    assert main(["rules", "lint", str(d)]) == 1
    assert "quote '~'" in capsys.readouterr().out


def test_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    assert main(["rules", "lint", str(tmp_path / "nope")]) == 2
    assert "no such rule directory" in capsys.readouterr().err


def test_list(capsys: pytest.CaptureFixture[str], clean_env: None) -> None:
    assert main(["rules", "list"]) == 0
    assert "active rules" in capsys.readouterr().out
