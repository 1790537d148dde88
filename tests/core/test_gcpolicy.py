"""The worker's garbage-collector policy, on the real collector."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram

from pipeline.gcpolicy import GcPolicy


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def clean_gc() -> Iterator[None]:
    gc.collect()
    yield
    gc.unfreeze()
    gc.collect()


def _cycle() -> tuple[Node, weakref.ref[Node]]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


def test_freezes_survivors_and_a_full_collection_frees_frozen_cycles(clean_gc: None) -> None:
    registry = CollectorRegistry()
    pauses = Histogram("t_gc_pause_seconds", "pauses", ["generation"], registry=registry)
    policy = GcPolicy(5.0, 60.0, pauses)
    policy.install()
    try:
        assert gc.get_freeze_count() > 0  # start-up objects are out of the collector's scans
        frozen = gc.get_freeze_count()
        keep = [Node() for _ in range(1000)]
        policy.tick(policy._last_freeze + 1.0)  # not due yet
        assert gc.get_freeze_count() == frozen
        policy.tick(policy._last_freeze + 5.5)
        assert gc.get_freeze_count() >= frozen + 1000  # the survivors were frozen too
        # a cycle that dies after it was frozen is not collected by ordinary collections...
        held, ref = _cycle()
        policy.tick(policy._last_freeze + 5.5)
        del held
        gc.collect()
        assert ref() is not None
        # ...but by the periodic full collection
        policy.tick(policy._last_full + 61.0)
        assert ref() is None
        assert policy.full_collections == 1
        samples = {s.labels["generation"] for m in registry.collect() for s in m.samples if s.name.endswith("_count") and s.value}
        assert "2" in samples  # pauses are measured per generation
        del keep
    finally:
        policy.uninstall()


def test_disabled_policy_leaves_the_collector_alone(clean_gc: None) -> None:
    policy = GcPolicy(0.0, 3600.0)
    policy.install()
    policy.tick(10**9)
    assert gc.get_freeze_count() == 0
    assert policy.full_collections == 0
    held, ref = _cycle()
    del held
    gc.collect()
    assert ref() is None


def test_no_automatic_full_collections_while_installed(clean_gc: None) -> None:
    """Survivors piling up between freezes (a backlog's outputs, fetched records) make the
    collector consider a full collection; the policy leaves those to its own schedule."""
    before = gc.get_threshold()
    policy = GcPolicy(1.0, 3600.0)
    policy.install()
    try:
        full = gc.get_stats()[2]["collections"]
        young = gc.get_stats()[0]["collections"]
        survivors = [[i] for i in range(600_000)]  # every list is tracked by the collector
        assert gc.get_stats()[0]["collections"] > young + 100  # young collections go on as usual
        assert gc.get_stats()[2]["collections"] == full
        del survivors
    finally:
        policy.uninstall()
    assert gc.get_threshold() == before
    # without the policy the same pile-up does start full collections (the test can fail)
    full = gc.get_stats()[2]["collections"]
    survivors = [[i] for i in range(600_000)]
    assert gc.get_stats()[2]["collections"] > full
    del survivors


def test_disabled_policy_keeps_the_thresholds(clean_gc: None) -> None:
    before = gc.get_threshold()
    policy = GcPolicy(0.0, 3600.0)
    policy.install()
    assert gc.get_threshold() == before
    policy.uninstall()
    assert gc.get_threshold() == before


def test_after_step_freezes_a_steps_survivors_without_a_collection(clean_gc: None) -> None:
    """A step's survivors go straight out of the young collections' scans: no collection runs
    (a cycle that died within the step is frozen with them, and freed by the full collection)."""
    policy = GcPolicy(1.0, 3600.0)
    policy.after_step()  # not installed: nothing
    assert gc.get_freeze_count() == 0
    policy.install()
    try:
        frozen = gc.get_freeze_count()
        young = gc.get_stats()[0]["collections"]
        keep = [Node() for _ in range(300)]  # under the young threshold: no automatic collection
        held, ref = _cycle()
        del held
        policy.after_step()
        assert gc.get_freeze_count() >= frozen + 300
        assert gc.get_stats()[0]["collections"] == young, "freezing collected nothing first"
        assert ref() is not None, "the step's dead cycle waits for the full collection"
        policy.tick(policy._last_full + 3601.0)  # (not + 3600.0: the float sum may fall short of it)
        assert ref() is None
        del keep
    finally:
        policy.uninstall()


@pytest.mark.parametrize("policy", [GcPolicy(0.0, 3600.0), GcPolicy(1.0, 3600.0, freeze_each_step=False)],
                         ids=["policy off", "per-step freezing off"])
def test_after_step_does_nothing_when_turned_off(clean_gc: None, policy: GcPolicy) -> None:
    policy.install()
    try:
        frozen = gc.get_freeze_count()
        keep = [Node() for _ in range(300)]
        policy.after_step()
        assert gc.get_freeze_count() == frozen
        del keep
    finally:
        policy.uninstall()


def test_the_processor_leaves_no_garbage_cycles_for_good_or_malformed_input(clean_gc: None) -> None:
    """What the per-step freeze relies on: the processor's garbage is freed by reference counting.
    A cycle per event (an exception kept with its traceback, a closure over itself) would be
    frozen and kept for up to ``worker.gc_full_collect_seconds``, and malformed input is what an
    attacker controls. The simulated fleet (attacks included) and every kind of dead letter."""
    import orjson

    from pipeline.components import build_processor
    from pipeline.processor import EventClock, InputRecord
    from pipeline.settings import Settings
    from pipeline.simulator import SCENARIOS, Fleet

    settings = Settings()
    settings.enforcement.allow_dev_key = True
    processor = build_processor(settings, clock=EventClock(), replay=True)
    fleet = Fleet(seed=7, agents=40)
    good = [orjson.dumps(ev) for ev, _ in fleet.events(duration_hours=8, attacks=SCENARIOS)][:3000]
    valid = orjson.loads(good[0])
    bad = [b"", b"not json", b"[1, 2]", b"\xff\xfe{}", b"{" * 70_000, orjson.dumps({**valid, "schema_version": "9"}),
           orjson.dumps({**valid, "ts": "yesterday"}), orjson.dumps({**valid, "ts": "2199-01-01T00:00:00Z"}),
           orjson.dumps({**valid, "action": {"kind": 7}}), orjson.dumps({k: v for k, v in valid.items() if k != "agent_id"})]
    assert len(good) >= 1000
    gc.collect()  # what building the processor left
    gc.disable()
    try:
        for values in (good, bad * 100, good):  # the second pass of good events: all duplicates
            for i in range(0, len(values), 32):
                processor.process_actions([InputRecord(v, None, "t", 0, i + j) for j, v in enumerate(values[i : i + 32])])
            processor.checkpoint()
            assert gc.collect() == 0, "the processor made garbage cycles"
    finally:
        gc.enable()
