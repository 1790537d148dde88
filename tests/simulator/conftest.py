"""Fixtures of the simulator tests: one simulated day of the default fleet, generated once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from pipeline.simulator import SCENARIOS, Fleet, Injection


@dataclass
class Day:
    fleet: Fleet
    plan: list[Injection]
    pairs: list[tuple[dict[str, Any], dict[str, Any]]]


@pytest.fixture(scope="package")
def day() -> Day:
    """The documented example: seed 7, 40 agents, 24 h from 2026-11-02T08:00Z, every scenario."""
    fleet = Fleet(seed=7, agents=40, start="2026-11-02T08:00:00Z")
    return Day(fleet, fleet.plan(24, SCENARIOS), list(fleet.events(duration_hours=24, attacks=SCENARIOS)))
