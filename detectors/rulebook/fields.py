"""The fields a rule can match, and how they are read from an event.

Three kinds of fields:

- **event fields**, read from the event JSON by dotted path: ``action.command``, ``environment``,
  ``action.args.path`` (any key under ``action.args.``), ...;
- **event-level derived fields**, computed once per event: ``shell.programs``, ``shell.line``,
  ``sql.kinds``, ``target.host``, ``target.external``, ``args.values``;
- **view fields**, which describe ONE unit of the event: one shell command (``shell.program``,
  ``shell.args``, ``shell.flags``, ...) or one SQL statement (``sql.kind``, ``sql.tables``, ...).
  A rule that uses view fields matches when its whole condition holds for one view, so
  ``shell.program: rm`` and ``shell.args: /`` must describe the same command.

Every value is a tuple of strings (booleans are ``"true"``/``"false"``, numbers their decimal
text); a missing field is ``None``. In multi-valued view fields newlines are replaced by spaces so
matching stays per value.

An event's command texts (its *sources*: :func:`shell_source`, :func:`sql_source`) decide its
views and :data:`UNIT_FIELDS`, so the matcher caches those per source text; the parse results
are also put in ``event.derived`` under ``"shell"``, ``"shell.source"`` and ``"sql"`` (shared
with the policy detector and predicates: :func:`shell_of`, :func:`sql_of`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from detectors.events import Event, Value
from detectors.parsing.shell import ParsedShell, SimpleCommand, parse_shell
from detectors.parsing.sql import SqlStatement, parse_sql, sql_in_command

__all__ = [
    "DERIVED_EVENT_FIELDS",
    "EVENT_FIELDS",
    "EVENT_PREFIXES",
    "SHELL_VIEW_FIELDS",
    "SQL_VIEW_FIELDS",
    "UNIT_FIELDS",
    "EventFields",
    "View",
    "args_values",
    "build_views",
    "event_value",
    "host_of",
    "is_external",
    "is_known_field",
    "parse_sources",
    "raw_value",
    "shell_of",
    "shell_source",
    "sql_of",
    "sql_source",
    "target_host",
    "unit_value",
    "views_of",
]

Values = tuple[str, ...]

EVENT_FIELDS = frozenset(
    {
        "schema_version", "event_id", "ts", "agent_id", "owner", "session_id", "environment",
        "enforcement_point", "decision", "agent_role", "tenant", "approver", "source_ip",
        "action.kind", "action.tool", "action.command", "action.target", "action.bytes_out",
        "action.rows", "action.args", "delegation.token_id", "delegation.scopes",
        "delegation.expires_at",
    }
)  # fmt: skip
EVENT_PREFIXES = ("action.args.",)
DERIVED_EVENT_FIELDS = frozenset(
    {"shell.programs", "shell.line", "shell.count", "shell.truncated", "sql.kinds", "target.host",
     "target.external", "args.values"}
)  # fmt: skip
SHELL_VIEW_FIELDS = frozenset(
    {"shell.program", "shell.raw_program", "shell.args", "shell.argline", "shell.cmdline",
     "shell.flags", "shell.wrappers", "shell.assignments", "shell.writes", "shell.reads",
     "shell.pipe_from", "shell.pipe_to", "shell.origin", "shell.hosts", "shell.external_hosts"}
)  # fmt: skip
SQL_VIEW_FIELDS = frozenset(
    {"sql.kind", "sql.object_type", "sql.tables", "sql.qualified_tables", "sql.has_where",
     "sql.where_trivial", "sql.has_limit", "sql.select_star", "sql.copy_to", "sql.into_outfile",
     "sql.functions"}
)  # fmt: skip
#: fields whose values are low-cardinality labels: poor prefilter triggers
LOW_CARDINALITY = frozenset(
    {"action.kind", "environment", "decision", "agent_role", "schema_version", "sql.kind",
     "sql.object_type", "sql.has_where", "sql.where_trivial", "sql.has_limit", "sql.select_star",
     "sql.into_outfile", "target.external", "shell.truncated", "tenant"}
)  # fmt: skip

# tuples, not sets: when several keys are present the first one wins, whatever the hash seed
_SHELL_TOOLS = ("command", "cmd", "script", "shell_command")
_SQL_ARGS = ("query", "sql", "statement")


def is_known_field(name: str) -> bool:
    return (
        name in EVENT_FIELDS
        or name in DERIVED_EVENT_FIELDS
        or name in SHELL_VIEW_FIELDS
        or name in SQL_VIEW_FIELDS
        or any(name.startswith(p) and len(name) > len(p) for p in EVENT_PREFIXES)
    )


def view_kind_of(name: str) -> str | None:
    if name in SHELL_VIEW_FIELDS:
        return "shell"
    if name in SQL_VIEW_FIELDS:
        return "sql"
    return None


def _scalar(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    return None


def _values(v: Any) -> Values | None:
    if v is None:
        return None
    s = _scalar(v)
    if s is not None:
        return (s,)
    if isinstance(v, list):
        out = tuple(x for x in (_scalar(i) for i in v[:256]) if x is not None)
        return out
    return None


class View(Value):
    """One shell command or SQL statement of an event, with its field values.

    (Not a dataclass: one or more are built on the first sight of each command text, and a
    dataclass's ``__init__`` stays interpreted in the compiled build; see
    :class:`~detectors.events.Value`, which gives it the dataclass's ``==`` and ``repr``.)"""

    __slots__ = ("fields", "kind", "source_field", "span", "text")
    _NAMES = ("kind", "fields", "source_field", "span", "text")

    def __init__(self, kind: str, fields: dict[str, Values], source_field: str, span: tuple[int, int],
                 text: str) -> None:
        self.kind = kind  # "shell" or "sql"
        self.fields = fields
        self.source_field = source_field  # the event field the text came from
        self.span = span
        self.text = text


class EventFields:
    """Lazy, cached access to an event's field values (event fields and event-level derived)."""

    __slots__ = ("_cache", "_internal", "event")

    def __init__(self, event: Event, internal_domains: Sequence[str]) -> None:
        self.event = event
        self._cache: dict[str, Values | None] = {}
        self._internal = internal_domains

    def get(self, name: str) -> Values | None:
        try:
            return self._cache[name]
        except KeyError:
            pass
        value = self._compute(name)
        self._cache[name] = value
        return value

    def _compute(self, name: str) -> Values | None:
        if name in DERIVED_EVENT_FIELDS:
            return self._derived(name)
        return event_value(self.event.data, name)

    def _derived(self, name: str) -> Values | None:
        ev = self.event
        if name in UNIT_FIELDS:
            return unit_value(name, shell_of(ev), sql_of(ev))
        action = _action(ev.data)
        if name == "args.values":
            return args_values(action)
        target = target_host(action)
        if target is None:
            return None
        if name == "target.host":
            return (target,)
        return ("true",) if is_external(target, self._internal) else ("false",)


#: derived event fields that depend only on the command text (cached with its parse)
UNIT_FIELDS = frozenset(
    {"shell.programs", "shell.line", "shell.count", "shell.truncated", "sql.kinds"}
)


def unit_value(name: str, parsed: ParsedShell | None, statements: SqlItems) -> Values | None:
    """A derived field of :data:`UNIT_FIELDS` from an event's parse results."""
    if name == "sql.kinds":
        return tuple(dict.fromkeys(s.kind for s, _, _ in statements)) if statements else None
    if parsed is None:
        return None
    if name == "shell.programs":
        return parsed.programs
    if name == "shell.line":
        return (" ; ".join(c.text for c in parsed.commands),)
    if name == "shell.count":
        return (str(len(parsed.commands)),)
    return ("true" if parsed.truncated else "false",)


def args_values(action: dict[str, Any] | None) -> Values | None:
    """``args.values``: every scalar under ``action.args`` (depth <= 4, at most 256)."""
    args = action.get("args") if action is not None else None
    if not isinstance(args, dict):
        return None
    out: list[str] = []
    _leaves(args, out, 0)
    return tuple(out)


def target_host(action: dict[str, Any] | None) -> str | None:
    """``target.host``: the host of ``action.target`` (lower-cased), or None."""
    target = action.get("target") if action is not None else None
    if not isinstance(target, str) or not target:
        return None
    return host_of(target)


def _leaves(v: Any, out: list[str], depth: int) -> None:
    if depth > 4 or len(out) >= 256:
        return
    if isinstance(v, dict):
        for x in v.values():
            _leaves(x, out, depth + 1)
    elif isinstance(v, list):
        for x in v[:256]:
            _leaves(x, out, depth + 1)
    else:
        s = _scalar(v)
        if s is not None:
            out.append(s)


_PATHS: dict[str, tuple[str, ...]] = {}


def event_value(data: dict[str, Any], name: str) -> Values | None:
    """Values of an event field by dotted path; None when missing."""
    path = _PATHS.get(name)
    if path is None:
        path = tuple(name.split("."))
        if len(_PATHS) < 4096:  # field names come from rules: a small, fixed set
            _PATHS[name] = path
    return _values(raw_value(data, path))


def raw_value(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The raw JSON value at ``path`` (keys of nested objects), or None when it is missing."""
    cur: Any = data
    for part in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
        if cur is None:
            return None
    return cur


# ---------------------------------------------------------------------------------------------
# Parsing, once per event

#: where an event's command text comes from: (text, event field) or None
Source = tuple[str, str] | None
SqlItems = list[tuple[SqlStatement, str, tuple[int, int] | None]]


def _action(data: dict[str, Any]) -> dict[str, Any] | None:
    action = data.get("action")
    return action if isinstance(action, dict) else None


def shell_source(action: dict[str, Any] | None) -> Source:
    """The shell text of an action: ``action.command`` of a ``shell`` action, else the first of
    ``args.command|cmd|script|shell_command`` of a ``tool_call``."""
    if action is None:
        return None
    kind = action.get("kind")
    if kind == "shell":
        cmd = action.get("command")
        return (cmd, "action.command") if isinstance(cmd, str) else None
    if kind == "tool_call":
        args = action.get("args")
        if isinstance(args, dict):
            for key in _SHELL_TOOLS:
                v = args.get(key)
                if isinstance(v, str) and v:
                    return v, f"action.args.{key}"
    return None


def sql_source(action: dict[str, Any] | None) -> Source:
    """The SQL text of an action: ``action.command`` of a ``sql`` action, else the first of
    ``args.query|sql|statement`` of a ``tool_call`` (SQL inside shell lines comes on top)."""
    if action is None:
        return None
    kind = action.get("kind")
    if kind == "sql":
        cmd = action.get("command")
        return (cmd, "action.command") if isinstance(cmd, str) else None
    if kind == "tool_call":
        args = action.get("args")
        if isinstance(args, dict):
            for key in _SQL_ARGS:
                v = args.get(key)
                if isinstance(v, str) and v:
                    return v, f"action.args.{key}"
    return None


def _shell_text(ev: Event) -> tuple[str, str] | None:
    return shell_source(_action(ev.data))


def parse_sources(shell: Source, sql: Source) -> tuple[ParsedShell | None, SqlItems]:
    """Parse an event's command texts: the shell line and every SQL statement, with the field
    each came from (SQL run by shell clients, ``psql -c ...``, carries its command's span)."""
    parsed = parse_shell(shell[0]) if shell is not None else None
    out: SqlItems = []
    if sql is not None:
        for st in parse_sql(sql[0]).statements:
            out.append((st, sql[1], None))
    if parsed is not None and shell is not None:
        src = shell[1]
        for c in parsed.commands:
            stdin = [r.target for r in c.redirects if r.op in ("<<<", "<<", "<<-")]
            for text in sql_in_command(c.program, c.args, stdin):
                for st in parse_sql(text).statements[:16]:
                    out.append((st, src, c.span))
    return parsed, out


def _parse_event(ev: Event) -> None:
    action = _action(ev.data)
    shell = shell_source(action)
    parsed, sql = parse_sources(shell, sql_source(action))
    d = ev.derived
    d["shell"] = parsed
    d["shell.source"] = shell[1] if shell is not None else None
    d["sql"] = sql


def shell_of(ev: Event) -> ParsedShell | None:
    """The parsed shell command of the event (cached in ``event.derived``), or None."""
    d = ev.derived
    if "shell" not in d:
        _parse_event(ev)
    parsed: ParsedShell | None = d["shell"]
    return parsed


def sql_of(ev: Event) -> SqlItems:
    """Every SQL statement of the event: (statement, source field, span override) (cached)."""
    d = ev.derived
    if "sql" not in d or "shell" not in d:
        _parse_event(ev)
    cached: SqlItems = d["sql"]
    return cached


def _b(v: bool) -> Values:
    return ("true",) if v else ("false",)


def _nl(values: Sequence[str]) -> Values:
    for v in values:
        if "\n" in v:
            return tuple(v.replace("\n", " ") if "\n" in v else v for v in values)
    return tuple(values)  # the usual case: no newline, the tuple itself


def _flags(args: Sequence[str]) -> Values:
    out: list[str] = []
    for a in args:
        if a == "--":
            break
        if a.startswith("--"):
            if len(a) > 2:
                out.append(a.split("=", 1)[0])
        elif a.startswith("-") and len(a) > 1 and not a[1].isdigit():
            if len(a) > 12:  # a long single-dash option (find -delete, java -jar): keep whole
                out.append(a)
            else:
                out.extend("-" + ch for ch in a[1:] if ch.isalnum())
                if len(a) > 2:
                    out.append(a)
        if len(out) > 128:
            break
    return tuple(dict.fromkeys(out))


def _shell_view(c: SimpleCommand, source: str, internal: Sequence[str]) -> View:
    args = c.args
    hosts = hosts_in(c.program, args)
    external = tuple(h for h in hosts if is_external(h, internal)) if hosts else ()
    redirects = c.redirects
    writes = (
        tuple(
            r.target
            for r in redirects
            if r.op in (">", ">>", ">|", "&>", "&>>", "<>")
            or (r.op == ">&" and not r.target.isdigit() and r.target != "-")
        )
        if redirects
        else ()
    )
    reads = tuple(r.target for r in redirects if r.op in ("<", "<>")) if redirects else ()
    argline = " ".join(args)
    text = c.text
    fields: dict[str, Values] = {
        "shell.program": (c.program,),
        "shell.raw_program": (c.raw_program,),
        "shell.args": _nl(args),
        "shell.argline": (argline,),
        "shell.cmdline": (text,),
        "shell.flags": _flags(args),
        "shell.wrappers": c.wrappers,
        "shell.assignments": _nl(c.assignments),
        "shell.writes": _nl(writes),
        "shell.reads": _nl(reads),
        "shell.pipe_from": (c.pipe_from,) if c.pipe_from else (),
        "shell.pipe_to": (c.pipe_to,) if c.pipe_to else (),
        "shell.origin": (c.origin,),
        "shell.hosts": hosts,
        "shell.external_hosts": external,
    }
    return View("shell", fields, source, c.span, text)


def _sql_view(st: SqlStatement, source: str, span: tuple[int, int] | None, text: str) -> View:
    fields: dict[str, Values] = {
        "sql.kind": (st.kind,),
        "sql.object_type": (st.object_type,) if st.object_type else (),
        "sql.tables": st.tables,
        "sql.qualified_tables": st.qualified_tables,
        "sql.has_where": _b(st.has_where),
        "sql.where_trivial": _b(st.where_trivial),
        "sql.has_limit": _b(st.has_limit),
        "sql.select_star": _b(st.select_star),
        "sql.copy_to": (st.copy_to,) if st.copy_to else (),
        "sql.into_outfile": _b(st.into_outfile),
        "sql.functions": st.functions,
    }
    sp = span if span is not None else st.span
    return View("sql", fields, source, sp, text[sp[0] : sp[1]] if span is None else text)


def build_views(
    parsed: ParsedShell | None,
    shell: Source,
    sql: Source,
    statements: SqlItems,
    internal_domains: tuple[str, ...],
    want: frozenset[str],
) -> list[View]:
    """The views of the kinds in ``want``: one per shell command, then one per SQL statement
    (``parsed``/``statements`` as :func:`parse_sources` returned them for ``shell``/``sql``)."""
    out: list[View] = []
    if "shell" in want and parsed is not None and shell is not None:
        out.extend(_shell_view(c, shell[1], internal_domains) for c in parsed.commands)
    if "sql" in want:
        for st, src, span in statements:
            if span is None:  # a statement of the SQL text itself
                text = sql[0] if sql is not None else ""
            else:  # SQL run by a shell client: the shell line
                text = shell[0] if shell is not None else ""
            out.append(_sql_view(st, src, span, text))
    return out


def views_of(ev: Event, internal_domains: Sequence[str], want: frozenset[str]) -> list[View]:
    """The event's views of the kinds in ``want`` (the matcher caches them per command text)."""
    action = _action(ev.data)
    return build_views(
        shell_of(ev),
        shell_source(action),
        sql_source(action),
        sql_of(ev),
        tuple(internal_domains),
        want,
    )


# ---------------------------------------------------------------------------------------------
# Hosts


_NET_TOOLS = frozenset(
    {"nc", "ncat", "netcat", "telnet", "socat", "openssl", "ping", "nmap", "masscan"}
)
_REMOTE_PATH_TOOLS = frozenset({"scp", "rsync", "sftp", "ssh", "rclone", "sshfs"})
_URL_TOOLS = frozenset({"curl", "wget", "http", "https", "httpie", "xh", "aria2c", "lynx", "links"})
_HOST_TOOLS = _NET_TOOLS | _REMOTE_PATH_TOOLS | _URL_TOOLS | {"ssh"}


_NOT_HOST = re.compile(r"[ \t'\"$`(){}<>|;&*\\]")  # a fixed class: linear, no user pattern


def host_of(target: str) -> str | None:
    """Host of a URL, ``user@host[:path]`` or ``host[:port]`` string (lower-cased); None if none."""
    t = target.strip()
    if not t or len(t) > 2048:
        return None
    if "://" in t:
        t = t.split("://", 1)[1]
        t = t.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        t = t.rsplit("@", 1)[-1]
    else:
        t = t.split("/", 1)[0].rsplit("@", 1)[-1]
    if t.startswith("["):  # [ipv6]:port
        end = t.find("]")
        return t[1:end].lower() if end > 0 else None
    if t.count(":") == 1:
        t = t.split(":", 1)[0]
    t = t.strip(".").lower()
    if not t or _NOT_HOST.search(t) is not None:
        return None
    return t


_FILE_EXTENSIONS = frozenset(
    "pdf json txt csv tsv gz tgz bz2 xz zst zip tar sh py rb js ts css html htm xml yml yaml md "
    "png jpg jpeg gif svg sql bin deb rpm exe dll so log out tmp bak key pem crt cer conf cfg ini "
    "toml lock env db sqlite jar war whl egg iso img dmg pkg mp4 mov wav mp3 c h go rs java".split()
)


def _looks_host(s: str) -> bool:
    """A scheme-less argument that is a host name or address (``example.com/x``, ``10.0.0.1``)."""
    if not s or s.startswith("-") or "=" in s or "@" in s:
        return False
    first = s.split("/", 1)[0]
    if not first or not all(ch.isalnum() or ch in ".-:[]" for ch in first):
        return False
    h = host_of(s)
    if h is None:
        return False
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        pass
    if "." not in h:
        return False
    tld = h.rsplit(".", 1)[-1]
    if tld in _FILE_EXTENSIONS:
        return False
    return tld.isalpha() and 2 <= len(tld) <= 24 and all(ch.isalnum() or ch in "-." for ch in h)


def hosts_in(program: str, args: Sequence[str]) -> Values:
    """Remote hosts a command talks to, from its arguments (program-aware, bounded)."""
    out: list[str] = []
    if program not in _HOST_TOOLS:  # other programs name hosts only in URLs (first branch below)
        for a in args[:128]:
            if "://" in a:
                host = host_of(a)
                if host and host not in out:
                    out.append(host)
        return tuple(out)
    for a in args[:128]:
        h: str | None = None
        if "://" in a:
            h = host_of(a)
        elif program in _REMOTE_PATH_TOOLS and ("@" in a or ":" in a) and not a.startswith("-"):
            if ":" in a or program == "ssh":
                h = host_of(a.split(":", 1)[0] if ":" in a else a)
        elif program in _NET_TOOLS and _looks_host(a):
            h = host_of(a)
        elif program in _NET_TOOLS and ":" in a and a.upper().startswith(("TCP", "UDP", "OPENSSL")):
            parts = a.split(":")
            h = host_of(parts[1]) if len(parts) > 2 else None
        elif program in _URL_TOOLS and _looks_host(a):
            h = host_of(a)
        elif program == "ssh" and _looks_host(a):
            h = host_of(a)
        if h and h not in out:
            out.append(h)
    return tuple(out)


_INTERNAL_NETS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
        "100.64.0.0/10", "0.0.0.0/8", "::1/128", "fc00::/7", "fe80::/10", "::/128",
    )
)  # fmt: skip


def is_external(host: str, internal_domains: Sequence[str]) -> bool:
    """Whether ``host`` is outside the organisation: not a private/loopback address, not a
    single-label name, not under one of ``internal_domains``."""
    h = host.lower().rstrip(".")
    if not h or h == "localhost":
        return False
    # only text with a ':' (IPv6) or made of digits and dots (IPv4) can be an address: skip the
    # costly failing parse for names
    if ":" in h or h.replace(".", "").isdigit():
        try:
            ip = ipaddress.ip_address(h)
        except ValueError:
            pass
        else:
            # explicit list: ipaddress.is_private also covers documentation ranges and changed
            # between Python patch releases; we want the same answer everywhere
            return not any(ip in net for net in _INTERNAL_NETS if net.version == ip.version)
    if "." not in h:
        return False
    for d in internal_domains:
        d = d.lower().strip(".")
        if d and (h == d or h.endswith("." + d)):
            return False
    return True
