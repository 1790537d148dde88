"""Compile loaded rules into one combined, linear-time matcher.

Every leaf of every rule's condition (``field|modifier: value``) becomes a *predicate* with an
id; identical predicates of different rules share one id. Per field, the predicates are indexed:

- equality on strings -> a dict lookup (case-folded unless ``|cased``);
- ``contains`` / ``startswith`` / ``endswith`` / wildcards / ``|re`` -> one ``re2.Set`` per field,
  run once over the field's text (values of multi-valued fields joined by newlines, patterns in
  multi-line mode so ``^``/``$`` anchor on each value); a hit on text holding a newline is
  verified against each value on its own, so semantics stay exact;
- numeric comparisons, CIDR, null/exists -> small direct checks.

One event therefore costs one dict lookup or one RE2 scan per field in use, whatever the number
of rules. The true predicates then select candidate rules through an index (each rule is indexed
under its most selective necessary predicates), and only candidates have their boolean condition
evaluated. Every regular expression is RE2 (linear time, no backreferences/lookaround), so a
user-written rule cannot stall the worker.

A rule using view fields (``shell.*`` of one command, ``sql.*`` of one statement) is evaluated per
view: it matches when one view satisfies the whole condition.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import re2
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from detectors.events import Event
from detectors.parsing.shell import ParsedShell
from detectors.rulebook.fields import (
    DERIVED_EVENT_FIELDS,
    LOW_CARDINALITY,
    UNIT_FIELDS,
    EventFields,
    Source,
    SqlItems,
    Values,
    View,
    _values,
    args_values,
    build_views,
    event_value,
    is_external,
    is_known_field,
    parse_sources,
    raw_value,
    shell_source,
    sql_source,
    target_host,
    unit_value,
    view_kind_of,
)
from detectors.rulebook.loader import re2_error_text
from detectors.rulebook.model import ExceptionSpec, Problem, Rule

__all__ = ["CompileError", "CompiledRule", "Hit", "Matcher", "Pred", "compile_rules"]

KEYWORD_FIELD = "action.command"  # Sigma keyword detections (no field) search the command text
MAX_EXPANSION = 2048
_EMPTY: frozenset[int] = frozenset()
_QUIET = re2.Options()
_QUIET.log_errors = False
try:  # the binding's anchor constant, for the fast single-regex test in _verifier
    from re2 import _re2

    _UNANCHORED: Any = _re2.RE2.Anchor.UNANCHORED
except (ImportError, AttributeError):  # pragma: no cover - another re2 binding
    _UNANCHORED = None


class CompileError(Exception):
    def __init__(self, message: str, key: tuple[Any, ...] = ("detection",)) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class Pred:
    """One leaf test. ``op``: eq, contains, startswith, endswith, glob, re, num, cidr, null,
    exists. ``arg`` depends on ``op`` (a string, a regex source, ``(operator, number)``, a
    network, a bool)."""

    field: str
    op: str
    arg: Any
    cased: bool = False

    def describe(self) -> str:
        return f"{self.field}|{self.op} {self.arg!r}"


# condition nodes: ("p", pid) | ("and", tuple) | ("or", tuple) | ("not", node) | ("const", bool)
Node = tuple[Any, ...]
Truth = Callable[[frozenset[int] | set[int], frozenset[int] | set[int]], bool]


@dataclass(slots=True)
class CompiledRule:
    rule: Rule
    index: int
    fn: Truth
    view_kinds: frozenset[str]
    positive: tuple[int, ...]  # predicate ids appearing un-negated, in condition order
    exceptions: list[Callable[[EventFields, View | None], bool]] = field(default_factory=list)
    predicate: Callable[[Event, View | None, Any], bool] | None = None
    node: Node = ("const", False)  # the condition tree over predicate ids


@dataclass(frozen=True, slots=True)
class Hit:
    rule: CompiledRule
    view: View | None
    pid: int | None  # a true positive predicate on an event field (for the span), if any


# ---------------------------------------------------------------------------------------------
# Sigma values -> predicates


def _glob_regex(parts: Sequence[Any]) -> str:
    out = []
    for p in parts:
        if p is SpecialChars.WILDCARD_MULTI:
            out.append("(?s:.*)")
        elif p is SpecialChars.WILDCARD_SINGLE:
            out.append("(?s:.)")
        else:
            out.append(re2.escape(str(p)))
    return "".join(out)


def _expand_placeholders(value: SigmaString, lists: dict[str, list[str]]) -> list[list[Any]]:
    """Parts lists of ``value`` with every ``%name%`` placeholder replaced by each list item."""
    options: list[list[list[Any]]] = []
    for part in value.s:
        if isinstance(part, Placeholder):
            if part.name not in lists:
                raise CompileError(
                    f"unknown list '%{part.name}%' (define it in a lists document or settings)"
                )
            if not lists[part.name]:
                return []  # an empty list matches nothing
            options.append([list(SigmaString(item).s) for item in lists[part.name]])
        else:
            options.append([[part]])
    total = 1
    for o in options:
        total *= max(1, len(o))
        if total > MAX_EXPANSION:
            raise CompileError(f"list expansion produces more than {MAX_EXPANSION} values")
    out = []
    for combo in itertools.product(*options):
        merged: list[Any] = []
        for piece in combo:
            for p in piece:
                if isinstance(p, str) and merged and isinstance(merged[-1], str):
                    merged[-1] += p
                else:
                    merged.append(p)
        out.append(merged)
    return out


def _string_preds(fname: str, value: SigmaString, lists: dict[str, list[str]]) -> list[Pred]:
    cased = isinstance(value, SigmaCasedString)
    variants = (
        _expand_placeholders(value, lists) if value.contains_placeholder() else [list(value.s)]
    )
    preds = []
    for parts in variants:
        specials = [p for p in parts if not isinstance(p, str)]
        strs = [p for p in parts if isinstance(p, str)]
        m = SpecialChars.WILDCARD_MULTI
        if not specials:
            preds.append(
                Pred(fname, "eq", "".join(strs) if cased else "".join(strs).lower(), cased)
            )
        elif parts == [m]:
            preds.append(Pred(fname, "exists", True))
        elif len(parts) == 3 and parts[0] is m and parts[2] is m and isinstance(parts[1], str):
            preds.append(Pred(fname, "contains", parts[1] if cased else parts[1].lower(), cased))
        elif len(parts) == 2 and parts[1] is m and isinstance(parts[0], str):
            preds.append(Pred(fname, "startswith", parts[0] if cased else parts[0].lower(), cased))
        elif len(parts) == 2 and parts[0] is m and isinstance(parts[1], str):
            preds.append(Pred(fname, "endswith", parts[1] if cased else parts[1].lower(), cased))
        else:
            preds.append(Pred(fname, "glob", _glob_regex(parts), cased))
    return preds


_RE_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}
_NUM_OPS = {
    CompareOperators.LT: "lt",
    CompareOperators.LTE: "lte",
    CompareOperators.GT: "gt",
    CompareOperators.GTE: "gte",
    CompareOperators.NEQ: "neq",
}


def _leaf_preds(fname: str, value: Any, lists: dict[str, list[str]]) -> list[Pred]:
    if isinstance(value, SigmaExpansion):
        out: list[Pred] = []
        for v in value.values:
            out.extend(_leaf_preds(fname, v, lists))
        return out
    if isinstance(value, SigmaString):
        return _string_preds(fname, value, lists)
    if isinstance(value, SigmaRegularExpression):
        flags = "".join(sorted(_RE_FLAGS[f] for f in value.flags))
        src = str(value.regexp)
        pattern = f"(?{flags}){src}" if flags else src
        try:
            re2.compile(pattern, _QUIET)
        except re2.error as exc:
            raise CompileError(
                f"regular expression {src!r} is not valid RE2 syntax: {re2_error_text(exc)}"
            ) from None
        return [Pred(fname, "re", pattern, True)]
    if isinstance(value, SigmaBool):
        return [Pred(fname, "eq", "true" if value.boolean else "false")]
    if isinstance(value, SigmaNumber):
        return [Pred(fname, "num", ("eq", float(value.number)))]
    if isinstance(value, SigmaCompareExpression):
        return [Pred(fname, "num", (_NUM_OPS[value.op], float(value.number.number)))]
    if isinstance(value, SigmaNull):
        return [Pred(fname, "null", True)]
    if isinstance(value, SigmaExists):
        return [Pred(fname, "exists", bool(value.exists))]
    if isinstance(value, SigmaCIDRExpression):
        return [Pred(fname, "cidr", value.network)]
    raise CompileError(
        f"unsupported value {value!r} for field {fname!r} (modifier not supported by agentwatch)"
    )


# ---------------------------------------------------------------------------------------------
# Per-field indexes


def _num(values: Values) -> list[float]:
    out = []
    for v in values:
        try:
            out.append(float(v))
        except ValueError:
            continue
    return out


def _direct(pred: Pred) -> Callable[[Values | None], bool]:
    op = pred.op
    if op == "null":
        return lambda vs: not vs
    if op == "exists":
        want = bool(pred.arg)
        return lambda vs: bool(vs) == want
    if op == "num":
        cmp, x = pred.arg
        fns: dict[str, Callable[[float], bool]] = {
            "eq": lambda v: v == x,
            "lt": lambda v: v < x,
            "lte": lambda v: v <= x,
            "gt": lambda v: v > x,
            "gte": lambda v: v >= x,
            "neq": lambda v: v != x,
        }
        f = fns[cmp]
        return lambda vs: bool(vs) and any(f(v) for v in _num(vs))  # type: ignore[arg-type]
    if op == "cidr":
        net = pred.arg

        def cidr(vs: Values | None) -> bool:
            for v in vs or ():
                try:
                    if ipaddress.ip_address(v.strip()) in net:
                        return True
                except ValueError:
                    continue
            return False

        return cidr
    raise AssertionError(op)  # pragma: no cover


def _set_pattern(pred: Pred) -> str:
    """The prefilter pattern: multi-line mode, a superset of the exact per-value test."""
    ci = "" if pred.cased else "i"
    if pred.op == "contains":
        return f"(?m{ci}){re2.escape(pred.arg)}"
    if pred.op == "startswith":
        return f"(?m{ci})^{re2.escape(pred.arg)}"
    if pred.op == "endswith":
        return f"(?m{ci}){re2.escape(pred.arg)}$"
    if pred.op == "glob":
        return f"(?m{ci})^(?:{pred.arg})$"
    # user regex: \A and \z would only anchor on the first/last value of a joined text
    src = str(pred.arg).replace("\\A", "^").replace("\\z", "$")
    return f"(?m)(?:{src})"


def _verifier(pred: Pred) -> Callable[[Values], bool]:
    """Exact test of ``pred`` against each value on its own."""
    op = pred.op
    x = pred.arg
    if op in ("contains", "startswith", "endswith"):
        methods: dict[str, Callable[[str, str], bool]] = {
            "contains": str.__contains__,
            "startswith": str.startswith,
            "endswith": str.endswith,
        }
        meth = methods[op]
        if pred.cased:
            return lambda vs: any(meth(v, x) for v in vs)
        return lambda vs: any(meth(v.lower(), x) for v in vs)
    if op == "glob":
        rx = re2.compile(("" if pred.cased else "(?i)") + f"^(?:{x})$", _QUIET)
    else:
        rx = re2.compile(str(x), _QUIET)
    # The binding's RE2 object directly: ``rx.search`` runs a Python generator that maps byte
    # offsets back to characters (1.5-5 µs a call); we only need whether there is a match,
    # which is the same search (unanchored, whole text) without the span bookkeeping (~0.6 µs).
    inner = getattr(rx, "_regexp", None)
    if inner is None or _UNANCHORED is None:  # pragma: no cover - another re2 binding
        return lambda vs: any(rx.search(v) is not None for v in vs)
    match = inner.Match
    unanchored = _UNANCHORED

    def verify(vs: Values) -> bool:
        for v in vs:
            b = v.encode()
            if match(unanchored, b, 0, len(b))[0][0] >= 0:
                return True
        return False

    return verify


#: per-field memo of value -> true predicates, for event-level fields (bounded: cleared when
#: full; only short values are memoised, so an attacker cannot make it large)
_MEMO_ENTRIES = 4096
_MEMO_MAX_CHARS = 512
#: where :meth:`FieldIndex.unit_truth` first judges whether its memo pays
_MEMO_JUDGED = 256


def _memoisable(values: Values | None) -> bool:
    """Whether a memo may keep ``values``: short ones only, so an attacker cannot make it large."""
    return values is None or (len(values) <= 8 and sum(map(len, values)) <= _MEMO_MAX_CHARS)


class FieldIndex:
    """All predicates on one field."""

    __slots__ = (
        "_direct_ops",
        "_match",
        "direct",
        "eq_ci",
        "eq_cs",
        "field",
        "memo",
        "memo_hits",
        "memo_pays",
        "rset",
        "set_pids",
        "verify",
    )

    def __init__(self, name: str) -> None:
        self.field = name
        self.eq_ci: dict[str, list[int]] = {}
        self.eq_cs: dict[str, list[int]] = {}
        self.rset: Any = None
        self._match: Callable[[bytes], list[int]] | None = None
        self.set_pids: list[int] = []
        self.verify: dict[int, Callable[[Values], bool]] = {}
        self.direct: list[tuple[int, Callable[[Values | None], bool]]] = []
        self._direct_ops: list[str] = []
        # keys: a field's values (tuple or None), or one string for a single-string value
        self.memo: dict[Values | str | None, frozenset[int]] = {}
        # for :meth:`unit_truth`: hits since the memo was last cleared, and whether it still pays
        self.memo_hits = 0
        self.memo_pays = True

    def add(self, pid: int, pred: Pred, set_patterns: list[tuple[str, int]]) -> None:
        if pred.op == "eq":
            (self.eq_cs if pred.cased else self.eq_ci).setdefault(pred.arg, []).append(pid)
        elif pred.op in ("contains", "startswith", "endswith", "glob", "re"):
            set_patterns.append((_set_pattern(pred), pid))
            if not (pred.op == "contains" and "\n" not in pred.arg):
                self.verify[pid] = _verifier(pred)
        else:
            self.direct.append((pid, _direct(pred)))
            self._direct_ops.append(pred.op)

    def build(self, set_patterns: list[tuple[str, int]]) -> None:
        if not set_patterns:
            return
        opts = re2.Options()
        opts.max_mem = 64 << 20
        opts.log_errors = False
        rset = re2.Set.SearchSet(opts)
        for pattern, pid in set_patterns:
            if rset.Add(pattern) < 0:  # pragma: no cover - patterns were compiled one by one first
                raise CompileError(f"cannot add pattern {pattern!r} to the field matcher")
            self.set_pids.append(pid)
        rset.Compile()
        self.rset = rset
        # the binding's own method: the wrapper adds a Python call per scan on the hot path
        inner = getattr(rset, "_set", None)
        self._match = inner.Match if inner is not None else None

    def truth(self, values: Values | None, out: set[int]) -> None:
        if not values:
            for pid, fn in self.direct:
                if fn(values):
                    out.add(pid)
            return
        if self.eq_ci:
            get = self.eq_ci.get
            for v in values:
                pids = get(v.lower())
                if pids:
                    out.update(pids)
        if self.eq_cs:
            get = self.eq_cs.get
            for v in values:
                pids = get(v)
                if pids:
                    out.update(pids)
        if self.rset is not None:
            text = values[0] if len(values) == 1 else "\n".join(values)
            match = self._match
            hits = match(text.encode()) if match is not None else self.rset.Match(text)
            if hits:
                set_pids = self.set_pids
                if "\n" in text:  # several values (or one with a newline): verify per value
                    verify = self.verify
                    for h in hits:
                        pid = set_pids[h]
                        check = verify.get(pid)
                        if check is None or check(values):
                            out.add(pid)
                else:
                    for h in hits:
                        out.add(set_pids[h])
        for pid, fn in self.direct:
            if fn(values):
                out.add(pid)

    def presence(self) -> tuple[frozenset[int], frozenset[int]] | None:
        """(truth when the field is missing or empty, truth when it has a value) if every
        predicate on the field is ``exists``/``null`` (their truth depends on nothing else),
        else None."""
        if self.eq_ci or self.eq_cs or self.rset is not None or not self.direct:
            return None
        if any(op not in ("null", "exists") for op in self._direct_ops):
            return None
        absent: set[int] = set()
        present: set[int] = set()
        self.truth(None, absent)
        self.truth(("x",), present)
        return (frozenset(absent) or _EMPTY, frozenset(present) or _EMPTY)

    def fresh_truth(self, values: Values | None) -> frozenset[int]:
        """The predicates true for ``values``, computed (what the memos hold)."""
        t: set[int] = set()
        self.truth(values, t)
        return frozenset(t) if t else _EMPTY

    def unit_truth(self, values: Values | None, out: set[int]) -> None:
        """:meth:`truth` for a field of a command text's parse (view fields, unit fields), into
        ``out``, memoised while that pays.

        The texts themselves are cached per text, but most of their parse fields repeat across
        texts that differ elsewhere: the simulated fleet's 7,251 new texts in 40,000 events had
        59 distinct ``shell.programs``, 99 ``shell.flags``, 35 ``sql.kind``. A memo hit saves
        the field's RE2 scan, which also releases the interpreter lock to any thread waiting
        for it. A field whose values rarely repeat (the argument line: 4,928 distinct of 5,633)
        stops memoising, for good, once its memo has served fewer hits than it holds entries,
        judged at :data:`_MEMO_JUDGED` entries and whenever the memo is full (a memo that
        reached 256 distinct values without as many hits is not a repeating field). The truth
        does not depend on the memo, so when it stops changes nothing but cost."""
        if not self.memo_pays:
            self.truth(values, out)
            return
        memo = self.memo
        got = memo.get(values)
        if got is not None:
            self.memo_hits += 1
        else:
            got = self.fresh_truth(values)
            if _memoisable(values):
                size = len(memo)
                if size == _MEMO_JUDGED or size >= _MEMO_ENTRIES:
                    self.memo_pays = self.memo_hits >= size
                if size >= _MEMO_ENTRIES or not self.memo_pays:
                    self.memo_hits = 0
                    memo.clear()
                if self.memo_pays:
                    memo[values] = got
        if got:
            out.update(got)

    def memo_truth(self, values: Values | None) -> frozenset[int]:
        """The predicates true for ``values``, memoised (event-level fields repeat a lot)."""
        memo = self.memo
        got = memo.get(values)
        if got is None:
            got = self.fresh_truth(values)
            if _memoisable(values):
                if len(memo) >= _MEMO_ENTRIES:
                    memo.clear()  # values are recomputed identically
                memo[values] = got
        return got


# ---------------------------------------------------------------------------------------------
# Conditions


class _Builder:
    def __init__(self, lists: dict[str, list[str]]) -> None:
        self.lists = lists
        self.preds: list[Pred] = []
        self.ids: dict[Pred, int] = {}

    def pid(self, pred: Pred) -> int:
        got = self.ids.get(pred)
        if got is None:
            got = len(self.preds)
            self.ids[pred] = got
            self.preds.append(pred)
        return got

    def node(self, cond: Any) -> Node:
        if isinstance(cond, ConditionAND):
            return ("and", tuple(self.node(a) for a in cond.args))
        if isinstance(cond, ConditionOR):
            return ("or", tuple(self.node(a) for a in cond.args))
        if isinstance(cond, ConditionNOT):
            return ("not", self.node(cond.args[0]))
        if isinstance(cond, ConditionFieldEqualsValueExpression):
            fname = cond.field
            if not is_known_field(fname):
                raise CompileError(f"unknown field {fname!r}")
            return self._leaf(fname, cond.value)
        if isinstance(cond, ConditionValueExpression):
            value = cond.value
            if isinstance(value, SigmaString):  # keywords are full-text: substring matches
                m = SpecialChars.WILDCARD_MULTI
                parts = list(value.s)
                wrapped = type(value)()
                wrapped.s = [
                    *([] if parts[:1] == [m] else [m]),
                    *parts,
                    *([] if parts[-1:] == [m] else [m]),
                ]
                value = wrapped
            return self._leaf(KEYWORD_FIELD, value)
        raise CompileError(f"unsupported condition element {type(cond).__name__}")

    def _leaf(self, fname: str, value: Any) -> Node:
        preds = _leaf_preds(fname, value, self.lists)
        if not preds:
            return ("const", False)
        nodes = tuple(("p", self.pid(p)) for p in preds)
        return nodes[0] if len(nodes) == 1 else ("or", nodes)


def _never(a: frozenset[int] | set[int], b: frozenset[int] | set[int]) -> bool:
    return False


def _closure(node: Node, view_pids: set[int]) -> Truth:
    """A function ``(event_truth, view_truth) -> bool`` for a condition tree. A list of leaves
    under OR (``shell.program: [a, b, c]``) becomes one ``isdisjoint`` per truth set."""
    kind = node[0]
    if kind == "p":
        pid = node[1]
        if pid in view_pids:
            return lambda a, b: pid in b
        return lambda a, b: pid in a
    if kind == "const":
        c = bool(node[1])
        return lambda a, b: c
    if kind == "not":
        inner = _closure(node[1], view_pids)
        return lambda a, b: not inner(a, b)
    if kind == "or":
        leaves = [n[1] for n in node[1] if n[0] == "p"]
        ev = frozenset(p for p in leaves if p not in view_pids)
        vw = frozenset(p for p in leaves if p in view_pids)
        subs: list[Truth] = []
        if len(ev) == 1:
            subs.append(_closure(("p", next(iter(ev))), view_pids))
        elif ev:
            subs.append(lambda a, b: not ev.isdisjoint(a))
        if len(vw) == 1:
            subs.append(_closure(("p", next(iter(vw))), view_pids))
        elif vw:
            subs.append(lambda a, b: not vw.isdisjoint(b))
        subs.extend(_closure(n, view_pids) for n in node[1] if n[0] != "p")
    else:
        subs = [_closure(n, view_pids) for n in node[1]]
    if len(subs) == 1:
        return subs[0]
    if kind == "and":
        if len(subs) == 2:
            x, y = subs
            return lambda a, b: x(a, b) and y(a, b)
        if len(subs) == 3:
            x, y, z = subs
            return lambda a, b: x(a, b) and y(a, b) and z(a, b)
        fs = tuple(subs)

        def all_of(a: frozenset[int] | set[int], b: frozenset[int] | set[int]) -> bool:
            for f in fs:
                if not f(a, b):
                    return False
            return True

        return all_of
    if len(subs) == 2:
        x, y = subs
        return lambda a, b: x(a, b) or y(a, b)
    if len(subs) == 3:
        x, y, z = subs
        return lambda a, b: x(a, b) or y(a, b) or z(a, b)
    fs = tuple(subs)

    def any_of(a: frozenset[int] | set[int], b: frozenset[int] | set[int]) -> bool:
        for f in fs:
            if f(a, b):
                return True
        return False

    return any_of


def _simplify(node: Node, known: dict[int, bool]) -> Node:
    """``node`` with the predicates of ``known`` replaced by their value, folded."""
    kind = node[0]
    if kind == "p":
        v = known.get(node[1])
        return node if v is None else ("const", v)
    if kind == "const":
        return node
    if kind == "not":
        inner = _simplify(node[1], known)
        return ("const", not inner[1]) if inner[0] == "const" else ("not", inner)
    absorbing = kind == "or"  # True absorbs an OR, False an AND
    subs = []
    for n in node[1]:
        s = _simplify(n, known)
        if s[0] == "const":
            if bool(s[1]) == absorbing:
                return ("const", absorbing)
            continue
        subs.append(s)
    if not subs:
        return ("const", not absorbing)
    return subs[0] if len(subs) == 1 else (kind, tuple(subs))


#: the wildcards of a glob as _glob_regex writes them (literal text is escaped, so never these)
_GLOB_WILDCARDS = re2.compile(r"\(\?s:\.\*?\)")


def _cost(pred: Pred) -> float:
    """How often the predicate is expected to be true (relative): the prefilter index puts a rule
    under its cheapest necessary predicates, so a rule is evaluated only when one of them holds."""
    if pred.op in ("null", "exists", "num", "cidr"):
        return 50.0
    if pred.op == "glob" and not _GLOB_WILDCARDS.sub("", str(pred.arg)):
        # only wildcards (``?``, ``*?``: any non-empty value): as often true as ``exists``
        return 50.0
    if pred.field in LOW_CARDINALITY:
        return 20.0
    if pred.op == "eq":
        return 0.2  # equality on a program name, table, host...: rarely true
    return 1.0


def _per_event(pred: Pred) -> bool:
    """Whether the predicate's truth must be computed for every event (an event field), rather
    than once per distinct command text (views and :data:`UNIT_FIELDS`, cached)."""
    return view_kind_of(pred.field) is None and pred.field not in UNIT_FIELDS


Trigger = tuple[bool, float, frozenset[int]]


def _trigger(node: Node, preds: list[Pred]) -> Trigger | None:
    """A set of predicates at least one of which must be true for ``node`` to be true, with
    whether any of them is per-event and its cost; None when the node can be true with no
    predicate true (e.g. under NOT). Under AND the child chosen is the cheapest, preferring
    command-level predicates: their candidates are cached per command text."""
    kind = node[0]
    if kind == "p":
        pred = preds[node[1]]
        return _per_event(pred), _cost(pred), frozenset((node[1],))
    if kind == "const":
        return (False, 0, frozenset()) if not node[1] else None
    if kind == "not":
        return None
    subs = [_trigger(n, preds) for n in node[1]]
    if kind == "and":
        known = [s for s in subs if s is not None]
        return min(known, key=lambda s: (s[0], s[1], len(s[2]))) if known else None
    ids: set[int] = set()
    cost = 0.0
    per_event = False
    for s in subs:
        if s is None:
            return None
        per_event = per_event or s[0]
        ids |= s[2]
        cost += s[1]
    return per_event, cost, frozenset(ids)


def _positives(node: Node, out: list[int], negated: bool = False) -> None:
    kind = node[0]
    if kind == "p" and not negated and node[1] not in out:
        out.append(node[1])
    elif kind == "not":
        _positives(node[1], out, not negated)
    elif kind in ("and", "or"):
        for n in node[1]:
            _positives(n, out, negated)


def _pids(node: Node, out: set[int]) -> None:
    if node[0] == "p":
        out.add(node[1])
    elif node[0] == "not":
        _pids(node[1], out)
    elif node[0] in ("and", "or"):
        for n in node[1]:
            _pids(n, out)


# ---------------------------------------------------------------------------------------------
# Exceptions


def _exception_fn(
    spec: ExceptionSpec, ef_get: Callable[[EventFields, View | None, str], Values | None]
) -> Callable[[EventFields, View | None], bool]:
    fields = list(spec.fields)
    comps = list(spec.comps)
    rows: list[list[Any]] = []
    for row in spec.values:
        prepared: list[Any] = []
        for comp, v in zip(comps, row, strict=True):
            if comp == "in":
                items = v if isinstance(v, list) else [v]
                prepared.append(frozenset(str(i).lower() for i in items))
            elif comp == "cidr":
                prepared.append(ipaddress.ip_network(str(v), strict=False))
            else:
                prepared.append(str(v).lower())
        rows.append(prepared)

    def test(comp: str, want: Any, values: Values | None) -> bool:
        if not values:
            return False
        if comp == "cidr":
            for v in values:
                try:
                    if ipaddress.ip_address(v.strip()) in want:
                        return True
                except ValueError:
                    continue
            return False
        lowered = [v.lower() for v in values]
        if comp == "equals":
            return want in lowered
        if comp == "in":
            return any(v in want for v in lowered)
        if comp == "startswith":
            return any(v.startswith(want) for v in lowered)
        if comp == "endswith":
            return any(v.endswith(want) for v in lowered)
        return any(want in v for v in lowered)  # contains

    def applies(ef: EventFields, view: View | None) -> bool:
        got = [ef_get(ef, view, f) for f in fields]
        for row in rows:
            if all(test(c, w, vals) for c, w, vals in zip(comps, row, got, strict=True)):
                return True
        return False

    return applies


def field_values(ef: EventFields, view: View | None, name: str) -> Values | None:
    """A field's values for an event and (for view fields) one of its views."""
    if view_kind_of(name) is not None:
        if view is None:
            return None
        return view.fields.get(name)
    return ef.get(name)


