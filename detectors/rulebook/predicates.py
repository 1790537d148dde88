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

from detectors.base import Event
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
        labels = arg.strip(".").split(".")
        if len(labels) < 3:
            continue
        for label in labels[:-2]:
            if len(label) >= 24 and _entropy(label.lower()) >= 3.5:
                return True
    return False
