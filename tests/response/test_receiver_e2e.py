"""The enforcement-point SDK end to end against the real broker: commands, verification, acks."""

from __future__ import annotations

import copy
import time

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.enforcement.keys import generate_key, keyring_path_for, load_keyring, rotate_key
from pipeline.enforcement.ladder import build_command
from pipeline.enforcement.signing import Keyring, Signer
from pipeline.records import iso_time
from pipeline.response import Responder
from pipeline.risk import RiskScorer
from pipeline.sdk import CommandReceiver, Gate
from pipeline.settings import Settings
from pipeline.topics import create_topics

from .helpers import Clock, event, finding

pytestmark = pytest.mark.broker


@pytest.fixture()
def env(broker, topic_prefix):
    settings = Settings(broker=broker.bootstrap, topics={"prefix": topic_prefix, "partitions": 2})
    create_topics(settings)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0,
                             key_serializer=lambda k: k.encode(), value_serializer=lambda v: v)
    yield settings, producer
    producer.close(timeout=5)


def read_acks(settings: Settings, n: int, timeout: float = 10.0) -> list[dict]:
    topic = settings.topic("acks")
    consumer = KafkaConsumer(bootstrap_servers=settings.broker, group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=10)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=100).values():
                out += [orjson.loads(r.value) for r in recs]
        return out
    finally:
        consumer.close()


def make_receiver(settings, keys, clock, gate, ep="ep-1") -> CommandReceiver:
    return CommandReceiver(settings.broker, ep, keys, callback=gate.apply, on_expire=gate.expire,
                           commands_topic=settings.topic("enforcement"), acks_topic=settings.topic("acks"),
                           clock=clock, lookback_seconds=0, fetch_max_wait_ms=10)


def publish(producer, settings, cmd: dict | bytes, ep: str = "ep-1") -> None:
    value = cmd if isinstance(cmd, bytes) else orjson.dumps(cmd)
    producer.send(settings.topic("enforcement"), key=ep, value=value)
    producer.flush()


def test_closed_loop_responder_to_gate_and_back(env) -> None:
    settings, producer = env
    signer = Signer(Ed25519PrivateKey.generate())
    clock = Clock(time.time())
    scorer, resp, gate = RiskScorer(settings.risk), Responder(settings, clock, signer=signer), Gate(clock=clock)
    ev = event(1, ts=clock.t)
    fs = [finding(severity="critical", score=95)]
    cmd = next(o for o in resp.on_event(ev, fs, scorer.assess(ev, fs)) if o.kind == "enforcement")
    assert cmd.key == "ep-1"
    with make_receiver(settings, [signer], clock, gate):
        assert gate.check(ev.data) == "allow"
        publish(producer, settings, cmd.value, cmd.key)
        deadline = time.monotonic() + 10
        while gate.rung("agent-1") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gate.check(ev.data) == "deny" and gate.check({**ev.data, "agent_id": "other"}) == "allow"
    acks = read_acks(settings, 1)
    assert [(a["status"], a["command_id"], a["agent_id"]) for a in acks] == [("applied", cmd.value["command_id"], "agent-1")]
    assert resp.on_ack(acks[0]) == []
    assert resp.agent_isolated("agent-1") == "isolate"
    assert resp.on_tick(clock.t + 60) == []  # acknowledged: no timeout alert


def test_forged_tampered_replayed_expired_and_stale_commands_are_rejected(env) -> None:
    settings, producer = env
    ours, theirs = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    clock = Clock(time.time())
    gate = Gate(clock=clock)

    def cmd(seq: int, *, action="isolate", issued=None, ttl=3600, signer=ours, mode="enforce", ep="ep-1", agent="agent-1"):
        doc = build_command(agent_id=agent, enforcement_point=ep, action=action, sequence=seq,
                            issued_at=clock.t if issued is None else issued, ttl_seconds=ttl, reason="test",
                            factors=[], incident_id="inc_x", mode=mode, previous=None, trigger_event_id=f"t{seq}")
        return signer.sign(doc)

    good = cmd(1)
    tampered = copy.deepcopy(cmd(2, action="require_approval"))
    tampered["action"] = "release"
    cases = [
        good,                                   # applied
        cmd(3, signer=theirs),                  # unknown_key (forged by someone else's key)
        tampered,                               # bad_signature
        good,                                   # replay (same command again)
        cmd(1, issued=clock.t - 1),             # replay: a new id and nonce but sequence 1 was applied
        cmd(4, issued=clock.t - 4000, ttl=3600),  # expired
        cmd(5, issued=clock.t - 1000, ttl=7200),  # stale (older than max_command_age)
        cmd(6, issued=clock.t + 3600),          # future
        cmd(7, mode="shadow"),                  # ignored, no ack
        cmd(8, ep="ep-2"),                      # another enforcement point's: ignored
        b"not json at all",                     # malformed, no ack possible
        cmd(9, agent="agent-2"),                # applied (another agent of ours)
    ]
    rx = make_receiver(settings, Keyring.of([ours]), clock, gate)  # polled here, no thread
    try:
        for c in cases:
            publish(producer, settings, c)
        seen = rx.poll_until(lambda v: len(v) >= len(cases), timeout=10)
    finally:
        rx.close()
    assert len(seen) == len(cases)
    statuses = rx.stats
    assert statuses.get("applied") == 2
    assert statuses.get("rejected:unknown_key") == 1 and statuses.get("rejected:bad_signature") == 1
    assert statuses.get("rejected:replay") == 2 and statuses.get("expired:expired") == 1
    assert statuses.get("rejected:stale") == 1 and statuses.get("rejected:future") == 1
    assert statuses.get("ignored:shadow") == 1 and statuses.get("ignored:other_enforcement_point") == 1
    assert statuses.get("rejected:malformed") == 1
    assert gate.isolated() == {"agent-1": "isolate", "agent-2": "isolate"}
    assert gate.applied == [good["command_id"], cases[-1]["command_id"]]
    acks = read_acks(settings, 9)
    codes = sorted((a["status"], a.get("code", "")) for a in acks)
    assert codes == sorted([("applied", ""), ("applied", ""), ("rejected", "unknown_key"), ("rejected", "bad_signature"),
                            ("rejected", "replay"), ("rejected", "replay"), ("expired", "expired"),
                            ("rejected", "stale"), ("rejected", "future")])
    # the pipeline turns the forged command's rejection into an alert
    resp = Responder(settings, clock, signer=ours)
    forged_ack = next(a for a in acks if a.get("code") == "unknown_key")
    alerts = [o.value for o in resp.on_ack(forged_ack)]
    assert alerts and alerts[0]["kind"] == "enforcement_rejected"


