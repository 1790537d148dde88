"""Fixtures for the incident tests: stores on both backends (SQLite in a temp dir; the real
PostgreSQL on 127.0.0.1:5432 in a schema of its own per test, dropped afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pipeline.incidents import IncidentStore, open_store

from .factories import Clock


@pytest.fixture()
def clock() -> Clock:
    return Clock()


def _pg_schema(dsn: str) -> Iterator[str]:
    schema = f"aw_test_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture()
def pg_url(postgres_dsn: str) -> Iterator[str]:
    """A store URL on the real PostgreSQL server, in a schema of its own (dropped afterwards)."""
    for schema in _pg_schema(postgres_dsn):
        sep = "&" if "?" in postgres_dsn else "?"
        yield f"{postgres_dsn}{sep}schema={schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/incidents.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture()
def store(store_url: str) -> Iterator[IncidentStore]:
    s = open_store(store_url)
    yield s
    s.close()
