"""The simulated fleet: agents, their benign sessions and the injected attacks, as one ordered stream.

Contract: ``Fleet(seed, agents, start).events(duration_hours, attacks)`` yields ``(event, truth)``
pairs in event-time order. ``event`` is a dict that follows ``schemas/agent-action.schema.json``
exactly; ``truth`` is ``{"event_id", "agent_id", "scenario", "malicious"}`` (``scenario`` is
``None`` for benign events) and never travels inside the event.

Determinism: every random choice comes from ``random.Random`` instances seeded with strings
derived from (seed, start, fleet size, activity, tenant) (string seeds hash with SHA-512, so they
do not depend on ``PYTHONHASHSEED``); event ids are UUIDv5 of the same key plus the stream and
sequence number; times are integer milliseconds from ``start``. Nothing reads the wall clock: the
same parameters give the same events, byte for byte once serialised with orjson.

How time flows: each agent runs sessions as a Poisson process whose rate follows its working
hours (thinning over a maximum rate); a session is 1-4 tasks of its role; a role may add a nightly
scheduled job. Benign activity stops at ``start + duration``; an injected scenario always runs to
completion even if it starts near the end.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.errors import InputError
from pipeline.simulator.model import Agent, Draw, Step
from pipeline.simulator.roles import POOLS, ROLE_ORDER, ROLES, Role
from pipeline.simulator.scenarios import SCENARIOS, Scenario
from pipeline.validation import ValidationFailure, parse_ts

__all__ = ["Fleet", "Injection", "iso_ms", "parse_start"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR_MS = 3_600_000
#: UUIDv5 namespace of simulated event ids (uuid5(NAMESPACE_URL, "https://agentwatch.dev/simulator"))
EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://agentwatch.dev/simulator")
_REGION_OFFSETS = {"eu": (1,), "us": (-5, -8)}
_REGION_OCTET = {"eu": 10, "us": 20}


_FIT_STEP_MS = 10 * 60_000
_FIT_MAX_STEPS = 7 * 24 * 6  # look at most a week ahead


def _first_fit(agent: Agent, begin: int, end: int, off_hours: bool) -> int | None:
    """The first 10-minute mark in [begin, end) when the agent is at work (or, for off-hours
    scenarios, in its local 02:00-04:00 outside working hours); None if there is none."""
    for t in range(begin, min(end, begin + _FIT_MAX_STEPS * _FIT_STEP_MS), _FIT_STEP_MS):
        if off_hours:
            if 2.0 <= agent.local_hour(t) < 4.0 and not agent.is_working(t):
                return t
        elif agent.is_working(t):
            return t
    return None


def parse_start(value: str | datetime) -> int:
    """Milliseconds since the epoch of an RFC 3339 time (or an aware datetime); InputError if not."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InputError("start time needs a time zone (e.g. 2026-11-02T08:00:00Z)")
        return round(value.timestamp() * 1000)
    try:
        seconds = parse_ts(value)
    except ValidationFailure:
        raise InputError(f"start time {value!r} is not an RFC 3339 date-time with a time zone "
                         "(e.g. 2026-11-02T08:00:00Z)") from None
    if not 946_684_800 <= seconds < 32_503_680_000:  # 2000-01-01 .. 3000-01-01
        raise InputError(f"start time {value!r} is out of range (years 2000-2999)")
    return round(seconds * 1000)