# ---------------------------------------------------------------------------------------------


class _EvField:
    """How to read one event-level field that does not come from the command text, and the
    index of its predicates. ``truth(data, action)`` is the set of its true predicates."""

    __slots__ = ("fi", "get", "name", "truth")

    def __init__(
        self,
        name: str,
        fi: FieldIndex,
        get: Callable[[dict[str, Any], Any], Values | None],
        raw: Callable[[dict[str, Any], Any], Any] | None = None,
    ) -> None:
        self.name = name
        self.fi = fi
        self.get = get
        pres = fi.presence() if raw is not None else None
        if pres is not None and raw is not None:
            # only exists/null tests (delegation.token_id, approver, ...): the truth is one of
            # two sets, and the value need not be copied into a tuple nor memoised (these
            # fields are often unique per event: the memo would only churn)
            absent, present = pres
            read = raw

            def presence(data: dict[str, Any], action: Any) -> frozenset[int]:
                return present if _present(read(data, action)) else absent

            self.truth: Callable[[dict[str, Any], Any], frozenset[int]] = presence
            return
        memo = fi.memo
        memo_truth = fi.memo_truth
        if raw is not None:
            # a JSON path: most values are one string, memoised under the string itself (a
            # str key never equals the tuple keys of other values), so the common event costs
            # a dict walk and one lookup, without building the 1-tuple
            read = raw
            fresh = fi.fresh_truth

            def by_text(data: dict[str, Any], action: Any) -> frozenset[int]:
                v = read(data, action)
                if type(v) is not str:
                    return memo_truth(_values(v))
                got = memo.get(v)
                if got is None:
                    got = fresh((v,))
                    if len(v) <= _MEMO_MAX_CHARS:  # as memo_truth: short values only
                        if len(memo) >= _MEMO_ENTRIES:
                            memo.clear()
                        memo[v] = got
                return got

            self.truth = by_text
            return

        def memoised(data: dict[str, Any], action: Any) -> frozenset[int]:
            values = get(data, action)
            got = memo.get(values)  # the memo hit inline: one call less per field and event
            return got if got is not None else memo_truth(values)

        self.truth = memoised


