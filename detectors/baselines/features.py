"""What the baselines look at in one event, extracted once (no regex: plain string scans).

:func:`extract` returns :class:`Features`: the action symbol (kind + tool), the items whose first
use matters — tool, binary, target host, table, path prefix and argument values naming a
destination (recipient address and its domain, account/IBAN, URL domain, channel, share-with user)
— plus hour bin, minute and volume. Everything is bounded: at most :data:`MAX_ITEMS` items per
event and only the first :data:`SCAN_CHARS` characters of a command are scanned, because the
agent (possibly an attacker) controls all of it.
"""

from __future__ import annotations

import math
from typing import Any

from detectors.events import Value

__all__ = ["CATEGORIES", "CATEGORY_LABEL", "Features", "extract"]

MAX_ITEMS = 12
SCAN_CHARS = 2048
MAX_ARG_VALUES = 48
PATH_DEPTH = 2

#: item categories; the index is the slot in per-agent per-category arrays
CATEGORIES = (
    "tool",
    "binary",
    "host",
    "table",
    "path",
    "recipient",
    "recipient_domain",
    "account",
    "url_domain",
    "channel",
    "share_user",
)
CAT_INDEX = {c: i for i, c in enumerate(CATEGORIES)}
#: how an analyst reads each category in a sentence ("first use of <label> `x`")
CATEGORY_LABEL = {
    "tool": "tool",
    "binary": "binary",
    "host": "target host",
    "table": "table",
    "path": "path",
    "recipient": "recipient",
    "recipient_domain": "recipient domain",
    "account": "account",
    "url_domain": "URL domain",
    "channel": "channel",
    "share_user": "share-with user",
}
DESTINATIONS = frozenset(
    {"recipient", "recipient_domain", "account", "url_domain", "channel", "share_user"}
)

_WRAPPERS = frozenset(
    {"sudo", "env", "nohup", "time", "nice", "timeout", "exec", "command", "xargs"}
)
_SEPARATORS = ("&&", "||", "|", ";", "$(", "`", "\n")
_SQL_TABLE_AFTER = frozenset({"from", "join", "into", "update", "table"})
_SQL_SKIP = frozenset({"select", "(", "only", "if", "exists", "not", "lateral"})
_URL_END = "/?#:\"' )]>,;|&\\\n\t"

# argument names that say "this value is a destination"
_ARG_RECIPIENT = ("recipient", "to", "cc", "bcc", "email", "address", "reply_to", "send_to")
_ARG_ACCOUNT = ("account", "iban", "beneficiary", "payee", "routing", "wallet", "bic", "swift")
_ARG_URL = ("url", "endpoint", "webhook", "link", "uri", "callback", "host", "domain")
_ARG_CHANNEL = ("channel", "room", "chat", "topic", "queue")
_ARG_SHARE = (
    "share_with",
    "shared_with",
    "grantee",
    "invitee",
    "collaborator",
    "member",
    "user",
    "assignee",
)


class Features(Value):
    """What the baselines read of one event, extracted once per event.

    (Not a dataclass, as :class:`~detectors.events.Value` says.)"""

    __slots__ = ("bytes_out", "day", "denied", "hour_bin", "hour_index", "items", "kind", "log_bytes", "log_rows",
                 "minute", "rows", "symbol", "tool")
    _NAMES = ("kind", "tool", "symbol", "items", "hour_bin", "hour_index", "minute", "day", "log_bytes", "log_rows",
              "bytes_out", "rows", "denied")

    def __init__(
        self,
        kind: str,
        tool: str,
        symbol: str,
        items: list[tuple[str, str]] | None = None,
        hour_bin: int = 0,
        hour_index: int = 0,
        minute: int = 0,
        day: int = 0,
        log_bytes: float | None = None,
        log_rows: float | None = None,
        bytes_out: int | None = None,
        rows: int | None = None,
        denied: bool = False,
    ) -> None:
        self.kind = kind
        self.tool = tool
        self.symbol = symbol  # "kind:tool", the unit of the transition model
        self.items: list[tuple[str, str]] = [] if items is None else items  # (category, value)
        self.hour_bin = hour_bin  # hour of day (UTC) + 24 on Saturday/Sunday
        self.hour_index = hour_index  # hours since the epoch
        self.minute = minute  # minutes since the epoch
        self.day = day  # days since the epoch
        self.log_bytes = log_bytes
        self.log_rows = log_rows
        self.bytes_out = bytes_out
        self.rows = rows
        self.denied = denied


