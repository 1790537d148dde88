"""Prometheus metrics of a worker.

Names follow Prometheus conventions (``agentwatch_..._total`` counters, ``_seconds`` histograms).
Nothing here is called per event: the stage reports once per batch (counter deltas from
:class:`~pipeline.processor.ProcessorStats`, output kinds counted in the batch), because a
labelled ``inc()`` plus ``observe()`` costs ~2.7 µs — a tenth of the per-event budget.

=============================================  =======================================================
metric                                         meaning
=============================================  =======================================================
agentwatch_events_total{outcome}               input events by outcome: enriched, dead_letter, duplicate
agentwatch_events_produced_total{output}       records written per output (enriched, alerts, ...)
agentwatch_batch_processing_seconds            time to process and deliver one batch
agentwatch_event_latency_seconds               broker timestamp of an input event to its outputs delivered
agentwatch_dead_letters_total{code}            dead letters by error code
agentwatch_findings_total{detector}            findings by detector family
agentwatch_alerts_total{severity,rule}         alert records (new and updated) by severity and rule
agentwatch_enforcement_commands_total{action,mode}  isolation commands by rung and mode (enforce/shadow)
agentwatch_enforcement_ack_seconds             command issued to acknowledgement received
agentwatch_enforcement_response_seconds        fetch with the triggering event handed to the stage -> command on Kafka
agentwatch_consumer_lag{topic,partition}       high-water mark minus position, per assigned partition
agentwatch_agents_tracked                      agents with state in this worker's memory
agentwatch_baseline_agents{maturity}           tracked agents by baseline maturity (warming, mature)
=============================================  =======================================================
"""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from pipeline.processor import ProcessorStats
from pipeline.records import Output

__all__ = ["METRIC_NAMES", "RESPONSE_BUCKETS", "HistogramSummary", "WorkerMetrics", "read_counter", "read_histogram",
           "scrape_histogram", "scrape_metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: finer around the 200 ms response goal
RESPONSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5)