def _present(v: Any) -> bool:
    """``bool(_values(v))`` without building the tuple: a scalar, or a list with a scalar among
    its first 256 items."""
    if v is None:
        return False
    if isinstance(v, (str, int, float)):  # bool is an int
        return True
    if isinstance(v, list):
        for i in v if len(v) <= 256 else v[:256]:  # no copy of the usual short list
            if isinstance(i, (str, int, float)):
                return True
    return False


def _raw_getter(name: str) -> Callable[[dict[str, Any], Any], Any]:
    """The raw JSON value at a dotted path (what :func:`event_value` converts), or None."""
    parts = tuple(name.split("."))
    if len(parts) == 2 and parts[0] == "action":
        key = parts[1]
        return lambda data, action: action.get(key) if action is not None else None
    if len(parts) == 1:
        top = parts[0]
        return lambda data, action: data.get(top)
    if len(parts) == 2:  # delegation.token_id...: the walk below, unrolled
        outer, inner = parts

        def two(data: dict[str, Any], action: Any) -> Any:
            cur = data.get(outer)
            return cur.get(inner) if isinstance(cur, dict) else None

        return two

    return lambda data, action: raw_value(data, parts)


#: event fields computed from ``action.target`` alone: read together, memoised per target text
_TARGET_FIELDS = frozenset({"action.target", "target.host", "target.external"})


