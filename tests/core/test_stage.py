"""The processing stage's bookkeeping between batches and state flushes, without Kafka.

What Kafka does with the records (delivery, offsets, recovery) is tested against the real broker
in tests/integration; here the table and the producer are in-memory stand-ins that record what
the stage hands them, so that the stage's own ordering can be driven step by step."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from faust.types import TP
from prometheus_client import generate_latest

from pipeline.metrics import WorkerMetrics, read_counter
from pipeline.processor import EventClock, Processor
from pipeline.settings import Settings
from pipeline.stages.process import ProcessStage

from .test_processor import event

ACTIONS = "agent.actions"


class Record(NamedTuple):
    value: bytes
    key: bytes
    offset: int
    timestamp: int | None = None


class Batch:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes]] = []

    def append(self, key: bytes, value: bytes, timestamp: Any) -> object:
        self.records.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class Producer:
    """Records each changelog write; every send is delivered at once."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def _done(self) -> asyncio.Future[None]:
        f: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        f.set_result(None)
        return f

    def create_batch(self) -> Batch:
        return Batch()

    async def send_batch(self, batch: Batch, topic: str, partition: int) -> asyncio.Future[None]:
        self.written.extend(k for k, _ in batch.records)
        return self._done()

    async def send(self, topic: str, value: bytes, key: bytes, partition: int | None = None) -> asyncio.Future[None]:
        self.written.append(key)
        return self._done()


class Sink:
    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.producer = Producer()

    async def send(self, outputs: list[Any]) -> None:
        self.sent.extend(outputs)

    def _aiokafka(self) -> Producer:
        return self.producer


class Changelog:
    def get_topic_name(self) -> str:
        return "state-changelog"


class Table:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog_topic = Changelog()


def stage() -> ProcessStage:
    processor = Processor(Settings(), detectors=[], clock=EventClock())
    return ProcessStage(processor, Sink(), Table(), WorkerMetrics(), actions_topic=ACTIONS, acks_topic="acks",
                        control_topic="control", flush_seconds=3600)  # flushed only when the test says


def fetch(agent: str, first: int, n: int) -> dict[TP, list[Record]]:
    return {TP(ACTIONS, 0): [Record(event(i, agent=agent), agent.encode(), i) for i in range(first, first + n)]}


def test_a_flush_during_a_fetch_covers_that_fetch() -> None:
    """A flush started while a fetch is being processed encodes state that may already count
    that fetch's events as seen; so it must also cover (make durable) that fetch — otherwise a
    crash after the flush replayed the fetch, dropped its events as duplicates, and lost outputs
    that had never been sent."""

    async def run() -> None:
        s = stage()
        first = await s.handle(fetch("a1", 0, 5))
        second_task = asyncio.ensure_future(s.handle(fetch("a2", 0, 200)))  # yields between steps
        await asyncio.sleep(0)
        assert not second_task.done(), "the second fetch is still being processed"
        s.flush_state()
        second = await second_task
        await s._last_delivery
        await asyncio.wait_for(first, 1)
        assert second.done(), "the fetch in progress when the flush began is covered by it"
        assert b"a2" in s.sink.producer.written and b"a1" in s.sink.producer.written
        # a2 was encoded part-way through its fetch: it is written again, whole, by the next flush
        written = len(s.sink.producer.written)
        await s.handle(fetch("a3", 0, 1))
        s.flush_state()
        await s._last_delivery
        assert b"a2" in s.sink.producer.written[written:]

    asyncio.run(run())


def test_a_fetch_after_a_flush_waits_for_the_next_one() -> None:
    async def run() -> None:
        s = stage()
        first = await s.handle(fetch("a1", 0, 5))
        s.flush_state()
        await s._last_delivery
        await asyncio.wait_for(first, 1)
        later = await s.handle(fetch("a1", 5, 5))
        await asyncio.sleep(0.05)
        assert not later.done(), "its state is not written yet: not durable"
        s.flush_state()
        await s._last_delivery
        await asyncio.wait_for(later, 1)

    asyncio.run(run())


def test_after_step_runs_between_the_processors_steps() -> None:
    """The worker's collector policy freezes what each step left alive (pipeline/gcpolicy.py):
    the stage calls it once per step of 32 events, after the step's outputs are taken."""

    async def run() -> list[int]:
        s = stage()
        s.urgent_first = False  # plain steps of 32 (urgent-first interleaves its own)
        seen: list[int] = []
        s.after_step = lambda: seen.append(len(s.sink.sent))
        pending = await s.handle(fetch("a1", 0, 100))
        s.flush_state()
        await s._last_delivery
        await asyncio.wait_for(pending, 1)
        return seen

    seen = asyncio.run(run())
    assert len(seen) == 4  # 32 + 32 + 32 + 4 events
    assert seen == [0, 0, 0, 0], "called while the steps run, before the fetch's outputs are sent"


