"""Builds the faust app of a worker: topics, the state table, the batch stage, timers, metrics.

Reads top to bottom: the app, its topics, the state table, the stage, then the timers.
``agentwatch worker`` runs it under faust's Worker (signals, graceful shutdown, logging).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import Any

import faust

from pipeline.consumer import BatchTransport
from pipeline.kafka import bootstrap_servers
from pipeline.metrics import WorkerMetrics
from pipeline.processor import Processor
from pipeline.settings import Settings
from pipeline.sink import KafkaSink
from pipeline.stages.process import ProcessStage
from pipeline.topics import STATE_TABLE

__all__ = ["BatchApp", "create_app"]

log = logging.getLogger("agentwatch.worker")


class BatchApp(faust.App):
    """A faust App whose consumer delivers ``batch_topics`` to ``batch_handler`` in batches."""

    batch_handler: Any = None
    batch_flush: Any = None
    batch_topics: frozenset[str] = frozenset()
    fetch_max_wait_ms: int | None = None

    def _new_transport(self) -> Any:
        return BatchTransport(self.conf.broker_consumer, self)


def create_app(
    settings: Settings,
    *,
    processor: Processor | None = None,
    metrics: WorkerMetrics | None = None,
    serve_metrics: bool = True,
    store_incidents: bool = True,
) -> BatchApp:
    w = settings.worker
    n = settings.topics.partitions
    w.data_dir.mkdir(parents=True, exist_ok=True)
    app = BatchApp(
        w.app_id,
        broker=[f"kafka://{hp}" for hp in bootstrap_servers(settings.broker).split(",")],
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_partitions=n,
        topic_replication_factor=settings.topics.replication_factor,
        broker_session_timeout=w.session_timeout_seconds,
        broker_heartbeat_interval=w.heartbeat_interval_seconds,
        broker_commit_interval=w.commit_interval_seconds,
        broker_max_poll_records=settings.stream.batch_max_events,
        consumer_auto_offset_reset="earliest",
        producer_linger=w.linger_ms / 1000.0,
        producer_max_request_size=max(1_048_576, 4 * settings.stream.max_message_bytes),
        producer_max_batch_size=w.producer_batch_bytes,
        table_standby_replicas=0,
        datadir=str(w.data_dir),
        stream_wait_empty=True,
        logging_config=None,
    )
    app.fetch_max_wait_ms = w.fetch_max_wait_ms

    def topic(name: str) -> faust.TopicT:
        return app.topic(settings.topic(name), key_serializer="raw", value_serializer="raw", partitions=n)

    actions, acks, control = topic("actions"), topic("acks"), topic("control")
    for t in (actions, acks, control):
        app.topics.add(t)

    # bytes key and value types make faust use the raw codec for the changelog (JSON blobs we
    # encode ourselves), both when we write it and when it recovers the table from it
    table = app.Table(STATE_TABLE, default=None, partitions=n, key_type=bytes, value_type=bytes,
                      help="Per-agent state (dedup, baselines, risk, response, incidents) as JSON.")

    metrics = metrics if metrics is not None else WorkerMetrics()
    stage_holder: dict[str, ProcessStage] = {}
    if processor is None:
        from pipeline.components import build_processor

        processor = build_processor(
            settings, clock=time.time, state_loader=lambda a: stage_holder["stage"].load_state(a)
        )
    from pipeline.incidents import open_store
    from pipeline.outputs.registry import build_destinations

    store = open_store(settings.incidents.store_url) if store_incidents else None
    destinations = build_destinations(settings) if settings.outputs.destinations else None
    from pipeline.gcpolicy import GcPolicy

    gc_policy = GcPolicy(w.gc_freeze_seconds, w.gc_full_collect_seconds, metrics.gc_pauses,
                         freeze_each_step=w.gc_freeze_each_step)
    stage = ProcessStage(
        processor, KafkaSink(app, settings), table, metrics, store=store, destinations=destinations,
        actions_topic=actions.get_topic_name(), acks_topic=acks.get_topic_name(),
        control_topic=control.get_topic_name(), flush_seconds=settings.stream.state_flush_seconds,
        flush_events=settings.stream.state_flush_events, urgent_first=settings.stream.urgent_first,
        after_step=gc_policy.after_step,
    )
    stage_holder["stage"] = stage
    if processor.state_loader is None:
        processor.state_loader = stage.load_state
    app.batch_handler = stage.handle
    app.batch_flush = stage.flush_state
    app.batch_topics = frozenset({actions.get_topic_name(), acks.get_topic_name(), control.get_topic_name()})
    app.stage = stage  # type: ignore[attr-defined]
    app.metrics = metrics  # type: ignore[attr-defined]

    @app.task
    async def set_log_levels() -> None:
        """faust's worker leaves the root logger at DEBUG (its handlers filter): every debug
        call in aiokafka then builds a LogRecord, ~8% of a worker's CPU. Set the real level."""
        level = getattr(logging, settings.log_level.upper())
        logging.getLogger().setLevel(level)
        for name in ("aiokafka", "kafka", "faust", "mode"):
            logging.getLogger(name).setLevel(level)

    @app.task
    async def start_commands_producer() -> None:
        try:
            await stage.sink.start()
        except Exception as exc:  # the first command retries; the worker goes on
            log.warning("could not start the isolation-command producer yet (%s); the first command "
                        "will try again", str(exc)[:200])

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # (faust types receivers as sync)
    async def close_sink(sender: Any, **_: Any) -> None:
        """After the consumer stopped (batches in flight delivered): the commands producer."""
        await stage.sink.close()

    app.gc_policy = gc_policy  # type: ignore[attr-defined]

    @app.task
    async def install_gc_policy() -> None:
        """After start-up: freeze what start-up allocated (rules, schemas, modules)."""
        gc_policy.install()

    @app.timer(1.0)
    async def gc_tick() -> None:
        gc_policy.tick()

    @app.timer(1.0)
    async def tick() -> None:
        """Time-driven work: ack timeouts, command expiries, alert flushes."""
        await stage.deliver(processor.tick(time.time()))

    from detectors.rulebook import RuleDetector

    rules = next((d for d in processor.detectors if isinstance(d, RuleDetector)), None)
    if rules is not None and settings.rules.reload:
        @app.timer(2.0)
        async def reload_rules() -> None:
            """Rule files changed on disk: reload; a broken file keeps the previous rule set."""
            for line in await asyncio.to_thread(rules.reload_if_changed):
                log.warning("rules: %s", line)

        @app.task
        async def reload_rules_on_sighup() -> None:
            import signal

            def on_hup() -> None:
                for line in rules.reload():
                    log.warning("rules: %s", line)
                log.warning("rules: reloaded on SIGHUP (%d rules)", rules.rule_count)

            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_hup)

    baselines = processor.baselines
    if baselines is not None:
        @app.timer(10.0)
        async def report_baseline_maturity() -> None:
            mature = warming = 0
            for agent_id in processor.tracked_agents():
                if baselines.maturity(agent_id).get("mature"):
                    mature += 1
                else:
                    warming += 1
            metrics.baseline_agents.labels("mature").set(mature)
            metrics.baseline_agents.labels("warming").set(warming)

        @app.timer(10.0)
        async def checkpoint_fleet_baselines() -> None:
            """Role and fleet statistics of the baselines: a table key of their own, every 10 s."""
            await stage.write_shared(baselines)

    source = f"worker-{socket.gethostname()}-{os.getpid()}"

    async def write_run_figures() -> None:
        counts = stage.take_day_counts()
        if counts:
            try:
                await asyncio.to_thread(stage.flush_stats, source, counts)
            except Exception as exc:  # the store is down: say so, the worker goes on (or stops)
                log.warning("could not add the run figures of %d day(s) to the incident store (%s)",
                            len(counts), str(exc)[:200])

    @app.timer(10.0)
    async def record_run_figures() -> None:
        """Per-day event counts for the evidence report (store I/O off the event loop)."""
        await write_run_figures()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # (faust types receivers as sync)
    async def record_last_run_figures(sender: Any, **_: Any) -> None:
        """At shutdown, once the batches in flight are delivered: the counts since the timer's last
        run. Without it a run shorter than the timer's interval (the demo's) reported no events."""
        await write_run_figures()

    @app.timer(5.0)
    async def report_lag() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic != actions.get_topic_name():
                continue
            high = consumer.highwater(tp)
            read = consumer._read_offset.get(tp)  # type: ignore[attr-defined]  # (faust's own bookkeeping)
            if high is not None:
                metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - ((read or -1) + 1)))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        parts = {tp.partition for tp in revoked if tp.topic == actions.get_topic_name()}
        if parts:
            processor.drop_partitions(parts)

    if serve_metrics and w.metrics_port:
        @app.task
        async def serve_metrics_endpoint() -> None:
            metrics.serve(w.metrics_port)

    return app