def _clean(value: str, limit: int = 200) -> str:
    return value.strip().strip("\"'`").lower()[:limit]


def _host_of_url(text: str, start: int) -> str:
    end = len(text)
    for ch in _URL_END:
        j = text.find(ch, start, end)
        if j != -1:
            end = j
    host = text[start:end]
    at = host.rfind("@")
    if at != -1:
        host = host[at + 1 :]
    return host.strip(".").lower()[:253]


def _url_hosts(text: str, out: list[str], limit: int = 3) -> None:
    pos = 0
    while len(out) < limit:
        j = text.find("://", pos)
        if j == -1:
            return
        host = _host_of_url(text, j + 3)
        if host and host not in out:
            out.append(host)
        pos = j + 3


def _domain(host: str) -> str:
    """Registrable-ish domain: the last two labels (three when the second-level is short,
    e.g. ``co.uk``). Good enough to group subdomains; not a public-suffix lookup."""
    parts = host.split(".")
    if len(parts) <= 2 or _is_ip(host):
        return host
    if len(parts[-2]) <= 3 and len(parts[-1]) == 2:
        return ".".join(parts[-3:])
    return ".".join(parts[-2:])


def _is_ip(host: str) -> bool:
    return host.replace(".", "").isdigit() or ":" in host


def _path_prefix(path: str) -> str:
    path = path.strip().strip("\"'")
    if path.startswith("~/"):
        return "~"
    if not path.startswith("/"):
        return ""
    parts = [p for p in path.split("/") if p][:PATH_DEPTH]
    if len(parts) == PATH_DEPTH and "." in parts[-1]:
        parts = parts[:-1]  # "/etc/passwd" -> "/etc", a file is not a directory prefix
    return "/" + "/".join(parts) if parts else "/"


def _split_commands(command: str) -> list[str]:
    segments = [command]
    for sep in _SEPARATORS:
        if sep in command:
            segments = [part for seg in segments for part in seg.split(sep)]
    return segments


def _binaries(command: str, out: list[str], limit: int = 4) -> None:
    for seg in _split_commands(command):
        for tok in seg.split():
            if "=" in tok and not tok.startswith(("/", ".", "-")):
                continue  # VAR=value prefix
            name = tok.rsplit("/", 1)[-1].lower()
            if name in _WRAPPERS or name.startswith("-") or not name:
                continue
            name = name.strip("\"'()`{}")[:64]
            if name and name not in out:
                out.append(name)
            break
        if len(out) >= limit:
            return


def _sql_tables(command: str, out: list[str], limit: int = 4) -> None:
    toks = command.lower().replace(",", " , ").replace("(", " ( ").replace(";", " ").split()
    for i, tok in enumerate(toks):
        if tok in _SQL_TABLE_AFTER:
            for nxt in toks[i + 1 : i + 4]:
                if nxt in _SQL_SKIP:
                    continue
                name = nxt.strip("\"'`[]")[:128]
                if name and name[0].isalpha() and name not in out:
                    out.append(name)
                break
            if len(out) >= limit:
                return


_KEY_NAMES = (
    ("account", _ARG_ACCOUNT),
    ("url", _ARG_URL),
    ("channel", _ARG_CHANNEL),
    ("share", _ARG_SHARE),
    ("recipient", _ARG_RECIPIENT),
)
_KEY_CACHE: dict[str, str] = {}


def _key_class(key: str) -> str:
    """What an argument name says its value is ("" for nothing): ``to`` and ``reply_to`` are
    recipients, ``iban``/``payee_account`` accounts... Memoised (argument names repeat)."""
    c = _KEY_CACHE.get(key)
    if c is None:
        c = ""
        first, _, _ = key.partition("_")
        last = key.rpartition("_")[2]
        for cls, names in _KEY_NAMES:
            if key in names or first in names or last in names:
                c = cls
                break
        if len(_KEY_CACHE) < 4096:  # bounded: argument names are attacker-controlled
            _KEY_CACHE[key] = c
    return c


_RAW_KEY_CACHE: dict[str, str] = {}


def _raw_key_class(k: Any) -> str:
    """:func:`_key_class` of an argument name as it appears in the event (memoised, bounded)."""
    c = _RAW_KEY_CACHE.get(k) if type(k) is str else None
    if c is None:
        c = _key_class(str(k).lower()[:64])
        if type(k) is str and len(_RAW_KEY_CACHE) < 4096:
            _RAW_KEY_CACHE[k] = c
    return c


