"""ActionPublisher against the real embedded broker, read back with a plain consumer (assign())."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from pipeline.cli import main
from pipeline.kafka import BrokerUnreachable
from pipeline.sdk.publisher import ActionPublisher, PublishError
from pipeline.simulator import Fleet, simulate
from pipeline.validation import ValidationFailure

pytestmark = pytest.mark.broker


def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        deadline = time.monotonic() + timeout
        parts = None
        while parts is None and time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic)
            if parts is None:
                time.sleep(0.05)
        assert parts, f"topic {topic} not found"
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records = []
        while len(records) < expected and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=200).values():
                records.extend(recs)
        return records
    finally:
        consumer.close()


def _event(**over) -> dict:
    ev = {
        "ts": "2026-11-02T08:00:00Z", "agent_id": "sre-001", "owner": "maria@acme.example",
        "session_id": "s-1", "environment": "prod", "enforcement_point": "cmd-proxy-eu-1",
        "action": {"kind": "shell", "tool": "ls", "command": "ls -la"}, "decision": "allow",
    }
    ev.update(over)
    return ev


def test_simulated_fleet_round_trips_through_the_broker(broker, topic_prefix) -> None:
    topic = topic_prefix + "agent.actions"
    fleet = Fleet(seed=21, agents=12)
    expected = [orjson.dumps(ev) for ev, _ in fleet.events(duration_hours=6)]
    with ActionPublisher(broker.bootstrap, topic) as pub:
        stats = simulate(fleet, pub.publish, duration_hours=6)
    assert stats.events == len(expected) == pub.sent
    records = read_all(broker.bootstrap, topic, len(expected))
    assert len(records) == len(expected)
    assert sorted(r.value for r in records) == sorted(expected)  # byte-identical values
    per_agent_sent = defaultdict(list)
    for raw in expected:
        ev = orjson.loads(raw)
        per_agent_sent[ev["agent_id"]].append(ev["event_id"])
    per_agent_read = defaultdict(list)
    partition_of = defaultdict(set)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        ev = orjson.loads(r.value)
        assert r.key == ev["agent_id"].encode()
        per_agent_read[ev["agent_id"]].append(ev["event_id"])
        partition_of[ev["agent_id"]].add(r.partition)
    assert per_agent_read == per_agent_sent  # keyed by agent: each agent's order is kept
    assert all(len(p) == 1 for p in partition_of.values())


def test_publish_fills_missing_ids_and_keeps_given_ones(broker, topic_prefix) -> None:
    topic = topic_prefix + "ids"
    first, second = _event(), _event(event_id="my-own-id", agent_id="coder-002")
    with ActionPublisher(broker.bootstrap, topic) as pub:
        pub.publish(first)
        pub.publish(second)
    assert first["schema_version"] == "1" and uuid.UUID(first["event_id"]).version == 4
    assert second["event_id"] == "my-own-id"
    got = {orjson.loads(r.value)["event_id"] for r in read_all(broker.bootstrap, topic, 2)}
    assert got == {first["event_id"], "my-own-id"}


def test_invalid_events_are_refused_before_sending(broker, topic_prefix) -> None:
    with ActionPublisher(broker.bootstrap, topic_prefix + "bad") as pub:
        with pytest.raises(ValidationFailure) as info:
            pub.publish(_event(environment="moon"))
        assert info.value.code == "schema_violation" and "environment" in info.value.reason
        with pytest.raises(ValidationFailure) as info:
            pub.publish(_event(ts="yesterday"))
        assert info.value.code == "bad_timestamp"
        with pytest.raises(ValidationFailure) as info:
            pub.publish(_event(schema_version="2"))
        assert info.value.code == "unknown_schema_version"
        with pytest.raises(ValidationFailure) as info:
            pub.publish(_event(action={"kind": "shell", "tool": "x", "command": "y" * 70_000}))
        assert info.value.code in ("oversized", "schema_violation")
        with pytest.raises(ValidationFailure) as info:
            pub.publish(_event(args_blob={1, 2}))
        assert info.value.code == "not_json"
        assert pub.sent == 0


def test_oversized_by_the_configured_limit(broker, topic_prefix) -> None:
    with ActionPublisher(broker.bootstrap, topic_prefix + "big", max_message_bytes=2048) as pub:
        with pytest.raises(ValidationFailure) as info:
            pub.publish(_event(action={"kind": "shell", "tool": "x", "command": "y" * 3000}))
        assert info.value.code == "oversized"


def test_closed_publisher_refuses(broker, topic_prefix) -> None:
    pub = ActionPublisher(broker.bootstrap, topic_prefix + "closed")
    pub.close()
    pub.close()  # idempotent
    with pytest.raises(PublishError, match="closed"):
        pub.publish(_event())


def test_unreachable_broker_is_one_clear_line() -> None:
    started = time.monotonic()
    with pytest.raises(BrokerUnreachable) as info:
        ActionPublisher("127.0.0.1:1", connect_timeout=1.0)
    assert time.monotonic() - started < 5
    assert "127.0.0.1:1" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(BrokerUnreachable, match="invalid broker address"):
        ActionPublisher("no-port-here")


def test_cli_publishes_to_the_broker_with_truth(broker, topic_prefix, tmp_path, capsys, clean_env, monkeypatch) -> None:
    monkeypatch.setenv("AGENTWATCH_TOPICS__PREFIX", topic_prefix)
    truth = tmp_path / "truth.jsonl"
    code = main(["--broker", broker.bootstrap, "simulate", "--seed", "3", "--agents", "8", "--hours", "4",
                 "--truth", str(truth), "-q"])
    assert code == 0, capsys.readouterr().err
    truths = [orjson.loads(line) for line in truth.read_bytes().splitlines()]
    records = read_all(broker.bootstrap, topic_prefix + "agent.actions", len(truths))
    assert len(truths) > 50
    assert sorted(orjson.loads(r.value)["event_id"] for r in records) == sorted(t["event_id"] for t in truths)
    assert f"topic {topic_prefix}agent.actions at {broker.bootstrap}" in capsys.readouterr().out
    # the CLI created agentwatch's topics with the configured partition count
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        assert len(consumer.partitions_for_topic(topic_prefix + "agent.actions")) == 8
    finally:
        consumer.close()