def iso_ms(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, from integer milliseconds (no float rounding)."""
    dt = _EPOCH + timedelta(milliseconds=ms)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Injection:
    """Where and when the fleet places one scenario."""

    scenario: Scenario
    agent: Agent
    at_ms: int

    @property
    def at(self) -> str:
        return iso_ms(self.at_ms)


# one item of the merged stream: (ts_ms, stream order, seq, payload); payload is built lazily
_Item = tuple[int, int, int, "_Pending"]


@dataclass(slots=True)
class _Pending:
    agent: Agent
    step: Step
    session_id: str
    delegation: dict[str, Any] | None
    stream: str
    scenario: str | None


class Fleet:
    """A seeded fleet of simulated AI agents.

    >>> fleet = Fleet(seed=7, agents=12, start="2026-11-02T08:00:00Z")
    >>> ev, truth = next(fleet.events(duration_hours=1, attacks=()))
    >>> ev["schema_version"], truth["malicious"]
    ('1', False)
    """

    def __init__(
        self,
        seed: int = 7,
        agents: int = 40,
        start: str | datetime = "2026-11-02T08:00:00Z",
        *,
        tenant: str = "acme",
        activity: float = 1.0,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {seed!r}")
        if isinstance(agents, bool) or not isinstance(agents, int) or not 1 <= agents <= 100_000:
            raise InputError(f"agents must be an integer from 1 to 100000, got {agents!r}")
        if not isinstance(activity, int | float) or not 0 < activity <= 1000 or math.isnan(activity):
            raise InputError(f"activity must be a number in (0, 1000], got {activity!r}")
        if not isinstance(tenant, str) or not tenant or len(tenant) > 64 or not tenant.replace("-", "").isalnum():
            raise InputError(f"tenant must be 1-64 letters, digits or dashes, got {tenant!r}")
        self.seed = seed
        self.size = agents
        self.start_ms = parse_start(start)
        self.start = iso_ms(self.start_ms)
        self.tenant = tenant
        self.activity = float(activity)
        self._key = f"agentwatch-sim/1/{seed}/{self.start_ms}/{agents}/{self.activity!r}/{tenant}"
        self.agents: tuple[Agent, ...] = tuple(self._build_agents())
        self._by_id = {a.agent_id: a for a in self.agents}

    # ------------------------------------------------------------ composition

    def _role_counts(self) -> dict[str, int]:
        n = self.size
        counts = dict.fromkeys(ROLE_ORDER, 0)
        for name in ROLE_ORDER[:n]:
            counts[name] = 1
        rest = n - sum(counts.values())
        if rest > 0:
            total = sum(ROLES[r].weight for r in ROLE_ORDER)
            shares = {r: rest * ROLES[r].weight / total for r in ROLE_ORDER}
            floors = {r: int(shares[r]) for r in ROLE_ORDER}
            left = rest - sum(floors.values())
            # largest remainder, ties broken by the fixed role order
            for r in sorted(ROLE_ORDER, key=lambda r: (-(shares[r] - floors[r]), ROLE_ORDER.index(r)))[:left]:
                floors[r] += 1
            for r in ROLE_ORDER:
                counts[r] += floors[r]
        return counts

    def _owners(self) -> list[str]:
        from pipeline.simulator.pools import FIRST_NAMES, LAST_NAMES

        r = random.Random(f"{self.seed}/{self.tenant}/owners")
        wanted = min(max(2, math.ceil(self.size / 2.5)), len(FIRST_NAMES) * len(LAST_NAMES))
        seen: dict[str, None] = {}
        while len(seen) < wanted:
            seen[f"{r.choice(FIRST_NAMES)}.{r.choice(LAST_NAMES)}@{self.tenant}.example"] = None
        return list(seen)

    def _build_agents(self) -> Iterator[Agent]:
        owners = self._owners()
        for role_index, (name, count) in enumerate(self._role_counts().items()):
            role = ROLES[name]
            for i in range(1, count + 1):
                agent_id = f"{role.prefix}-{i:03d}"
                r = random.Random(f"{self.seed}/{self.tenant}/agent/{agent_id}")
                region = "eu" if r.random() < 0.6 else "us"
                environment = r.choices([e for e, _ in role.environments], [w for _, w in role.environments])[0]
                start_h = role.work_hours[0] + r.choice((-1, 0, 0, 1))
                end_h = role.work_hours[1] + r.choice((-1, 0, 0, 1))
                focus = {pool: tuple(r.sample(POOLS[pool], min(k, len(POOLS[pool])))) for pool, k in role.focus.items()}
                yield Agent(
                    agent_id=agent_id,
                    role=name,
                    owner=r.choice(owners),
                    environment=environment,
                    enforcement_point=role.enforcement_points[region],
                    tenant=self.tenant,
                    source_ip=f"10.{_REGION_OCTET[region]}.{role_index * 40 + i // 250}.{i % 250 + 2}",
                    region=region,
                    utc_offset_h=r.choice(_REGION_OFFSETS[region]),
                    work_start_h=start_h,
                    work_end_h=end_h,
                    workdays=role.workdays,
                    engine=r.choice(role.engines),
                    unix_user=f"svc-{agent_id}",
                    focus=focus,
                )

    def agent(self, agent_id: str) -> Agent:
        try:
            return self._by_id[agent_id]
        except KeyError:
            raise InputError(f"no agent {agent_id!r} in this fleet (agents: {self.agents[0].agent_id} ...)") from None

    # ------------------------------------------------------------ planning attacks

    def plan(self, duration_hours: float = 24.0, attacks: Sequence[Scenario] = SCENARIOS) -> list[Injection]:
        """Which agent each scenario is attributed to and when it starts (seeded, deterministic).

        Unpinned scenarios are spread over 30-95 % of the run, moved forward to the next time
        the chosen agent is at work (or, for ``off_hours`` scenarios, to its local 02:00-04:00
        outside working hours) when the run has such a time.
        """
        end_ms = self._end_ms(duration_hours)
        dur = end_ms - self.start_ms
        r = random.Random(f"{self._key}/plan")
        out: list[Injection] = []
        for i, sc in enumerate(attacks):
            if sc.agent_id is not None:
                agent = self.agent(sc.agent_id)
            else:
                eligible = [a for a in self.agents if a.role in sc.roles]
                if not eligible:
                    raise InputError(
                        f"scenario {sc.name} needs an agent of role {' or '.join(sc.roles)}; "
                        f"this fleet of {self.size} has none (use more agents)"
                    )
            slot = self.start_ms + round(dur * (0.3 + 0.65 * (i + 0.5) / max(len(attacks), 1)))
            if sc.agent_id is None:
                # prefer agents for which the run has a fitting moment (at work, or at night),
                # then production agents: that is where an attack matters
                pool = r.sample(eligible, min(len(eligible), 64))
                fitting = [a for a in pool if _first_fit(a, slot, end_ms, sc.off_hours) is not None]
                if not fitting and sc.off_hours:
                    fitting = [a for a in pool if _first_fit(a, self.start_ms, slot, True) is not None]
                fitting = fitting or pool
                agent = r.choice([a for a in fitting if a.environment == "prod"] or fitting)
            if sc.at_hours is not None:
                at = self.start_ms + round(sc.at_hours * _HOUR_MS)
                if not self.start_ms <= at < end_ms:
                    raise InputError(f"scenario {sc.name} at {sc.at_hours} h is outside the run of {duration_hours} h")
            else:
                fit = _first_fit(agent, slot, end_ms, sc.off_hours)
                if fit is None and sc.off_hours:  # none after the slot: the earliest night in the run
                    fit = _first_fit(agent, self.start_ms, slot, True)
                at = slot if fit is None else min(fit + r.randrange(0, _FIT_STEP_MS), end_ms - 1)
            out.append(Injection(sc, agent, at))
        return out

    def _end_ms(self, duration_hours: float) -> int:
        if isinstance(duration_hours, bool) or not isinstance(duration_hours, int | float) \
                or not 0 < duration_hours <= 24 * 366 or math.isnan(duration_hours):
            raise InputError(f"duration must be more than 0 and at most 8784 hours, got {duration_hours!r}")
        return self.start_ms + round(duration_hours * _HOUR_MS)

    # ------------------------------------------------------------ the stream

    def events(
        self, duration_hours: float = 24.0, attacks: Sequence[Scenario] = SCENARIOS
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """``(event, truth)`` pairs in event-time order; see the module docstring."""
        end_ms = self._end_ms(duration_hours)
        plan = self.plan(duration_hours, attacks)
        streams: list[Iterator[_Item]] = []
        order = 0
        for agent in self.agents:
            streams.append(self._sessions(agent, order, end_ms))
            order += 1
            nightly = ROLES[agent.role].nightly
            if nightly is not None:
                streams.append(self._nightly(agent, order, end_ms, *nightly))
                order += 1
        for i, inj in enumerate(plan):
            streams.append(self._injection(inj, i, order))
            order += 1
        for ts, _, seq, p in heapq.merge(*streams):
            event_id = str(uuid.uuid5(EVENT_NAMESPACE, f"{self._key}/{p.stream}/{seq}"))
            yield self._event(event_id, ts, p), {
                "event_id": event_id,
                "agent_id": p.agent.agent_id,
                "scenario": p.scenario,
                "malicious": p.scenario is not None,
            }

    def _event(self, event_id: str, ts: int, p: _Pending) -> dict[str, Any]:
        a, step = p.agent, p.step
        ev: dict[str, Any] = {
            "schema_version": "1",
            "event_id": event_id,
            "ts": iso_ms(ts),
            "agent_id": a.agent_id,
            "owner": a.owner,
            "session_id": p.session_id,
            "environment": a.environment,
            "enforcement_point": a.enforcement_point,
            "action": step.action(),
            "decision": step.decision,
            "agent_role": a.role,
            "tenant": a.tenant,
        }
        if step.approver is not None:
            ev["approver"] = step.approver
        ev["source_ip"] = a.source_ip
        if p.delegation is not None:
            ev["delegation"] = {**p.delegation, "scopes": list(p.delegation["scopes"])}
        return ev

    def _session_ids(self, agent: Agent, stream: str, n: int, t: int, role: Role) -> tuple[str, dict[str, Any] | None]:
        h = hashlib.sha256(f"{self._key}/{stream}/session/{n}".encode()).hexdigest()
        session_id = f"sess-{h[:16]}"
        delegation = None
        if role.delegation_scopes:
            delegation = {"token_id": f"tok-{h[16:32]}", "scopes": list(role.delegation_scopes),
                          "expires_at": iso_ms(t + 2 * _HOUR_MS)}
        return session_id, delegation

    def _steps(self, d: Draw, role: Role) -> list[Step]:
        tasks, weights = zip(*((fn, w) for w, fn in role.tasks), strict=True)
        out: list[Step] = []
        for _ in range(d.n(*role.tasks_per_session)):
            out.extend(d.r.choices(tasks, weights)[0](d))
        return out

    def _sessions(self, agent: Agent, order: int, end_ms: int) -> Iterator[_Item]:
        role = ROLES[agent.role]
        stream = agent.agent_id
        r = random.Random(f"{self._key}/activity/{stream}")
        d = Draw(r, agent, POOLS)
        max_rate = role.sessions_per_hour * self.activity  # sessions per hour at work
        t, seq, n = self.start_ms, 0, 0
        while True:
            t += max(1, round(r.expovariate(max_rate) * _HOUR_MS))
            if t >= end_ms:
                return
            factor = 1.0 if agent.is_working(t) else role.off_hours_factor
            if r.random() >= factor:  # thinning: fewer sessions outside working hours
                continue
            session_id, delegation = self._session_ids(agent, stream, n, t, role)
            n += 1
            for step in self._steps(d, role):
                t += max(1, round(step.gap_s * 1000))
                if t >= end_ms:
                    return
                yield t, order, seq, _Pending(agent, step, session_id, delegation, stream, None)
                seq += 1

    def _nightly(self, agent: Agent, order: int, end_ms: int, hour: int, task: Any) -> Iterator[_Item]:
        stream = f"{agent.agent_id}/nightly"
        r = random.Random(f"{self._key}/activity/{stream}")
        d = Draw(r, agent, POOLS)
        role = ROLES[agent.role]
        day_ms = 86_400_000
        # local midnight of the first day, then the job hour every day
        first = (self.start_ms + agent.utc_offset_h * _HOUR_MS) // day_ms * day_ms - agent.utc_offset_h * _HOUR_MS
        seq, n = 0, 0
        for day in range(0, (end_ms - first) // day_ms + 1):
            t = first + day * day_ms + hour * _HOUR_MS + r.randrange(0, 4 * 60_000)
            steps = task(d)
            if t < self.start_ms:
                continue
            if t >= end_ms:
                return
            session_id, delegation = self._session_ids(agent, stream, n, t, role)
            n += 1
            for step in steps:
                t += max(1, round(step.gap_s * 1000))
                if t >= end_ms:
                    return
                yield t, order, seq, _Pending(agent, step, session_id, delegation, stream, None)
                seq += 1

    def _injection(self, inj: Injection, index: int, order: int) -> Iterator[_Item]:
        stream = f"scenario/{index}/{inj.scenario.name}"
        r = random.Random(f"{self._key}/{stream}")
        d = Draw(r, inj.agent, POOLS)
        role = ROLES[inj.agent.role]
        session_id, delegation = self._session_ids(inj.agent, stream, 0, inj.at_ms, role)
        t = inj.at_ms
        for seq, step in enumerate(inj.scenario.build(d)):
            t += 0 if seq == 0 else max(1, round(step.gap_s * 1000))
            yield t, order, seq, _Pending(inj.agent, step, session_id, delegation, stream, inj.scenario.name)
