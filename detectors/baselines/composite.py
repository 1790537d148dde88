"""The composite baseline detector the stream core calls: every baseline, one state per agent.

Contract (see ``detectors.base``): ``score_one`` changes no state; ``learn_one`` updates the
agent's state and its role's profile; ``observe_one`` (optional) updates only the counters an
agent under investigation still needs (current-minute count, last action, last hour) without
teaching its baseline anything. Findings only after warm-up: ``warmup_events`` learned events and
``warmup_hours`` of event time between the first and the latest.

State: per agent (``load_state``/``dump_state``/``dirty_agents``/``forget``, JSON values) and
shared per worker (role and fleet profiles: ``load_shared``/``dump_shared``/``shared_dirty``).
The stream is partitioned by agent_id, so a worker's shared state sees only its partitions'
agents: fleet fractions are approximate. ``merge_shared`` combines several workers' snapshots
(element-wise max of counts, so merging is idempotent and never double counts a replay).

Deterministic: no wall clock, no process-salted hashes, the one RNG (the HST) is seeded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from detectors.baselines.common import Obs
from detectors.baselines.features import extract
from detectors.baselines.multivariate import MultivariateBaseline
from detectors.baselines.novelty import NoveltyBaseline
from detectors.baselines.peer import PeerBaseline
from detectors.baselines.rate import RateBaseline
from detectors.baselines.sequence import SequenceBaseline
from detectors.baselines.state import AgentState, SharedState
from detectors.baselines.timeofday import TimeBaseline
from detectors.baselines.volume import VolumeBaseline
from detectors.events import Event, Finding

if TYPE_CHECKING:
    from pipeline.settings import BaselineSettings

__all__ = ["ALL_BASELINES", "BaselineDetector"]

ALL_BASELINES = ("novelty", "rate", "time", "sequence", "volume", "peer", "multivariate")
FORMAT = "agentwatch.baselines"
MAX_FINDINGS = 6
_CACHE = "_baseline_obs"


def _round3(x: float) -> float:
    """``round(x, 3)``, exactly, without its decimal conversion (a quarter of a microsecond
    per call, once per event). ``round`` gives the double nearest to ``k / 1000`` for the
    integer ``k`` nearest to the exact ``x * 1000``; so does ``k / 1000.0`` (IEEE division is
    correctly rounded). ``x * 1000.0`` may be off the exact product by half an ulp, which can
    change ``k`` only when the product is within a hair of a half: those, zero and negatives
    (``round`` keeps the sign of ``-0.0``), huge values and NaN take ``round`` itself.
    """
    y = x * 1000.0
    if 0.0 < y < 1e12:
        k = int(y + 0.5)
        d = y - k
        if -0.499 < d < 0.499:
            return k / 1000.0
    return round(x, 3)


class BaselineDetector:
    """Per-agent behavioural baselines behind the ``Detector`` and ``Stateful`` contracts.

    Examples
    --------
    >>> from pipeline.settings import BaselineSettings
    >>> from detectors.base import Event
    >>> b = BaselineDetector(BaselineSettings(warmup_events=0, warmup_hours=0))
    >>> ev = Event({"event_id": "1", "agent_id": "a1", "agent_role": "support",
    ...             "action": {"kind": "shell", "tool": "bash", "command": "ls"}}, ts=0.0)
    >>> b.score_one(ev)
    []
    >>> b.learn_one(ev)
    >>> b.maturity("a1")
    {'events': 1, 'hours': 0.0, 'mature': True}
    """

    name = "baseline"

    def __init__(self, settings: BaselineSettings) -> None:
        s = settings
        self.settings = s
        hl = s.half_life_days * 86400.0
        parts: dict[str, Any] = {
            "novelty": NoveltyBaseline(
                s.novelty_min_score, s.novelty_memory_days, s.max_items_per_agent
            ),
            "rate": RateBaseline(s.rate_z, s.rate_ratio, s.rate_min_per_minute, hl),
            "time": TimeBaseline(s.time_min_share, s.half_life_days),
            "sequence": SequenceBaseline(
                s.sequence_max_prob,
                s.sequence_min_from,
                s.sequence_min_score,
                s.max_transitions_per_agent,
            ),
            "volume": VolumeBaseline(
                s.volume_z, s.volume_min_ratio, s.volume_min_bytes, s.volume_min_rows, hl
            ),
            "peer": PeerBaseline(
                s.peer_min_agents,
                s.peer_z,
                s.peer_min_share,
                s.volume_min_bytes,
                s.volume_min_rows,
                s.rate_min_per_minute,
            ),
            "multivariate": MultivariateBaseline(
                s.multivariate_tail,
                s.multivariate_min_raw,
                s.multivariate_trees,
                s.multivariate_height,
                s.multivariate_window,
                s.seed,
                s.multivariate_sample,
            ),
        }
        unknown = set(s.disabled) - set(ALL_BASELINES)
        if unknown:
            raise ValueError(f"unknown baselines in disabled: {', '.join(sorted(unknown))}")
        # order matters: novelty first (others read its item keys), multivariate last (reads signals)
        self._parts = [parts[n] for n in ALL_BASELINES]
        self._reporting = frozenset(n for n in ALL_BASELINES if n not in s.disabled)
        # bound methods, resolved once: the per-event loop is the hot path
        self._scorers = [(p.score, p.name in self._reporting) for p in self._parts]
        # a part whose learning is done by the others (peer reads the role profile) is not called
        self._learners = [p.learn for p in self._parts if getattr(p, "learns", True)]
        self._observers = [p.observe for p in self._parts if hasattr(p, "observe")]
        self._enabled = s.enabled
        self._warm_events = s.warmup_events
        self._warm_secs = s.warmup_hours * 3600.0
        self._agents: dict[str, AgentState] = {}
        self._dirty: set[str] = set()
        self._shared = SharedState(s.max_roles)
        self._shared_dirty = False
        #: state blobs that could not be read (started fresh); exported as a metric by the caller
        self.corrupt_blobs = 0
        #: the last maturity answer, (state, n, first_ts, last_ts, answer): the processor asks
        #: twice per event (responder, enriched record) with nothing learned in between
        self._maturity: tuple[Any, ...] = (None, 0, 0.0, 0.0, None)

    # ------------------------------------------------------------------ detection
    def _obs(self, event: Event, agent_id: str) -> Obs:
        st = self._agents.get(agent_id)
        # what scoring saw: learn_one of the same event reuses it only if nothing changed since
        # (the state object itself, not its id: the event holds it, so its id cannot be reused)
        stamp = (agent_id, st, st.n, st.last_ts, st.mcount) if st is not None else agent_id
        derived = event.derived
        cached = derived.get(_CACHE)
        if cached is not None and cached[0] == stamp:
            obs: Obs = cached[1]
            return obs
        data = event.data
        shared = self._shared
        if st is None:
            mature = False
            role = shared.role(str(data.get("agent_role") or "(none)")[:128])
        else:
            mature = st.n >= self._warm_events and (st.last_ts - st.first_ts) >= self._warm_secs
            role = shared.roles.get(st.role) or shared.role(st.role)  # role(), common case first
        o = Obs(event, extract(data, event.ts), st, role, shared.fleet, mature)
        findings: list[Finding] | None = None
        for score, reporting in self._scorers:
            found = score(o)
            if found and reporting:
                if findings is None:
                    findings = []
                findings.extend(found)
        if mature and findings:
            findings.sort(key=lambda fi: -fi.score)
            o.findings = findings[:MAX_FINDINGS]
        derived[_CACHE] = (stamp, o)
        return o

    def score_one(self, event: Event) -> list[Finding]:
        """Findings of every enabled baseline for ``event``; no state changes."""
        if not self._enabled:
            return []
        return list(self._obs(event, event.agent_id).findings)

    def _state_for(self, event: Event) -> AgentState:
        agent_id = event.agent_id
        st = self._agents.get(agent_id)
        if st is None:
            role = str(event.data.get("agent_role") or "(none)")[:128]
            profile = self._shared.role(role)
            st = AgentState.from_role(role, profile, self.settings.role_prior_weight)
            st.first_ts = st.last_ts = event.ts
            self._agents[agent_id] = st
            profile.agents += 1
            self._shared.fleet.agents += 1
        return st

    def learn_one(self, event: Event) -> None:
        """Teach the agent's baseline (and its role's profile) that ``event`` is normal."""
        if not self._enabled:
            return
        agent_id = event.agent_id
        if agent_id not in self._agents:
            self._state_for(event)  # then judged against the fresh (role-seeded) state
        o = self._obs(event, agent_id)
        st = o.st
        assert st is not None
        for learn in self._learners:
            learn(o)
        st.n += 1
        ts = event.ts
        if ts > st.last_ts:
            st.last_ts = ts
        if ts < st.first_ts:
            st.first_ts = ts
        o.role.n += 1
        self._shared.fleet.n += 1
        self._dirty.add(agent_id)
        self._shared_dirty = True
        del event.derived[_CACHE]

    def observe_one(self, event: Event) -> None:
        """For an agent under investigation: keep counting (rate, last action, last hour)
        without learning anything from the event. Optional for the caller."""
        if not self.settings.enabled:
            return
        st = self._agents.get(event.agent_id)
        if st is None:
            return  # nothing learned yet: nothing to keep consistent
        o = self._obs(event, event.agent_id)
        for observe in self._observers:
            observe(o)
        if event.ts > st.last_ts:
            st.last_ts = event.ts
        self._dirty.add(event.agent_id)
        event.derived.pop(_CACHE, None)

    def mark_normal(self, agent_id: str, events: list[Event]) -> None:
        """An analyst closed a finding as a false positive: learn these events as normal (they
        may have been withheld from learning while the agent was under investigation)."""
        for ev in sorted(events, key=lambda e: e.ts):
            if ev.agent_id == agent_id:
                ev.derived.pop(_CACHE, None)
                self.learn_one(ev)

    def maturity(self, agent_id: str) -> dict[str, Any]:
        st = self._agents.get(agent_id)
        if st is None:
            return {"events": 0, "hours": 0.0, "mature": False}
        n, first, last = st.n, st.first_ts, st.last_ts
        memo = self._maturity
        if memo[0] is st and memo[1] == n and memo[2] == first and memo[3] == last:
            return dict(memo[4])  # a copy: the caller may add to it
        out = {
            "events": n,
            "hours": _round3((last - first) / 3600.0),
            "mature": n >= self._warm_events and (last - first) >= self._warm_secs,
        }
        self._maturity = (st, n, first, last, out)
        return dict(out)

    def fit(self, events: Iterable[Event]) -> int:
        """Warm the baselines from history (events in time order per agent); returns the count."""
        n = 0
        for ev in events:
            self.learn_one(ev)
            n += 1
        return n

    # ------------------------------------------------------------------ per-agent state
    def load_state(self, agent_id: str, blob: Any | None) -> None:
        if blob is None:
            self._agents.pop(agent_id, None)
            return
        try:
            self._agents[agent_id] = AgentState.from_json(blob)
        except (ValueError, KeyError, TypeError, IndexError):
            self.corrupt_blobs += 1
            self._agents.pop(agent_id, None)

    def dump_state(self, agent_id: str) -> Any | None:
        st = self._agents.get(agent_id)
        return None if st is None else st.to_json()

    def dirty_agents(self) -> set[str]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def forget(self, agent_id: str) -> None:
        self._agents.pop(agent_id, None)
        self._dirty.discard(agent_id)

    def agents(self) -> list[str]:
        return sorted(self._agents)

    # ------------------------------------------------------------------ shared state
    def load_shared(self, blob: Any | None) -> None:
        if blob is None:
            self._shared = SharedState(self.settings.max_roles)
            return
        try:
            self._shared = SharedState.from_json(blob, self.settings.max_roles)
        except (ValueError, KeyError, TypeError, IndexError):
            self.corrupt_blobs += 1
            self._shared = SharedState(self.settings.max_roles)

    def dump_shared(self) -> Any:
        return self._shared.to_json()

    def shared_dirty(self) -> bool:
        """True if the shared state changed since the last call (and clears the flag)."""
        dirty, self._shared_dirty = self._shared_dirty, False
        return dirty

    @staticmethod
    def merge_shared(blobs: list[Any]) -> Any:
        """Combine shared snapshots of several workers: per role, element-wise max of the
        count-min sketches and agent counts; profiles and the model of the busiest snapshot."""
        from detectors.baselines.state import RoleProfile

        states = [SharedState.from_json(b, 1 << 30) for b in blobs if b is not None]
        if not states:
            return None
        out = states[0]

        def merge(a: RoleProfile, b: RoleProfile) -> RoleProfile:
            keep, other = (a, b) if a.n >= b.n else (b, a)
            keep.items.merge_max(other.items)
            keep.agents = max(keep.agents, other.agents)
            return keep

        for s in states[1:]:
            out.fleet = merge(out.fleet, s.fleet)
            for name, prof in s.roles.items():
                mine = out.roles.get(name)
                out.roles[name] = prof if mine is None else merge(mine, prof)
        return out.to_json()

    # ------------------------------------------------------------------ whole-state files
    def dump_all(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": 1,
            "shared": self.dump_shared(),
            "agents": {a: self._agents[a].to_json() for a in sorted(self._agents)},
        }

    @classmethod
    def load_all(cls, settings: BaselineSettings, data: dict[str, Any]) -> BaselineDetector:
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != 1:
            raise ValueError(f"not an {FORMAT} version 1 state file")
        b = cls(settings)
        b._shared = SharedState.from_json(data["shared"], settings.max_roles)
        for agent_id, blob in data["agents"].items():
            b._agents[str(agent_id)] = AgentState.from_json(blob)
        return b
