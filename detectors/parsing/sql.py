"""SQL statement classifier for rule matching (not a validating parser).

``parse_sql(text) -> ParsedSql`` splits a query text into statements and says, for each, what a
detection rule needs: the statement ``kind`` (SELECT, DELETE, DROP, COPY, ...), the object type
of DDL (``DROP TABLE`` -> ``TABLE``), the tables it touches, whether the main statement has a
WHERE clause (and whether that WHERE is a tautology such as ``1=1``), a LIMIT/TOP/FETCH, a
``SELECT *``, where ``COPY ... TO`` writes, ``INTO OUTFILE`` and the functions it calls.

It is a single-pass tokenizer plus keyword scanning, dialect-agnostic, and never raises: broken
or partial SQL (which agents send) still yields its keywords. We measured sqlglot's full parse at
46-211 µs per statement on these machines and its tokenizer alone at 15-48 µs, too slow for the
per-event path; this classifier costs a few µs, and the tests check it against sqlglot's parse
on a corpus of queries. Bounds: input clipped to :data:`MAX_INPUT` characters, at most
:data:`MAX_STATEMENTS` statements and :data:`MAX_TOKENS` tokens, lists capped at 64 entries.

``sql_in_command(program, args, redirects)`` finds the SQL inside a shell command
(``psql -c``, ``mysql -e``, ``sqlite3 db SQL``, ``clickhouse-client -q``, ``bq query``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from detectors.events import FrozenValue

__all__ = ["MAX_INPUT", "ParsedSql", "SqlStatement", "parse_sql", "sql_in_command"]

MAX_INPUT = 64 * 1024
MAX_STATEMENTS = 64
MAX_TOKENS = 16384
MAX_LIST = 64
_CACHE_MAX_LEN = 4096


# The two result classes are plain classes with the dataclass's ``==``, ``repr`` and (as the
# frozen dataclasses they replace) a hash by value, from detectors.events.FrozenValue: a dataclass
# keeps an interpreted ``__init__`` in the compiled build. Treat them as read-only: parses are
# cached and shared.


class SqlStatement(FrozenValue):
    __slots__ = ("copy_to", "functions", "has_limit", "has_where", "into_outfile", "kind", "object_type",
                 "qualified_tables", "select_star", "span", "tables", "where_trivial")
    _NAMES = ("kind", "object_type", "tables", "qualified_tables", "has_where", "where_trivial", "has_limit",
              "select_star", "copy_to", "into_outfile", "functions", "span")

    def __init__(self, kind: str, object_type: str = "", tables: tuple[str, ...] = (),
                 qualified_tables: tuple[str, ...] = (), has_where: bool = False, where_trivial: bool = False,
                 has_limit: bool = False, select_star: bool = False, copy_to: str = "",
                 into_outfile: bool = False, functions: tuple[str, ...] = (), span: tuple[int, int] = (0, 0)) -> None:
        self.kind = kind
        self.object_type = object_type
        self.tables = tables
        self.qualified_tables = qualified_tables
        self.has_where = has_where
        self.where_trivial = where_trivial
        self.has_limit = has_limit
        self.select_star = select_star
        self.copy_to = copy_to
        self.into_outfile = into_outfile
        self.functions = functions
        self.span = span


class ParsedSql(FrozenValue):
    __slots__ = ("statements", "truncated")
    _NAMES = ("statements", "truncated")

    def __init__(self, statements: tuple[SqlStatement, ...], truncated: bool = False) -> None:
        self.statements = statements
        self.truncated = truncated


# token kinds
_W = 1  # word (keyword or bare identifier), value upper-cased
_Q = 2  # quoted identifier, value as written (lower-cased)
_S = 3  # string literal, value is its content
_N = 4  # number
_P = 5  # punctuation / operator


class _Tokens:
    """The tokens of a text as parallel lists: token ``i`` is ``kind[i]``, ``value[i]``,
    ``start[i]``, ``end[i]``, ``depth[i]`` (parenthesis depth).

    Not one tuple per token: in the compiled build every read of one field of a list's
    tuple (``ts[i][KIND]``) unboxed the whole tuple, five fields and their reference counts,
    and the analysis reads fields of neighbouring tokens again and again: a parse of one of the
    simulated fleet's queries cost ~326k instructions, 25.5 µs (now 18.2). A list of ints gives
    one field for one read, in the compiled build and in the interpreter alike. (Nor an object
    per token: a dataclass's ``__init__`` stays interpreted even when compiled, and it had cost
    a third of the parse.) Statements are ranges ``[lo, hi)`` of these lists."""

    __slots__ = ("depth", "end", "kind", "start", "value")

    def __init__(self) -> None:
        self.kind: list[int] = []
        self.value: list[str] = []
        self.start: list[int] = []
        self.end: list[int] = []
        self.depth: list[int] = []

    def __len__(self) -> int:
        return len(self.kind)

    def add(self, kind: int, value: str, start: int, end: int, depth: int) -> None:
        self.kind.append(kind)
        self.value.append(value)
        self.start.append(start)
        self.end.append(end)
        self.depth.append(depth)


# One pattern finds the next token: whitespace and comments skipped, then exactly one of the
# numbered groups says what starts there (their first characters are disjoint, except a string
# prefix letter, tried before words). Linear: the skipped part is possessive (never re-entered)
# and its pieces start with different characters, the token part never fails (the last group
# takes any character), so nothing backtracks. Strings, dollar-quoted bodies and
# quoted identifiers are read on from their opener with str.find. (One regex call per token
# instead of a chain of per-character tests: -17 % tokenizer time; tests compare it with the
# character-by-character tokenizer it replaced.)
_TOKEN = re.compile(
    r"(?:\s+|--[^\n]*\n?|/\*.*?(?:\*/|\Z))*+"  # skipped (possessive): blanks, comments
    r"(?:([EeNnBbXx]?')"  # 1: string literal opener ('...', E'...', N'...', B'...', X'...')
    r"|([A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)"  # 2: word
    r"|([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)"  # 3: number
    r"|([(),;.*])"  # 4: punctuation
    r"|(\$[A-Za-z_0-9]*\$)"  # 5: dollar-quote tag
    r"|([\"`\[])"  # 6: quoted identifier opener
    r"|([<>=!|:~^&+\-/%@#?]+)"  # 7: operator
    r"|(.))?",  # 8: any other character
    re.DOTALL,
)
_CLOSE = {'"': '"', "`": "`", "[": "]"}


def _tokenize(s: str, budget: int) -> tuple[_Tokens, bool]:
    toks = _Tokens()
    add = toks.add
    match = _TOKEN.match
    i = 0
    n = len(s)
    depth = 0
    count = 0
    while i < n:
        if count >= budget:
            return toks, True
        m = match(s, i)
        if m is None:  # never: every part of the pattern is optional, so it matches anywhere
            break
        g = m.lastindex
        if g is None:  # only whitespace or comments up to the end
            i = m.end()
            continue
        start, i = m.span(g)
        count += 1
        if g == 2:
            add(_W, m.group(2).upper(), start, i, depth)
        elif g == 4:
            c = m.group(4)
            if c == "(":
                add(_P, "(", start, i, depth)
                depth += 1
            elif c == ")":
                depth = max(0, depth - 1)
                add(_P, ")", start, i, depth)
            else:
                add(_P, c, start, i, depth)
        elif g == 3:
            add(_N, m.group(3), start, i, depth)
        elif g == 7:
            add(_P, m.group(7), start, i, depth)
        elif g == 1:  # i is just after the opening quote
            j = i
            parts = []
            while True:
                k = s.find("'", j)
                if k < 0:
                    parts.append(s[j:])
                    j = n
                    break
                parts.append(s[j:k])
                if k + 1 < n and s[k + 1] == "'":
                    parts.append("'")
                    j = k + 2
                    continue
                j = k + 1
                break
            add(_S, "".join(parts), start, j, depth)
            i = j
        elif g == 5:
            tag = m.group(5)
            k = s.find(tag, i)
            j = n if k < 0 else k + len(tag)
            add(_S, s[i : k if k >= 0 else n], start, j, depth)
            i = j
        elif g == 6:
            k = s.find(_CLOSE[m.group(6)], i)
            j = n if k < 0 else k + 1
            add(_Q, s[i : k if k >= 0 else n].lower(), start, j, depth)
            i = j
        else:  # a character no rule above takes: a (non-ASCII) digit is a number
            c = m.group(8)
            add(_N if c.isdigit() else _P, c, start, i, depth)
    return toks, False


_KINDS = frozenset(
    {
        "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "DROP", "TRUNCATE",
        "ALTER", "CREATE", "GRANT", "REVOKE", "COPY", "SHOW", "SET", "RESET", "BEGIN", "START",
        "COMMIT", "ROLLBACK", "SAVEPOINT", "CALL", "EXEC", "EXECUTE", "VACUUM", "ANALYZE", "DESCRIBE",
        "DESC", "USE", "LOCK", "UNLOAD", "LOAD", "BACKUP", "RESTORE", "RENAME", "COMMENT", "VALUES",
        "TABLE", "DO", "DECLARE", "FETCH", "PREPARE", "DEALLOCATE", "LISTEN", "NOTIFY", "REINDEX",
        "CLUSTER", "REFRESH", "IMPORT", "EXPORT", "PRAGMA", "ATTACH", "DETACH", "OPTIMIZE", "KILL",
        "FLUSH", "PURGE", "UNDROP",
    }
)  # fmt: skip
_DDL_MODIFIERS = frozenset(
    {"OR", "REPLACE", "TEMP", "TEMPORARY", "UNIQUE", "MATERIALIZED", "IF", "EXISTS", "NOT", "GLOBAL",
     "LOCAL", "EXTERNAL", "UNLOGGED", "CONCURRENTLY", "RECURSIVE", "TRANSIENT", "VOLATILE", "SECURE",
     "FOREIGN", "ONLY"}
)  # fmt: skip
_CLAUSE_END = frozenset(
    {"WHERE", "GROUP", "ORDER", "LIMIT", "HAVING", "UNION", "EXCEPT", "INTERSECT", "ON", "USING",
     "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "NATURAL", "SET", "VALUES", "RETURNING",
     "WINDOW", "OFFSET", "FETCH", "FOR", "TO", "WITH", "SELECT", "LATERAL", "OUTER", "AS", "INTO",
     "FROM", "QUALIFY", "SAMPLE", "TABLESAMPLE", "DEFAULT", "OVERWRITE", "PARTITION", "TOP", "CASCADE",
     "RESTRICT", "RESTART", "CONTINUE", "IDENTITY", "OUTFILE", "DUMPFILE", "STDIN", "STDOUT", "PROGRAM",
     "CSV", "BINARY", "HEADER", "DELIMITER", "NULL", "FORMAT", "LOCK", "NOWAIT", "ADD", "DROP",
     "RENAME", "COLUMN", "ALTER", "OWNER", "IN", "SHARE", "MODE", "EXCLUSIVE", "ACCESS", "ROW", "TABLE"}
)  # fmt: skip
_TABLE_INTRO = frozenset({"FROM", "JOIN", "INTO", "UPDATE", "USING", "TABLE"})
_WHERE_END = frozenset({"GROUP", "ORDER", "LIMIT", "HAVING", "RETURNING", "WINDOW", "OFFSET", "FETCH", "UNION", "EXCEPT", "INTERSECT", "FOR"})  # fmt: skip
_NOT_FUNCTIONS = frozenset(
    {"IN", "VALUES", "EXISTS", "AS", "ON", "USING", "INTO", "FROM", "WHERE", "AND", "OR", "NOT", "OVER",
     "FILTER", "WITHIN", "TABLE", "KEY", "ALL", "ANY", "SOME", "SELECT", "WITH", "JOIN", "PARTITION",
     "CHECK", "UNIQUE", "REFERENCES", "PRIMARY", "DEFAULT", "IF", "TO", "BY", "LIMIT", "SET", "RETURNING",
     "VARCHAR", "CHAR", "NUMERIC", "DECIMAL", "INTERVAL", "TIMESTAMP", "ARRAY", "ROW", "CAST", "CASE", "WHEN",
     "THEN", "ELSE", "COPY", "INDEX", "VIEW", "UPDATE", "DELETE", "INSERT", "LIKE", "ILIKE", "BETWEEN"}
)  # fmt: skip


def _split(toks: _Tokens) -> list[tuple[int, int]]:
    """The statements: ranges ``[lo, hi)`` of ``toks`` between top-level semicolons (which
    belong to none), at most :data:`MAX_STATEMENTS`."""
    stmts: list[tuple[int, int]] = []
    kinds = toks.kind
    values = toks.value
    depths = toks.depth
    lo = 0
    n = len(kinds)
    for i in range(n):
        if kinds[i] == _P and depths[i] == 0 and values[i] == ";":
            if i > lo:
                stmts.append((lo, i))
            lo = i + 1
            if len(stmts) >= MAX_STATEMENTS:
                return stmts
    if n > lo:
        stmts.append((lo, n))
    return stmts


def _name_at(toks: _Tokens, i: int, n: int) -> tuple[str, str, int]:
    """Read a possibly qualified name at ``i`` (tokens up to ``n``): (bare, qualified, next
    index); bare '' if none."""
    kinds = toks.kind
    values = toks.value
    parts: list[str] = []
    while i < n:
        kind = kinds[i]
        if kind == _W:
            parts.append(values[i].lower())
        elif kind == _Q:
            parts.append(values[i])
        else:
            break
        i += 1
        if i < n and kinds[i] == _P and values[i] == ".":
            i += 1
            continue
        break
    if not parts:
        return "", "", i
    return parts[-1], ".".join(parts), i


def _analyse(toks: _Tokens, lo: int, n: int) -> SqlStatement:
    """One statement: the tokens ``[lo, n)``."""
    # the token's fields, read as K[i], V[i], D[i]
    K = toks.kind
    V = toks.value
    D = toks.depth
    base_depth = D[lo]
    k = lo
    # leading parentheses: "(SELECT ...)"
    while k < n and K[k] == _P and V[k] == "(":
        k += 1
    first = V[k] if k < n and K[k] == _W else ""
    if k < n and K[k] == _P and V[k].startswith("\\"):
        first = ""
    kind = first if first in _KINDS else (first or "UNKNOWN")
    main_depth = D[k] if k < n else base_depth
    if kind == "WITH":
        # the statement kind is the first DML keyword at the top level after the CTE list
        for j in range(k + 1, n):
            if D[j] == main_depth and K[j] == _W and V[j] in ("SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"):
                kind = V[j]
                break
    elif kind in ("EXPLAIN",) or first == "EXPLAIN":
        kind = "EXPLAIN"
        for j in range(k + 1, min(k + 4, n)):
            if K[j] == _W and V[j] == "ANALYZE":
                for j2 in range(k + 1, n):
                    if K[j2] == _W and V[j2] in ("SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"):
                        kind = V[j2]
                        break
                break
    elif kind == "START":
        kind = "BEGIN"
    elif kind == "DESC":
        kind = "DESCRIBE"
    elif kind == "EXEC":
        kind = "EXECUTE"
    object_type = ""
    if kind in ("DROP", "CREATE", "ALTER", "TRUNCATE", "UNDROP", "COMMENT", "GRANT", "REVOKE"):
        for j in range(k + 1, min(k + 8, n)):
            if K[j] != _W:
                break
            if V[j] in _DDL_MODIFIERS:
                continue
            object_type = V[j]
            break
        if kind == "TRUNCATE" and object_type not in ("TABLE", ""):
            object_type = "TABLE"  # TRUNCATE name
        if kind in ("GRANT", "REVOKE"):
            object_type = ""
    tables: list[str] = []
    qualified: list[str] = []
    functions: list[str] = []
    has_where = where_trivial = has_limit = select_star = into_outfile = False
    copy_to = ""

    def add_table(bare: str, qual: str) -> None:
        if bare and bare not in tables and len(tables) < MAX_LIST:
            tables.append(bare)
            qualified.append(qual)

    # the object of DDL / TRUNCATE / COPY / LOCK
    if kind in ("DROP", "TRUNCATE", "ALTER", "CREATE", "UNDROP") and object_type in ("TABLE", "VIEW", ""):
        j = k + 1
        while j < n and K[j] == _W and (V[j] in _DDL_MODIFIERS or V[j] in ("TABLE", "VIEW")):
            j += 1
        while j < n:
            bare, qual, j = _name_at(toks, j, n)
            if not bare or bare.upper() in _CLAUSE_END:
                break
            add_table(bare, qual)
            if j < n and K[j] == _P and V[j] == ",":
                j += 1
                continue
            break
    if kind in ("COPY", "LOCK", "VACUUM", "ANALYZE", "REINDEX", "CLUSTER", "OPTIMIZE", "DESCRIBE", "UNLOAD"):
        j = k + 1
        while j < n and K[j] == _W and V[j] in ("TABLE", "ONLY", "FULL", "VERBOSE", "ANALYZE"):
            j += 1
        bare, qual, _ = _name_at(toks, j, n)
        if bare and bare.upper() not in _CLAUSE_END:
            add_table(bare, qual)
    p = -1  # the previous token, if any
    in_select_list = False
    i = k
    while i < n:
        v = V[i]
        if K[i] == _W:
            at_main = D[i] == main_depth
            if v in _TABLE_INTRO and not (v == "TABLE" and kind in ("DROP", "TRUNCATE", "ALTER", "CREATE")):
                if v == "UPDATE" and p >= 0 and K[p] == _W and V[p] in ("FOR", "KEY", "NO", "ON", "DO"):
                    pass  # FOR UPDATE / ON UPDATE / DO UPDATE: not a table
                elif v == "INTO" and i + 1 < n and K[i + 1] == _W and V[i + 1] in ("OUTFILE", "DUMPFILE"):
                    into_outfile = True
                elif v == "USING" and i + 1 < n and K[i + 1] == _P and V[i + 1] == "(":
                    pass  # JOIN ... USING (col)
                else:
                    j = i + 1
                    while True:
                        while j < n and K[j] == _W and V[j] in ("ONLY", "LATERAL", "TABLE", "IGNORE", "LOW_PRIORITY"):
                            j += 1
                        bare, qual, j2 = _name_at(toks, j, n)
                        if not bare or bare.upper() in _CLAUSE_END:
                            break
                        if j2 < n and K[j2] == _P and V[j2] == "(" and v != "INTO":
                            break  # a table function, not a table
                        add_table(bare, qual)
                        j = j2
                        if v != "FROM":
                            break
                        # FROM a x, b y: skip an alias, continue after a comma
                        if j < n and K[j] == _W and V[j] == "AS":
                            j += 1
                        if j < n and (K[j] == _W or K[j] == _Q) and V[j] not in _CLAUSE_END:
                            j += 1
                        if j < n and K[j] == _P and V[j] == "," and D[j] == D[i]:
                            j += 1
                            continue
                        break
            if at_main:
                if v == "WHERE":
                    has_where = True
                    where_trivial = _trivial_where(toks, i + 1, n, main_depth)
                elif v in ("LIMIT", "TOP"):
                    has_limit = True
                elif v == "FETCH" and kind != "FETCH":
                    has_limit = True
                elif v == "SELECT":
                    in_select_list = True
                elif v == "FROM":
                    in_select_list = False
                elif v == "TO" and kind == "COPY" and not copy_to:
                    if i + 1 >= n:
                        copy_to = "?"
                    elif K[i + 1] == _S:
                        copy_to = V[i + 1][:256] or "?"
                    else:
                        copy_to = V[i + 1].lower()[:256]
            if (
                i + 1 < n
                and K[i + 1] == _P
                and V[i + 1] == "("
                and v not in _NOT_FUNCTIONS
                and not (p >= 0 and K[p] == _W and V[p] in ("INTO", "TABLE", "AS"))
            ):
                name = v.lower()
                if name not in functions and len(functions) < MAX_LIST:
                    functions.append(name)
        elif K[i] == _P and v == "*" and in_select_list and D[i] == main_depth and p >= 0:
            if (K[p] == _W and V[p] in ("SELECT", "DISTINCT", "ALL")) or (K[p] == _P and V[p] in (",", ".")):
                select_star = True
        p = i
        i += 1
    if first == "WITH":  # names defined by the CTE list are not tables
        ctes = {
            V[j - 1].lower()
            for j in range(k + 2, n)
            if K[j] == _W and V[j] == "AS" and D[j] == main_depth and (K[j - 1] == _W or K[j - 1] == _Q)
        }
        keep = [(b, q) for b, q in zip(tables, qualified, strict=True) if b not in ctes]
        tables = [b for b, _ in keep]
        qualified = [q for _, q in keep]
    return SqlStatement(
        kind=kind,
        object_type=object_type,
        tables=tuple(tables),
        qualified_tables=tuple(qualified),
        has_where=has_where,
        where_trivial=where_trivial,
        has_limit=has_limit,
        select_star=select_star,
        copy_to=copy_to,
        into_outfile=into_outfile,
        functions=tuple(functions),
        span=(toks.start[lo], toks.end[n - 1]),
    )


def _trivial_where(toks: _Tokens, i: int, n: int, depth: int) -> bool:
    """WHERE clause that is always true: ``1=1``, ``TRUE``, ``'a'='a'``, ``x=x`` (optionally
    followed by OR ...). The clause is read from ``i`` (at most 8 tokens, up to ``n``)."""
    K = toks.kind
    V = toks.value
    D = toks.depth
    vals: list[tuple[int, str]] = []  # the clause without its parentheses
    taken = 0
    while i < n and taken < 8:
        if D[i] == depth and K[i] == _W:
            v = V[i]
            if v in _WHERE_END or v == "OR":
                break
            if v == "AND":
                return False
        taken += 1
        if not (K[i] == _P and V[i] in ("(", ")")):
            vals.append((K[i], V[i]))
        i += 1
    if len(vals) == 1:
        return vals[0] in ((_W, "TRUE"), (_N, "1"))
    if len(vals) == 2:
        return vals == [(_W, "NOT"), (_W, "FALSE")]
    if (
        len(vals) == 3
        and vals[1] == (_P, "=")
        and vals[0] == vals[2]
        and vals[0][0] in (_N, _S, _W, _Q)
    ):
        return True
    return False


def parse_sql(text: str) -> ParsedSql:
    """Classify every statement of ``text``. Never raises; bounded time and output."""
    if not isinstance(text, str):
        text = str(text)
    if len(text) <= _CACHE_MAX_LEN:
        return _parse_cached(text)
    return _parse(text[:MAX_INPUT], len(text) > MAX_INPUT)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> ParsedSql:
    return _parse(text, False)


def _parse(text: str, clipped: bool) -> ParsedSql:
    stripped = text.lstrip()
    if stripped.startswith("\\copy") or stripped.startswith("\\COPY"):
        text = text.replace("\\copy", "COPY", 1).replace(
            "\\COPY", "COPY", 1
        )  # psql client-side copy
    toks, cut = _tokenize(text, MAX_TOKENS)
    stmts = _split(toks)
    out = tuple(_analyse(toks, lo, hi) for lo, hi in stmts)
    return ParsedSql(
        out, cut or clipped or (len(stmts) >= MAX_STATEMENTS and len(toks) > sum(hi - lo for lo, hi in stmts))
    )


_SQL_CLIENTS = {
    # program: (options whose value is SQL)
    "psql": ("-c", "--command"),
    "mysql": ("-e", "--execute"),
    "mariadb": ("-e", "--execute"),
    "clickhouse-client": ("-q", "--query"),
    "clickhouse": ("-q", "--query"),
    "snowsql": ("-q", "--query"),
    "cqlsh": ("-e", "--execute"),
    "sqlcmd": ("-Q", "-q"),
    "cockroach": ("-e", "--execute"),
    "duckdb": ("-c",),
    "trino": ("--execute",),
    "presto": ("--execute",),
    "usql": ("-c", "--command"),
    "pgcli": (),
    "redshift": (),
}
_LOOKS_SQL = re.compile(
    r"\s*(?:select|insert|update|delete|drop|truncate|alter|create|grant|revoke|copy|with|merge|vacuum)\b",
    re.IGNORECASE,
)


def sql_in_command(program: str, args: Sequence[str], stdin_texts: Sequence[str] = ()) -> list[str]:
    """The SQL texts a database client command line carries (at most 8)."""
    found: list[str] = []
    opts = _SQL_CLIENTS.get(program)
    if program in ("sqlite3", "sqlite"):
        positional = [a for a in args if not a.startswith("-")]
        if len(positional) >= 2:
            found.append(" ".join(positional[1:]))
    elif program == "bq" and len(args) > 0 and args[0] == "query":
        positional = [a for a in args[1:] if not a.startswith("-")]
        if positional:
            found.append(positional[-1])
    elif opts is not None:
        i = 0
        while i < len(args) and len(found) < 8:
            a = args[i]
            if a in opts and i + 1 < len(args):
                found.append(args[i + 1])
                i += 2
                continue
            for o in opts:
                if o.startswith("--") and a.startswith(o + "="):
                    found.append(a[len(o) + 1 :])
                elif not o.startswith("--") and a.startswith(o) and len(a) > len(o):
                    found.append(a[len(o) :])
            i += 1
        for t in stdin_texts:
            if _LOOKS_SQL.match(t):
                found.append(t)
    return found[:8]