def _target_group(fields: Sequence[_EvField], memo: dict[str | None, frozenset[int]]) -> _EvField:
    """One trigger for several of :data:`_TARGET_FIELDS`: the union of their truths, memoised
    per target text (one dict lookup per event instead of a read and a lookup per field)."""
    parts = tuple(f.truth for f in fields)

    def compute(data: dict[str, Any], action: Any) -> frozenset[int]:
        out: frozenset[int] = _EMPTY
        for truth in parts:
            t = truth(data, action)
            if t:
                out = out | t
        return out

    def group(data: dict[str, Any], action: Any) -> frozenset[int]:
        target = action.get("target") if action is not None else None
        if target is not None and (type(target) is not str or len(target) > _MEMO_MAX_CHARS):
            return compute(data, action)  # not a plain short text: read each field
        got = memo.get(target)
        if got is None:
            got = compute(data, action)
            if len(memo) >= _MEMO_ENTRIES:
                memo.clear()  # bounded; values are recomputed identically
            memo[target] = got
        return got

    f = _EvField("+".join(x.name for x in fields), fields[0].fi, fields[0].get)
    f.truth = group
    return f


class _Plan:
    """What to evaluate for events of one ``action.kind``: the rules that can still match once
    the kind is known (conditions partially evaluated), their prefilter index, the event fields
    to read up front (trigger fields) and those to read only when a rule becomes a candidate."""

    __slots__ = (
        "always",
        "ident",
        "index",
        "kind_truth",
        "lazy",
        "needs_unit",
        "pure",
        "pure_always",
        "trigger_names",
        "triggers",
    )

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.kind_truth: frozenset[int] = _EMPTY
        self.index: dict[int, tuple[int, ...]] = {}
        self.always: frozenset[int] = _EMPTY  # per-event rules evaluated for every event
        self.pure: frozenset[int] = _EMPTY  # rules over command-level fields only
        self.pure_always: frozenset[int] = _EMPTY  # ...of those, the ones without a trigger
        self.triggers: tuple[_EvField, ...] = ()
        self.trigger_names: frozenset[str] = frozenset()  # the event fields the triggers read
        self.lazy: dict[int, tuple[_EvField, ...]] = {}
        self.needs_unit = False


