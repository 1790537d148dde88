"""A seeded, deterministic simulator of a fleet of AI agents, with injected attacks and ground truth.

    from pipeline.simulator import Fleet, Scenario, SCENARIOS, simulate
    fleet = Fleet(seed=7, agents=40, start="2026-11-02T08:00:00Z")
    for ev, truth in fleet.events(duration_hours=24, attacks=SCENARIOS):
        ...   # ev: the contract event (dict); truth: {event_id, agent_id, scenario, malicious}

Same seed and parameters -> the same events, byte for byte. Event times start at ``start`` and
never come from the wall clock. ``simulate(fleet, emit, ...)`` drives the stream into a sink
(a JSONL file or an :class:`~pipeline.sdk.publisher.ActionPublisher`) with optional pacing.

Modules: :mod:`.roles` (roles and benign activity), :mod:`.scenarios` (attacks),
:mod:`.fleet` (agents, scheduling, the merged stream), :mod:`.run` (sinks and pacing),
:mod:`.pools` (the vocabulary), :mod:`.model` (Step, Agent, Draw).
"""

from __future__ import annotations

from pipeline.simulator.fleet import Fleet, Injection, iso_ms, parse_start
from pipeline.simulator.model import Agent, Step
from pipeline.simulator.roles import ROLES, Role
from pipeline.simulator.run import JsonlWriter, SimulationStats, simulate
from pipeline.simulator.scenarios import SCENARIOS, Scenario, select_scenarios

__all__ = [
    "ROLES",
    "SCENARIOS",
    "Agent",
    "Fleet",
    "Injection",
    "JsonlWriter",
    "Role",
    "Scenario",
    "SimulationStats",
    "Step",
    "iso_ms",
    "parse_start",
    "select_scenarios",
    "simulate",
]
