"""faust's Kafka consumer, delivering our input topics a batch at a time.

Why: a faust stream costs about 120-180 µs of CPU per event in its per-message machinery
(a Message and an Event object, a task per message in ``wait_first``, a queue hop, per-message
acks) — measured in ../shared/PERF-FACTS.md, and ``stream.take()`` does not avoid it. That caps a
worker at ~4k events/s. This consumer keeps everything else faust does — the consumer group and
its partition assignor, rebalances, changelog-backed tables and their recovery, the offset commit
loop, the worker lifecycle and graceful shutdown — and changes one thing: records of the topics
registered with :meth:`BatchApp.batch_stage` go from ``getmany`` straight to the stage as one
batch of raw records per fetch. All other topics (table changelogs during recovery, any ordinary
faust agent) still take faust's per-message path.

At-least-once: the stage hands back a future that completes only once the batch's outputs are
delivered and the state flush covering the batch is written; then the batch's offsets are marked
acknowledged in faust's own bookkeeping, and faust's commit loop commits them (it flushes the
producer first). A crash before that replays the batch. Before a rebalance or shutdown waits for
the batches in flight, it asks the stage to flush its state at once (``app.batch_flush``).

This subclasses faust internals (``_drain_messages``, ``_acked``), so pyproject pins
faust-streaming to 0.15.x and tests cover the behaviour on a real broker.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

__all__ = ["BatchConsumer", "BatchHandler", "BatchTransport"]

#: processes one fetch and returns the future of its delivery
BatchHandler = Callable[[Mapping[TP, Sequence[Any]]], Awaitable["asyncio.Future[None]"]]
#: batches whose delivery may be in flight at once (bounds memory and replay after a crash); the
#: stage's state flush covers several batches, so this leaves room for those waiting on it
MAX_IN_FLIGHT = 64


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Applies our fetch wait (faust hard-codes 1500 ms, which adds latency on idle topics)."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = getattr(self.app, "fetch_max_wait_ms", None)
        if wait_ms is not None:
            consumer._fetch_max_wait_ms = int(wait_ms)
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer with batch delivery for the app's batch topics."""

    _in_flight: asyncio.Event | None = None

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _batch_idle(self) -> asyncio.Event:
        if self._in_flight is None:
            self._in_flight = asyncio.Event()
            self._in_flight.set()
        return self._in_flight

    def _flush_stage(self) -> None:
        """Have the stage write its state now instead of at its next flush tick."""
        flush: Callable[[], None] | None = getattr(self.app, "batch_flush", None)
        if flush is not None:
            flush()

    async def wait_empty(self) -> None:
        # A rebalance or shutdown first lets the batches in flight finish and be acknowledged.
        self._flush_stage()
        pending = getattr(self, "_pending", None)
        if pending:
            await self._finish_pending(pending)
        await self._batch_idle().wait()
        await super().wait_empty()

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - run by faust
        app = self.app
        handler: BatchHandler | None = getattr(app, "batch_handler", None)
        batch_topics: frozenset[str] = getattr(app, "batch_topics", frozenset())
        callback = self.callback
        to_message = self._to_message
        read_offset = self._read_offset
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        idle = self._batch_idle()
        pending: deque[tuple[Mapping[TP, Sequence[Any]], asyncio.Future[None]]] = deque()
        self._pending = pending
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records, _ = await self._wait_next_records(1.0)
                await asyncio.sleep(0)
                if records is None or self.should_stop or not records:
                    continue
                if not self.flow_active:
                    await self.perform_seek()
                    continue
                # Judge the records against the assignment as it is now, not as it was when the
                # fetch started: a rebalance may have happened meanwhile. Records of partitions
                # that are paused (table recovery) are rewound so they are fetched again; records
                # of partitions no longer ours are dropped (their new owner replays them).
                active = self._get_active_partitions()
                assignment = self.assignment()
                batch: dict[TP, Sequence[Any]] = {}
                for tp, recs in records.items():
                    if not recs:
                        continue
                    if tp not in active and tp not in self._buffered_partitions:
                        if tp in assignment:
                            await self.seek(tp, recs[0].offset)
                        continue
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    if tp.topic in batch_topics and handler is not None:
                        batch[tp] = recs
                        continue
                    for record in recs:  # faust's own per-message path (table recovery etc.)
                        await self.wait_first(callback(to_message(tp, record)), self.suspend_flow.wait())
                        read_offset[tp] = record.offset
                if not batch or handler is None:
                    self._ack_completed(pending)
                    continue
                idle.clear()
                # The handler processes the batch and returns the future of its delivery; the
                # next fetch is processed while that delivery is in flight. Batches are
                # acknowledged strictly in order, each only once its delivery completed.
                # Shielded: a shutdown cancels the drainer, but batches in flight still
                # finish and are acknowledged, so SIGTERM commits everything processed.
                task = asyncio.ensure_future(handler(batch))
                try:
                    delivery = await asyncio.shield(task)
                    pending.append((batch, delivery))
                    delivery.add_done_callback(lambda _f: self._ack_completed_quietly(pending))
                    self._ack_completed(pending)
                    while len(pending) >= MAX_IN_FLIGHT:
                        await asyncio.shield(pending[0][1])
                        self._ack_completed(pending)
                except asyncio.CancelledError:
                    await asyncio.wait([task])
                    if not task.cancelled() and task.exception() is None:
                        pending.append((batch, task.result()))
                    await self._finish_pending(pending)
                    raise
                finally:
                    if not pending:
                        idle.set()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    def _ack_completed(self, pending: deque[tuple[Mapping[TP, Sequence[Any]], asyncio.Future[None]]]) -> None:
        """Acknowledge delivered batches from the front of ``pending``, in order. A failed
        delivery raises: nothing after it is acknowledged and the worker stops (at-least-once)."""
        while pending and pending[0][1].done():
            batch, delivery = pending.popleft()
            delivery.result()
            self._ack_batch(batch)
        if not pending and self._in_flight is not None:
            self._in_flight.set()

    def _ack_completed_quietly(self, pending: deque[tuple[Mapping[TP, Sequence[Any]], asyncio.Future[None]]]) -> None:
        # from a done-callback: acknowledge promptly even when no new records arrive; a failed
        # delivery is left at the front and raised by the drain loop
        if pending and pending[0][1].done() and (pending[0][1].cancelled() or pending[0][1].exception() is not None):
            return
        self._ack_completed(pending)

    async def _finish_pending(self, pending: deque[tuple[Mapping[TP, Sequence[Any]], asyncio.Future[None]]]) -> None:
        self._flush_stage()
        while pending:
            await asyncio.wait([pending[0][1]])
            self._ack_completed(pending)

    def _ack_batch(self, batch: Mapping[TP, Sequence[Any]]) -> None:
        """Mark every offset of the batch acknowledged in faust's commit bookkeeping."""
        assignment = self.assignment()
        for tp, recs in batch.items():
            if tp not in assignment:
                continue  # revoked meanwhile: the new owner replays it (at-least-once)
            committed = self._committed_offset[tp]
            first = recs[0].offset
            last = recs[-1].offset
            previous = self._read_offset[tp]
            # Offsets inside a batch may skip (compaction, transaction markers): acknowledge the
            # whole range so faust's gap detection does not hold the commit back.
            start = first if previous is None else min(first, previous + 1)
            if committed is not None:
                start = max(start, committed)
            offsets = range(start, last + 1)
            acked = self._acked[tp]
            index = self._acked_index[tp]
            new = [o for o in offsets if o not in index]
            acked.extend(new)
            index.update(new)
            self._n_acked += len(new)
            self._read_offset[tp] = last


class BatchTransport(faust_aiokafka.Transport):
    """The aiokafka transport with :class:`BatchConsumer`."""

    Consumer = cast(Any, BatchConsumer)