def test_a_command_is_measured_and_logged_on_one_line(caplog: Any) -> None:
    """Agent ids come from events and may hold newlines: the log line must not be forgeable."""
    import logging
    import time

    from pipeline.records import Output

    async def run() -> ProcessStage:
        s = stage()
        cmd = Output("enforcement", "ep-1", {"command_id": "cmd_1", "action": "isolate", "mode": "enforce",
                                             "agent_id": "evil\n[ERROR] forged line", "enforcement_point": "ep-1"})
        with caplog.at_level(logging.INFO, logger="agentwatch.response"):
            await s._send_commands([cmd], time.perf_counter())
        return s

    s = asyncio.run(run())
    lines = [r.getMessage() for r in caplog.records if r.name == "agentwatch.response"]
    assert len(lines) == 1 and "\n" not in lines[0] and "isolation command cmd_1 sent: isolate" in lines[0]
    assert s.sink.sent and s.sink.sent[0].value["command_id"] == "cmd_1"
    samples = {x.name: x.value for m in s.metrics.response_seconds.collect() for x in m.samples}
    assert samples["agentwatch_enforcement_response_seconds_count"] == 1


def test_the_processors_cpu_is_counted_and_not_the_turns_between_its_steps() -> None:
    """``agentwatch_processing_cpu_seconds`` holds the CPU the processor used (here a detector
    that burns a known amount per event), not what other tasks ran between its steps."""
    import time

    from detectors.base import Event, Finding

    burned: list[float] = []

    class Burner:
        name = "burner"

        def score_one(self, ev: Event) -> list[Finding]:
            start = time.thread_time()
            while time.thread_time() - start < 0.001:
                pass
            burned.append(time.thread_time() - start)
            return []

        def learn_one(self, ev: Event) -> None:
            return None

    async def busy_neighbour(stop: asyncio.Event) -> float:
        used = 0.0
        while not stop.is_set():  # CPU between the processor's steps, in other tasks
            start = time.thread_time()
            while time.thread_time() - start < 0.03:
                pass
            used += time.thread_time() - start
            await asyncio.sleep(0)
        return used

    async def run() -> tuple[float, float]:
        processor = Processor(Settings(), detectors=[Burner()], clock=EventClock())
        s = ProcessStage(processor, Sink(), Table(), WorkerMetrics(), actions_topic=ACTIONS, acks_topic="acks",
                         control_topic="control", flush_seconds=3600)
        stop = asyncio.Event()
        neighbour = asyncio.ensure_future(busy_neighbour(stop))
        await asyncio.sleep(0)
        await s.handle(fetch("a1", 0, 100))  # 4 steps of 32 events, the neighbour runs between them
        stop.set()
        page = generate_latest(s.metrics.registry).decode()
        return await neighbour, read_counter(page, "agentwatch_processing_cpu_seconds")

    other, counted = asyncio.run(run())
    assert len(burned) == 100
    assert other >= 0.09, "the neighbour ran between the steps"
    assert sum(burned) <= counted < sum(burned) + 0.5 * other + 0.02


def test_events_and_dead_letters_are_counted_per_day_for_the_store(tmp_path: Any) -> None:
    """The per-day run figures of the evidence report: valid events by their own day, dead
    letters (no trustworthy time) under today; counted on the event loop as batches are delivered
    and written by ``flush_stats``, once."""
    import time

    from pipeline.incidents import open_store

    store = open_store(f"sqlite:///{tmp_path / 'incidents.db'}")

    async def run() -> ProcessStage:
        processor = Processor(Settings(), detectors=[], clock=EventClock())
        s = ProcessStage(processor, Sink(), Table(), WorkerMetrics(), actions_topic=ACTIONS, acks_topic="acks",
                         control_topic="control", store=store, flush_seconds=3600)
        batch = fetch("a1", 0, 5)
        batch[TP(ACTIONS, 0)] += [Record(b"not json", b"a1", 5), Record(b"{}", b"a1", 6)]
        batch[TP(ACTIONS, 1)] = [Record(event(0, agent="a2", ts="2026-11-03T10:00:00Z"), b"a2", 0)]
        await s.handle(batch)
        await s._last_side  # type: ignore[misc]
        return s

    s = asyncio.run(run())
    counts = s.take_day_counts()
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert counts == {"2026-11-02": [5, 0], "2026-11-03": [1, 0], today: [0, 2]}
    assert s.take_day_counts() == {}, "taken once"
    s.flush_stats("worker-test", counts)
    figures = store.stats()
    assert figures["2026-11-02"]["events"] == 5 and figures["2026-11-03"]["events"] == 1
    assert figures[today]["events"] == 2 and figures[today]["dead_letters"] == 2
    store.close()
