"""The processing core without Kafka: dead letters, event-time policy, dedup, state checkpoints."""

from __future__ import annotations

import base64
import copy
import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from detectors.base import Event, Finding, Severity
from pipeline.processor import EventClock, InputRecord, Processor
from pipeline.settings import Settings

BASE = json.loads((schemas.SCHEMA_DIR / "examples/agent-action/valid/shell-minimal.json").read_text())
ENRICHED = schemas.validator("enriched-event")
DEAD = schemas.validator("dead-letter")


def event(i: int, agent: str = "agent-1", ts: str | None = None, **extra: object) -> bytes:
    doc = copy.deepcopy(BASE)
    doc["event_id"] = f"ev-{agent}-{i}"
    doc["agent_id"] = agent
    doc["ts"] = ts or f"2026-11-02T09:{i // 60 % 60:02d}:{i % 60:02d}Z"
    doc.update(extra)
    return orjson.dumps(doc)


class CountingDetector:
    """A tiny stateful detector: counts events per agent; flags every 3rd one."""

    name = "counting"

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._dirty: set[str] = set()

    def score_one(self, ev: Event) -> list[Finding]:
        n = self.counts.get(ev.agent_id, 0) + 1
        if n % 3 == 0:
            return [Finding("counting", "third", Severity.LOW, 10.0, f"event number {n} of this agent")]
        return []

    def learn_one(self, ev: Event) -> None:
        self.counts[ev.agent_id] = self.counts.get(ev.agent_id, 0) + 1
        self._dirty.add(ev.agent_id)

    def load_state(self, agent_id: str, blob: object) -> None:
        if isinstance(blob, int):
            self.counts[agent_id] = blob

    def dump_state(self, agent_id: str) -> object:
        return self.counts.get(agent_id)

    def dirty_agents(self) -> set[str]:
        d, self._dirty = self._dirty, set()
        return d

    def forget(self, agent_id: str) -> None:
        self.counts.pop(agent_id, None)


def make(detector: CountingDetector | None = None, loader=None, **stream: object) -> Processor:  # type: ignore[no-untyped-def]
    s = Settings()
    for k, v in stream.items():
        setattr(s.stream, k, v)
    return Processor(s, detectors=[detector] if detector else [], clock=EventClock(), state_loader=loader)


def recs(values: list[bytes | None]) -> list[InputRecord]:
    return [InputRecord(v, b"k", "agent.actions", 0, i) for i, v in enumerate(values)]


def test_valid_events_are_enriched_and_match_the_schema() -> None:
    out = make(CountingDetector()).process_actions(recs([event(i) for i in range(6)]))
    assert [o.kind for o in out] == ["enriched"] * 6
    for o in out:
        errors = [e.message for e in ENRICHED.iter_errors(o.value)]
        assert not errors
    assert [len(o.value["agentwatch"]["findings"]) for o in out] == [0, 0, 1, 0, 0, 1]


def test_bad_input_goes_to_dead_letters_with_original_bytes() -> None:
    bad = [b"not json", b"\xff", b"[]", event(1)[:-5], None]
    out = make().process_actions(recs(bad))
    assert [o.kind for o in out] == ["dlq"] * len(bad)
    for o, raw in zip(out, bad, strict=True):
        assert not [e.message for e in DEAD.iter_errors(o.value)]
        assert base64.b64decode(o.value["original_b64"]) == (raw or b"")
        assert o.value["source"]["topic"] == "agent.actions"
    assert [o.value["source"]["offset"] for o in out] == list(range(len(bad)))


def test_duplicates_are_dropped_and_counted() -> None:
    p = make()
    out = p.process_actions(recs([event(1), event(2), event(1), event(2), event(3)]))
    assert [o.value["event_id"] for o in out] == ["ev-agent-1-1", "ev-agent-1-2", "ev-agent-1-3"]
    assert p.stats.duplicates == 2


def test_dedup_memory_is_bounded_per_agent() -> None:
    p = make(dedup_ids_per_agent=16)
    p.process_actions(recs([event(i) for i in range(100)]))
    assert len(p._agents["agent-1"].recent) == 16
    # an id older than the window is forgotten: its retry is processed again
    out = p.process_actions(recs([event(0)]))
    assert len(out) == 1
    out = p.process_actions(recs([event(99)]))
    assert out == []


def test_event_time_skew_is_judged_against_the_stream_not_the_wall_clock() -> None:
    p = make(max_lateness_seconds=3600, max_replay_gap_seconds=86400)
    # last year's history is fine: the first event sets the watermark; a quiet night is fine too
    out = p.process_actions(recs([
        event(1, ts="2025-01-01T10:00:00Z"),
        event(2, ts="2025-01-01T09:30:00Z"),   # 30 min late: processed
        event(3, ts="2025-01-01T08:00:00Z"),   # 2 h late: dead letter
        event(4, ts="2025-01-01T20:00:00Z"),   # 10 h later (a quiet evening): processed
        event(5, ts="2025-03-01T10:00:00Z"),   # two months ahead of the watermark: dead letter
        event(6, ts="2025-01-01T20:05:00Z"),   # the forged future did not move the watermark
    ]))
    assert [o.kind for o in out] == ["enriched", "enriched", "dlq", "enriched", "dlq", "enriched"]
    assert {o.value["error_code"] for o in out if o.kind == "dlq"} == {"time_skew"}
    assert "behind" in out[2].value["reason"] and "ahead" in out[4].value["reason"]


