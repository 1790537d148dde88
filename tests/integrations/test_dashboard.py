"""The Grafana dashboard: the panels operators need, each querying metrics the workers export.

Exported names come from the real :mod:`pipeline.metrics` registry (counters as ``_total``,
histograms as ``_bucket``/``_sum``/``_count``), so renaming a metric without updating the
dashboard fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "compose" / "grafana" / "dashboards" / "agentwatch.json"


def exported_series() -> set[str]:
    from pipeline.metrics import WorkerMetrics

    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
    names = set()
    for metric in WorkerMetrics().registry.collect():
        for suffix in suffixes[metric.type]:
            names.add(metric.name + suffix)
    return names


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dashboard["panels"]:
        out += p.get("panels", []) if p["type"] == "row" else [p]
    return out


def test_the_workers_export_the_documented_metrics() -> None:
    series = exported_series()
    for name in [
        "agentwatch_events_total", "agentwatch_events_produced_total", "agentwatch_batch_processing_seconds_bucket",
        "agentwatch_event_latency_seconds_bucket", "agentwatch_dead_letters_total", "agentwatch_findings_total",
        "agentwatch_alerts_total", "agentwatch_enforcement_commands_total", "agentwatch_enforcement_ack_seconds_bucket",
        "agentwatch_enforcement_response_seconds_bucket", "agentwatch_consumer_lag", "agentwatch_agents_tracked", "agentwatch_baseline_agents",
    ]:  # fmt: skip
        assert name in series


def test_every_panel_query_names_an_exported_metric(dashboard: dict[str, Any]) -> None:
    series = exported_series()
    for panel in _panels(dashboard):
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            metrics = set(re.findall(r"\bagentwatch_[a-z_]+\b", expr))
            assert metrics, f"{panel['title']}: {expr} queries no agentwatch metric"
            assert metrics <= series, f"{panel['title']}: not exported: {metrics - series}"
            assert target["datasource"]["uid"] == "prometheus"


def test_operator_panels_are_there(dashboard: dict[str, Any]) -> None:
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in _panels(dashboard)}

    def has(metric: str, *labels: str) -> bool:
        return any(metric in e and all(lb in e for lb in labels) for e in exprs.values())

    assert has("agentwatch_events_total", "outcome")  # events/s in
    assert has("agentwatch_events_produced_total", "output")  # events/s out
    assert has("agentwatch_consumer_lag", "partition")  # lag per partition
    assert has(
        "agentwatch_event_latency_seconds_bucket", "histogram_quantile", "0.99"
    )  # latency percentiles
    assert has("agentwatch_dead_letters_total", "code")  # dead letters by reason
    assert has("agentwatch_alerts_total", "severity") and has("agentwatch_alerts_total", "rule")
    assert has("agentwatch_enforcement_commands_total", "action")  # isolations by rung
    assert has("agentwatch_enforcement_ack_seconds_bucket", "histogram_quantile")  # ack time
    assert has("agentwatch_enforcement_response_seconds_bucket", "histogram_quantile", "0.99")  # response time
    assert has("agentwatch_agents_tracked") and has("agentwatch_baseline_agents", "maturity")


def test_layout_is_sane(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "agentwatch-overview"
    for p in _panels(dashboard):
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
    cells = set()
    for p in dashboard["panels"]:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))
