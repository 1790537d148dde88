"""The processing stage: one batch of input records -> processor -> outputs -> state checkpoint.

Called by :class:`~pipeline.consumer.BatchConsumer` with every record fetched for the action, ack
and control topics. It returns only when every output of the batch is delivered and the changed
agents' state is written to the state table, so acknowledging the batch's offsets afterwards is
at-least-once safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson

from pipeline.consumer import MAX_IN_FLIGHT
from pipeline.metrics import WorkerMetrics
from pipeline.processor import InputRecord, Processor
from pipeline.records import Output
from pipeline.sink import KafkaSink

__all__ = ["CHECKPOINT_KEY", "ProcessStage"]

log = logging.getLogger("agentwatch.response")


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())

CHECKPOINT_KEY = b"__checkpoint__"
#: table key of the baselines' role and fleet statistics
SHARED_KEY = b"__shared__"
#: events processed between chances to send isolation commands early
URGENT_CHUNK = 32
#: batches whose state may wait for the next flush; below the consumer's in-flight limit, so a
#: flush interval never stalls consumption
MAX_UNFLUSHED_BATCHES = MAX_IN_FLIGHT - 2
#: event-loop turns given right after a step that produced isolation commands
_COMMAND_TURNS = 4
#: agents whose state is encoded between two chances for the event loop to run other work
FLUSH_SLICE = 64


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a flush's exception as seen: it reaches the consumer through the batches' futures."""
    if not future.cancelled():
        future.exception()


