"""Shared fixtures. The embedded Kafka broker starts once per test session (marker ``broker``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from pipeline.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """A real Kafka-protocol broker (Tansu) on 127.0.0.1, shared by the whole session."""
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture()
def topic_prefix() -> str:
    """A unique topic prefix so tests sharing the session broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove AGENTWATCH_* variables so settings tests see only what they set."""
    for key in list(os.environ):
        if key.startswith("AGENTWATCH_"):
            monkeypatch.delenv(key)


POSTGRES_DSN = os.environ.get("AGENTWATCH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The PostgreSQL server CI and developer machines run on 127.0.0.1:5432 (trust auth)."""
    return POSTGRES_DSN
