"""Publish agent-action events to Kafka: the enforcement point's half of the event contract.

    from pipeline.sdk.publisher import ActionPublisher
    with ActionPublisher("kafka-1:9092") as pub:          # topic "agent.actions"
        pub.publish({"ts": "2026-11-02T08:00:00Z", "agent_id": "sre-001", ...})
    # leaving the block flushes: every event is acknowledged by the broker or an error is raised

Contract:

- ``publish(event)`` validates the event against ``schemas/agent-action.schema.json`` with
  :func:`pipeline.validation.validate_event` (the same check the pipeline applies) and raises
  :class:`pipeline.validation.ValidationFailure` (``.code``, ``.reason``) at once, so a bad event
  is the enforcement point's error, not a dead letter found later. It also refuses events larger
  than ``max_message_bytes`` (code ``oversized``) or not JSON-serialisable (``not_json``).
- Missing ``schema_version`` and ``event_id`` are filled in *in the dict you pass* (``"1"`` and a
  random UUID4), so you can log the id; an id you set is never changed. Set the id yourself when
  you may publish the same action twice: ``event_id`` is the pipeline's dedup key. ``ts`` is never
  invented: event time is when your enforcement point decided, which only you know.
- Messages are keyed by ``agent_id`` (one agent's actions stay in order on one partition) and
  batched by the client (``linger_ms``, ``batch_size``); the producer is idempotent, so its own
  retries do not duplicate messages.
- Delivery is asynchronous: :meth:`flush` waits for every pending event and raises
  :class:`PublishError` if any was not delivered; :meth:`close` (and leaving a ``with`` block)
  flushes first. An unreachable broker raises :class:`~pipeline.kafka.BrokerUnreachable` from the
  constructor within ``connect_timeout`` seconds. Every error message is one line.

kafka-python is used (not aiokafka) because enforcement points are usually synchronous code; with
the ``crc32c`` package installed it sends about 30-40k events/s from one thread.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import orjson

from pipeline.errors import AgentwatchError
from pipeline.kafka import BrokerUnreachable, bootstrap_servers, check_reachable
from pipeline.validation import ValidationFailure, validate_event

__all__ = ["ActionPublisher", "PublishError"]


class PublishError(AgentwatchError):
    """Events could not be delivered to Kafka; the message says how many and why, in one line."""


class ActionPublisher:
    """A batched, validating Kafka producer of agent-action events (thread-safe ``publish``).

    ``producer_config`` passes extra kafka-python ``KafkaProducer`` settings (security protocol,
    SASL, TLS files...) straight through.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = "agent.actions",
        *,
        linger_ms: int = 5,
        batch_size: int = 256 * 1024,
        acks: int | str = "all",
        compression_type: str | None = None,
        client_id: str = "agentwatch-publisher",
        validate: bool = True,
        max_message_bytes: int = 64 * 1024,
        max_block_ms: int = 10_000,
        request_timeout_ms: int = 10_000,
        connect_timeout: float = 3.0,
        **producer_config: Any,
    ) -> None:
        self.topic = topic
        self.bootstrap = bootstrap
        self.validate = validate
        self.max_message_bytes = max_message_bytes
        self.sent = 0
        self.failed = 0
        self._first_error: str | None = None
        self._lock = threading.Lock()
        self._closed = False
        try:
            servers = bootstrap_servers(bootstrap)
        except ValueError as exc:
            raise BrokerUnreachable(f"invalid broker address: {exc}") from None
        check_reachable(bootstrap, timeout=connect_timeout)

        from kafka import KafkaProducer  # local: importing kafka-python costs ~100 ms
        from kafka.errors import KafkaError

        config: dict[str, Any] = {
            "bootstrap_servers": servers,
            "client_id": client_id,
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "acks": acks,
            "compression_type": compression_type,
            "max_block_ms": max_block_ms,
            "request_timeout_ms": request_timeout_ms,
        }
        # kafka-python 3 names the bootstrap wait; 2.x only has the api-version probe timeout
        wait_ms = int(connect_timeout * 1000) + 2000
        for name in ("bootstrap_timeout_ms", "api_version_auto_timeout_ms"):
            if name in KafkaProducer.DEFAULT_CONFIG:
                config[name] = wait_ms
                break
        config.update(producer_config)
        try:
            self._producer = KafkaProducer(**config)
        except (KafkaError, ValueError, OSError) as exc:
            raise BrokerUnreachable(
                f"cannot start a Kafka producer for {bootstrap}: {_one_line(exc)}"
            ) from None

    # ------------------------------------------------------------ publishing

    def publish(self, event: dict[str, Any]) -> None:
        """Validate ``event`` and queue it for sending (keyed by its ``agent_id``).

        Raises ValidationFailure for an invalid event, PublishError if the publisher is closed
        or the topic's metadata cannot be fetched within ``max_block_ms``.
        """
        if self._closed:
            raise PublishError("the publisher is closed")
        if not isinstance(event, dict):
            raise ValidationFailure("not_object", f"expected a dict, got {type(event).__name__}")
        if "schema_version" not in event:
            event["schema_version"] = "1"
        if "event_id" not in event:
            event["event_id"] = str(uuid.uuid4())
        if self.validate:
            validate_event(event)
        try:
            value = orjson.dumps(event)
        except TypeError as exc:
            raise ValidationFailure("not_json", f"the event is not JSON-serialisable: {exc}") from None
        if len(value) > self.max_message_bytes:
            raise ValidationFailure(
                "oversized", f"event of {len(value)} bytes exceeds the limit of {self.max_message_bytes}"
            )
        agent_id = event.get("agent_id")
        key = str(agent_id).encode("utf-8", "surrogatepass") if agent_id is not None else None
        self._send(key, value)

    def publish_raw(self, key: bytes | None, value: bytes) -> None:
        """Send bytes as they are, without validation (for replaying recorded messages)."""
        if self._closed:
            raise PublishError("the publisher is closed")
        self._send(key, value)

    def _send(self, key: bytes | None, value: bytes) -> None:
        from kafka.errors import KafkaError

        try:
            future = self._producer.send(self.topic, key=key, value=value)
        except KafkaError as exc:
            raise PublishError(
                f"cannot publish to topic {self.topic} at {self.bootstrap}: {_one_line(exc)}"
            ) from None
        with self._lock:
            self.sent += 1
        future.add_errback(self._on_error)

    def _on_error(self, exc: BaseException) -> None:
        with self._lock:
            self.failed += 1
            if self._first_error is None:
                self._first_error = _one_line(exc)

    # ------------------------------------------------------------ lifecycle

    def flush(self, timeout: float | None = None) -> None:
        """Block until every queued event is acknowledged; PublishError if any failed."""
        from kafka.errors import KafkaError

        try:
            self._producer.flush(timeout=timeout)
        except KafkaError as exc:
            raise PublishError(
                f"events not delivered to {self.topic} at {self.bootstrap} within the timeout: {_one_line(exc)}"
            ) from None
        with self._lock:
            failed, first = self.failed, self._first_error
            self.failed, self._first_error = 0, None
        if failed:
            raise PublishError(f"{failed} event(s) were not delivered to {self.topic} at {self.bootstrap}: {first}")

    def close(self, timeout: float = 10.0) -> None:
        """Flush, then release the connection. Idempotent. Raises PublishError after closing if
        events were lost."""
        if self._closed:
            return
        try:
            self.flush(timeout=timeout)
        finally:
            self._closed = True
            self._producer.close(timeout=timeout)

    def __enter__(self) -> ActionPublisher:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # an error is already propagating: do not mask it with a delivery error
            self.close()
        except AgentwatchError:
            pass

    def __repr__(self) -> str:
        return f"ActionPublisher(bootstrap={self.bootstrap!r}, topic={self.topic!r}, sent={self.sent})"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:300]