def test_future_events_are_judged_against_the_broker_timestamp() -> None:
    p = make(max_lead_seconds=600)
    received_ms = 1_762_077_600_000  # 2025-11-02T10:00:00Z
    rs = [InputRecord(event(1, ts="2025-11-02T10:05:00Z"), b"k", "agent.actions", 0, 0, received_ms),
          InputRecord(event(2, ts="2025-11-02T11:00:00Z"), b"k", "agent.actions", 0, 1, received_ms),
          InputRecord(event(3, ts="2024-11-02T11:00:00Z"), b"k", "agent.actions", 1, 2, received_ms)]
    out = p.process_actions(rs)
    assert [o.kind for o in out] == ["enriched", "dlq", "enriched"]  # history is never "future"
    assert "broker" in out[1].value["reason"]


def test_state_checkpoint_restores_dedup_and_detector_state() -> None:
    det = CountingDetector()
    p = make(det)
    p.process_actions(recs([event(i) for i in range(4)]))
    saved = {agent: blob for agent, (_, blob) in p.checkpoint().items()}
    assert set(saved) == {"agent-1"}
    # a new process (after a restart) loads the checkpoint: counting continues, dedup remembers
    det2 = CountingDetector()
    p2 = make(det2, loader=lambda a: orjson.loads(orjson.dumps(saved.get(a))))
    out = p2.process_actions(recs([event(3), event(4), event(5)]))
    assert [o.value["event_id"] for o in out] == ["ev-agent-1-4", "ev-agent-1-5"]
    assert det2.counts["agent-1"] == 6
    assert len(out[1].value["agentwatch"]["findings"]) == 1  # 6th event: every 3rd is flagged


def test_dedup_memory_written_by_the_earlier_layout_still_loads() -> None:
    # state blobs in a changelog outlive a software upgrade: [[id, ts], ...] pairs, then damaged ones
    old = {"core": {"p": 2, "ids": [["ev-agent-1-0", 1.0], ["ev-agent-1-1", 2.0]]}}
    p = make(loader=lambda a: old if a == "agent-1" else None)
    out = p.process_actions(recs([event(0), event(1), event(2)]))
    assert [o.value["event_id"] for o in out] == ["ev-agent-1-2"]
    damaged = {"core": {"p": 0, "ids": ["ev-agent-1-0", "ev-agent-1-1"], "ts": ["x", None]}}
    p = make(loader=lambda a: damaged)
    assert len(p.process_actions(recs([event(0), event(1)]))) == 2  # starts afresh, nothing stops


def test_eviction_keeps_memory_bounded_and_state_reloads() -> None:
    store: dict[str, object] = {}
    det = CountingDetector()
    p = make(det, loader=lambda a: store.get(a), max_agents_in_memory=100)
    for round_ in range(2):
        p.process_actions(recs([event(round_, agent=f"a{i}") for i in range(300)]))
        for agent, (_, blob) in p.checkpoint().items():
            store[agent] = orjson.loads(orjson.dumps(blob))
        p.evict()
        assert p.agents_tracked <= 100
        assert len(det.counts) <= 100
    assert store["a0"]["det:counting"] == 2  # type: ignore[index]


@given(st.lists(st.binary(max_size=300) | st.sampled_from([event(i) for i in range(5)]), max_size=60))
@settings(max_examples=150)
def test_any_stream_is_fully_accounted_for(values: list[bytes]) -> None:
    """Every input ends as exactly one enriched record, dead letter or counted duplicate."""
    p = make(CountingDetector())
    out = p.process_actions(recs(values))
    enriched = sum(1 for o in out if o.kind == "enriched")
    dead = sum(1 for o in out if o.kind == "dlq")
    assert enriched + dead + p.stats.duplicates == len(values)


def test_replaying_the_same_input_gives_identical_output() -> None:
    values = [event(i, agent=f"a{i % 3}") for i in range(30)] + [b"junk"]
    a = [orjson.dumps(o.value) for o in make(CountingDetector()).process_actions(recs(values))]
    b = [orjson.dumps(o.value) for o in make(CountingDetector()).process_actions(recs(values))]
    assert a == b


@given(st.text(max_size=200))
def test_dedup_ids_are_remembered_as_64_bit_blake2b(event_id: str) -> None:
    """Checkpointed dedup state holds these hashes: a worker of another version reading it must
    compute the same ones (a copied hasher instead of the constructor changes nothing)."""
    from hashlib import blake2b

    from pipeline.processor import _id_hash

    want = blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    assert _id_hash(event_id) == want
    assert _id_hash(event_id) == want, "the shared empty hasher was not changed by the first call"


@given(st.lists(st.one_of(st.text(max_size=60), st.integers()), max_size=5), st.sampled_from(["enr_", "alr_", ""]))
def test_record_ids_are_sha256_of_the_joined_parts(parts: list[object], prefix: str) -> None:
    """Consumers drop repeats by these ids across worker versions and restarts: the copied
    SHA-256 must give the digest of a fresh one."""
    import hashlib

    from pipeline.records import deterministic_id

    text = "\x1f".join(str(p) for p in parts)
    want = prefix + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    assert deterministic_id(prefix, *parts) == want == deterministic_id(prefix, *parts)
