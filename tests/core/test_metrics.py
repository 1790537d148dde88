"""Reading histograms back from the exposition format (the demo's and the latency benchmark's
response figures come from it)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest

from pipeline.metrics import RESPONSE_BUCKETS, WorkerMetrics, read_counter, read_histogram

NAME = "agentwatch_enforcement_response_seconds"


def _exposed(values: list[float]) -> str:
    m = WorkerMetrics()
    for v in values:
        m.response_seconds.observe(v)
    return generate_latest(m.registry).decode()


def _nearest_rank_bound(values: list[float], q: float) -> float:
    """The smallest bucket bound at or above the nearest-rank q-quantile."""
    k = math.ceil(q * len(values))
    v = sorted(values)[max(0, k - 1)]
    return next((b for b in RESPONSE_BUCKETS if v <= b), math.inf)


@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), min_size=1, max_size=300))
def test_bounds_are_the_buckets_holding_the_quantiles(values: list[float]) -> None:
    h = read_histogram(_exposed(values), NAME)
    assert h.count == len(values)
    assert h.p50_le == _nearest_rank_bound(values, 0.5)
    assert h.p99_le == _nearest_rank_bound(values, 0.99)


def test_no_observations_and_other_metrics() -> None:
    h = read_histogram(_exposed([]), NAME)
    assert (h.count, h.p50_le, h.p99_le) == (0, None, None)
    assert read_histogram("", NAME).count == 0
    # another histogram in the same page is not mixed in
    m = WorkerMetrics()
    m.ack_seconds.observe(3.0)
    m.response_seconds.observe(0.004)
    h = read_histogram(generate_latest(m.registry).decode(), NAME)
    assert (h.count, h.p99_le) == (1, 0.005)


def test_slow_outliers_show_as_past_the_last_bucket() -> None:
    h = read_histogram(_exposed([0.002] * 98 + [5.0, 6.0]), NAME)
    assert h.p50_le == 0.0025
    assert h.p99_le == math.inf


def test_counters_read_back_summed_over_their_labels() -> None:
    m = WorkerMetrics()
    m.processing_cpu.inc(1.25)
    m.processing_cpu.inc(0.5)
    m.events.labels("enriched").inc(7)
    m.events.labels("dead_letter").inc(2)
    page = generate_latest(m.registry).decode()
    assert read_counter(page, "agentwatch_processing_cpu_seconds") == 1.75
    assert read_counter(page, "agentwatch_events") == 9
    assert read_counter(page, "agentwatch_no_such_metric") == 0.0
