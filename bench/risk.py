"""Cost of the risk scorer per event, for ordinary agents and for a noisy one.

    python -m bench.risk [--json PATH] [--events 5000] [--repeat 3]

Three workloads, each ``RiskScorer.assess`` timed with ``time.process_time`` (best of
``--repeat``), on the settings' defaults (a window of 256 scored events, 8 factors each):

- ``clean``: clean events of 50 agents without risk (the fleet's common case);
- ``noisy_clean``: clean events of an agent whose window is full;
- ``noisy_scored``: events with 8 findings each of an agent whose window is full, so every
  event enters the window and evicts its oldest entry. An agent decides how many findings its
  actions raise, so this is the cost a hostile or broken agent can impose per event.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.common import machine, write_json
from detectors.events import Event, Finding, Severity
from pipeline.risk import RiskScorer
from pipeline.settings import RiskSettings

_FINDINGS = [Finding("rules", f"rule.{j}", Severity.MEDIUM, 40, "why") for j in range(8)]


def _timed(scorer: RiskScorer, agents: int, start: int, events: int, findings: list[Finding]) -> float:
    """µs per ``assess`` over ``events`` events numbered from ``start``, spread over ``agents``."""
    # 10 ms apart: a run of thousands of events stays inside the default one-hour window
    batch = [Event({"event_id": f"e{start + i}", "agent_id": f"agent-{i % agents}"}, ts=1_000.0 + (start + i) / 100)
             for i in range(events)]
    t = time.process_time()
    for ev in batch:
        scorer.assess(ev, findings)
    return (time.process_time() - t) / events * 1e6


def measure(events: int, repeat: int) -> dict[str, float]:
    """The best of ``repeat`` runs of each workload, µs per event."""
    window = RiskSettings().max_window_events
    runs: dict[str, list[float]] = {"clean": [], "noisy_clean": [], "noisy_scored": []}
    for r in range(repeat):
        runs["clean"].append(_timed(RiskScorer(RiskSettings()), 50, 0, events, []))
        noisy = RiskScorer(RiskSettings())
        _timed(noisy, 1, 0, window + 10, _FINDINGS)  # fill the window
        start = (r + 1) * 10 * events
        runs["noisy_clean"].append(_timed(noisy, 1, start, events, []))
        runs["noisy_scored"].append(_timed(noisy, 1, start + events, events, _FINDINGS))
    return {name: round(min(times), 2) for name, times in runs.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    figures = measure(args.events, args.repeat)
    result: dict[str, Any] = {"benchmark": "risk", "machine": machine(), "events": args.events,
                              "us_per_event": figures}
    table = Table(title="risk scorer, µs per event (best of runs)")
    table.add_column("workload")
    table.add_column("µs/event", justify="right")
    for name, value in figures.items():
        table.add_row(name, f"{value:.2f}")
    Console().print(table)
    write_json(args.json_path, result)


if __name__ == "__main__":
    main()
