"""Risk scoring: one explainable 0-100 score per event, and each agent's risk over a sliding window.

Contract: ``RiskScorer(settings.risk).assess(event, findings) -> RiskAssessment``. Pure logic on
event time (``event.ts``); the same events in the same order give the same assessments.

**Event score** (documented formula, every constant in :class:`~pipeline.settings.RiskSettings`):

1. each finding gives ``p = weight(detector) * max(finding.score, severity_floor[severity]) / 100``
   (clipped to 0..1); the weight is the longest ``detector_weights`` prefix of the finding's
   detector (``baseline.novelty`` takes ``baseline``), ``*`` otherwise. Repeats of the same
   ``detector:id`` in one event count once (the largest);
2. the findings combine as independent evidence (noisy-OR): ``score = 100 * (1 - prod(1 - p))``,
   so two medium signals score more than one, and nothing exceeds 100;
3. each factor's ``contribution`` is its share of the score in proportion to ``-ln(1 - p)`` (its
   log-odds weight in the product), so the contributions add up to the score exactly (before
   rounding to 2 decimals) and an analyst or auditor sees why.

**Agent risk** (risk-based alerting): the scored events of the last ``window_seconds`` of event
time (the agent's clock is the latest ``ts`` seen; older events fall out) are summed per factor —
the largest contribution of a factor counts fully, every repeat of it ``repeat_weight`` — and the
sum over factors, capped at 100, is ``agent_risk`` (``agent_factors`` are scaled to add up to it). Many different low signals add up to an
alert; one noisy rule repeating adds up slowly.

Events that arrive later than the window behind the agent's clock still get an event score but do
not enter the window. Re-assessing an event id already in the window (at-least-once replays after
a rebalance) leaves the state unchanged. Memory per agent is bounded by ``max_window_events``
(oldest dropped first) times ``max_factors``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from detectors.events import Event, Finding, Severity, Value
from pipeline.settings import RiskSettings

__all__ = ["RiskAssessment", "RiskScorer", "level_for"]


_LEVEL_TABLES: dict[tuple[tuple[str, int], ...], list[tuple[int, str]]] = {}


def level_for(score: float, levels: dict[str, int]) -> str:
    """Severity label for a 0-100 score: the highest level whose threshold the score reaches."""
    key = tuple(levels.items())
    table = _LEVEL_TABLES.get(key)
    if table is None:  # most severe first; computed once per distinct configuration
        table = sorted(((int(t), Severity.parse(label).label) for label, t in levels.items()),
                       key=lambda x: -int(Severity.parse(x[1])))
        _LEVEL_TABLES[key] = table
    for threshold, label in table:
        if score >= threshold:
            return label
    return "info"


class RiskAssessment(Value):
    """The risk of one event and of its agent right after it.

    (Not a dataclass, as :class:`~detectors.events.Value` says.)"""

    __slots__ = ("agent_factors", "agent_risk", "agent_severity", "factors", "score", "scorer", "severity")
    _NAMES = ("score", "agent_risk", "factors", "agent_factors", "severity", "agent_severity", "scorer")
    _SHOWN = 6  # the scorer is neither compared nor shown

    def __init__(
        self,
        score: int,
        agent_risk: int,
        factors: list[dict[str, Any]] | None = None,
        agent_factors: list[dict[str, Any]] | None = None,
        severity: str = "info",
        agent_severity: str = "info",
        scorer: RiskScorer | None = None,
    ) -> None:
        self.score = score
        self.agent_risk = agent_risk
        self.factors: list[dict[str, Any]] = [] if factors is None else factors
        #: accumulated factors over the window: source, id, contribution, count
        self.agent_factors: list[dict[str, Any]] = [] if agent_factors is None else agent_factors
        self.severity = severity
        self.agent_severity = agent_severity
        #: the scorer that made this assessment, so the responder can take suppressed findings back
        self.scorer = scorer

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "agent_risk": self.agent_risk,
            "severity": self.severity,
            "agent_severity": self.agent_severity,
            "factors": self.factors,
            "agent_factors": self.agent_factors,
        }


class _KeyRun:
    """One factor's contributions in an agent's window, in entry order, and their total."""

    __slots__ = ("pos", "top", "total", "vals")

    def __init__(self) -> None:
        #: where each contribution sits: entry number * 64 + its index among the entry's factors
        self.pos: list[int] = []
        self.vals: list[float] = []
        #: (position, value) with decreasing values: a sliding-window maximum, so the largest
        #: contribution is ``top[0]`` without a scan (values leave a run from its front)
        self.top: deque[tuple[int, float]] = deque()
        self.total = 0.0


class _AgentWindow:
    """An agent's scored events of the window, and what the agent risk is made of.

    The agent risk is kept up to date incrementally: a scored event or an evicted one touches
    only its own factors' runs, whose totals are recomputed once per change (a C-level ``sum``
    over each run's floats; the maxima are kept as sliding-window maxima), not a rescan of every
    entry. The rescan had cost 270-410 µs per 8-factor event of an agent with a full window
    (compiled; now 44-65 µs, ``python -m bench.risk``): an agent decides how many findings its
    actions raise, so a noisy or hostile one made its own events several times as dear as the
    fleet's. The sums are taken over the same values in the same order as a rescan takes them,
    so the results are the same (a property test holds them to a rescan)."""

    __slots__ = ("agent_factors", "agent_risk", "base", "clock", "entries", "ids", "mins", "runs", "stale")

    def __init__(self) -> None:
        self.clock = -math.inf
        #: [ts, event_id, [[factor_key, contribution], ...]] in arrival order
        self.entries: list[list[Any]] = []
        self.ids: set[str] = set()
        self.agent_risk = 0
        self.agent_factors: list[dict[str, Any]] = []
        #: each factor key's run of contributions
        self.runs: dict[str, _KeyRun] = {}
        #: the entry number of ``entries[0]`` (numbers grow by one per entry ever added)
        self.base = 0
        #: (entry number, ts) with increasing ts: a sliding-window minimum, so the oldest ts in
        #: the window is ``mins[0]`` without a scan (entries leave from the front)
        self.mins: deque[tuple[int, float]] = deque()
        #: runs whose ``total`` is out of date: changed since the agent risk was last computed
        self.stale: set[_KeyRun] = set()


class RiskScorer:
    """Scores events and keeps each agent's sliding risk window (implements ``Stateful``).

    >>> from pipeline.settings import RiskSettings
    >>> from detectors.base import Event, Finding, Severity
    >>> scorer = RiskScorer(RiskSettings())
    >>> ev = Event({"event_id": "e1", "agent_id": "a1"}, ts=1000.0)
    >>> ra = scorer.assess(ev, [Finding("rules", "r1", Severity.HIGH, 70, "why")])
    >>> ra.score, ra.agent_risk, ra.factors[0]["contribution"]
    (70, 70, 70.0)
    """

    def __init__(self, settings: RiskSettings) -> None:
        self.settings = settings
        self._agents: dict[str, _AgentWindow] = {}
        self._dirty: set[str] = set()
        # longest prefix first so "baseline.novelty" beats "baseline"
        self._weights = sorted(settings.detector_weights.items(), key=lambda kv: (-len(kv[0]), kv[0]))
        self._default_weight = float(settings.detector_weights.get("*", 1.0))
        self._floors = {int(Severity.parse(k)): float(v) for k, v in settings.severity_floor.items()}

    # -- scoring ---------------------------------------------------------------------------

    def weight(self, detector: str) -> float:
        for prefix, w in self._weights:
            if prefix != "*" and (detector == prefix or detector.startswith(prefix + ".")
                                  or detector.startswith(prefix + ":")):
                return float(w)
        return self._default_weight

    def event_factors(self, findings: list[Finding]) -> tuple[float, list[dict[str, Any]]]:
        """The event score (unrounded) and every factor, largest contribution first."""
        if not findings:
            return 0.0, []
        best: dict[tuple[str, str], tuple[float, Finding]] = {}
        for f in findings:
            base = max(float(f.score), self._floors.get(int(f.severity), 0.0))
            p = min(1.0, max(0.0, self.weight(f.detector) * base / 100.0))
            key = (f.detector, f.id)
            if key not in best or p > best[key][0]:
                best[key] = (p, f)
        live = [(p, f) for p, f in best.values() if p > 0]
        if not live:
            return 0.0, []
        certain = [(p, f) for p, f in live if p >= 1.0]
        if certain:  # log-odds are infinite: the certain factors share the score
            score = 100.0
            shares = [(f, (100.0 / len(certain)) if p >= 1.0 else 0.0) for p, f in live]
        else:
            logs = [(-math.log1p(-p), f) for p, f in live]
            total = sum(w for w, _ in logs)
            score = 100.0 * -math.expm1(-total)  # == 100 * (1 - prod(1 - p))
            shares = [(f, score * w / total) for w, f in logs]
        shares.sort(key=lambda fc: (-round(fc[1], 2), fc[0].detector, fc[0].id))
        factors: list[dict[str, Any]] = [
            {"source": f.detector, "id": f.id, "contribution": round(c, 2), "severity": f.severity.label,
             "reason": f.reason}
            for f, c in shares
        ]
        return score, factors

    def assess(self, event: Event, findings: list[Finding]) -> RiskAssessment:
        s = self.settings
        raw, factors = self.event_factors(findings)
        score = min(100, round(raw))
        agent_id = event.agent_id
        win = self._agents.get(agent_id)
        if win is None:
            if score == 0:  # hot path: a clean event of an agent with no risk touches no state
                return RiskAssessment(0, 0, [], [], "info", "info", scorer=self)
            win = self._agents[agent_id] = _AgentWindow()
        changed = False
        ts = float(event.ts)
        if ts > win.clock:
            win.clock = ts
            horizon = ts - s.window_seconds
            if win.mins and win.mins[0][1] < horizon:
                entries = win.entries
                while entries and entries[0][0] < horizon:
                    self._pop_oldest(win)
                if win.mins and win.mins[0][1] < horizon:  # one further in (arrived out of order)
                    win.entries = [e for e in entries if e[0] >= horizon]
                    win.ids = {e[1] for e in win.entries}
                    self._rebuild(win)
                changed = True
        event_id = event.event_id
        if score > 0 and event_id not in win.ids and ts >= win.clock - s.window_seconds:
            kept = [[f"{f['source']}:{f['id']}", f["contribution"]] for f in factors[: s.max_factors]]
            self._push(win, [ts, event_id, kept])
            win.ids.add(event_id)
            if len(win.entries) > s.max_window_events:
                self._pop_oldest(win)
            changed = True
        if changed:
            self._publish(win)
            self._dirty.add(agent_id)
        return RiskAssessment(
            score=score,
            agent_risk=win.agent_risk,
            factors=factors[: s.max_factors],
            agent_factors=win.agent_factors,
            severity=level_for(score, s.levels),
            agent_severity=level_for(win.agent_risk, s.levels),
            scorer=self,
        )

    def exclude(self, event: Event, kept: list[Finding]) -> RiskAssessment:
        """Re-assess ``event`` with only the ``kept`` findings, taking the others out of the
        agent's window too (an analyst's suppression says they are not risk)."""
        s = self.settings
        raw, factors = self.event_factors(kept)
        score = min(100, round(raw))
        win = self._agents.get(event.agent_id)
        if win is None:
            return RiskAssessment(score, 0, factors[: s.max_factors], [], level_for(score, s.levels), "info",
                                  scorer=self)
        event_id = event.event_id
        for i, entry in enumerate(win.entries):
            if entry[1] == event_id:
                if score > 0:
                    entry[2] = [[f"{f['source']}:{f['id']}", f["contribution"]] for f in factors[: s.max_factors]]
                else:
                    del win.entries[i]
                    win.ids.discard(event_id)
                self._rebuild(win)
                self._publish(win)
                self._dirty.add(event.agent_id)
                break
        return RiskAssessment(score, win.agent_risk, factors[: s.max_factors], win.agent_factors,
                              level_for(score, s.levels), level_for(win.agent_risk, s.levels), scorer=self)

    # -- the window's factor runs ----------------------------------------------------------

    def _push(self, win: _AgentWindow, entry: list[Any]) -> None:
        """Append ``entry`` to the window and to its factors' runs."""
        n = win.base + len(win.entries)
        win.entries.append(entry)
        self._add_runs(win, n, entry)

    def _add_runs(self, win: _AgentWindow, n: int, entry: list[Any]) -> None:
        ts = entry[0]
        mins = win.mins
        while mins and mins[-1][1] >= ts:
            mins.pop()
        mins.append((n, ts))
        runs = win.runs
        for j, (key, contribution) in enumerate(entry[2]):
            run = runs.get(key)
            if run is None:
                run = runs[key] = _KeyRun()
            at = n * 64 + j  # (at most max_factors <= 64 factors per entry)
            value = float(contribution)
            run.pos.append(at)
            run.vals.append(value)
            top = run.top
            while top and top[-1][1] <= value:
                top.pop()
            top.append((at, value))
            win.stale.add(run)

    def _pop_oldest(self, win: _AgentWindow) -> None:
        """Drop the window's first entry (the oldest to arrive) from it and from its runs."""
        entry = win.entries.pop(0)
        n = win.base
        win.base = n + 1
        if win.mins and win.mins[0][0] == n:
            win.mins.popleft()
        win.ids.discard(entry[1])
        runs = win.runs
        for key, _contribution in entry[2]:
            run = runs[key]
            at = run.pos[0]  # the entry was the first: its values lead every run it is in
            del run.pos[0]
            del run.vals[0]
            if run.top[0][0] == at:
                run.top.popleft()
            if not run.vals:
                del runs[key]
            else:
                win.stale.add(run)

    def _rebuild(self, win: _AgentWindow) -> None:
        """Every run again from the entries (after entries left from the middle: rare)."""
        win.runs = {}
        win.base = 0
        win.mins = deque()
        win.stale = set()
        for n, entry in enumerate(win.entries):
            self._add_runs(win, n, entry)

    def _total(self, run: _KeyRun) -> None:
        """The factor's largest contribution counts fully, each repeat ``repeat_weight``."""
        top = run.top[0][1]
        run.total = top + self.settings.repeat_weight * (sum(run.vals) - top)

    def _publish(self, win: _AgentWindow) -> None:
        """The agent risk and factors from the runs: summed in the order in which the factors
        first appear in the window, as a rescan of the entries sums them."""
        for run in win.stale:
            if run.vals:  # (an emptied run left the window)
                self._total(run)
        win.stale = set()
        ordered = sorted(win.runs.items(), key=lambda kr: kr[1].pos[0])
        totals = [(run.total, key, len(run.vals)) for key, run in ordered]
        raw = sum(t for t, _, _ in totals)
        win.agent_risk = min(100, round(raw))
        # above the cap the factors are scaled so they still add up to the agent risk
        scale = 100.0 / raw if raw > 100 else 1.0
        totals.sort(key=lambda t: (-t[0], t[1]))
        win.agent_factors = [
            {"source": key.partition(":")[0], "id": key.partition(":")[2],
             "contribution": round(total * scale, 2), "count": count}
            for total, key, count in totals[: self.settings.max_factors]
        ]

    def agent_risk(self, agent_id: str) -> int:
        win = self._agents.get(agent_id)
        return win.agent_risk if win else 0

    # -- Stateful --------------------------------------------------------------------------

    def load_state(self, agent_id: str, blob: Any | None) -> None:
        if not blob:
            self._agents.pop(agent_id, None)
            return
        win = _AgentWindow()
        win.clock = float(blob.get("clock", -math.inf)) if blob.get("clock") is not None else -math.inf
        entries: list[list[Any]] = []
        for item in blob.get("entries", [])[-self.settings.max_window_events:]:
            ts, eid, kept = item
            entries.append([float(ts), str(eid), [[str(k), float(c)] for k, c in kept][: self.settings.max_factors]])
        win.entries = entries
        win.ids = {e[1] for e in entries}
        self._rebuild(win)
        self._publish(win)
        self._agents[agent_id] = win

    def dump_state(self, agent_id: str) -> Any | None:
        win = self._agents.get(agent_id)
        if win is None or not win.entries:
            return None
        return {"clock": win.clock, "entries": win.entries}

    def dirty_agents(self) -> set[str]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def forget(self, agent_id: str) -> None:
        self._agents.pop(agent_id, None)
        self._dirty.discard(agent_id)
