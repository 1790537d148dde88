"""Python predicates: the escape hatch for logic the declarative form cannot say.

A rule names one with ``predicate: <name>``; it is AND-ed with the rule's condition and only runs
when the condition already matched (so it costs nothing on ordinary events). A predicate takes
``(event, view, ctx)`` — the event, the matched shell/SQL view or None, and a
:class:`PredicateContext` — and returns a bool. It must be pure and fast; an exception counts as
"no match". Register new ones with :func:`predicate`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from detectors.events import Event
from detectors.rulebook.fields import View

__all__ = ["PREDICATES", "PredicateContext", "predicate"]

PredicateFn = Callable[[Event, "View | None", "PredicateContext"], bool]
PREDICATES: dict[str, PredicateFn] = {}


@dataclass(frozen=True, slots=True)
class PredicateContext:
    internal_domains: tuple[str, ...] = ()
    sensitive_tables: tuple[str, ...] = ()


def predicate(name: str) -> Callable[[PredicateFn], PredicateFn]:
    def register(fn: PredicateFn) -> PredicateFn:
        PREDICATES[name] = fn
        return fn

    return register


def _entropy(s: str) -> float:
    if not s:
        return 0.0
    counts = Counter(s)
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


@predicate("dns_tunnel_label")
def dns_tunnel_label(event: Event, view: View | None, ctx: PredicateContext) -> bool:
    """A DNS name argument with a long, high-entropy label (data encoded into a subdomain)."""
    if view is None:
        return False
    for arg in view.fields.get("shell.args", ()):
        if arg.startswith("-") or arg.startswith("@") or "." not in arg:
            continue
        if "$(" in arg or "`" in arg:
            return True  # the name is built from command output
        labels = arg.strip(".").split(".")
        if len(labels) < 3:
            continue
        for label in labels[:-2]:
            if len(label) >= 24 and _entropy(label.lower()) >= 3.5:
                return True
    return False


_RECON = frozenset(
    {"whoami", "id", "uname", "hostname", "ifconfig", "ip", "netstat", "ss", "ps", "w", "who",
     "last", "arp", "route", "groups", "hostnamectl", "lsb_release", "env", "mount", "getent",
     "lscpu", "crontab", "nproc"}
)  # fmt: skip


@predicate("recon_burst")
def recon_burst(event: Event, view: View | None, ctx: PredicateContext) -> bool:
    """Three or more different reconnaissance programs (or reads of /etc/passwd) in one line."""
    from detectors.rulebook.fields import shell_of

    parsed = shell_of(event)
    if parsed is None:
        return False
    seen: set[str] = set()
    for c in parsed.commands:
        if c.program in _RECON:
            seen.add(c.program)
        elif c.program in ("cat", "head", "less") and any(
            a in ("/etc/passwd", "/etc/group", "/etc/hosts") for a in c.args
        ):
            seen.add("passwd")
    return len(seen) >= 3


_GRANT_WORDS = (
    "ALL",
    "SUPERUSER",
    "BYPASSRLS",
    "CREATEROLE",
    "WITH GRANT OPTION",
    "WITH ADMIN OPTION",
    "DBA",
    "SYSADMIN",
    "OWNERSHIP",
    "PG_READ_SERVER_FILES",
    "PG_EXECUTE_SERVER_PROGRAM",
)


@predicate("sql_privilege_grant")
def sql_privilege_grant(event: Event, view: View | None, ctx: PredicateContext) -> bool:
    """The statement grants broad privileges (ALL, SUPERUSER, admin roles, grant options)."""
    if view is None:
        return False
    text = " ".join(view.text.upper().split())
    return any(f" {w} " in f" {text} " or f" {w};" in f" {text}" for w in _GRANT_WORDS)