_CONTAINERS = (dict, list)  # a tuple: isinstance with ``dict | list`` builds the union per call


def _arg_items(args: Any, items: list[tuple[str, str]]) -> None:
    """Destinations named by tool-call arguments, by key name or by the value's shape.

    Values are visited depth-first from the last argument to the first (at most
    :data:`MAX_ARG_VALUES` values, depth 3). The common flat object of scalars takes a loop
    without the explicit stack; both visit the same values in the same order."""
    if type(args) is dict and len(args) < MAX_ARG_VALUES:
        for v in args.values():
            if isinstance(v, _CONTAINERS):
                break
        else:  # flat: the stack walk would pop these in reverse order
            for k, v in reversed(args.items()):
                if isinstance(v, str) and v:
                    kc = _RAW_KEY_CACHE.get(k)  # _raw_key_class(k), common case inlined
                    if kc is None:
                        kc = _raw_key_class(k)
                    # _arg_value's own first test, so most values (ids, numbers as text, short
                    # words) cost no call
                    if kc or "@" in v or "://" in v or (len(v) >= 15 and v[:2].isalpha()):
                        _arg_value(kc, v, items)
            return
    stack: list[tuple[Any, Any, int]] = [("", args, 0)]
    seen = 0
    while stack and seen < MAX_ARG_VALUES:
        key, value, depth = stack.pop()
        seen += 1
        if isinstance(value, str):
            if value:
                _arg_value(_raw_key_class(key), value, items)
        elif isinstance(value, dict):
            if depth < 3:
                n = 0
                for k, v in value.items():
                    stack.append((k, v, depth + 1))
                    n += 1
                    if n >= MAX_ARG_VALUES:
                        break
        elif isinstance(value, list):
            if depth < 3:
                for v in value[:16]:
                    stack.append((key, v, depth + 1))


def _arg_value(kc: str, value: str, items: list[tuple[str, str]]) -> None:
    """The destination items one argument value names (``kc``: what its name says it is)."""
    has_at = "@" in value
    has_url = "://" in value
    if not (kc or has_at or has_url or (len(value) >= 15 and value[:2].isalpha())):
        return  # the common case: an id, a body, a number as text
    if not (kc or has_at or has_url):
        # only an IBAN could match (a subject, a note): it has digits at [2:4]. When the first
        # four characters are plain ASCII, not space or quote, they are those of the cleaned
        # text, so this says "no IBAN" without cleaning the whole value
        head = value[:4]
        if (
            head.isascii()
            and " " not in head
            and not head[2:4].isdigit()
            and not head[0].isspace()
            and head[0] not in "\"'`"
        ):
            return
    low = _clean(value[:SCAN_CHARS], 320)
    if has_at and not has_url and " " not in low and "." in low.rsplit("@", 1)[-1]:
        addr = low.strip("<>")
        items.append(("recipient", addr))
        items.append(("recipient_domain", _domain(addr.rsplit("@", 1)[-1])))
    elif has_url:
        hosts: list[str] = []
        _url_hosts(value[:SCAN_CHARS], hosts, 2)
        for host in hosts:
            items.append(("url_domain", _domain(host)))
    elif _looks_like_iban(low) or (kc == "account" and len(low) <= 64):
        items.append(("account", low.replace(" ", "")))
    elif kc == "url" and "." in low and " " not in low:
        items.append(("url_domain", _domain(low.split("/", 1)[0])))
    elif kc == "channel" and len(low) <= 128:
        items.append(("channel", low))
    elif kc == "share" and len(low) <= 128:
        items.append(("share_user", low))
    elif kc == "recipient" and len(low) <= 128 and " " not in low:
        items.append(("recipient", low))


def _looks_like_iban(text: str) -> bool:
    s = text.replace(" ", "")
    return 15 <= len(s) <= 34 and s[:2].isalpha() and s[2:4].isdigit() and s.isalnum()


_KT_CACHE: dict[tuple[str, str], tuple[str, str, str]] = {}
_HOST_KINDS = frozenset({"shell", "http"})