#: per (command text, plan): the per-event candidates it adds, and the pure rules whose
#: condition holds: (rule index, view indexes | None)
_UnitPlan = tuple[frozenset[int], tuple[tuple[int, tuple[int, ...] | None], ...]]
_NO_UNIT_PLAN: _UnitPlan = (_EMPTY, ())


class _Unit:
    """Everything that depends only on an event's command texts: parse results, views, the
    truth of every view predicate per view and of the predicates on :data:`UNIT_FIELDS`, and
    (per plan) the candidate rules those trigger. Shared by every event with the same texts."""

    __slots__ = ("base", "cands", "parsed", "sql", "views", "vtruth", "weight")

    def __init__(
        self,
        parsed: ParsedShell | None,
        sql: SqlItems,
        views: list[View],
        vtruth: tuple[frozenset[int], ...],
        base: frozenset[int],
    ) -> None:
        self.parsed = parsed
        self.sql = sql
        self.views = views
        self.vtruth = vtruth
        self.base = base
        self.cands: dict[int, _UnitPlan] = {}
        self.weight = 0  # estimated bytes (measured: ~4 KB for a typical one-command line)


_EMPTY_UNIT = _Unit(None, [], [], (), _EMPTY)
#: plans kept for kinds the schema does not know (only unvalidated events have them)
MAX_PLANS = 64
#: bounded LRU cache of command-text results: entries, estimated bytes, and the longest text
#: cached (longer texts, which an attacker controls, are analysed every time instead)
UNIT_CACHE_ENTRIES = 20_000
UNIT_CACHE_BYTES = 32 << 20
UNIT_CACHE_MAX_TEXT = 4096
_TARGET_MEMO_MAX = 4096
_SCHEMA_KINDS = ("shell", "sql", "tool_call", "http", "file")


def _path_getter(name: str) -> Callable[[dict[str, Any], Any], Values | None]:
    parts = name.split(".")
    if len(parts) == 2 and parts[0] == "action":
        key = parts[1]

        def action_field(data: dict[str, Any], action: Any) -> Values | None:
            return _values(action.get(key)) if action is not None else None

        return action_field
    if len(parts) == 1:
        return lambda data, action: _values(data.get(name))
    return lambda data, action: event_value(data, name)


