"""``agentwatch demo`` end to end: broker, worker, reference enforcement points, fleet, evidence."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from pipeline.demo import DemoOptions, run_demo
from pipeline.incidents import open_store

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_demo_detects_isolates_and_writes_evidence(tmp_path: Path) -> None:
    out = io.StringIO()
    result = run_demo(DemoOptions(directory=tmp_path / "demo", agents=12, hours=30, rate=4000, seed=3),
                      console=Console(file=out, width=100), live=False)
    text = out.getvalue()
    assert "done:" in text and str(result.report) in text.replace("\n", "")
    assert result.published > 1000
    assert result.counts.get("enriched", 0) >= result.published - result.counts.get("dead_letters", 0)
    assert result.counts.get("dead_letters", 0) == 0
    # the attacks were alerted, isolation commands were verified and applied by the gates
    assert result.alerts_by_severity.get("critical", 0) + result.alerts_by_severity.get("high", 0) >= 1
    assert sum(result.commands_by_action.values()) >= 1
    assert result.acks_by_status.get("applied", 0) >= 1
    assert result.acks_by_status.get("rejected", 0) == 0
    assert result.chain_ok
    # the worker measured its own share of each isolation it triggered from an event (timer-driven
    # commands such as releases are not in it), and printed the summary
    assert result.response is not None
    assert 1 <= result.response.count <= sum(result.commands_by_action.values())
    assert result.response.p99_le is not None and result.response.p99_le <= 2.5
    assert "isolation response in the worker" in text
    html = result.report.read_text()
    assert "CC7.2" in html and "CC7.4" in html
    store = open_store(f"sqlite:///{result.store}")
    try:
        assert store.verify().ok
        assert store.counts().get("incidents", 0) >= 1
    finally:
        store.close()