def _kind_tool(action: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, tool, symbol) of an action, memoised per raw (kind, tool): a fleet uses few."""
    k = action.get("kind")
    t = action.get("tool")
    key = (k, t) if type(k) is str and type(t) is str else None
    if key is not None:
        hit = _KT_CACHE.get(key)
        if hit is not None:
            return hit
    kind = str(k or "")[:32].lower()
    tool = _clean(str(t or ""), 128)
    out = (kind, tool, f"{kind}:{tool}")
    if key is not None:
        if len(_KT_CACHE) >= 4096:  # bounded: both are attacker-controlled
            _KT_CACHE.clear()
        _KT_CACHE[key] = out
    return out


_NUMBERS = (int, float)


def _volume(v: Any) -> tuple[int | None, float | None]:
    if isinstance(v, _NUMBERS) and not isinstance(v, bool) and v >= 0 and math.isfinite(v):
        return int(v), math.log1p(v)
    return None, None


def _base_items(kind: str, symbol: str, command: str, target: str) -> tuple[tuple[str, str], ...]:
    """The items a command and target name (tool, binaries, paths, tables, hosts): a pure
    function of its arguments, so :func:`extract` memoises it."""
    items: list[tuple[str, str]] = [("tool", symbol)]
    if kind == "shell":
        bins: list[str] = []
        _binaries(command, bins)
        for b in bins:
            items.append(("binary", b))
        if "/" in command:  # no token can start with "/" or "~/" otherwise
            for tok in command.split()[:64]:
                if tok.startswith(("/", "~/")) and len(tok) > 1:
                    prefix = _path_prefix(tok)
                    if prefix and ("path", prefix) not in items:
                        items.append(("path", prefix))
    elif kind == "sql":
        tables: list[str] = []
        if target and " " not in target.strip():
            tables.append(_clean(target, 128))
        _sql_tables(command, tables)
        for t in tables:
            if not t.startswith(("tmp", "temp")):  # session scratch tables are made anew each time
                items.append(("table", _shape(t)))
    elif kind == "file" and target:
        prefix = _path_prefix(target)
        if prefix:
            items.append(("path", prefix))

    host_kind = kind in _HOST_KINDS
    command_urls = host_kind and "://" in command
    # a target names a host as a URL, or (shell, http) as a bare name: not an id, not a path
    target_hosts = bool(target) and (host_kind or "://" in target)
    if target_hosts or command_urls:
        hosts = list(_target_hosts(target, host_kind)) if target_hosts else []
        if command_urls:
            _url_hosts(command, hosts, 3)
        for h in hosts:
            if h:
                items.append(("host", _host_shape(h)))
    return tuple(items)


def _target_hosts_uncached(target: str, host_kind: bool) -> tuple[str, ...]:
    """The host a target names: the URL's, or (shell, http) a bare host name."""
    hosts: list[str] = []
    if "://" in target:
        _url_hosts(target, hosts, 1)
    elif host_kind and " " not in target and "/" not in target and "." in target:
        name = target.strip().lower().split(":", 1)[0].rsplit("@", 1)[-1][:253]
        if _hostname_like(name):  # not `module.alb_gateway`, `db.schema_table`, ...
            hosts.append(name)
    return tuple(hosts)


#: memos of pure functions of a target or a name. Targets repeat far more than commands (the
#: simulator's 13,000 shell actions name ~900 targets in ~5,000 distinct commands), so a command
#: seen for the first time still finds its target's host ready. Bounded: all attacker-controlled;
#: cleared when full (the values are pure functions of the keys, so no drift).
_MEMO_MAX = 4096
_TARGET_HOSTS: dict[tuple[str, bool], tuple[str, ...]] = {}
_HOST_SHAPE: dict[str, str] = {}
_SHAPE: dict[str, str] = {}


def _target_hosts(target: str, host_kind: bool) -> tuple[str, ...]:
    key = (target, host_kind)
    hosts = _TARGET_HOSTS.get(key)
    if hosts is None:
        hosts = _target_hosts_uncached(target, host_kind)
        if len(target) <= _BASE_KEY_MAX:
            if len(_TARGET_HOSTS) >= _MEMO_MAX:
                _TARGET_HOSTS.clear()
            _TARGET_HOSTS[key] = hosts
    return hosts


def _host_shape(host: str) -> str:
    """A host item's value: an IP as is, a name with its instance parts folded (memoised)."""
    v = _HOST_SHAPE.get(host)
    if v is None:
        v = host if _is_ip(host) else instance_shape(host)
        if len(_HOST_SHAPE) >= _MEMO_MAX:
            _HOST_SHAPE.clear()
        _HOST_SHAPE[host] = v  # host names are at most 253 characters
    return v


def _shape(name: str) -> str:
    """:func:`instance_shape`, memoised (table names: at most 128 characters)."""
    v = _SHAPE.get(name)
    if v is None:
        v = instance_shape(name)
        if len(_SHAPE) >= _MEMO_MAX:
            _SHAPE.clear()
        _SHAPE[name] = v
    return v


