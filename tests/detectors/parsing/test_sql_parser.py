"""SQL classifier: statement kinds, tables, WHERE/LIMIT, exports; agreement with sqlglot; bounds."""

from __future__ import annotations

import time

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from detectors.parsing.sql import MAX_STATEMENTS, parse_sql, sql_in_command


def one(q: str):  # type: ignore[no-untyped-def]
    (st_,) = parse_sql(q).statements
    return st_


def test_kinds_tables_where_limit() -> None:
    s = one("SELECT id, email FROM users WHERE created_at > now() - interval '1 day' LIMIT 100")
    assert (s.kind, s.tables, s.has_where, s.has_limit, s.select_star) == (
        "SELECT",
        ("users",),
        True,
        True,
        False,
    )
    s = one("SELECT * FROM public.customers c JOIN payments p ON p.cid = c.id")
    assert s.tables == ("customers", "payments") and s.qualified_tables[0] == "public.customers"
    assert s.select_star and not s.has_limit


@pytest.mark.parametrize(
    ("query", "kind", "obj"),
    [
        ("DROP TABLE IF EXISTS public.users CASCADE", "DROP", "TABLE"),
        ("drop database prod", "DROP", "DATABASE"),
        ("TRUNCATE payments", "TRUNCATE", "TABLE"),
        ("CREATE UNIQUE INDEX i ON t(a)", "CREATE", "INDEX"),
        ("ALTER ROLE app SUPERUSER", "ALTER", "ROLE"),
        ("WITH x AS (SELECT 1) DELETE FROM t USING x WHERE t.id = x.id", "DELETE", ""),
        ("EXPLAIN ANALYZE DELETE FROM t", "DELETE", ""),
        ("EXPLAIN SELECT 1", "EXPLAIN", ""),
        ("\\copy users to 'u.csv' csv", "COPY", ""),
    ],
)
def test_statement_kind(query: str, kind: str, obj: str) -> None:
    s = one(query)
    assert (s.kind, s.object_type) == (kind, obj)


def test_where_tautology_and_missing_where() -> None:
    assert one("DELETE FROM orders WHERE 1=1").where_trivial
    assert one("UPDATE t SET a = 1 WHERE 'x' = 'x'").where_trivial
    assert not one("DELETE FROM t WHERE id = 1").where_trivial
    assert not one("DELETE FROM orders").has_where
    assert not one("DELETE FROM t WHERE 1=1 AND id = 3").where_trivial


def test_subquery_where_does_not_count_for_main_statement() -> None:
    s = one("UPDATE users SET flag = (SELECT 1 FROM x WHERE x.a = 1)")
    assert not s.has_where


def test_exports_and_file_functions() -> None:
    assert one("COPY users TO '/tmp/u.csv' CSV").copy_to == "/tmp/u.csv"
    assert one("copy (select * from a) to program 'curl x'").copy_to == "program"
    assert one("COPY t FROM '/data/x.csv'").copy_to == ""
    assert one("SELECT * INTO OUTFILE '/tmp/x' FROM users").into_outfile
    assert one("select pg_read_file('/etc/passwd')").functions == ("pg_read_file",)


def test_multiple_statements_and_comments() -> None:
    stmts = parse_sql("-- hi\nSELECT 1; /* x; */ DROP TABLE a; ;").statements
    assert [s.kind for s in stmts] == ["SELECT", "DROP"]


def test_strings_do_not_leak_keywords() -> None:
    s = one("SELECT 'DROP TABLE users; --' AS x FROM logs LIMIT 1")
    assert (s.kind, s.tables) == ("SELECT", ("logs",))


def test_sql_in_command() -> None:
    assert sql_in_command("psql", ("-h", "db", "-c", "DELETE FROM t")) == ["DELETE FROM t"]
    assert sql_in_command("mysql", ("--execute=DROP DATABASE x",)) == ["DROP DATABASE x"]
    assert sql_in_command("sqlite3", ("app.db", "select 1")) == ["select 1"]
    assert sql_in_command("bq", ("query", "--use_legacy_sql=false", "SELECT 1")) == ["SELECT 1"]
    assert sql_in_command("psql", (), ["DELETE FROM t"]) == ["DELETE FROM t"]
    assert sql_in_command("ls", ("-la",)) == []


CORPUS = [
    "SELECT id FROM users WHERE id = 1",
    "SELECT * FROM orders",
    "SELECT a.x, b.y FROM a JOIN b ON a.id = b.aid WHERE a.z > 3 LIMIT 5",
    "DELETE FROM sessions WHERE expires < now()",
    "DELETE FROM sessions",
    "UPDATE accounts SET balance = 0",
    "UPDATE accounts SET balance = 0 WHERE id = 9",
    "INSERT INTO logs (a, b) VALUES (1, 'x')",
    "SELECT count(*) FROM customers",
    "SELECT * FROM customers c, payments p WHERE c.id = p.cid",
    "SELECT name FROM products ORDER BY price DESC LIMIT 10",
    "DROP TABLE users",
    "TRUNCATE TABLE payments",
    "SELECT * FROM a WHERE x IN (SELECT y FROM b)",
]


@pytest.mark.parametrize("query", CORPUS)
def test_agrees_with_sqlglot(query: str) -> None:
    """Differential check: kind, tables, WHERE and LIMIT as sqlglot's full parser sees them."""
    tree = sqlglot.parse_one(query)
    ours = one(query)
    kinds = {
        exp.Select: "SELECT",
        exp.Delete: "DELETE",
        exp.Update: "UPDATE",
        exp.Insert: "INSERT",
        exp.Drop: "DROP",
        exp.TruncateTable: "TRUNCATE",
    }
    assert ours.kind == kinds[type(tree)]
    assert set(ours.tables) == {t.name.lower() for t in tree.find_all(exp.Table)}
    assert ours.has_where == (tree.args.get("where") is not None)
    assert ours.has_limit == (tree.args.get("limit") is not None)


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("SELECT*FROMWHEREDROPLIMIT ;,.()'\"`[]$-/\n0123abc=")),
        max_size=300,
    )
)
def test_never_crashes_and_stays_bounded(text: str) -> None:
    start = time.perf_counter()
    parsed = parse_sql(text)
    assert time.perf_counter() - start < 2.0
    assert len(parsed.statements) <= MAX_STATEMENTS
    for s in parsed.statements:
        assert len(s.tables) <= 64 and len(s.functions) <= 64


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=500))
def test_arbitrary_unicode_never_crashes(text: str) -> None:
    parse_sql(text)


def test_huge_input_is_clipped() -> None:
    parsed = parse_sql("SELECT 1;" * 20_000)
    assert len(parsed.statements) == MAX_STATEMENTS and parsed.truncated
