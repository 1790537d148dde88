"""Builds the :class:`~pipeline.processor.Processor` with every enabled part, from settings.

The live worker and replay both call :func:`build_processor`, so they run the same detectors,
scorer, responder and incident tracker with the same configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.processor import Processor, StateLoader
from pipeline.settings import Settings

__all__ = ["build_processor"]


def build_processor(
    settings: Settings,
    *,
    clock: Callable[[], float],
    state_loader: StateLoader | None = None,
    replay: bool = False,
) -> Processor:
    """``replay=True`` for backtests: no acknowledgement timeouts (no enforcement point answers)
    and the public development signing key when none is configured."""
    detectors: list[Any] = []
    baselines = None
    if settings.rules.enabled:
        from detectors.rulebook import PolicyDetector, RuleDetector

        detectors.append(RuleDetector(settings.rules))
        detectors.append(PolicyDetector(settings.rules))
    if settings.baselines.enabled:
        from detectors.baselines import BaselineDetector

        baselines = BaselineDetector(settings.baselines)
        detectors.append(baselines)
    from pipeline.incidents import IncidentTracker
    from pipeline.response import Responder
    from pipeline.risk import RiskScorer

    return Processor(
        settings,
        detectors=detectors,
        scorer=RiskScorer(settings.risk),
        responder=Responder(settings, clock, replay=replay),
        tracker=IncidentTracker(settings.incidents, clock),
        baselines=baselines,
        clock=clock,
        state_loader=state_loader,
    )