class ProcessStage:
    def __init__(
        self,
        processor: Processor,
        sink: KafkaSink,
        table: Any,
        metrics: WorkerMetrics,
        *,
        actions_topic: str,
        acks_topic: str,
        control_topic: str,
        store: Any | None = None,
        destinations: Any | None = None,
        flush_seconds: float = 0.0,
        flush_events: int = 50_000,
        urgent_first: bool = True,
        after_step: Callable[[], None] | None = None,
    ) -> None:
        self.urgent_first = urgent_first
        #: called after each processing step (the worker's collector policy freezes what it left)
        self.after_step = after_step
        self.store = store
        self.destinations = destinations
        self._day_counts: dict[str, list[int]] = {}
        self._shared_loaded = False
        self._last_delivery: asyncio.Future[None] | None = None
        #: batches sent since the last state flush: (outputs delivered, batch durable)
        self._unflushed: list[tuple[asyncio.Future[None], asyncio.Future[None]]] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flushed_at = time.monotonic()
        self._encoding = False
        self._unflushed_events = 0
        self._last_side: asyncio.Future[None] | None = None
        #: set while no batch is between its first processed event and its enqueueing
        self._between_batches = asyncio.Event()
        self._between_batches.set()
        self.flush_seconds = flush_seconds
        self.flush_events = flush_events
        self.processor = processor
        self.sink = sink
        self.table = table
        self.metrics = metrics
        self.actions_topic = actions_topic
        self.acks_topic = acks_topic
        self.control_topic = control_topic

    def load_state(self, agent_id: str) -> Any | None:
        """State loader for the processor: the agent's blob from the local table store."""
        raw = self.table.data.get(agent_id.encode("utf-8"))
        if raw is None:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None  # a corrupt blob starts the agent afresh rather than stopping the worker

    async def write_shared(self, baselines: Any) -> None:
        """Checkpoint the baselines' role/fleet statistics under :data:`SHARED_KEY` (approximate
        per worker: each sees only its partitions' agents)."""
        if not baselines.shared_dirty():
            return
        partitions = sorted({tp.partition for tp in self.table.app.consumer.assignment()
                             if tp.topic == self.actions_topic})
        if not partitions:
            return
        value = orjson.dumps(baselines.dump_shared())
        self.table.data[SHARED_KEY] = value
        producer = self.table.app.producer
        topic = self.table.changelog_topic.get_topic_name()
        await (await producer.send(topic, SHARED_KEY, value, partitions[0], None, None))

    def _load_shared_once(self) -> None:
        if self._shared_loaded:
            return
        self._shared_loaded = True
        baselines = self.processor.baselines
        raw = self.table.data.get(SHARED_KEY)
        if baselines is not None and raw is not None:
            with contextlib.suppress(orjson.JSONDecodeError, ValueError, TypeError):
                baselines.load_shared(orjson.loads(raw))

    async def handle(self, batch: Mapping[Any, Sequence[Any]]) -> asyncio.Future[None]:
        """Process a fetch; return the future of its delivery (see :meth:`_enqueue`).

        The fetch's actions go through :meth:`Processor.process_urgent_first` (unless
        ``stream.urgent_first`` is off): an agent with a rule finding is
        processed ahead of the rest of the fetch, and its isolation command is sent at once,
        while the rest is processed. Either way the actions go in steps of
        :data:`URGENT_CHUNK` events, between which a command leaves and other work runs.
        """
        started = time.perf_counter()
        self._load_shared_once()
        processor = self.processor
        outputs: list[Output] = []
        oldest_ms: int | None = None
        urgent: list[asyncio.Future[None]] = []
        early: list[Output] = []
        self._between_batches.clear()
        try:
            actions: list[InputRecord] = []
            for tp, records in batch.items():
                if tp.topic == self.actions_topic:
                    ts0 = records[0].timestamp
                    if ts0 is not None and (oldest_ms is None or ts0 < oldest_ms):
                        oldest_ms = ts0
                    actions.extend(InputRecord(r.value, r.key, tp.topic, tp.partition, r.offset, r.timestamp)
                                   for r in records)
            steps = (processor.process_urgent_first(actions, step=URGENT_CHUNK) if self.urgent_first
                     else (processor.process_actions(actions[i : i + URGENT_CHUNK])
                           for i in range(0, len(actions), URGENT_CHUNK)))
            # the processor's CPU, read around each step (a clock read per 32 events; the
            # steps' own time, not the turns in between): agentwatch_processing_cpu_seconds
            cpu = 0.0
            clock = time.thread_time
            step_started = clock()
            for produced in steps:
                cpu += clock() - step_started
                commands = [o for o in produced if o.kind == "enforcement"]
                if commands:
                    early.extend(commands)
                    urgent.append(asyncio.ensure_future(self._send_commands(commands, started)))
                    produced = [o for o in produced if o.kind != "enforcement"]
                outputs.extend(produced)
                if self.after_step is not None:
                    self.after_step()
                # a turn for other work; after a command, a few: the producer's sender needs
                # several to put the request on the wire (otherwise one per 32-event step)
                for _ in range(_COMMAND_TURNS if commands else 1):
                    await asyncio.sleep(0)
                step_started = clock()
            cpu += clock() - step_started  # the end of the generator: its last, empty, step
            self.metrics.processing_cpu.inc(cpu)
            for tp, records in batch.items():
                if tp.topic == self.acks_topic:
                    outputs.extend(processor.process_acks(self._decode(records, tp, outputs)))
                elif tp.topic == self.control_topic:
                    outputs.extend(processor.process_control(self._decode(records, tp, outputs)))
            sent, durable = self._enqueue(outputs, urgent, sum(len(r) for r in batch.values()))
        finally:
            self._between_batches.set()

        async def finish() -> None:
            await sent
            self.metrics.record_batch(processor.stats, [*early, *outputs], time.perf_counter() - started)
            if oldest_ms is not None:
                self.metrics.latency.observe(max(0.0, time.time() - oldest_ms / 1000.0))
            await durable

        return asyncio.ensure_future(finish())

    async def _send_commands(self, commands: list[Output], received: float) -> None:
        """Send isolation commands now; then record how long after the fetch holding their
        triggering events was handed to this stage they were on Kafka — the worker's own share of
        the response time. Not in it: the broker's delivery to the worker, the time a fetched
        record waits in the consumer while the stage is busy with the previous fetch, and the
        delivery to the enforcement point. Each command is logged (one line per isolation step)."""
        await self.sink.send(commands)
        seconds = time.perf_counter() - received
        for cmd in commands:
            self.metrics.response_seconds.observe(seconds)
            v = cmd.value
            # agent and enforcement point come from events: %r keeps their control characters
            # from forging log lines
            log.info("isolation command %s sent: %s agent %r at %r (%s mode), %.1f ms after its triggering event "
                     "was handed to the processing stage", v.get("command_id"), v.get("action"),
                     str(v.get("agent_id"))[:120], str(v.get("enforcement_point"))[:120], v.get("mode", "enforce"),
                     seconds * 1000)

    async def deliver(self, outputs: list[Output]) -> None:
        """Deliver outputs produced outside a batch (timers) and wait until they are sent.

        Not until the next state flush: no input offset waits on them, and the timers that
        call this must keep their pace (the state they changed goes out with the next flush)."""
        if outputs:
            sent, _ = self._enqueue(outputs, ())
            await sent

    def _enqueue(self, outputs: list[Output], urgent: Sequence[Awaitable[None]], events: int = 0,
                 ) -> tuple[asyncio.Future[None], asyncio.Future[None]]:
        """Send outputs now; return (their delivery, the durability of the batch).

        Outputs leave at once. The state is written by :meth:`flush_state`: every
        ``stream.state_flush_seconds`` (a timer covers quiet streams), or sooner when enough
        batches wait, so the consumer never stalls on its in-flight limit. A batch is durable
        once its outputs are delivered and the state flush covering it is written.
        """
        sent = asyncio.ensure_future(self._send(outputs, list(urgent)))
        if outputs and (self.store is not None or self.destinations is not None):
            # the incident store and extra destinations, batch by batch in order: done once per
            # flush instead, seconds of incidents were hashed and written in one go by a thread
            # holding the interpreter lock, and the worker stalled meanwhile
            sent = asyncio.ensure_future(self._side(sent, outputs, self._last_side))
            self._last_side = sent
        durable: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unflushed.append((sent, durable))
        self._unflushed_events += events
        due = time.monotonic() - self._flushed_at >= self.flush_seconds
        if due or len(self._unflushed) >= MAX_UNFLUSHED_BATCHES or self._unflushed_events >= self.flush_events:
            self.flush_state()
        elif self._flush_timer is None:
            wait = max(0.0, self.flush_seconds - (time.monotonic() - self._flushed_at))
            self._flush_timer = asyncio.get_running_loop().call_later(wait, self.flush_state)
        return sent, durable

    async def _send(self, outputs: list[Output], urgent: list[Awaitable[None]]) -> None:
        await asyncio.gather(self.sink.send(outputs), *urgent)

    async def _side(self, sent: asyncio.Future[None], outputs: list[Output],
                    previous: asyncio.Future[None] | None) -> None:
        """After the batch's records are delivered and the previous batch's side outputs are
        written: the store and extra destinations (blocking I/O, so in a thread)."""
        await sent
        if previous is not None:
            await previous
        to_store = False
        if self.store is not None:
            self._count_days(outputs)
            to_store = any(o.kind in ("alerts", "incidents") for o in outputs)
        if to_store or self.destinations is not None:
            await asyncio.to_thread(self._write_side_outputs, outputs, to_store)

    def _count_days(self, outputs: list[Output]) -> None:
        """Count a delivered batch's events and dead letters per day, for the store's run
        figures. Here, on the event loop, not in the writing thread: most batches have nothing
        else for the store, and handing each to a thread cost more than the counting (the thread
        needs the interpreter lock, which the busy event loop gives up only when forced, every
        switch interval, and takes back only once the thread has run)."""
        counts = self._day_counts
        for o in outputs:
            if o.kind == "enriched":
                column, day = 0, str(o.value.get("ts", ""))[:10] or _today()
            elif o.kind == "dlq":
                column, day = 1, _today()  # a dead letter's own time cannot be trusted
            else:
                continue
            entry = counts.get(day)
            if entry is None:
                entry = counts[day] = [0, 0]
            entry[column] += 1

    def flush_state(self) -> None:
        """Write the state of every agent changed since the last flush, after the outputs of
        the batches it covers; then those batches are durable.

        The agents' state is encoded a slice of :data:`FLUSH_SLICE` agents at a time, yielding
        to the event loop in between: with a large fleet one flush encodes megabytes, and done in
        one go it stopped the worker for tens of milliseconds — long enough to show in the
        event -> isolation command p99. Processing goes on meanwhile, so an agent may be
        encoded with the effects of batches newer than the flush started with; the flush
        therefore covers every batch enqueued until its last slice is encoded, and waits for
        all their outputs before writing. Order is kept where it matters: state records are
        written only after the covered batches' outputs (a crash between them repeats outputs,
        never loses them: state marks the events as seen) and only after the previous flush
        completed. The local table store is updated as each agent is encoded, so an agent
        evicted and seen again reads its newest state.
        """
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._flushed_at = time.monotonic()
        if not self._unflushed or self._encoding:
            return  # nothing to cover, or the flush being encoded will cover these batches too
        self._encoding = True
        self._unflushed_events = 0
        dirty = self.processor.take_dirty()
        self.processor.evict(keep=dirty)  # the others' newest state is already in the table
        flush = asyncio.ensure_future(self._flush(list(dirty), self._last_delivery))
        flush.add_done_callback(_retrieve)
        self._last_delivery = flush

    async def _flush(self, agents: list[str], previous: asyncio.Future[None] | None) -> None:
        batches: list[tuple[asyncio.Future[None], asyncio.Future[None]]] = []
        try:
            try:
                encoded: dict[str, tuple[int, bytes]] = {}
                data = self.table.data
                for start in range(0, len(agents), FLUSH_SLICE):
                    if start:
                        await asyncio.sleep(0)
                    for agent_id, (partition, blob) in self.processor.dump_agents(
                            agents[start : start + FLUSH_SLICE]).items():
                        value = orjson.dumps(blob)
                        encoded[agent_id] = (partition, value)
                        data[agent_id.encode("utf-8")] = value
                # A fetch processed between two slices may have its effects (events marked as
                # seen) in what was encoded, but is not enqueued yet: wait until it is, so that
                # this flush covers it. Otherwise a crash after this flush replayed that fetch,
                # its events counted as duplicates, and outputs that were never sent were lost.
                await self._between_batches.wait()
            finally:
                batches, self._unflushed = self._unflushed, []
                self._encoding = False
            self.metrics.agents.set(self.processor.agents_tracked)
            await asyncio.gather(*(sent for sent, _ in batches))
            if previous is not None:
                await previous  # raises if it failed: then nothing after it is acknowledged
            await self._write_state(encoded)
        except BaseException as exc:
            for _, durable in batches:
                if not durable.done():
                    durable.set_exception(exc if isinstance(exc, Exception) else RuntimeError("state flush cancelled"))
            raise
        for _, durable in batches:
            if not durable.done():
                durable.set_result(None)

    def _write_side_outputs(self, outputs: list[Output], to_store: bool) -> None:
        if to_store and self.store is not None:
            self.store.apply_outputs(outputs)
        if self.destinations is not None:
            self.destinations.publish_outputs(outputs)
            self.destinations.flush()

    def take_day_counts(self) -> dict[str, list[int]]:
        """The per-day counts since the last call (on the event loop, which counts them)."""
        counts, self._day_counts = self._day_counts, {}
        return counts

    def flush_stats(self, source: str, counts: dict[str, list[int]]) -> None:
        """Add ``counts`` (from :meth:`take_day_counts`) to the store's per-day run figures.
        Blocking store I/O: the worker calls it in a thread with counts it took on the event loop."""
        if self.store is None or not counts:
            return
        for day, (events, dead) in counts.items():
            self.store.record_stats(day, events + dead, dead, source=source, mode="add")

    async def _write_state(self, state: dict[str, tuple[int, bytes]]) -> None:
        """One changelog record per changed agent, then one checkpoint marker per partition.

        The records go straight through the producer, one record batch per partition (a ``send``
        per agent cost ~20 µs each), and are awaited (faust's ``send_soon`` buffer would let a
        kill -9 lose state that the committed offsets already count).
        The marker is sent after the batch is delivered, so it is the last record of its
        partition and in a produce request of its own: brokers that report the end offset of a
        partition by its last record batch (the embedded test broker does) then still let
        faust's table recovery read every state record. Real Kafka needs no such help; the
        marker (key ``__checkpoint__``) costs one tiny compacted record per partition per batch.
        """
        if not state:
            return
        producer = self.sink._aiokafka()
        topic = self.table.changelog_topic.get_topic_name()
        futures = []
        batches: dict[int, Any] = {}
        counts: dict[int, int] = {}
        for agent_id, (partition, value) in state.items():
            counts[partition] = counts.get(partition, 0) + 1
            key = agent_id.encode("utf-8")
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: ship it
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[partition] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:  # larger than a batch
                    futures.append(await producer.send(topic, value, key=key, partition=partition))
        for partition, batch in batches.items():
            if batch.record_count():
                futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
        markers = []
        for partition, count in counts.items():
            marker = orjson.dumps({"agents": count})
            markers.append(await producer.send(topic, marker, key=CHECKPOINT_KEY, partition=partition))
        await asyncio.gather(*markers)

    def _decode(self, records: Sequence[Any], tp: Any, outputs: list[Output]) -> list[dict[str, Any]]:
        """JSON objects with an agent_id; anything else becomes a dead letter."""
        from pipeline.validation import ValidationFailure

        good: list[dict[str, Any]] = []
        for r in records:
            try:
                value = orjson.loads(r.value) if r.value else None
            except orjson.JSONDecodeError:
                value = None
            if isinstance(value, dict) and isinstance(value.get("agent_id"), str):
                good.append(value)
                continue
            failure = ValidationFailure("not_json" if value is None else "schema_violation",
                                        f"{tp.topic} message is not a JSON object with an agent_id")
            outputs.append(self.processor._dead_letter(
                InputRecord(r.value, r.key, tp.topic, tp.partition, r.offset, r.timestamp), failure))
        return good
