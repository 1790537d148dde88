"""Helpers for tests on the real broker: run workers as processes, produce, read topics."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def worker_env(bootstrap: str, prefix: str, tmp: Path, partitions: int = 4, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWATCH_")}
    env.update({
        "AGENTWATCH_BROKER": bootstrap,
        "AGENTWATCH_TOPICS__PREFIX": prefix,
        "AGENTWATCH_TOPICS__PARTITIONS": str(partitions),
        "AGENTWATCH_WORKER__APP_ID": f"aw-{prefix.strip('.')}",
        "AGENTWATCH_WORKER__METRICS_PORT": "0",
        "AGENTWATCH_WORKER__SESSION_TIMEOUT_SECONDS": "4",
        "AGENTWATCH_WORKER__HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "AGENTWATCH_INCIDENTS__STORE_URL": f"sqlite:///{tmp / 'incidents.db'}",
        "AGENTWATCH_ENFORCEMENT__ALLOW_DEV_KEY": "true",
        "AGENTWATCH_LOG_LEVEL": os.environ.get("AW_TEST_LOG", "warning"),
    })
    env.update(extra)
    return env


def create_topics(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "pipeline.cli", "topics", "create"], env=env, check=True,
                   capture_output=True, timeout=60)


def start_worker(env: dict[str, str], tmp: Path, name: str) -> subprocess.Popen[bytes]:
    wenv = dict(env, AGENTWATCH_WORKER__DATA_DIR=str(tmp / f"data-{name}"))
    log = (tmp / f"{name}.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "worker"], env=wenv, stdout=log,
                            stderr=subprocess.STDOUT, cwd=tmp)


def produce(bootstrap: str, topic: str, values: Iterable[tuple[bytes | None, bytes | None]]) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=4 * 1024 * 1024)
    n = 0
    for key, value in values:
        producer.send(topic, key=key, value=value)
        n += 1
    producer.flush(30)
    producer.close()
    return n


def read_topic(bootstrap: str, topic: str, *, expect: int | None = None, idle: float = 3.0,
               timeout: float = 120.0, until: Any = None) -> list[Any]:
    """Every record of ``topic`` (all partitions, from the start) until ``until(records)`` is
    true, or ``expect`` records have arrived, or nothing new came for ``idle`` seconds after a
    first record (only when neither ``until`` nor ``expect`` is given)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=500)
    deadline = time.monotonic() + timeout
    parts = None
    while parts is None and time.monotonic() < deadline:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            parts = None
            time.sleep(0.2)
    assert parts, f"topic {topic} does not exist"
    consumer.assign([TopicPartition(topic, p) for p in parts])
    consumer.seek_to_beginning()
    records: list[Any] = []
    last_new = time.monotonic()
    while time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=300, max_records=5000)
        got = [r for rs in batch.values() for r in rs]
        if got:
            records.extend(got)
            last_new = time.monotonic()
        if until is not None:
            if got and until(records):
                break
        elif expect is not None and len(records) >= expect:
            # keep reading briefly for stragglers (duplicates)
            if time.monotonic() - last_new > 0.5:
                break
        elif expect is None and records and time.monotonic() - last_new > idle:
            break
    consumer.close()
    return records


def event(agent: str, i: int, **extra: Any) -> dict[str, Any]:
    ev = {
        "schema_version": "1", "event_id": str(uuid.UUID(int=hash((agent, i)) & (2**128 - 1))),
        "ts": f"2026-11-02T{8 + i // 3600 % 10:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "agent_id": agent, "owner": f"owner-of-{agent}", "session_id": f"s-{agent}",
        "environment": "prod", "enforcement_point": "cmd-proxy-1",
        "action": {"kind": "shell", "tool": "ls", "command": f"ls -la /srv/app/{i % 7}"},
        "decision": "allow", "agent_role": "devops",
    }
    ev.update(extra)
    return ev


def encode(ev: dict[str, Any]) -> tuple[bytes, bytes]:
    return ev["agent_id"].encode(), orjson.dumps(ev)