def test_key_rotation_overlap(env, tmp_path) -> None:
    settings, producer = env
    key = tmp_path / "signing.key"
    clock = Clock(time.time())
    old = generate_key(key, now=clock.t)
    _, new = rotate_key(key, now=clock.t, overlap_seconds=120)
    ring = load_keyring(keyring_path_for(key))
    gate = Gate(clock=clock)

    def cmd(signer, seq, agent):
        return signer.sign(build_command(agent_id=agent, enforcement_point="ep-1", action="step_down", sequence=seq,
                                         issued_at=clock.t, ttl_seconds=600, reason="r", factors=[], incident_id=None,
                                         mode="enforce", previous=None))

    with make_receiver(settings, ring, clock, gate) as rx:
        publish(producer, settings, cmd(old, 1, "a-old-in-overlap"))
        publish(producer, settings, cmd(new, 1, "a-new"))
        deadline = time.monotonic() + 10
        while len(gate.isolated()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert set(gate.isolated()) == {"a-old-in-overlap", "a-new"}
        clock.t += 121  # the overlap ends
        publish(producer, settings, cmd(old, 1, "a-old-after"))
        publish(producer, settings, cmd(new, 1, "a-new-2"))
        deadline = time.monotonic() + 10
        while rx.stats.get("rejected:key_expired", 0) < 1 or "a-new-2" not in gate.isolated():
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert "a-old-after" not in gate.isolated()


def test_applied_command_expiry_is_acknowledged(env) -> None:
    settings, producer = env
    signer = Signer(Ed25519PrivateKey.generate())
    clock = Clock(time.time())
    gate = Gate(clock=clock)
    doc = signer.sign(build_command(agent_id="agent-1", enforcement_point="ep-1", action="isolate", sequence=1,
                                    issued_at=clock.t, ttl_seconds=30, reason="r", factors=[], incident_id=None,
                                    mode="enforce", previous=None))
    rx = make_receiver(settings, [signer], clock, gate)
    try:
        publish(producer, settings, doc)
        rx.poll_until(lambda v: any(x.status == "applied" for x in v))
        assert gate.rung("agent-1") == "isolate"
        clock.t += 31
        assert gate.rung("agent-1") is None  # the gate honours the TTL by itself
        rx.poll_once(0.05)
    finally:
        rx.close()
    acks = read_acks(settings, 2)
    assert [a["status"] for a in acks] == ["applied", "expired"]
    assert iso_time(clock.t) == acks[1]["ts"]


def test_receiver_fetch_wait_default_and_overrides(env) -> None:
    """500 ms by default (Apache Kafka answers a waiting fetch as soon as a command arrives);
    the keyword and consumer_config can change it, consumer_config winning (it used to raise:
    the receiver passed the same keyword twice)."""
    settings, _ = env
    keys = [Signer(Ed25519PrivateKey.generate())]
    common = dict(commands_topic=settings.topic("enforcement"), acks_topic=settings.topic("acks"))
    made = [CommandReceiver(settings.broker, "ep-1", keys, **common),
            CommandReceiver(settings.broker, "ep-1", keys, fetch_max_wait_ms=25, **common),
            CommandReceiver(settings.broker, "ep-1", keys, fetch_max_wait_ms=25,
                            consumer_config={"fetch_max_wait_ms": 40, "client_id": "mine"}, **common)]
    try:
        assert [r._consumer.config["fetch_max_wait_ms"] for r in made] == [500, 25, 40]
        assert made[2]._consumer.config["client_id"] == "mine"
    finally:
        for r in made:
            r.close()
