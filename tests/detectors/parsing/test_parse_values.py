"""The parsers' results keep the value semantics of the dataclasses they replaced (plain classes
now, for the compiled build): equal by value, hashed by value where those were frozen, printable,
copyable and picklable."""

from __future__ import annotations

import copy
import pickle

import pytest

from detectors.parsing import shell, sql


def test_sql_results_compare_and_hash_by_value() -> None:
    text = "SELECT * FROM users u WHERE 1=1; DROP TABLE audit_log"
    a, b = sql._parse(text, False), sql._parse(text, False)  # two parses, not the cache's one object
    assert a is not b and a == b and hash(a) == hash(b)
    assert a.statements[0] == b.statements[0] and hash(a.statements[0]) == hash(b.statements[0])
    assert a != sql._parse("SELECT * FROM users u WHERE 1=2; DROP TABLE audit_log", False)
    assert a.statements[0] != a.statements[1]
    assert len({a, b}) == 1
    assert repr(a.statements[1]).startswith("SqlStatement(kind='DROP', object_type='TABLE', tables=('audit_log',)")
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a


def test_shell_results_compare_by_value_and_commands_stay_unhashable() -> None:
    text = "sudo rm -rf /var/log > /dev/null 2>&1 | tee out"
    a, b = shell._parse(text, False), shell._parse(text, False)
    assert a is not b and a == b
    assert a != shell._parse("sudo rm -rf /var/lib", False)
    cmd = a.commands[0]
    assert cmd == b.commands[0] and cmd.program == "rm" and cmd.wrappers == ("sudo",)
    assert cmd.redirects[0] == b.commands[0].redirects[0] and hash(cmd.redirects[0]) == hash(b.commands[0].redirects[0])
    for unhashable in (cmd, a):  # a mutable dataclass had no hash, nor a frozen one holding it
        with pytest.raises(TypeError):
            hash(unhashable)
    assert repr(cmd).startswith("SimpleCommand(program='rm', args=('-rf', '/var/log')")
    assert pickle.loads(pickle.dumps(a)) == a and copy.copy(cmd) == cmd
    assert (a == "not a parse") is False
