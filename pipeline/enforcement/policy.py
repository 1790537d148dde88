"""Which actions count as read-only: what still passes when an agent is stepped down.

The default predicate :func:`is_read_only` is deliberately strict (unknown means not read-only):
an enforcement point with a richer policy passes its own predicate to the Gate. The pipeline uses
the same predicate to judge whether a stepped-down agent's allowed actions were legitimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["READ_ONLY_SHELL_TOOLS", "is_read_only"]

READ_ONLY_SHELL_TOOLS = frozenset({
    "ls", "cat", "head", "tail", "grep", "pwd", "whoami", "id", "wc", "stat", "df", "du", "ps",
    "date", "uname", "echo", "find", "less", "file", "which", "hostname", "uptime",
})
_SHELL_META = frozenset(";|&><`$\n\\")
_SQL_READ = ("select", "show", "explain", "describe", "desc")
_TOOL_READ_PREFIXES = ("get_", "list_", "read_", "search_", "describe_", "fetch_", "query_")
_FILE_READ_TOOLS = frozenset({"read", "read_file", "cat", "stat", "list", "ls", "open_read", "head", "tail"})
_HTTP_READ = frozenset({"GET", "HEAD", "OPTIONS"})


def is_read_only(action: Mapping[str, Any]) -> bool:
    """True when the action cannot change anything (by a conservative reading).

    >>> is_read_only({"kind": "sql", "tool": "psql", "command": "SELECT * FROM t"})
    True
    >>> is_read_only({"kind": "sql", "tool": "psql", "command": "SELECT 1; DROP TABLE t"})
    False
    >>> is_read_only({"kind": "shell", "tool": "ls", "command": "ls -la /tmp > x"})
    False
    """
    kind = str(action.get("kind", ""))
    tool = str(action.get("tool", "")).strip().lower()
    command = str(action.get("command", ""))
    if kind == "shell":
        return tool in READ_ONLY_SHELL_TOOLS and not (_SHELL_META & set(command))
    if kind == "sql":
        text = command.strip().rstrip(";").strip()
        if ";" in text:
            return False
        first = text.split(None, 1)[0].lower() if text else ""
        return first in _SQL_READ and " into " not in f" {text.lower()} "
    if kind == "http":
        args = action.get("args")
        method = str(args.get("method", "")) if isinstance(args, Mapping) else ""
        if not method:
            method = command.strip().split(None, 1)[0] if command.strip() else ""
        return method.upper() in _HTTP_READ
    if kind == "file":
        return tool in _FILE_READ_TOOLS
    if kind == "tool_call":
        return tool.startswith(_TOOL_READ_PREFIXES)
    return False
