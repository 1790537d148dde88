"""The detector contract: events in, findings out.

A detector follows river's two-method shape:

- ``score_one(event) -> list[Finding]`` looks at one event and says what is suspicious about it,
  without changing any state;
- ``learn_one(event) -> None`` updates the detector's model with the event (a no-op for rules).

The engine calls ``score_one`` first and ``learn_one`` after, and skips ``learn_one`` for events of
agents under investigation (no learning from what we flagged: see river's
``protect_anomaly_detector``). Detectors with per-agent state also implement :class:`Stateful` so
the stream stages can checkpoint that state in faust tables and restore it after a restart or
rebalance.

Severity is one ordered scale compared with ``>=``: info < low < medium < high < critical.
A finding's ``score`` is its risk contribution on 0-100 before the risk formula combines findings.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from detectors.events import Event, Finding, Severity

__all__ = ["Detector", "Event", "Finding", "Severity", "Stateful"]


@runtime_checkable
class Detector(Protocol):
    """Anything that scores events. ``name`` is the ``detector`` of the findings it emits.

    A detector may declare ``stateless = True`` when ``score_one`` depends only on the event and
    the configuration and ``learn_one`` does nothing (the rule engine). The processor then scores
    a whole chunk of events with it in one pass before the stateful detectors see them one by
    one: one detector's code and caches stay hot in the CPU instead of alternating with the
    others' for every event. Findings keep the detectors' order either way.
    """

    name: str

    def score_one(self, event: Event) -> list[Finding]: ...

    def learn_one(self, event: Event) -> None: ...


@runtime_checkable
class Stateful(Protocol):
    """A detector (or any pipeline part) that keeps per-agent state.

    The stream stage keeps state in a faust table keyed by ``agent_id``. Before an agent's first
    event in this process it calls ``load_state(agent_id, blob)`` with what the table holds (or
    ``None``); after each batch it calls ``dirty_agents()`` and writes ``dump_state(agent_id)`` for
    each. ``forget(agent_id)`` drops in-memory state (eviction; the table keeps it). Blobs are JSON
    values (dict/list/str/number) so they serialise the same everywhere and can be inspected.
    """

    def load_state(self, agent_id: str, blob: Any | None) -> None: ...

    def dump_state(self, agent_id: str) -> Any | None: ...

    def dirty_agents(self) -> set[str]: ...

    def forget(self, agent_id: str) -> None: ...