class WorkerMetrics:
    """All metrics of one worker, in their own registry (several workers can share a process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events = Counter("agentwatch_events", "Input events by outcome.", ["outcome"], registry=r)
        self.produced = Counter("agentwatch_events_produced", "Records written per output.", ["output"], registry=r)
        self.batch_seconds = Histogram(
            "agentwatch_batch_processing_seconds", "Time to process and deliver one batch.",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.latency = Histogram(
            "agentwatch_event_latency_seconds", "Broker timestamp of an input event to its outputs delivered.",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.dead_letters = Counter("agentwatch_dead_letters", "Dead letters by error code.", ["code"], registry=r)
        self.findings = Counter("agentwatch_findings", "Findings by detector family.", ["detector"], registry=r)
        self.alerts = Counter("agentwatch_alerts", "Alert records by severity and rule.", ["severity", "rule"], registry=r)
        self.commands = Counter(
            "agentwatch_enforcement_commands", "Isolation commands by action and mode.", ["action", "mode"], registry=r)
        self.ack_seconds = Histogram(
            "agentwatch_enforcement_ack_seconds", "Command issued to acknowledgement received.",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.response_seconds = Histogram(
            "agentwatch_enforcement_response_seconds",
            "Fetch holding the triggering event handed to the processing stage to its isolation command on Kafka.",
            buckets=RESPONSE_BUCKETS, registry=r)
        self.lag = Gauge("agentwatch_consumer_lag", "Messages behind the high-water mark.", ["topic", "partition"], registry=r)
        self.agents = Gauge("agentwatch_agents_tracked", "Agents with state in memory.", registry=r)
        self.baseline_agents = Gauge("agentwatch_baseline_agents", "Tracked agents by baseline maturity.", ["maturity"], registry=r)
        self.gc_pauses = Histogram(
            "agentwatch_gc_pause_seconds", "Garbage-collector pauses by generation (the worker stops meanwhile).",
            ["generation"], buckets=_LATENCY_BUCKETS, registry=r)
        self.processing_cpu = Counter(
            "agentwatch_processing_cpu_seconds",
            "CPU time of the event-loop thread inside the processor (decode, detectors, risk, response, incidents).",
            registry=r)
        self._last = ProcessorStats()

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - scraped by Prometheus
        """Expose ``/metrics`` on ``port`` (0 disables)."""
        if port:
            start_http_server(port, addr=addr, registry=self.registry)

    def record_batch(self, stats: ProcessorStats, outputs: Iterable[Output], seconds: float) -> None:
        """Fold what changed since the last call into the counters; one call per batch."""
        last = self._last
        self._inc(self.events, ("enriched",), stats.enriched - last.enriched)
        self._inc(self.events, ("duplicate",), stats.duplicates - last.duplicates)
        dead = sum(stats.dead_letters.values()) - sum(last.dead_letters.values())
        self._inc(self.events, ("dead_letter",), dead)
        for code, n in stats.dead_letters.items():
            self._inc(self.dead_letters, (code,), n - last.dead_letters.get(code, 0))
        for det, n in stats.findings.items():
            self._inc(self.findings, (det,), n - last.findings.get(det, 0))
        self._last = ProcessorStats(
            events_in=stats.events_in, enriched=stats.enriched, duplicates=stats.duplicates,
            dead_letters=dict(stats.dead_letters), findings=dict(stats.findings), outputs=dict(stats.outputs))
        kinds: dict[str, int] = {}
        for out in outputs:
            kinds[out.kind] = kinds.get(out.kind, 0) + 1
            if out.kind == "alerts":
                v = out.value
                self.alerts.labels(str(v.get("severity", "unknown")), str(v.get("rule_id") or v.get("detector") or "risk")).inc()
            elif out.kind == "enforcement":
                v = out.value
                self.commands.labels(str(v.get("action", "unknown")), str(v.get("mode", "enforce"))).inc()
        for kind, n in kinds.items():
            self.produced.labels(kind).inc(n)
        self.batch_seconds.observe(seconds)

    @staticmethod
    def _inc(counter: Any, labels: tuple[str, ...], n: int) -> None:
        if n > 0:
            counter.labels(*labels).inc(n)


@dataclass(frozen=True)
class HistogramSummary:
    """A histogram as exposed: observation count, and the bucket bounds holding p50 and p99
    (``math.inf`` when past the last bound, ``None`` with no observations). Upper bounds, not
    interpolations: "p99 <= 25 ms" is what the buckets can honestly say."""

    count: int
    p50_le: float | None
    p99_le: float | None


def read_histogram(text: str, name: str) -> HistogramSummary:
    """Summarise histogram ``name`` (no labels, or summed over them) from exposition ``text``."""
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == name + "_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    bounds = sorted(buckets)
    count = int(buckets[bounds[-1]]) if bounds else 0

    def bound(q: float) -> float | None:
        if not count:
            return None
        rank = q * count
        return next((le for le in bounds if buckets[le] >= rank), math.inf)

    return HistogramSummary(count, bound(0.5), bound(0.99))


def read_counter(text: str, name: str) -> float:
    """Counter ``name`` (without its ``_total`` suffix; summed over labels) from exposition
    ``text``; 0.0 when absent."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == name:
            total += sum(s.value for s in family.samples if s.name == name + "_total")
    return total


def scrape_metrics(url: str, timeout: float = 5.0) -> str:
    """A worker's ``/metrics`` page as text (raises ``OSError`` if unreachable)."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - a URL we built
        text: str = resp.read().decode("utf-8", "replace")
        return text


def scrape_histogram(url: str, name: str, timeout: float = 5.0) -> HistogramSummary:
    """:func:`read_histogram` of a worker's ``/metrics`` page (raises ``OSError`` if unreachable)."""
    return read_histogram(scrape_metrics(url, timeout), name)


def _metric_names() -> list[str]:
    m = WorkerMetrics()
    names = []
    for metric in m.registry.collect():
        names.append(metric.name + ("_total" if metric.type == "counter" else ""))
    return sorted(names)


#: every metric name a worker exports (counters with their ``_total`` suffix)
METRIC_NAMES: list[str] = _metric_names()
