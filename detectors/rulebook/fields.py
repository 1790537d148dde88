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
matching stays per value. Parsing happens once per event: results are cached in
``event.derived`` under ``"shell"``, ``"sql"`` and ``"rulebook.views"``.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from detectors.base import Event
from detectors.parsing.shell import ParsedShell, SimpleCommand, parse_shell
from detectors.parsing.sql import SqlStatement, parse_sql, sql_in_command

__all__ = [
    "DERIVED_EVENT_FIELDS",
    "EVENT_FIELDS",
    "EVENT_PREFIXES",
    "SHELL_VIEW_FIELDS",
    "SQL_VIEW_FIELDS",
    "View",
    "event_value",
    "is_known_field",
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

_ACTION_NAMES = {
    k: "action." + k for k in ("kind", "tool", "command", "target", "args", "bytes_out", "rows")
}
_SHELL_TOOLS = frozenset({"command", "cmd", "script", "shell_command"})
_SQL_ARGS = frozenset({"query", "sql", "statement"})


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


@dataclass(slots=True)
class View:
    """One shell command or SQL statement of an event, with its field values."""

    kind: str  # "shell" or "sql"
    fields: dict[str, Values]
    source_field: str  # the event field the text came from
    span: tuple[int, int]
    text: str


class EventFields:
    """Lazy, cached access to an event's field values (event fields and event-level derived)."""

    __slots__ = ("_cache", "_internal", "event")

    def __init__(self, event: Event, internal_domains: Sequence[str]) -> None:
        self.event = event
        self._cache: dict[str, Values | None] = {}
        self._internal = internal_domains

    def prefetch(self, needed: frozenset[str]) -> dict[str, Values]:
        """Values of every field in ``needed`` that the event has, in one pass over the event
        (the hot path: no per-field lookups for fields the event does not carry)."""
        data = self.event.data
        cache = self._cache
        out: dict[str, Values] = {}
        for key, v in data.items():
            if key == "action" and isinstance(v, dict):
                for akey, av in v.items():
                    name = _ACTION_NAMES.get(akey) or "action." + akey
                    if akey == "args" and isinstance(av, dict):
                        for k2, v2 in av.items():
                            n2 = "action.args." + str(k2)
                            if n2 in needed:
                                vals = _values(v2)
                                cache[n2] = vals
                                if vals is not None:
                                    out[n2] = vals
                    if name in needed:
                        vals = _values(av)
                        cache[name] = vals
                        if vals is not None:
                            out[name] = vals
            elif key == "delegation" and isinstance(v, dict):
                for dkey, dv in v.items():
                    name = "delegation." + str(dkey)
                    if name in needed:
                        vals = _values(dv)
                        cache[name] = vals
                        if vals is not None:
                            out[name] = vals
            elif key in needed:
                vals = _values(v)
                cache[key] = vals
                if vals is not None:
                    out[key] = vals
        for name in needed & DERIVED_EVENT_FIELDS:
            vals = self.get(name)
            if vals is not None:
                out[name] = vals
        return out

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
        if name.startswith("shell."):
            parsed = shell_of(ev)
            if parsed is None:
                return None
            if name == "shell.programs":
                return parsed.programs
            if name == "shell.line":
                return (" ; ".join(c.text for c in parsed.commands),)
            if name == "shell.count":
                return (str(len(parsed.commands)),)
            return ("true" if parsed.truncated else "false",)
        if name == "sql.kinds":
            stmts = sql_of(ev)
            return tuple(dict.fromkeys(s.kind for s, _, _ in stmts)) if stmts else None
        if name == "args.values":
            args = ev.data.get("action", {}).get("args")
            if not isinstance(args, dict):
                return None
            out: list[str] = []
            _leaves(args, out, 0)
            return tuple(out)
        target = ev.data.get("action", {}).get("target")
        if not isinstance(target, str) or not target:
            return None
        host = host_of(target)
        if host is None:
            return None
        if name == "target.host":
            return (host,)
        return ("true" if is_external(host, self._internal) else "false",)


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
    cur: Any = data
    for part in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
        if cur is None:
            return None
    return _values(cur)


# ---------------------------------------------------------------------------------------------
# Parsing, once per event


def _shell_text(ev: Event) -> tuple[str, str] | None:
    action = ev.data.get("action")
    if not isinstance(action, dict):
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


def shell_of(ev: Event) -> ParsedShell | None:
    """The parsed shell command of the event (cached), or None when it carries none."""
    d = ev.derived
    if "shell" in d:
        parsed: ParsedShell | None = d["shell"]
        return parsed
    src = _shell_text(ev)
    parsed = parse_shell(src[0]) if src is not None else None
    d["shell"] = parsed
    d["shell.source"] = src[1] if src is not None else None
    return parsed


def sql_of(ev: Event) -> list[tuple[SqlStatement, str, tuple[int, int] | None]]:
    """Every SQL statement of the event: (statement, source field, span override) (cached)."""
    d = ev.derived
    if "sql" in d:
        cached: list[tuple[SqlStatement, str, tuple[int, int] | None]] = d["sql"]
        return cached
    out: list[tuple[SqlStatement, str, tuple[int, int] | None]] = []
    action = ev.data.get("action")
    if isinstance(action, dict):
        kind = action.get("kind")
        if kind == "sql" and isinstance(action.get("command"), str):
            for st in parse_sql(action["command"]).statements:
                out.append((st, "action.command", None))
        elif kind == "tool_call" and isinstance(action.get("args"), dict):
            for key in _SQL_ARGS:
                v = action["args"].get(key)
                if isinstance(v, str) and v:
                    for st in parse_sql(v).statements:
                        out.append((st, f"action.args.{key}", None))
                    break
    parsed = shell_of(ev)
    if parsed is not None:
        src = d.get("shell.source") or "action.command"
        for c in parsed.commands:
            stdin = [r.target for r in c.redirects if r.op in ("<<<", "<<", "<<-")]
            for text in sql_in_command(c.program, c.args, stdin):
                for st in parse_sql(text).statements[:16]:
                    out.append((st, src, c.span))
    d["sql"] = out
    return out


def _b(v: bool) -> Values:
    return ("true",) if v else ("false",)


def _nl(values: Iterable[str]) -> Values:
    return tuple(v.replace("\n", " ") if "\n" in v else v for v in values)


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
    external = tuple(h for h in hosts if is_external(h, internal))
    writes = tuple(
        r.target
        for r in c.redirects
        if r.op in (">", ">>", ">|", "&>", "&>>", "<>")
        or (r.op == ">&" and not r.target.isdigit() and r.target != "-")
    )
    reads = tuple(r.target for r in c.redirects if r.op in ("<", "<>"))
    argline = " ".join(args)
    fields: dict[str, Values] = {
        "shell.program": (c.program,),
        "shell.raw_program": (c.raw_program,),
        "shell.args": _nl(args),
        "shell.argline": (argline,),
        "shell.cmdline": (c.text,),
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
    return View("shell", fields, source, c.span, c.text)


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


def views_of(ev: Event, internal_domains: Sequence[str], want: frozenset[str]) -> list[View]:
    """The event's views of the kinds in ``want`` (cached per event)."""
    d = ev.derived
    cache: dict[str, list[View]] = d.setdefault("rulebook.views", {})
    out: list[View] = []
    if "shell" in want:
        vs = cache.get("shell")
        if vs is None:
            parsed = shell_of(ev)
            src = d.get("shell.source") or "action.command"
            vs = _shell_views(parsed, src, tuple(internal_domains)) if parsed else []
            cache["shell"] = vs
        out.extend(vs)
    if "sql" in want:
        vs = cache.get("sql")
        if vs is None:
            vs = []
            for st, src, span in sql_of(ev):
                text = _source_text(ev, src)
                vs.append(_sql_view(st, src, span, text))
            cache["sql"] = vs
        out.extend(vs)
    return out


_VIEW_CACHE: OrderedDict[tuple[int, str, tuple[str, ...]], tuple[ParsedShell, list[View]]] = (
    OrderedDict()
)
_VIEW_CACHE_MAX = 4096


def _shell_views(parsed: ParsedShell, src: str, internal: tuple[str, ...]) -> list[View]:
    """Views of a parsed line. The parser caches ParsedShell objects per text, so agents that
    repeat commands reuse the views too (views are never mutated; the key keeps the object alive
    so its id cannot be reused)."""
    key = (id(parsed), src, internal)
    hit = _VIEW_CACHE.get(key)
    if hit is not None and hit[0] is parsed:
        _VIEW_CACHE.move_to_end(key)
        return hit[1]
    vs = [_shell_view(c, src, internal) for c in parsed.commands]
    _VIEW_CACHE[key] = (parsed, vs)
    if len(_VIEW_CACHE) > _VIEW_CACHE_MAX:
        _VIEW_CACHE.popitem(last=False)
    return vs


def _source_text(ev: Event, field: str) -> str:
    v = event_value(ev.data, field)
    return v[0] if v else ""


# ---------------------------------------------------------------------------------------------
# Hosts


_NET_TOOLS = frozenset(
    {"nc", "ncat", "netcat", "telnet", "socat", "openssl", "ping", "nmap", "masscan"}
)
_REMOTE_PATH_TOOLS = frozenset({"scp", "rsync", "sftp", "ssh", "rclone", "sshfs"})
_URL_TOOLS = frozenset({"curl", "wget", "http", "https", "httpie", "xh", "aria2c", "lynx", "links"})


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
    if not t or any(ch in t for ch in " \t'\"$`(){}<>|;&*\\"):
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