class Matcher:
    """The compiled rule set: ``match(event)`` returns the rules that fire (no side effects on
    results: its caches only ever hold values computed from the same inputs)."""

    def __init__(
        self,
        rules: list[CompiledRule],
        preds: list[Pred],
        event_fields: list[FieldIndex],
        view_fields: dict[str, list[FieldIndex]],
        index: dict[int, tuple[int, ...]],
        always: tuple[int, ...],
        internal_domains: Sequence[str],
        predicate_ctx: Any,
        unit_cache_entries: int = UNIT_CACHE_ENTRIES,
        unit_cache_bytes: int = UNIT_CACHE_BYTES,
    ) -> None:
        self.rules = rules
        self.preds = preds
        self.event_fields = event_fields
        self.view_fields = view_fields
        self.index = index
        self.always = always
        self.internal_domains = tuple(internal_domains)
        self.view_kinds = frozenset(k for k, v in view_fields.items() if v) | frozenset(
            k for r in rules for k in r.view_kinds
        )
        self.predicate_ctx = predicate_ctx
        self.event_index = {fi.field: fi for fi in event_fields}
        self.view_plan = {
            k: [(fi.field, fi, bool(fi.direct)) for fi in v] for k, v in view_fields.items()
        }
        self._unit_fields = [(fi.field, fi) for fi in event_fields if fi.field in UNIT_FIELDS]
        self._ev_fields = {
            fi.field: _EvField(
                fi.field,
                fi,
                self._getter(fi.field),
                None if fi.field in DERIVED_EVENT_FIELDS else _raw_getter(fi.field),
            )
            for fi in event_fields
            if fi.field not in UNIT_FIELDS
        }
        self._group_memos: dict[frozenset[str], dict[str | None, frozenset[int]]] = {}
        # event-level (not command-text) fields of each rule's whole condition: read before a
        # finding's span is chosen, so the span is the one of the full evaluation
        self._rule_fields: list[tuple[_EvField, ...]] = []
        for cr in rules:
            used: set[int] = set()
            _pids(cr.node, used)
            names = sorted({preds[p].field for p in used} & set(self._ev_fields))
            self._rule_fields.append(tuple(self._ev_fields[n] for n in names))
        self._target_memo: dict[str, tuple[Values | None, Values | None]] = {}
        self._units: OrderedDict[tuple[Source, Source], _Unit] = OrderedDict()
        self._unit_bytes = 0
        self.unit_cache_entries = max(0, int(unit_cache_entries))
        self.unit_cache_bytes = max(0, int(unit_cache_bytes))
        self._plans: dict[str | None, _Plan] = {}
        self._generic = self._build_plan(None, known=False)
        kind_fi = self.event_index.get("action.kind")
        kinds = set(_SCHEMA_KINDS)
        if kind_fi is not None:
            kinds |= set(kind_fi.eq_ci) | set(kind_fi.eq_cs)
        for k in sorted(kinds):
            self._plans[k] = self._build_plan(k, known=True)
        self._plans_fixed = len(self._plans)
        self._plans[None] = self._build_plan(None, known=True)

    def clear_caches(self) -> None:
        """Forget cached command-text results and memoised field truths (benchmarks, tests)."""
        self._units.clear()
        self._unit_bytes = 0
        self._target_memo.clear()
        for memo in self._group_memos.values():
            memo.clear()
        for fi in [*self.event_fields, *(f for fs in self.view_fields.values() for f in fs)]:
            fi.memo.clear()
            fi.memo_hits = 0
            fi.memo_pays = True

    @property
    def cache_info(self) -> dict[str, int]:
        """Entries and estimated bytes of the command-text cache."""
        return {"entries": len(self._units), "bytes": self._unit_bytes}

    # -- fields ----------------------------------------------------------------------------------

    def _getter(self, name: str) -> Callable[[dict[str, Any], Any], Values | None]:
        if name == "args.values":
            return lambda data, action: args_values(action)
        if name == "target.host":
            return lambda data, action: self._target(action)[0]
        if name == "target.external":
            return lambda data, action: self._target(action)[1]
        return _path_getter(name)

    def _target(self, action: Any) -> tuple[Values | None, Values | None]:
        """(target.host, target.external) of an action, memoised per target text."""
        target = action.get("target") if action is not None else None
        if not isinstance(target, str) or not target:
            return (None, None)
        memo = self._target_memo
        got = memo.get(target)
        if got is None:
            host = target_host(action)
            if host is None:
                got = (None, None)
            else:
                ext = is_external(host, self.internal_domains)
                got = ((host,), ("true",) if ext else ("false",))
            if len(target) <= 256:
                if len(memo) >= _TARGET_MEMO_MAX:
                    memo.clear()  # bounded; values are recomputed identically
                memo[target] = got
        return got

    # -- plans -----------------------------------------------------------------------------------

    def _build_plan(self, kind: Any, known: bool) -> _Plan:
        plan = _Plan(len(self._plans) + (0 if known else 1_000_000))
        preds = self.preds
        kind_fi = self.event_index.get("action.kind")
        known_map: dict[int, bool] = {}
        if known and kind_fi is not None:
            truth: set[int] = set()
            kind_fi.truth(_values(kind), truth)
            plan.kind_truth = frozenset(truth)
            for pid, pred in enumerate(preds):
                if pred.field == "action.kind":
                    known_map[pid] = pid in truth
        index: dict[int, list[int]] = {}
        always: list[int] = []
        pure: list[int] = []
        trigger_fields: set[str] = set()
        rule_fields: dict[int, set[str]] = {}
        for cr in self.rules:
            node = _simplify(cr.node, known_map) if known_map else cr.node
            if node[0] == "const" and not node[1]:
                continue  # cannot match events of this kind
            used: set[int] = set()
            _pids(node, used)
            fields = {preds[p].field for p in used}
            if cr.view_kinds or fields & UNIT_FIELDS:
                plan.needs_unit = True
            ev_fields = fields & set(self._ev_fields)
            if not ev_fields:  # decided by the command text alone: evaluated once per text
                pure.append(cr.index)
                plan.needs_unit = True
            rule_fields[cr.index] = ev_fields
            trig = _trigger(node, preds)
            if trig is None or not trig[2]:
                always.append(cr.index)
            else:
                for pid in trig[2]:
                    index.setdefault(pid, []).append(cr.index)
                    trigger_fields.add(preds[pid].field)
        plan.index = {k: tuple(v) for k, v in index.items()}
        plan.pure = frozenset(pure)
        plan.always = frozenset(always) - plan.pure
        plan.pure_always = frozenset(always) & plan.pure
        ev_triggers = sorted(trigger_fields & set(self._ev_fields))
        plan.trigger_names = frozenset(ev_triggers)
        group = [n for n in ev_triggers if n in _TARGET_FIELDS]
        triggers = [self._ev_fields[n] for n in ev_triggers if len(group) < 2 or n not in group]
        if len(group) >= 2:
            memo = self._group_memos.setdefault(frozenset(group), {})
            triggers.append(_target_group([self._ev_fields[n] for n in group], memo))
        plan.triggers = tuple(triggers)
        plan.lazy = {
            ri: tuple(self._ev_fields[n] for n in sorted(names - trigger_fields))
            for ri, names in rule_fields.items()
            if names - trigger_fields
        }
        return plan

    def _plan_for(self, kind: Any) -> _Plan:
        if (
            isinstance(kind, str)
            and len(kind) <= 64
            and len(self._plans) < self._plans_fixed + 1 + MAX_PLANS
        ):
            plan = self._plans[kind] = self._build_plan(kind, known=True)
            return plan
        return self._generic  # bounded: unknown kinds beyond the cap are evaluated generically

    # -- command texts ---------------------------------------------------------------------------

    def _unit_of(self, event: Event, action: dict[str, Any] | None) -> _Unit:
        sh = shell_source(action)
        sq = sql_source(action)
        if sh is None and sq is None:
            return _EMPTY_UNIT
        key = (sh, sq)
        units = self._units
        unit = units.get(key)
        if unit is not None:
            units.move_to_end(key)
        else:
            unit = self._build_unit(sh, sq)
            size = (len(sh[0]) if sh is not None else 0) + (len(sq[0]) if sq is not None else 0)
            # estimated footprint, calibrated with tracemalloc (views dominate: ~1.2 KB each)
            weight = 2000 + 6 * size + 1500 * len(unit.views) + 800 * len(unit.sql)
            if size <= UNIT_CACHE_MAX_TEXT and weight * 4 <= self.unit_cache_bytes:
                unit.weight = weight
                units[key] = unit
                self._unit_bytes += weight
                while (
                    len(units) > self.unit_cache_entries or self._unit_bytes > self.unit_cache_bytes
                ):
                    _, old = units.popitem(last=False)
                    self._unit_bytes -= old.weight
        d = event.derived
        d["shell"] = unit.parsed
        d["shell.source"] = sh[1] if sh is not None else None
        d["sql"] = unit.sql
        return unit

    def _build_unit(self, sh: Source, sq: Source) -> _Unit:
        parsed, stmts = parse_sources(sh, sq)
        views = (
            build_views(parsed, sh, sq, stmts, self.internal_domains, self.view_kinds)
            if self.view_kinds
            else []
        )
        base: set[int] = set()
        for name, fi in self._unit_fields:
            fi.unit_truth(unit_value(name, parsed, stmts), base)
        vtruth: list[frozenset[int]] = []
        for v in views:
            t: set[int] = set()
            fields = v.fields
            for name, fi, direct in self.view_plan.get(v.kind, ()):
                vals = fields.get(name)
                if vals or direct:  # most view fields are empty: skip the call
                    fi.unit_truth(vals, t)
            vtruth.append(frozenset(t) if t else _EMPTY)
        return _Unit(parsed, stmts, views, tuple(vtruth), frozenset(base) if base else _EMPTY)

    def _unit_cands(self, unit: _Unit, plan: _Plan) -> _UnitPlan:
        """The rules a command text makes candidates under ``plan``: those that also need event
        fields (evaluated per event), and the *pure* ones (only command-level fields) already
        evaluated: (rule, views where the condition holds | None for an event-level match)."""
        index = plan.index
        found: set[int] = set(plan.pure_always)
        for pid in unit.base:
            got = index.get(pid)
            if got:
                found.update(got)
        for t in unit.vtruth:
            for pid in t:
                got = index.get(pid)
                if got:
                    found.update(got)
        if not found:
            return _NO_UNIT_PLAN
        pure = plan.pure
        mixed = frozenset(ri for ri in found if ri not in pure)
        pending: list[tuple[int, tuple[int, ...] | None]] = []
        base = plan.kind_truth | unit.base
        views = unit.views
        for ri in sorted(found):
            if ri not in pure:
                continue
            cr = self.rules[ri]
            fn = cr.fn
            if cr.view_kinds:
                js = [j for j, v in enumerate(views) if v.kind in cr.view_kinds]
                if js:
                    true_js = tuple(j for j in js if fn(base, unit.vtruth[j]))
                    if true_js:
                        pending.append((ri, true_js))
                    continue
            if fn(base, _EMPTY):
                pending.append((ri, None))
        return (mixed or _EMPTY, tuple(pending))

    # -- matching --------------------------------------------------------------------------------

    def match(self, event: Event) -> list[Hit]:
        data = event.data
        action = data.get("action")
        if not isinstance(action, dict):
            action = None
        kind = action.get("kind") if action is not None else None
        plan = self._plans.get(kind) if kind is None or type(kind) is str else None
        if plan is None:
            plan = self._plan_for(kind)
        base = set(plan.kind_truth)
        for f in plan.triggers:
            t = f.truth(data, action)
            if t:
                base |= t
        index = plan.index
        cands: set[int] | frozenset[int] = plan.always
        grown = False
        for pid in base:
            got = index.get(pid)
            if got:
                if not grown:
                    cands = set(cands)
                    grown = True
                cands.update(got)  # type: ignore[union-attr]
        unit = _EMPTY_UNIT
        pending: tuple[tuple[int, tuple[int, ...] | None], ...] = ()
        if plan.needs_unit:
            unit = self._unit_of(event, action)
            if unit.base:
                base |= unit.base
            up = unit.cands.get(plan.ident)
            if up is None:
                up = unit.cands[plan.ident] = self._unit_cands(unit, plan)
            if up[0]:
                cands = cands | up[0]
            pending = up[1]
        if not cands and not pending:
            return []
        return self._evaluate(event, data, action, plan, unit, base, cands, pending)

    def _evaluate(
        self,
        event: Event,
        data: dict[str, Any],
        action: dict[str, Any] | None,
        plan: _Plan,
        unit: _Unit,
        base: set[int],
        cands: set[int] | frozenset[int],
        pending: tuple[tuple[int, tuple[int, ...] | None], ...],
    ) -> list[Hit]:
        hits: list[Hit] = []
        done: set[str] = set()
        lazy = plan.lazy
        views = unit.views
        vtruth = unit.vtruth
        ef: EventFields | None = None
        pre = dict(pending) if pending else None
        # rules in index order (findings in catalog order); most events have one candidate
        order = sorted(cands | pre.keys()) if pre else cands if len(cands) == 1 else sorted(cands)
        for ri in order:
            cr = self.rules[ri]
            if pre is not None and ri in pre:  # condition already known true (command-level)
                js = pre[ri]
                if ef is None:
                    ef = EventFields(event, self.internal_domains)
                if js is None:
                    if self._confirm(cr, ef, None, event):
                        self._complete(ri, data, action, base, done, plan)
                        hits.append(Hit(cr, None, self._span_pid(cr, base)))
                    continue
                for j in js:
                    if self._confirm(cr, ef, views[j], event):
                        hits.append(Hit(cr, views[j], None))
                        break
                continue
            fields = lazy.get(ri)
            if fields:
                for f in fields:
                    if f.name not in done:
                        done.add(f.name)
                        base |= f.truth(data, action)
            fn = cr.fn
            if cr.view_kinds:
                matched_any_kind = False
                for v, t in zip(views, vtruth, strict=True):
                    if v.kind not in cr.view_kinds:
                        continue
                    matched_any_kind = True
                    if fn(base, t):
                        if ef is None:
                            ef = EventFields(event, self.internal_domains)
                        if self._confirm(cr, ef, v, event):
                            hits.append(Hit(cr, v, None))
                            break
                else:
                    if not matched_any_kind and fn(base, _EMPTY):
                        if ef is None:
                            ef = EventFields(event, self.internal_domains)
                        if self._confirm(cr, ef, None, event):
                            self._complete(ri, data, action, base, done, plan)
                            hits.append(Hit(cr, None, self._span_pid(cr, base)))
            elif fn(base, _EMPTY):
                if ef is None:
                    ef = EventFields(event, self.internal_domains)
                if self._confirm(cr, ef, None, event):
                    self._complete(ri, data, action, base, done, plan)
                    hits.append(Hit(cr, None, self._span_pid(cr, base)))
        return hits

    def _complete(
        self,
        ri: int,
        data: dict[str, Any],
        action: dict[str, Any] | None,
        base: set[int],
        done: set[str],
        plan: _Plan,
    ) -> None:
        """Read the rule's remaining event fields (those only dead branches use under this
        plan), so the span predicate is chosen from the full truth, as without plans."""
        trig = plan.trigger_names
        for f in self._rule_fields[ri]:
            if f.name not in done and f.name not in trig:
                done.add(f.name)
                base |= f.truth(data, action)

    def _confirm(self, cr: CompiledRule, ef: EventFields, view: View | None, event: Event) -> bool:
        for exc in cr.exceptions:
            if exc(ef, view):
                return False
        if cr.predicate is not None:
            try:
                return bool(cr.predicate(event, view, self.predicate_ctx))
            except Exception:  # a predicate bug must not stop the worker; the rule stays silent
                return False
        return True

    def _span_pid(self, cr: CompiledRule, base: set[int]) -> int | None:
        for pid in cr.positive:
            if pid in base and self.preds[pid].op in (
                "eq",
                "contains",
                "startswith",
                "endswith",
                "glob",
                "re",
            ):
                return pid
        return None

    def span_of(self, pid: int, value: str) -> tuple[int, int] | None:
        """Where predicate ``pid`` matches in ``value``."""
        pred = self.preds[pid]
        op = pred.op
        hay = value if pred.cased else value.lower()
        if op == "eq":
            return (0, len(value))
        if op == "contains":
            i = hay.find(pred.arg)
            return (i, i + len(pred.arg)) if i >= 0 else None
        if op == "startswith":
            return (0, len(pred.arg))
        if op == "endswith":
            return (len(value) - len(pred.arg), len(value))
        if op == "glob":
            return (0, len(value))
        m = re2.compile(str(pred.arg), _QUIET).search(value)
        return m.span() if m is not None else None


