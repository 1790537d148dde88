"""Worker throughput and latency on the embedded broker, as ratios within one run.

    python -m bench.throughput [--events 60000] [--warm 1000] [--rate 2000] [--seconds 15] [--scale-out 2] [--bare] [--json PATH]

In one run, against one embedded broker, with realistic simulated fleet events:

(a) passthrough: the worker process (same faust app, batch consumer, sink) copying each input
    record to the enriched topic untouched — plain consume + produce;
(b) full: ``agentwatch worker`` with every detector, risk, response, incidents and state;
(c) the ratio b / a;
(b2) scale-out: ``--scale-out`` full workers as one consumer group, sharing the partitions (the
    way a fleet too large for one worker is served), and their events/s over passthrough's. The
    workers keep state and incidents apart, as on separate hosts; the backlog is produced only
    once the broker describes the group as stable with every worker in it (and, where it reports
    assignments — Kafka does, Tansu does not — each holding partitions), so no rebalance falls
    into the measured stretch. Here they share two cores with the broker and the benchmark: this says
    what the group machinery costs and what a second process buys on this machine, not what a
    second host would;
(b0) with ``--bare``: the real worker with every detector switched off (``rules.enabled`` and
    ``baselines.enabled`` false: no rule engine, policy or baselines), so decoding, validation,
    dedup, risk, response, incidents, the enriched record and state still run. Its events/s over
    passthrough's is the ceiling of (c) that the pipeline's own work leaves, whatever the
    detectors cost; in each pair it runs after the full worker;
(d) p50/p99 latency from an event's produce to its enriched record, at a fixed offered load
    (``--rate`` events/s for ``--seconds``) on the full worker; measured as the broker timestamp
    of the output record minus that of the input record (both stamped by producers on this
    machine, so consumer lag does not count).

It also reads the worker process's own CPU time over the measured stretch (Linux ``/proc``):
CPU µs per event, and events per CPU second, for both modes and their ratio. On a shared
machine events/s move with whatever else runs; CPU per event moves much less, so it is the
steadier figure for comparing changes. Of the main thread's CPU, the part spent inside the
processor is read from the worker's own ``agentwatch_processing_cpu_seconds`` (scraped before and
after the stretch): the same code runs slower there than in-process (the attribution at the end),
so the difference says what the worker around it costs.

This machine's runs move by 10-30% from one to the next, the same code included, so a single
pair says little about a change of a few per cent. ``--repeat N`` runs N pairs (passthrough, then
full) one after the other on the same broker and reports medians: the ratio is the median of
the pairs' ratios, and the spread is kept. ``--against TREE`` also runs the full worker from
another source tree (a checkout of another commit, compiled or not) in every pair, and reports
the median of this tree's CPU per event over the other's: an A/B of two commits in one run, on one
broker. The two trees take turns going first (this tree in the first pair, the other in the
second, ...): in earlier A/B runs the tree that ran first in each pair did better in three of
four runs, by 6-12%, whichever it was; with turns that bias falls on both, and the medians for
each order are reported too (``by_order``), so its size shows. Use an even ``--repeat``.

Throughput is measured on a backlog: the first ``--warm`` of ``--events`` (default 1,000) are
produced, the worker starts and processes them, then the rest are produced as fast as the
benchmark can and the worker works through them; events/s = those records / (last output
timestamp - first output timestamp). It also attributes the full worker's per-event CPU to its
parts, in-process, on the same events.

A worker's memory grows for its first ~50,000-100,000 events of a backlog (it holds each batch's
records and outputs until the state flush that covers it; the heap's growth costs page faults)
and then levels off. With the default warm-up a 40,000-event run measures only that growth
phase, a cold worker; ``--warm 80000`` (with ``--events`` above it) measures a worker that has
passed it, as a long-running one has.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from bench.common import (
    dev_settings,
    machine,
    main_thread_cpu_seconds,
    main_thread_switches,
    process_cpu_seconds,
    source_commit,
    write_json,
)

PARTITIONS = 4


def simulated_events(n: int, seed: int = 7) -> list[bytes]:
    from pipeline.simulator import SCENARIOS, Fleet

    agents = max(40, n // 400)
    fleet = Fleet(seed=seed, agents=agents, start="2026-11-02T08:00:00Z")
    out: list[bytes] = []
    hours = 24.0
    while len(out) < n:
        out = [orjson.dumps(ev) for ev, _ in fleet.events(duration_hours=hours, attacks=SCENARIOS)]
        hours *= 2
    return out[:n]


def _env(bootstrap: str, prefix: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWATCH_")}
    env.update({
        "AGENTWATCH_BROKER": bootstrap,
        "AGENTWATCH_TOPICS__PREFIX": prefix,
        "AGENTWATCH_TOPICS__PARTITIONS": str(PARTITIONS),
        "AGENTWATCH_WORKER__APP_ID": f"bench-{prefix.strip('.')}",
        "AGENTWATCH_WORKER__METRICS_PORT": "0",
        "AGENTWATCH_WORKER__DATA_DIR": str(tmp / f"data-{prefix.strip('.')}"),
        "AGENTWATCH_INCIDENTS__STORE_URL": f"sqlite:///{tmp / (prefix + 'incidents.db')}",
        "AGENTWATCH_ENFORCEMENT__ALLOW_DEV_KEY": "true",
        "AGENTWATCH_LOG_LEVEL": "warning",
    })
    return env


#: the source tree this benchmark runs from
HERE = Path(__file__).resolve().parent.parent


#: settings of the ``bare`` worker: the full worker's, every detector off
BARE_ENV = {"AGENTWATCH_RULES__ENABLED": "false", "AGENTWATCH_BASELINES__ENABLED": "false"}


def _start_worker(mode: str, env: dict[str, str], log: Path, tree: Path | None = None) -> subprocess.Popen[bytes]:
    """A worker process running ``tree``'s code (by default this tree's): the interpreter imports
    ``pipeline`` and ``bench`` from its working directory before any installed copy. The ``bare``
    mode is the full worker with :data:`BARE_ENV`."""
    if mode == "bare":
        mode, env = "full", {**env, **BARE_ENV}
    cmd = [sys.executable, "-m", "bench.throughput", "--run-worker", mode]
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            cwd=str(tree or HERE))


def run_worker(mode: str) -> None:
    """The worker process: the real app; in passthrough mode a processor that copies records."""
    import faust

    from pipeline.app import create_app
    from pipeline.processor import InputRecord, Processor
    from pipeline.records import Output
    from pipeline.settings import load_settings
    from pipeline.sink import Encoded

    settings = load_settings()
    processor = None
    if mode == "passthrough":
        class Passthrough:
            """A processor that copies records; everything else is the real one's. Wraps rather
            than subclasses: in the compiled build Processor is a native class, which
            interpreted code cannot subclass."""

            def __init__(self, inner: Processor) -> None:
                self._inner = inner

            def __getattr__(self, name: str) -> Any:
                return getattr(self._inner, name)

            def process_actions(self, records: Any) -> list[Output]:
                recs: list[InputRecord] = list(records)
                self._inner.stats.events_in += len(recs)
                self._inner.stats.enriched += len(recs)
                return [Output("enriched", r.key.decode() if r.key else None, Encoded(r.value)) for r in recs]

            def process_urgent_first(self, records: Any, **_: Any) -> Any:  # the live worker's entry
                yield self.process_actions(records)

        processor = Passthrough(Processor(settings))
    # metrics served only where the benchmark gave a port: it reads the processor's CPU there
    app = create_app(settings, processor=processor, serve_metrics=True, store_incidents=mode != "passthrough")
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


async def _produce(bootstrap: str, topic: str, values: list[bytes], rate: float | None = None) -> list[int]:
    """Produce (key = agent_id) and return each record's broker timestamp in ms."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futures = []
        start = time.perf_counter()
        for i, value in enumerate(values):
            key = orjson.loads(value)["agent_id"].encode()
            futures.append(await producer.send(topic, value, key=key))
            if rate is not None and i % 20 == 0:
                ahead = i / rate - (time.perf_counter() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        metas = await asyncio.gather(*futures)
        return [m.timestamp for m in metas]
    finally:
        await producer.stop()


async def _read_outputs(bootstrap: str, topic: str, n: int, timeout: float) -> list[tuple[int, bytes]]:
    """(broker timestamp ms, value) of the first ``n`` records of ``topic``, all partitions."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=50)
    await consumer.start()
    try:
        parts = None
        deadline = time.monotonic() + timeout
        while not parts and time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.2)
        consumer.assign([TopicPartition(topic, p) for p in sorted(parts or ())])
        await consumer.seek_to_beginning()
        out: list[tuple[int, bytes]] = []
        while len(out) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10000)
            for records in batch.values():
                out.extend((r.timestamp, r.value) for r in records)
        return out
    finally:
        await consumer.stop()


def _create_topics(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "pipeline.cli", "topics", "create"], env=env, check=True,
                   capture_output=True, timeout=120)


async def _group_state(bootstrap: str, group: str, topic: str) -> tuple[str, list[set[int] | None]] | None:
    """Consumer group ``group``'s state and, per member, the partitions of ``topic`` it holds
    (None for a member whose assignment the broker does not report: Tansu leaves them empty).
    None when the broker cannot describe groups."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    except Exception:  # a broker without DescribeGroups: the caller waits instead
        return None
    finally:
        await admin.close()
    for response in described:
        for g in response.groups:
            if g[1] != group:
                continue
            members: list[set[int] | None] = []
            for member in g[5]:
                raw = member[-1]
                if not raw:
                    members.append(None)
                    continue
                held: set[int] = set()
                for t, parts in ConsumerProtocolMemberAssignment.decode(raw).assignment:
                    if t == topic:
                        held.update(parts)
                members.append(held)
            return str(g[2]), members
    return "Dead", []


def _wait_for_group(bootstrap: str, group: str, topic: str, workers: int, timeout: float) -> str:
    """Wait until the group is stable with ``workers`` members, each holding partitions of
    ``topic`` where the broker says: then no rebalance falls into the measured stretch.
    Returns what was established."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = asyncio.run(_group_state(bootstrap, group, topic))
        if described is None:
            time.sleep(min(timeout, 15.0))  # no DescribeGroups: two session timeouts and more
            return "waited 15 s (the broker does not describe groups)"
        state, members = described
        if state == "Stable" and len(members) >= workers and all(m is None or m for m in members):
            if any(m is None for m in members):
                return f"stable, {len(members)} members (the broker does not report assignments)"
            return f"stable, partitions {' / '.join(','.join(map(str, sorted(m or ()))) for m in members)}"
        time.sleep(0.5)
    raise RuntimeError(f"the group of {workers} workers was not stable with partitions of {topic} in {timeout:.0f}s")


def _processing_cpu(port: int) -> float | None:
    """The worker's ``agentwatch_processing_cpu_seconds`` (None where its tree does not count it
    or its metrics cannot be read)."""
    from pipeline.metrics import read_counter, scrape_metrics

    try:
        value = read_counter(scrape_metrics(f"http://127.0.0.1:{port}/metrics"), "agentwatch_processing_cpu_seconds")
    except OSError:
        return None
    return value or None


def measure_throughput(mode: str, bootstrap: str, events: list[bytes], tmp: Path, workers: int = 1,
                       tree: Path | None = None, warm_events: int = 1000) -> dict[str, Any]:
    """Events/s of ``workers`` worker processes of one consumer group over a backlog of ``events``
    (after a warm-up of their first ``warm_events``), and their CPU per event; the workers run
    ``tree``'s code (default: this tree's)."""
    prefix = f"{mode[:4]}{workers}{uuid.uuid4().hex[:6]}."
    env = _env(bootstrap, prefix, tmp)
    _create_topics(env)
    warm = events[:warm_events]
    asyncio.run(_produce(bootstrap, prefix + "agent.actions", warm))
    procs = []
    from pipeline.broker import free_port

    ports = [free_port() for _ in range(workers)]
    for i in range(workers):
        wenv = dict(env)
        wenv["AGENTWATCH_WORKER__METRICS_PORT"] = str(ports[i])
        if workers > 1:  # state and incidents of their own, as on separate hosts
            wenv["AGENTWATCH_WORKER__DATA_DIR"] += f"-{i}"
            wenv["AGENTWATCH_INCIDENTS__STORE_URL"] = f"sqlite:///{tmp / f'{prefix}incidents-{i}.db'}"
        procs.append(_start_worker(mode, wenv, tmp / f"{mode}.log", tree))
    result: dict[str, Any] = {}
    try:
        got = asyncio.run(_read_outputs(bootstrap, prefix + "agent.actions.enriched", len(warm),
                                        120 + len(warm) / 1000))
        if len(got) < len(warm):
            log = (tmp / f"{mode}.log").read_text(errors="replace")[-3000:]  # tmp goes with the run
            raise RuntimeError(f"{mode} worker did not start; the end of its log:\n{log}")
        if workers > 1:
            result["group"] = _wait_for_group(bootstrap, env["AGENTWATCH_WORKER__APP_ID"],
                                              prefix + "agent.actions", workers, 120)
        body = events[len(warm):]
        cpu0 = [process_cpu_seconds(p.pid) for p in procs]
        main0 = [main_thread_cpu_seconds(p.pid) for p in procs]
        switches0 = [main_thread_switches(p.pid) for p in procs]
        proc0 = [_processing_cpu(port) for port in ports]
        wall0 = time.monotonic()
        asyncio.run(_produce(bootstrap, prefix + "agent.actions", body))
        outs = asyncio.run(_read_outputs(bootstrap, prefix + "agent.actions.enriched", len(events), 600))
        wall1 = time.monotonic()
        cpu1 = [process_cpu_seconds(p.pid) for p in procs]
        main1 = [main_thread_cpu_seconds(p.pid) for p in procs]
        switches1 = [main_thread_switches(p.pid) for p in procs]
        proc1 = [_processing_cpu(port) for port in ports]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
    stamps = sorted(ts for ts, _ in outs[len(warm):])
    seconds = max(0.001, (stamps[-1] - stamps[0]) / 1000.0)
    result.update({"workers": workers, "events": len(stamps), "seconds": round(seconds, 3),
                   "events_per_s": round(len(stamps) / seconds)})
    if None not in cpu0 and None not in cpu1:
        used = [b - a for a, b in zip(cpu0, cpu1, strict=True)]  # type: ignore[operator]
        # the workers' own CPU per event: what one core buys, whatever else the machine runs
        result["worker_cpu_us_per_event"] = round(sum(used) / len(body) * 1e6, 1)
        result["events_per_cpu_second"] = round(len(body) / max(1e-9, sum(used)))
        if workers > 1:
            result["cpu_share_per_worker"] = [round(u / max(1e-9, sum(used)), 2) for u in used]
        if None not in main0 and None not in main1:
            main = [b - a for a, b in zip(main0, main1, strict=True)]  # type: ignore[operator]
            # the main thread runs the event loop and the processor; when it is busy all along
            # the worker is bound by it, and the other threads' CPU runs on the other core
            result["main_thread_cpu_us_per_event"] = round(sum(main) / len(body) * 1e6, 1)
            result["main_thread_busy"] = round(max(main) / max(1e-9, wall1 - wall0), 2)
    if None not in switches0 and None not in switches1:
        # per event, summed over the workers: a voluntary switch of a busy main thread is mostly
        # a hand-over of the interpreter lock; system time is the kernel's share of those
        for key, name in (("voluntary_ctxt_switches", "main_thread_voluntary_switches_per_event"),
                          ("nonvoluntary_ctxt_switches", "main_thread_preemptions_per_event"),
                          ("system_seconds", "main_thread_system_us_per_event"),
                          ("minor_faults", "main_thread_page_faults_per_event")):
            delta = 0.0
            for a, b in zip(switches0, switches1, strict=True):
                delta += b[key] - a[key]  # type: ignore[index]
            result[name] = round(delta / len(body) * (1e6 if key == "system_seconds" else 1), 3)
    if None not in proc0 and None not in proc1:
        # the processor's own CPU inside the worker (the stage reads the thread's clock around
        # each of its steps): compare with the in-process figure of per_event_cpu_us
        spent = sum(b - a for a, b in zip(proc0, proc1, strict=True))  # type: ignore[operator]
        result["processor_cpu_us_per_event"] = round(spent / len(body) * 1e6, 1)
    return result


def measure_latency(bootstrap: str, events: list[bytes], rate: float, seconds: float, tmp: Path) -> dict[str, Any]:
    prefix = f"lat{uuid.uuid4().hex[:6]}."
    env = _env(bootstrap, prefix, tmp)
    _create_topics(env)
    warm = events[:1000]
    asyncio.run(_produce(bootstrap, prefix + "agent.actions", warm))
    proc = _start_worker("full", env, tmp / "latency.log")
    try:
        asyncio.run(_read_outputs(bootstrap, prefix + "agent.actions.enriched", len(warm), 120))
        n = int(rate * seconds)
        body = (events[1000:] * (1 + n // max(1, len(events) - 1000)))[:n]
        # make ids unique so dedup keeps every copy
        body = [_fresh_id(v, i) for i, v in enumerate(body)]
        sent_ms = asyncio.run(_produce(bootstrap, prefix + "agent.actions", body, rate=rate))
        outs = asyncio.run(_read_outputs(bootstrap, prefix + "agent.actions.enriched", len(warm) + n, 300))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    sent = {orjson.loads(v)["event_id"]: ts for v, ts in zip(body, sent_ms, strict=True)}
    lat = sorted(ts - sent[eid] for ts, v in outs if (eid := orjson.loads(v)["event_id"]) in sent)
    if not lat:
        raise RuntimeError("no latency samples")

    def pct(p: float) -> float:
        return float(lat[min(len(lat) - 1, int(p * len(lat)))])

    return {"rate": rate, "seconds": seconds, "samples": len(lat), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": float(lat[-1])}


def _fresh_id(value: bytes, i: int) -> bytes:
    doc = orjson.loads(value)
    doc["event_id"] = f"{doc['event_id']}-{i}"
    return orjson.dumps(doc)


def as_worker(events: list[bytes], warm_events: int, settings: Any, policy: Any,
              stretch: int = 10_000) -> dict[str, Any]:
    """The processor in-process the way the worker runs it, over the events the worker's
    measured stretch covers: the first ``warm_events`` first, unmeasured; then the rest in fetches
    of 500 through the live entry (:meth:`~pipeline.processor.Processor.process_urgent_first`),
    with the wall clock and broker-like record timestamps, the collector's policy after each step
    and a checkpoint after each fetch. Returns the µs per event over the stretch
    (``processor_as_worker``, to compare with the worker's own ``processor_cpu_us_per_event``) and
    per ``stretch`` events of it (``processor_as_worker_by_stretch``): an event's cost grows along
    the simulated stream, as agents collect open incidents and their baselines mature, so a
    figure from the stream's first events says little about its later ones."""
    from pipeline.components import build_processor
    from pipeline.processor import InputRecord

    processor = build_processor(settings, clock=time.time)
    now_ms = int(time.time() * 1000)
    records = [InputRecord(v, None, "bench", i % PARTITIONS, i, now_ms) for i, v in enumerate(events)]

    def run(part: list[Any]) -> None:
        for i in range(0, len(part), 500):
            for _ in processor.process_urgent_first(part[i : i + 500]):
                policy.after_step()
            processor.checkpoint()

    policy.install()
    try:
        run(records[:warm_events])
        marks: list[float] = []
        body = records[warm_events:]
        total = 0.0
        for start in range(0, len(body), stretch):
            part = body[start : start + stretch]
            t = time.thread_time()
            run(part)
            spent = time.thread_time() - t
            total += spent
            marks.append(round(spent / len(part) * 1e6, 1))
    finally:
        policy.uninstall()
    return {"processor_as_worker": round(total / max(1, len(body)) * 1e6, 1),
            "processor_as_worker_by_stretch": marks}


def attribute(events: list[bytes], warm_events: int = 1000) -> dict[str, Any]:
    """Per-event CPU (µs) of each part of the processor, in-process, on the same events.

    The parts and ``processor_total`` run over the stream's first 20,000 events (replay's order
    and event clock); ``processor_as_worker`` (:func:`as_worker`) over what the worker's measured
    stretch covers, which is the figure to set beside the worker's.

    As in the worker, what start-up allocated is frozen and the collector's policy is installed
    (:class:`~pipeline.gcpolicy.GcPolicy`), and events are decoded one at a time and then dropped:
    a list of every decoded event would survive into the collector's old generation and make
    collections scan it, charging the detectors for the benchmark's own list. These are
    timings; ``bench.cost`` counts instructions."""
    from pipeline.components import build_processor
    from pipeline.gcpolicy import GcPolicy
    from pipeline.processor import EventClock, InputRecord
    from pipeline.validation import ValidationFailure, decode_event

    settings = dev_settings()
    sample = events[: min(len(events), 20000)]
    out: dict[str, Any] = {}
    policy = GcPolicy(settings.worker.gc_freeze_seconds, settings.worker.gc_full_collect_seconds)

    def timed(fn: Any) -> float:
        policy.install()  # (again: freezes what the previous part left)
        try:
            t = time.process_time()
            fn()
            return (time.process_time() - t) / len(sample) * 1e6
        finally:
            policy.uninstall()

    def decode_all() -> None:
        for v in sample:
            decode_event(v, 65536)

    decode_all()  # once untimed: first-use costs are not per event
    out["decode_validate"] = timed(decode_all)
    processor = build_processor(settings, clock=EventClock(), replay=True)
    for det in processor.detectors:
        def run_detector(det: Any = det) -> None:
            for v in sample:
                ev = decode_event(v, 65536)
                if not isinstance(ev, ValidationFailure):
                    det.score_one(ev)
                    det.learn_one(ev)
        out[f"detector_{det.name}"] = timed(run_detector) - out["decode_validate"]
    processor = build_processor(settings, clock=EventClock(), replay=True)
    records = [InputRecord(v, None, "bench", 0, i) for i, v in enumerate(sample)]
    outputs: list[Any] = []

    def run_processor() -> None:
        for i in range(0, len(records), 500):
            outputs.extend(processor.process_actions(records[i : i + 500]))
            policy.after_step()
            processor.checkpoint()

    out["processor_total"] = timed(run_processor)
    out.update(as_worker(events, warm_events, settings, policy))
    def encode_all() -> None:
        for o in outputs:
            orjson.dumps(o.value)

    out["encode_outputs"] = timed(encode_all)
    known = out["decode_validate"] + sum(v for k, v in out.items() if k.startswith("detector_"))
    out["rest_risk_response_incidents_enrich_state"] = max(0.0, out["processor_total"] - known)
    return {k: v if isinstance(v, list) else round(v, 1) for k, v in out.items()}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose events/s is the median (the lower middle of an even count): a real run,
    so its figures belong together."""
    ordered = sorted(runs, key=lambda r: r["events_per_s"])
    return ordered[(len(ordered) - 1) // 2]


def summarise(runs: dict[str, list[Any]]) -> dict[str, Any]:
    """Headline figures from ``runs`` (``passthrough``, ``full`` and ``against`` runs, in pairs by
    index; ``other_first``, optional, says of each pair whether the other tree ran first): one run
    stands for each mode (:func:`_median_run`), the ratios are medians of the pairs' own ratios,
    and with more than one pair every run and ratio is kept under ``repeats``; with both orders
    among the pairs, the A/B ratios of each order as well (``against.by_order``)."""
    out: dict[str, Any] = {"passthrough": _median_run(runs["passthrough"]), "full": _median_run(runs["full"])}
    pairs = list(zip(runs["passthrough"], runs["full"], strict=True))
    ratios = [f["events_per_s"] / p["events_per_s"] for p, f in pairs]
    out["ratio_full_to_passthrough"] = round(_median(ratios), 3)
    per_cpu = [f["events_per_cpu_second"] / p["events_per_cpu_second"] for p, f in pairs
               if "events_per_cpu_second" in f and "events_per_cpu_second" in p]
    if len(per_cpu) == len(pairs):
        out["ratio_full_to_passthrough_per_cpu_second"] = round(_median(per_cpu), 3)
    if len(pairs) > 1:
        out["repeats"] = {"passthrough": runs["passthrough"], "full": runs["full"],
                          "ratios": [round(r, 3) for r in ratios],
                          "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)]}
    if runs.get("bare"):
        bare = list(zip(runs["passthrough"], runs["bare"], strict=True))
        out["bare"] = _median_run(runs["bare"])
        out["ratio_bare_to_passthrough"] = round(_median([b["events_per_s"] / p["events_per_s"] for p, b in bare]), 3)
        if len(bare) > 1:
            out["repeats"]["bare"] = runs["bare"]
    if runs["against"]:
        mine = list(zip(runs["full"], runs["against"], strict=True))
        out["against"] = {"full": _median_run(runs["against"]), "runs": runs["against"], **_ab_ratios(mine)}
        other_first = runs.get("other_first") or [False] * len(mine)
        if len(set(other_first)) > 1:
            out["against"]["other_first"] = other_first
            out["against"]["by_order"] = {
                name: _ab_ratios([pair for pair, o in zip(mine, other_first, strict=True) if o is flag])
                for name, flag in (("this_first", False), ("other_first", True))
            }
    return out


def _ab_ratios(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, float | None]:
    """Medians over (this tree's run, the other tree's run) pairs: events/s and CPU per event of
    this tree over the other's."""
    cpu = [f["worker_cpu_us_per_event"] / a["worker_cpu_us_per_event"] for f, a in pairs
           if f.get("worker_cpu_us_per_event") and a.get("worker_cpu_us_per_event")]
    return {"events_ratio": round(_median([f["events_per_s"] / a["events_per_s"] for f, a in pairs]), 3),
            "cpu_ratio": round(_median(cpu), 3) if len(cpu) == len(pairs) else None}


def _tree_build(tree: Path) -> str:
    """What ``tree``'s worker runs: its own ``bench.common.build()``, asked in that tree."""
    try:
        got = subprocess.run([sys.executable, "-c", "from bench.common import build; print(build())"],
                             cwd=str(tree), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return got.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=60000)
    ap.add_argument("--warm", type=int, default=1000, metavar="N",
                    help="of --events, how many each worker processes before the measured stretch")
    ap.add_argument("--rate", type=float, default=1000.0, help="offered load for the latency run")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--scale-out", type=int, default=2, metavar="N",
                    help="also run N full workers as one consumer group (0: skip)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="N alternated passthrough/full pairs on one broker; figures are medians")
    ap.add_argument("--against", metavar="TREE",
                    help="also run the full worker from another source tree in every pair and compare")
    ap.add_argument("--bare", action="store_true",
                    help="also run the worker with every detector off in every pair: (b0), the ceiling of (c)")
    ap.add_argument("--json", dest="json_path")
    ap.add_argument("--run-worker", choices=["passthrough", "full"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run_worker:
        run_worker(args.run_worker)
        return 0

    from rich.console import Console
    from rich.table import Table

    from pipeline.broker import EmbeddedBroker

    console = Console()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if not 1 <= args.warm < args.events - 1:
        ap.error("--warm must be at least 1 and leave at least 2 of --events to measure")
    against = Path(args.against).resolve() if args.against else None
    if against is not None and not (against / "bench" / "throughput.py").is_file():
        ap.error(f"--against {args.against}: not a source tree of agentwatch (no bench/throughput.py)")
    events = simulated_events(args.events)
    result: dict[str, Any] = {"benchmark": "throughput", "machine": machine(), "events": len(events),
                              "warm_events": args.warm, "partitions": PARTITIONS}
    runs: dict[str, list[Any]] = {"passthrough": [], "full": [], "against": [], "other_first": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmpdir, EmbeddedBroker() as broker:
        tmp = Path(tmpdir)
        for i in range(args.repeat):
            of = f" ({i + 1}/{args.repeat})" if args.repeat > 1 else ""
            console.print(f"passthrough{of} ...")
            runs["passthrough"].append(measure_throughput("passthrough", broker.bootstrap, events, tmp,
                                                          warm_events=args.warm))
            trees: list[Path | None] = [None]  # None: this tree
            if against is not None:
                other_first = i % 2 == 1  # the trees take turns going first
                trees = [against, None] if other_first else [None, against]
                runs["other_first"].append(other_first)
            for tree in trees:
                console.print(f"full worker{'' if tree is None else f' of {tree}'}{of} ...")
                runs["full" if tree is None else "against"].append(
                    measure_throughput("full", broker.bootstrap, events, tmp, tree=tree, warm_events=args.warm))
            if args.bare:
                console.print(f"worker without detectors{of} ...")
                runs["bare"].append(measure_throughput("bare", broker.bootstrap, events, tmp, warm_events=args.warm))
        result.update(summarise(runs))
        if against is not None:
            result["against"]["tree"] = str(against)
            result["against"]["commit"] = source_commit(against)
            result["against"]["build"] = _tree_build(against)
        if args.scale_out > 1:
            console.print(f"{args.scale_out} full workers ...")
            result["scale_out"] = measure_throughput("full", broker.bootstrap, events, tmp, args.scale_out,
                                                     warm_events=args.warm)
            result["ratio_scale_out_to_passthrough"] = round(
                result["scale_out"]["events_per_s"] / result["passthrough"]["events_per_s"], 3)
        console.print(f"latency at {args.rate:g} events/s ...")
        result["latency"] = measure_latency(broker.bootstrap, events, args.rate, args.seconds, tmp)
    result["per_event_cpu_us"] = attribute(events, args.warm)

    table = Table(title=f"throughput ({result['machine']['cores']} cores, {result['machine']['cpu']})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("(a) passthrough events/s", f"{result['passthrough']['events_per_s']:,}")
    table.add_row("(b) full worker events/s", f"{result['full']['events_per_s']:,}")
    table.add_row("(c) ratio b/a", f"{result['ratio_full_to_passthrough']:.2f}")
    if "scale_out" in result:
        so = result["scale_out"]
        table.add_row(f"(b{so['workers']}) {so['workers']} full workers, one group, events/s", f"{so['events_per_s']:,}")
        table.add_row(f"(c{so['workers']}) ratio b{so['workers']}/a", f"{result['ratio_scale_out_to_passthrough']:.2f}")
    if "bare" in result:
        table.add_row("(b0) worker without detectors events/s", f"{result['bare']['events_per_s']:,}")
        table.add_row("(c0) ratio b0/a: the ceiling of (c)", f"{result['ratio_bare_to_passthrough']:.2f}")
    for mode in ("passthrough", "full", "bare"):
        if mode not in result:
            continue
        if "worker_cpu_us_per_event" in result[mode]:
            table.add_row(f"worker CPU µs/event: {mode}", f"{result[mode]['worker_cpu_us_per_event']:.1f}")
        if "main_thread_cpu_us_per_event" in result[mode]:
            table.add_row(f"  of it the main thread: {mode}", f"{result[mode]['main_thread_cpu_us_per_event']:.1f}")
            table.add_row(f"  main thread busy: {mode}", f"{result[mode]['main_thread_busy']:.0%}")
        if "main_thread_voluntary_switches_per_event" in result[mode]:
            r = result[mode]
            table.add_row(f"  main thread switches per event, waits / preemptions: {mode}",
                          f"{r['main_thread_voluntary_switches_per_event']:.3f} / {r['main_thread_preemptions_per_event']:.3f}")
            table.add_row(f"  main thread system CPU µs/event: {mode}", f"{r['main_thread_system_us_per_event']:.1f}")
            table.add_row(f"  main thread page faults per event: {mode}", f"{r['main_thread_page_faults_per_event']:.2f}")
        if "processor_cpu_us_per_event" in result[mode]:
            table.add_row(f"  of it in the processor, in the worker: {mode}",
                          f"{result[mode]['processor_cpu_us_per_event']:.1f}")
    if "ratio_full_to_passthrough_per_cpu_second" in result:
        table.add_row("(c') ratio b/a per CPU second", f"{result['ratio_full_to_passthrough_per_cpu_second']:.2f}")
    if "repeats" in result:
        low, high = result["repeats"]["ratio_range"]
        table.add_row(f"  (c) over {len(result['repeats']['ratios'])} pairs: lowest, highest", f"{low:.2f}, {high:.2f}")
    if "against" in result:
        ag = result["against"]
        table.add_row(f"full worker of {ag['commit'] or ag['tree']} ({ag['build']}) events/s", f"{ag['full']['events_per_s']:,}")
        if ag.get("cpu_ratio") is not None:
            table.add_row("  this tree's worker CPU per event over it (median of pairs)", f"{ag['cpu_ratio']:.3f}")
        table.add_row("  this tree's events/s over it (median of pairs)", f"{ag['events_ratio']:.3f}")
        for name, label in (("this_first", "this tree first"), ("other_first", "the other first")):
            got = ag.get("by_order", {}).get(name)
            if got is not None:
                cpu = "-" if got["cpu_ratio"] is None else f"{got['cpu_ratio']:.3f}"
                table.add_row(f"    pairs with {label}: CPU, events/s", f"{cpu}, {got['events_ratio']:.3f}")
    lat = result["latency"]
    table.add_row(f"(d) latency p50 at {lat['rate']:g}/s", f"{lat['p50_ms']:.0f} ms")
    table.add_row(f"(d) latency p99 at {lat['rate']:g}/s", f"{lat['p99_ms']:.0f} ms")
    for k, v in result["per_event_cpu_us"].items():
        if isinstance(v, list):
            table.add_row(f"in-process cpu µs/event: {k}", ", ".join(f"{x:.0f}" for x in v))
        else:
            table.add_row(f"in-process cpu µs/event: {k}", f"{v:.1f}")
    console.print(table)
    write_json(args.json_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
