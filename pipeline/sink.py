"""Turns :class:`~pipeline.records.Output` records into Kafka messages and sends them.

Encoding is per output kind and format (``pipeline.outputs`` for SIEM formats; orjson by default).
All sends of a batch are started first and awaited together: no per-event await.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from pipeline.errors import AgentwatchError
from pipeline.records import Output
from pipeline.settings import Settings

__all__ = ["Encoded", "Encoders", "KafkaSink"]


class Encoded(dict[str, Any]):
    """A record value that is bytes already (the throughput benchmark's passthrough worker
    copies its input). An empty dict too, so that it passes where a value is typed as a dict:
    the compiled build checks that at run time."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        super().__init__()
        self.raw = raw


_KIND_TOPIC = {
    "enriched": "enriched",
    "alerts": "alerts",
    "enforcement": "enforcement",
    "incidents": "incidents",
    "dlq": "dlq",
}


def _json(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value)


class Encoders:
    """One encoder per output kind, chosen by ``settings.outputs``."""

    def __init__(self, settings: Settings) -> None:
        self._by_kind: dict[str, Callable[[dict[str, Any]], bytes]] = {}
        self.fallbacks = 0
        formats = {"enriched": settings.outputs.enriched_format, "alerts": settings.outputs.alerts_format}
        for kind in _KIND_TOPIC:
            fmt = formats.get(kind, "json")
            if fmt == "json":
                self._by_kind[kind] = _json
            else:
                from pipeline.outputs import encoder_for

                self._by_kind[kind] = encoder_for(kind, fmt)

    def encode(self, out: Output) -> bytes:
        value = out.value
        if type(value) is Encoded:
            return value.raw
        try:
            return self._by_kind[out.kind](out.value)
        except AgentwatchError:
            # a record the SIEM format cannot express still goes out, in agentwatch's own JSON,
            # rather than stopping the worker or being lost
            self.fallbacks += 1
            return _json(out.value)


class KafkaSink:
    """Sends outputs through a faust app's producer; ``send`` returns once all are delivered.

    Records that carry a partition (one per input event: the enriched record, dead letters) are
    appended to one aiokafka batch per topic partition and submitted with ``send_batch``: about
    2 µs per record instead of ~15-20 µs for an awaited ``send`` each. The rest (alerts,
    incidents: few) take the ordinary keyed path.

    Enforcement commands go through a producer of their own (same connection settings and
    credentials, no linger). A Kafka producer has one request in flight per broker, so on the
    shared producer an isolation command waited behind whatever enriched records and state
    flushes (megabytes for a large fleet) were being sent: measured at 5,000 events/s, that
    queue was most of the command's p99.
    """

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.encoders = Encoders(settings)
        self.topics = {kind: settings.topic(name) for kind, name in _KIND_TOPIC.items()}
        self._partitions: dict[str, frozenset[int]] = {}
        self._urgent: Any | None = None
        self._urgent_lock = asyncio.Lock()

    async def _urgent_producer(self) -> Any:
        if self._urgent is None:
            async with self._urgent_lock:
                if self._urgent is None:
                    import aiokafka

                    shared = self.app.producer
                    config = {**shared._settings_default(), **shared._settings_auth(), "linger_ms": 0,
                              "client_id": f"{shared.client_id}-commands"}
                    producer = aiokafka.AIOKafkaProducer(**config)
                    await producer.start()
                    self._urgent = producer
        return self._urgent

    async def start(self) -> None:
        """Connect the commands producer now, so the first isolation command does not wait for
        it (lazily started, it added a connection and a metadata round trip to that command)."""
        await self._urgent_producer()

    async def close(self) -> None:
        """Stop the commands producer (after its sends are delivered)."""
        producer, self._urgent = self._urgent, None
        if producer is not None:
            await producer.stop()

    def _aiokafka(self) -> Any:
        return self.app.producer._ensure_producer()

    async def _partitions_of(self, producer: Any, topic: str) -> frozenset[int]:
        known = self._partitions.get(topic)
        if known is None:
            await producer.client._wait_on_metadata(topic)
            known = frozenset(producer.client.cluster.partitions_for_topic(topic) or ())
            self._partitions[topic] = known
        return known

    async def send(self, outputs: Sequence[Output]) -> None:
        if not outputs:
            return
        producer = self._aiokafka()
        topics = self.topics
        encode = self.encoders.encode
        futures = []
        batches: dict[tuple[str, int], Any] = {}
        for out in outputs:
            topic = topics[out.kind]
            key = out.key.encode("utf-8") if out.key is not None else None
            value = encode(out)
            if out.kind == "enforcement":
                futures.append(await (await self._urgent_producer()).send(topic, value, key=key))
                continue
            if out.partition is not None and out.partition in (
                    self._partitions.get(topic) or await self._partitions_of(producer, topic)):
                slot = (topic, out.partition)
                batch = batches.get(slot)
                if batch is None:
                    batch = batches[slot] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: ship it
                    futures.append(await producer.send_batch(batch, topic, partition=out.partition))
                    batch = batches[slot] = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        futures.append(await producer.send(topic, value, key=key, partition=out.partition))
                continue
            futures.append(await producer.send(topic, value, key=key))
        for (topic, partition), batch in batches.items():
            if batch.record_count():
                futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