def _hostname_like(name: str) -> bool:
    """DNS host names hold letters, digits, hyphens and dots only (RFC 1123): a dotted target
    with an underscore or other characters (a Terraform address, a schema.table) is no host."""
    if not name.isascii() or name.startswith("module."):
        return False
    rest = name.replace(".", "").replace("-", "")
    return not rest or rest.isalnum()


_NO_DIGITS = str.maketrans("", "", "0123456789")
_SEPARATORS_AS_DOT = str.maketrans("-_", "..")


def instance_shape(name: str) -> str:
    """A name with its instance parts folded: every ``.``/``-``/``_``-separated token that holds
    a digit becomes ``#``. ``orders-05.eu.internal`` and ``orders-12.eu.internal`` are the same
    service (a new replica is not new behaviour); ``tmp_sales_80f7`` is the same scratch table as
    ``tmp_sales_a3c1``. Linear, no regex.

    >>> instance_shape("orders-05.eu.internal"), instance_shape("tmp_inventory_levels_80f7")
    ('orders-#.eu.internal', 'tmp_inventory_levels_#')
    """
    if name.translate(_NO_DIGITS) == name:
        return name
    out: list[str] = []
    pos = 0
    for part in name.translate(_SEPARATORS_AS_DOT).split("."):
        token = name[pos : pos + len(part)]
        out.append("#" if token.translate(_NO_DIGITS) != token else token)
        pos += len(part)
        if pos < len(name):
            out.append(name[pos])  # the separator itself
            pos += 1
    return "".join(out)


#: (kind, symbol, command, target) -> base items. Agents repeat themselves ("git status",
#: "kubectl get pods", the same query): a third to a half of actions on the simulator's fleet.
#: Bounded in entries and in key length (the agent controls the text); cleared when full.
_BASE_CACHE: dict[tuple[str, str, str, str], tuple[tuple[str, str], ...]] = {}
_BASE_CACHE_MAX = 4096
_BASE_KEY_MAX = 256
_SCANNED_KINDS = frozenset({"shell", "sql", "http"})


def extract(data: dict[str, Any], ts: float) -> Features:
    action = data.get("action") or {}
    kind, tool, symbol = _kind_tool(action)
    command = str(action.get("command") or "")[:SCAN_CHARS]
    target = action.get("target")
    target = str(target)[:SCAN_CHARS] if target is not None else ""
    if kind not in _SCANNED_KINDS:
        # nothing scans the command (a tool call, a file action): the items are cheap to make,
        # and their ever-new targets (ticket ids, file paths) would only flush the memo
        base = _base_items(kind, symbol, command, target)
    elif len(command) + len(target) <= _BASE_KEY_MAX:
        key = (kind, symbol, command, target)
        cached = _BASE_CACHE.get(key)
        if cached is not None:
            base = cached
        else:
            base = _base_items(kind, symbol, command, target)
            if len(_BASE_CACHE) >= _BASE_CACHE_MAX:
                _BASE_CACHE.clear()
            _BASE_CACHE[key] = base
    else:
        base = _base_items(kind, symbol, command, target)
    items = list(base)

    args = action.get("args")
    if isinstance(args, dict) and args:
        _arg_items(args, items)
    elif kind == "tool_call" and target and "@" in target and " " not in target.strip():
        addr = _clean(target, 320)
        items.append(("recipient", addr))
        items.append(("recipient_domain", _domain(addr.rsplit("@", 1)[-1])))

    # dedup, keep order, bound (the tool item is never empty)
    if len(items) > 1:
        uniq = [items[0]]
        for it in items[1:]:
            if it[1] and it not in uniq:
                uniq.append(it)
                if len(uniq) >= MAX_ITEMS:
                    break
        items = uniq

    t = int(ts)
    day = t // 86400
    hour_index = t // 3600
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    decision = data.get("decision")
    b = action.get("bytes_out")
    bytes_out, log_bytes = (None, None) if b is None else _volume(b)
    r = action.get("rows")
    rows, log_rows = (None, None) if r is None else _volume(r)
    return Features(
        kind,
        tool,
        symbol,
        items,
        hour_index % 24 + (24 if weekday >= 5 else 0),
        hour_index,
        t // 60,
        day,
        log_bytes,
        log_rows,
        bytes_out,
        rows,
        (decision == "deny" or decision == "denied")
        if type(decision) is str
        else str(decision or "") in ("deny", "denied"),
    )