def compile_rules(
    rules: list[Rule],
    lists: dict[str, list[str]],
    extensions: Sequence[tuple[str, ExceptionSpec]],
    internal_domains: Sequence[str],
    predicates: dict[str, Callable[..., bool]],
    predicate_ctx: Any = None,
    *,
    cache_entries: int = UNIT_CACHE_ENTRIES,
    cache_bytes: int = UNIT_CACHE_BYTES,
) -> tuple[Matcher, list[Problem]]:
    """Compile ``rules``; rules that fail are left out and reported as problems.
    ``cache_entries``/``cache_bytes`` bound the matcher's cache of command-text results."""
    problems: list[Problem] = []
    builder = _Builder(lists)
    compiled: list[CompiledRule] = []
    # exception extensions from operator files, by rule id
    ext_by_rule: dict[str, list[ExceptionSpec]] = {}
    known_ids = {r.id for r in rules}
    for rid, spec in extensions:
        if rid not in known_ids:
            problems.append(
                Problem(spec.path, spec.line, f"exception for unknown rule {rid!r}", "warning", rid)
            )
            continue
        ext_by_rule.setdefault(rid, []).append(spec)
    for rule in rules:
        if not rule.enabled:
            continue
        try:
            parts = [builder.node(c) for c in rule.condition if c is not None]
        except CompileError as exc:
            problems.append(Problem(rule.path, rule.line_of(*exc.key), str(exc), "error", rule.id))
            continue
        node: Node = parts[0] if len(parts) == 1 else ("or", tuple(parts))
        if rule.category is not None:
            node = ("and", (("p", builder.pid(Pred("action.kind", "eq", rule.category))), node))
        specs = _merge_exceptions(rule, ext_by_rule.get(rule.id, []), problems)
        pred_fn = None
        if rule.predicate is not None:
            pred_fn = predicates.get(rule.predicate)
            if pred_fn is None:
                problems.append(
                    Problem(
                        rule.path,
                        rule.line_of("predicate"),
                        f"unknown predicate {rule.predicate!r}",
                        "error",
                        rule.id,
                    )
                )
                continue
        compiled.append(
            CompiledRule(
                rule=rule,
                index=len(compiled),
                fn=_never,  # finished below, once all pids exist
                view_kinds=frozenset(),
                positive=(),
                exceptions=[_exception_fn(s, field_values) for s in specs],
                predicate=pred_fn,
                node=node,
            )
        )
    preds = builder.preds
    view_pids = {i for i, p in enumerate(preds) if view_kind_of(p.field) is not None}
    index: dict[int, list[int]] = {}
    always: list[int] = []
    for cr in compiled:
        node = cr.node
        used: set[int] = set()
        _pids(node, used)
        cr.view_kinds = frozenset(
            k for k in (view_kind_of(preds[p].field) for p in used) if k is not None
        )
        pos: list[int] = []
        _positives(node, pos)
        cr.positive = tuple(pos)
        trig = _trigger(node, preds)
        if trig is None or not trig[2]:
            always.append(cr.index)
        else:
            for pid in trig[2]:
                index.setdefault(pid, []).append(cr.index)
        cr.fn = _closure(node, view_pids)
    # per-field indexes
    by_field: dict[str, FieldIndex] = {}
    patterns: dict[str, list[tuple[str, int]]] = {}
    for pid, pred in enumerate(preds):
        fi = by_field.get(pred.field)
        if fi is None:
            fi = by_field[pred.field] = FieldIndex(pred.field)
            patterns[pred.field] = []
        fi.add(pid, pred, patterns[pred.field])
    for name, fi in by_field.items():
        fi.build(patterns[name])
    event_fields = [fi for name, fi in sorted(by_field.items()) if view_kind_of(name) is None]
    view_fields: dict[str, list[FieldIndex]] = {"shell": [], "sql": []}
    for name, fi in sorted(by_field.items()):
        k = view_kind_of(name)
        if k is not None:
            view_fields[k].append(fi)
    matcher = Matcher(
        compiled,
        preds,
        event_fields,
        view_fields,
        {k: tuple(v) for k, v in index.items()},
        tuple(always),
        internal_domains,
        predicate_ctx,
        cache_entries,
        cache_bytes,
    )
    return matcher, problems


def _merge_exceptions(
    rule: Rule, extra: list[ExceptionSpec], problems: list[Problem]
) -> list[ExceptionSpec]:
    specs = {
        s.name: ExceptionSpec(
            s.name, list(s.fields), list(s.comps), [list(v) for v in s.values], s.path, s.line
        )
        for s in rule.exceptions
    }
    for ext in extra:
        base = specs.get(ext.name)
        if base is None:
            if not ext.fields:
                problems.append(
                    Problem(
                        ext.path,
                        ext.line,
                        f"rule {rule.id!r} has no exception {ext.name!r}: give 'fields' to add a new one",
                        "error",
                        rule.id,
                    )
                )
                continue
            specs[ext.name] = ExceptionSpec(
                ext.name,
                list(ext.fields),
                list(ext.comps),
                [list(v) for v in ext.values],
                ext.path,
                ext.line,
            )
            continue
        for row in ext.values:
            if len(row) != len(base.fields):
                problems.append(
                    Problem(
                        ext.path,
                        ext.line,
                        f"exception {ext.name!r} of {rule.id!r} takes {len(base.fields)} values per entry",
                        "error",
                        rule.id,
                    )
                )
                break
            base.values.append(list(row))
    return list(specs.values())
