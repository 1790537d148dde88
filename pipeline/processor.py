"""The processing core: raw input records in, output records out — no Kafka, no files.

The live worker (``pipeline/stages``) and ``agentwatch replay`` both drive one
:class:`Processor`; only the transport around it differs, so replay is not a second
implementation. For each batch of action records, in order:

1. decode and validate (``pipeline.validation``) — failures become dead letters;
2. event-time check against the partition's clock (see *Event time* below);
3. drop duplicates by ``event_id`` (per agent, bounded, part of the checkpointed agent state);
4. detectors ``score_one`` -> findings; risk scorer -> risk; responder -> alerts and
   enforcement commands; incident tracker -> incident records;
5. the enriched record (event + risk + findings) for SIEMs;
6. detectors ``learn_one`` — unless the agent has an open incident (no poisoning).

*Event time.* Each partition has a watermark: the largest ``ts`` accepted so far. An event more
than ``stream.max_lateness_seconds`` behind it is dead-lettered as ``time_skew`` (late); so is an
event from the future: more than ``stream.max_lead_seconds`` ahead of the time the broker stamped
on its record, or, for input without a broker timestamp (replay), more than
``stream.max_replay_gap_seconds`` ahead of the watermark. A quiet night or weekend is therefore
never mistaken for a lie, and one forged far-future timestamp cannot drag the watermark forward
and make everything after it "late". Anything in between, including out-of-order events, is
processed, and baselines treat a step back in time as zero elapsed time. The first event of a
partition in a process sets its watermark, so replaying last year's history works. Nothing here
reads the wall clock except through the ``clock`` given to the responder and tracker: replay passes
event time, so its output is byte-for-byte reproducible.

*State.* Every part with per-agent state implements :class:`detectors.base.Stateful`. The
processor loads an agent's state on its first event (through ``state_loader``), and after a
batch :meth:`checkpoint` returns one JSON blob per changed agent for the caller to persist (the
live stage writes them to a faust table, batched: one changelog record per changed agent per
batch, not per event). At most ``stream.max_agents_in_memory`` agents stay in memory; the least
recently seen are dropped after their state is checkpointed.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

from detectors.base import Detector, Stateful
from detectors.events import Event, Finding, Severity, Value
from pipeline.records import Output, deterministic_id, iso_time
from pipeline.settings import Settings
from pipeline.validation import ValidationFailure, decode_event

__all__ = ["FLEET_KEY", "EventClock", "InputRecord", "Processor", "ProcessorStats"]

PIPELINE_VERSION = "0.1.0"
_CORE = "core"
#: state key of fleet-wide response state (fleet suppressions, the blast-radius window); each
#: worker keeps its own copy, so fleet-wide limits apply per worker
FLEET_KEY = "*"


class InputRecord(Value):
    """One raw message as read from Kafka or a replay file.

    (Not a dataclass, as :class:`~detectors.events.Value` says.)"""

    __slots__ = ("key", "line", "offset", "partition", "timestamp_ms", "topic", "value")
    _NAMES = ("value", "key", "topic", "partition", "offset", "timestamp_ms", "line")

    def __init__(self, value: bytes | None, key: bytes | None = None, topic: str = "", partition: int = 0,
                 offset: int = 0, timestamp_ms: int | None = None, line: int | None = None) -> None:
        self.value = value
        self.key = key
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp_ms = timestamp_ms
        self.line = line  # replay: 1-based line number in the input file


@dataclass
class ProcessorStats:
    """Counters since start; the metrics module reads and exports them (no per-event calls)."""

    events_in: int = 0
    enriched: int = 0
    duplicates: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    findings: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)


class EventClock:
    """A clock that reads event time: replay's clock, so replays are reproducible."""

    def __init__(self) -> None:
        self.now_ts = 0.0

    def __call__(self) -> float:
        return self.now_ts


def _id_hash(event_id: str) -> bytes:
    """64-bit BLAKE2b of an event id: what dedup remembers. Ids are attacker-chosen, but making
    a new id collide with one this agent used recently is a second-preimage search on 64 bits,
    far out of reach; 8 bytes per id instead of the id itself keeps the checkpointed state small
    (256 UUID-like ids as JSON were ~14 KB per agent, written on every state flush)."""
    h = _BLAKE2B_8.copy()  # (a copy of an empty one: the constructor's keyword parsing cost more)
    h.update(event_id.encode("utf-8", "surrogatepass"))
    return h.digest()


_BLAKE2B_8 = blake2b(digest_size=8)


class _AgentCore:
    """Per-agent state the processor itself keeps: recent event ids for dedup.

    ``recent`` maps an id's 8-byte hash -> event time (whole seconds) in arrival order (a plain
    dict keeps insertion order and hands its keys to ``bytes.join`` at C speed for the
    checkpoint); ``order`` is the same hashes in a deque, so forgetting the oldest is O(1)."""

    __slots__ = ("order", "partition", "recent")

    def __init__(self) -> None:
        self.recent: dict[bytes, int] = {}
        self.order: deque[bytes] = deque()
        self.partition = 0

    def seen(self, event_id: str, ts: float, window: float, cap: int) -> bool:
        """True if this id was seen recently; otherwise remember it. Bounded by ``cap`` ids
        and by ``window`` seconds of event time."""
        key = _id_hash(event_id)
        recent = self.recent
        if key in recent:
            return True
        recent[key] = int(ts)
        order = self.order
        order.append(key)
        while len(order) > cap:
            del recent[order.popleft()]
        horizon = ts - window
        while order:
            oldest = order[0]
            if recent[oldest] >= horizon or oldest == key:
                break
            del recent[order.popleft()]
        return False

    def remember(self, key: bytes, ts: int) -> None:
        if key not in self.recent:
            self.recent[key] = ts
            self.order.append(key)

    def dump(self) -> dict[str, Any]:
        # the hashes packed (base64 of 8 bytes each) and the times as integers: ~5.5 KB at 256
        # ids instead of ~12 KB, built and encoded in ~7 µs
        return {"p": self.partition, "h": base64.b64encode(b"".join(self.recent)).decode("ascii"),
                "t": list(self.recent.values())}

    @classmethod
    def load(cls, blob: Any) -> _AgentCore:
        core = cls()
        if isinstance(blob, dict):
            core.partition = int(blob.get("p", 0))
            try:
                if isinstance(blob.get("h"), str) and isinstance(blob.get("t"), list):
                    packed = base64.b64decode(blob["h"].encode("ascii"), validate=True)
                    times = blob["t"]
                    if len(packed) == 8 * len(times):
                        for i, v in enumerate(times):
                            core.remember(packed[8 * i : 8 * i + 8], int(v))
                else:  # earlier layouts: "ids" + "ts" lists, or [[id, ts], ...] pairs
                    ids = blob.get("ids", ())
                    times = blob.get("ts")
                    if isinstance(times, list) and isinstance(ids, list) and len(times) == len(ids):
                        pairs = list(zip(ids, times, strict=True))
                    else:
                        pairs = [(i[0], i[1]) for i in ids if isinstance(i, list) and len(i) == 2]
                    for k, v in pairs:
                        core.remember(_id_hash(str(k)), int(float(v)))
            except (TypeError, ValueError, binascii.Error):
                core.recent.clear()  # a damaged blob: dedup memory starts afresh, nothing stops
                core.order.clear()
        return core


StateLoader = Callable[[str], Any | None]


#: one input record after the first pass: its dead letter, or the admitted event with the
#: stateless detectors' findings
_Slot = Output | tuple[InputRecord, Event, list[Finding]]


class Processor:
    """Drives events through validation, dedup, detectors, risk, response and incidents."""

    def __init__(
        self,
        settings: Settings,
        *,
        detectors: Iterable[Detector] = (),
        scorer: Any | None = None,
        responder: Any | None = None,
        tracker: Any | None = None,
        baselines: Any | None = None,
        clock: Callable[[], float] | None = None,
        state_loader: StateLoader | None = None,
        enriched_extra: Callable[[Event], dict[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.detectors = list(detectors)
        self.scorer = scorer
        self.responder = responder
        self.tracker = tracker
        self.baselines = baselines  # the baseline detector, also in ``detectors``: maturity, mark_normal
        self.clock = clock if clock is not None else time.time
        self.state_loader = state_loader
        self.enriched_extra = enriched_extra
        self.stats = ProcessorStats()
        # stateless detectors at the front of the list score a chunk at a time (see
        # detectors.base.Detector); the rest, in order, one event at a time
        n_stateless = 0
        for det in self.detectors:
            if not getattr(det, "stateless", False):
                break
            n_stateless += 1
        self._stateless = self.detectors[:n_stateless]
        self._chunk_time: str | None = None
        self._stateful_detectors = self.detectors[n_stateless:]
        self._agents: OrderedDict[str, _AgentCore] = OrderedDict()
        self._dirty: set[str] = set()
        self._clocks: dict[int, float] = {}
        self._stateful: dict[str, Stateful] = {}
        for name, part in self._parts():
            if isinstance(part, Stateful):
                self._stateful[name] = part
        s = settings.stream
        self._max_bytes = s.max_message_bytes
        self._lateness = s.max_lateness_seconds
        self._lead = s.max_lead_seconds
        self._gap = s.max_replay_gap_seconds
        self._dedup_cap = s.dedup_ids_per_agent
        self._dedup_window = s.dedup_window_seconds
        self._max_agents = s.max_agents_in_memory

    def _parts(self) -> list[tuple[str, Any]]:
        parts: list[tuple[str, Any]] = [(f"det:{d.name}", d) for d in self.detectors]
        for name, part in (("risk", self.scorer), ("response", self.responder), ("incidents", self.tracker)):
            if part is not None:
                parts.append((name, part))
        return parts

    # -- state -------------------------------------------------------------------------------

    def _agent(self, agent_id: str, partition: int) -> _AgentCore:
        core = self._agents.get(agent_id)
        if core is not None:
            self._agents.move_to_end(agent_id)
            return core
        blob = self.state_loader(agent_id) if self.state_loader is not None else None
        parts = blob if isinstance(blob, dict) else {}
        core = _AgentCore.load(parts.get(_CORE))
        core.partition = partition
        for name, part in self._stateful.items():
            part.load_state(agent_id, parts.get(name))
        self._agents[agent_id] = core
        return core

    def checkpoint(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """State blobs of every agent changed since the last checkpoint: ``{agent_id: (partition,
        blob)}``. The caller persists them (table, file) before committing input offsets.

        Blobs may share structure with the live state (copying it costs more than the encoding):
        encode them before processing more events."""
        return self.dump_agents(self.take_dirty())

    def take_dirty(self) -> set[str]:
        """The agents changed since the last call (their state must be written), clearing the marks."""
        dirty = set(self._dirty)
        self._dirty.clear()
        for part in self._stateful.values():
            dirty |= part.dirty_agents()
        return dirty

    def dump_agents(self, agent_ids: Iterable[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        """State blobs of these agents as they are now (see :meth:`checkpoint`)."""
        out: dict[str, tuple[int, dict[str, Any]]] = {}
        for agent_id in agent_ids:
            core = self._agents.get(agent_id)
            if core is None:
                continue
            blob: dict[str, Any] = {_CORE: core.dump()}
            for name, part in self._stateful.items():
                value = part.dump_state(agent_id)
                if value is not None:
                    blob[name] = value
            out[agent_id] = (core.partition, blob)
        return out

    def evict(self, keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Drop the least recently seen agents beyond the memory cap, except those in ``keep``
        (changed, state not yet written). Call once the others' state is persisted; their state
        reloads from the table on their next event."""
        evicted: list[str] = []
        if len(self._agents) <= self._max_agents:
            return evicted
        excess = len(self._agents) - self._max_agents
        for agent_id in list(self._agents):
            if excess <= 0:
                break
            if agent_id in keep or agent_id == FLEET_KEY:
                continue
            del self._agents[agent_id]
            for part in self._stateful.values():
                part.forget(agent_id)
            evicted.append(agent_id)
            excess -= 1
        return evicted

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget in-memory state of agents on partitions this worker no longer owns."""
        for agent_id in [a for a, c in self._agents.items() if c.partition in partitions]:
            del self._agents[agent_id]
            for part in self._stateful.values():
                part.forget(agent_id)
        for p in partitions:
            self._clocks.pop(p, None)

    @property
    def agents_tracked(self) -> int:
        return len(self._agents)

    def tracked_agents(self) -> list[str]:
        """Agent ids with state in memory (not the fleet key)."""
        return [a for a in self._agents if a != FLEET_KEY]

    # -- processing --------------------------------------------------------------------------

    def process_actions(self, records: Iterable[InputRecord]) -> list[Output]:
        """Process a chunk of action records in order; return every output they caused.

        Two passes: the first decodes, checks event time and drops duplicates (every dead letter
        is emitted here); then the stateless detectors score all admitted events, each detector
        in one go; the second pass runs the stateful detectors, risk, response, incidents and
        learning event by event in input order, so each event sees the state its predecessors
        left, exactly as if everything ran per event.
        """
        out: list[Output] = []
        self._run(self._prepare(list(records)), out)
        return out

    def process_urgent_first(self, records: Sequence[InputRecord], *, step: int = 32,
                             prepare: int = 32) -> Iterator[list[Output]]:
        """The live worker's way through one fetch: like :meth:`process_actions`, but an agent
        with a finding of a stateless detector (the rules; low severity or above) jumps the queue.
        Rule findings are rare (25 in 40,000 simulated events) and even a medium one can take an
        agent's risk over a response threshold.

        Records are prepared (decoded, admitted, scored by the stateless detectors)
        ``prepare`` at a time. As soon as a prepared slice holds such a finding, every prepared
        and not yet processed event of those agents is processed — in their own order — and
        the outputs are yielded, so the caller sends the isolation command before the rest of
        the fetch is processed; then the rest follows, ``step`` events per yield. (In strict
        order, a fetch of hundreds of events held an attack at its end behind all of them: tens
        of milliseconds at 5,000 events/s.) Every prepared slice yields too, an empty list when
        nothing was urgent, so the caller's event loop gets a turn at least every ``prepare``
        events: without it, preparing the rest of a 2,000-event fetch held a command already
        handed to the producer for ~50 ms.

        Each agent's events keep their order, and dead letters keep their place among the
        unhurried events; only the interleaving of different agents changes, which Kafka does
        not define across partitions either. Replay keeps strict input order
        (:meth:`process_actions`) so that it stays reproducible.

        Cost: the same work as :meth:`process_actions` (``python -m bench.cost``: 488.5k vs
        487.0k instructions per event); the events of a fetch are decoded before most are
        processed, which may lose some cache locality (an in-process timing once read ~8% more
        CPU, within this machine's noise; worker A/B runs showed no difference). For that, an
        attack at the end of a fetch waits for the cheap first pass of the events before it
        (decode, validation, rules: about 45% of an event's cost) instead of all of their
        processing.
        """
        pending: list[_Slot | None] = []  # None: processed early
        waiting: dict[str, list[int]] = {}  # agent -> its positions in pending
        for start in range(0, len(records), prepare):
            items = self._prepare(records[start : start + prepare])
            hot: set[str] = set()
            for item in items:
                if not isinstance(item, Output):
                    agent_id = item[1].agent_id
                    waiting.setdefault(agent_id, []).append(len(pending))
                    if agent_id not in hot:
                        for f in item[2]:
                            if f.severity >= Severity.LOW:
                                hot.add(agent_id)
                                break
                pending.append(item)
            if hot:
                positions = sorted(i for agent_id in hot for i in waiting.pop(agent_id))
                now: list[_Slot] = []
                for i in positions:
                    now.append(pending[i])  # type: ignore[arg-type]
                    pending[i] = None
                out: list[Output] = []
                self._run(now, out)
                yield out
            else:
                yield []  # a turn for the caller between slices (a command sent earlier goes out)
        rest = [it for it in pending if it is not None]
        for start in range(0, len(rest), step):
            out = []
            self._run(rest[start : start + step], out)
            yield out

    def _prepare(self, records: Sequence[InputRecord]) -> list[_Slot]:
        """First pass: each record becomes a dead letter (kept in place, so outputs stay in
        input order) or an admitted event with the stateless detectors' findings."""
        if records and FLEET_KEY not in self._agents:
            self._agent(FLEET_KEY, records[0].partition)
        slots: list[_Slot] = []
        admitted: list[Event] = []
        for rec in records:
            result = self._admit(rec)
            if isinstance(result, Event):
                admitted.append(result)
                slots.append((rec, result, []))
            elif result is not None:  # None: a duplicate, dropped
                slots.append(result)
        if admitted:
            early = [[det.score_one(ev) for ev in admitted] for det in self._stateless]
            i = 0
            for slot in slots:
                if not isinstance(slot, Output):
                    findings = slot[2]
                    for found in early:
                        findings.extend(found[i])
                    i += 1
        return slots

    def _run(self, slots: Sequence[_Slot], out: list[Output]) -> None:
        """Second pass, in the order given: dead letters as they are, events through
        :meth:`_process_one`."""
        self._chunk_time = None if isinstance(self.clock, EventClock) else iso_time(self.clock())
        first = len(out)
        dirty = self._dirty
        for slot in slots:
            if isinstance(slot, Output):
                out.append(slot)
            else:
                # (again: a state flush may have taken the agent between its admission and now)
                dirty.add(slot[1].agent_id)
                self._process_one(slot[0], slot[1], slot[2], out)
        counts = self.stats.outputs
        for o in out[first:]:
            counts[o.kind] = counts.get(o.kind, 0) + 1

    def _admit(self, rec: InputRecord) -> Event | Output | None:
        """Decode, validate, check event time, drop duplicates: the event, its dead letter, or
        None for a duplicate."""
        stats = self.stats
        stats.events_in += 1
        result = decode_event(rec.value, self._max_bytes)
        if isinstance(result, ValidationFailure):
            return self._dead_letter(rec, result)
        event = result
        ts = event.ts
        if rec.timestamp_ms is not None:
            received = rec.timestamp_ms / 1000.0
            if ts > received + self._lead:
                return self._dead_letter(rec, ValidationFailure(
                    "time_skew", f"ts {event.data['ts']} is {ts - received:.0f}s ahead of the time the broker "
                    f"received it ({iso_time(received)}; limit {self._lead:.0f}s)"))
        clock = self._clocks.get(rec.partition)
        if clock is not None:
            if ts < clock - self._lateness:
                return self._dead_letter(rec, ValidationFailure(
                    "time_skew", f"ts {event.data['ts']} is {clock - ts:.0f}s behind the stream's watermark "
                    f"{iso_time(clock)} (limit {self._lateness:.0f}s)"))
            if rec.timestamp_ms is None and ts > clock + self._gap:
                return self._dead_letter(rec, ValidationFailure(
                    "time_skew", f"ts {event.data['ts']} is {ts - clock:.0f}s ahead of the stream's watermark "
                    f"{iso_time(clock)} (limit {self._gap:.0f}s)"))
            if ts > clock:
                self._clocks[rec.partition] = ts
        else:
            self._clocks[rec.partition] = ts
        agent_id = event.agent_id
        core = self._agent(agent_id, rec.partition)
        core.partition = rec.partition
        if core.seen(event.event_id, ts, self._dedup_window, self._dedup_cap):
            stats.duplicates += 1
            return None
        self._dirty.add(agent_id)
        return event

    def _process_one(self, rec: InputRecord, event: Event, findings: list[Finding], out: list[Output]) -> None:
        """Everything after admission for one event; ``findings`` holds the stateless detectors'."""
        stats = self.stats
        ts = event.ts
        if isinstance(self.clock, EventClock):
            self.clock.now_ts = max(self.clock.now_ts, ts)
        agent_id = event.agent_id
        for det in self._stateful_detectors:
            findings.extend(det.score_one(event))
        if findings:
            fstats = stats.findings
            for f in findings:
                fstats[f.detector] = fstats.get(f.detector, 0) + 1
        risk = self.scorer.assess(event, findings) if self.scorer is not None else None
        response: list[Output] = []
        maturity = self.baselines.maturity(agent_id) if self.baselines is not None else None
        if self.responder is not None:
            response = self.responder.on_event(event, findings, risk, maturity=maturity)
        enriched = self._enriched(event, findings, risk, maturity)
        enriched.partition = rec.partition
        out.append(enriched)
        if response:
            out.extend(response)
        if self.tracker is not None and (response or findings):
            # (a clean event that caused no alert or command never touches an incident)
            out.extend(self.tracker.on_outputs(event, [enriched, *response]))
        stats.enriched += 1

        if self.tracker is None or not self.tracker.has_open(agent_id):
            for det in self._stateful_detectors:
                det.learn_one(event)
        else:
            # under investigation: no learning from what may be the attacker (no poisoning),
            # but rate and sequence context keep moving
            for det in self._stateful_detectors:
                observe = getattr(det, "observe_one", None)
                if observe is not None:
                    observe(event)

    def _enriched(self, event: Event, findings: list[Finding], risk: Any, maturity: Any = None) -> Output:
        data = event.data
        meta: dict[str, Any] = {
            "record_id": deterministic_id("enr_", data["agent_id"], data["event_id"]),
            "risk_score": 0,
            "agent_risk": 0,
            "risk_factors": [],
            "findings": [f.to_dict() for f in findings],
            "processed_at": self._processed_at(),
            "pipeline_version": PIPELINE_VERSION,
        }
        if risk is not None:
            r = risk.to_dict()
            meta["risk_score"] = r.get("score", 0)
            meta["agent_risk"] = r.get("agent_risk", 0)
            meta["risk_factors"] = r.get("factors", [])
        if self.baselines is not None:
            meta["baseline"] = maturity
        if self.enriched_extra is not None:
            meta.update(self.enriched_extra(event))
        value = dict(data)
        value["agentwatch"] = meta
        return Output("enriched", data["agent_id"], value)

    def _processed_at(self) -> str:
        """The time an event was processed. With a wall clock, one reading per chunk of input
        (a chunk takes milliseconds); with replay's event clock, per event (reproducible)."""
        if self._chunk_time is not None:
            return self._chunk_time
        return iso_time(self.clock())

    def _dead_letter(self, rec: InputRecord, failure: ValidationFailure) -> Output:
        counts = self.stats.dead_letters
        counts[failure.code] = counts.get(failure.code, 0) + 1
        raw = rec.value or b""
        value: dict[str, Any] = {
            "dead_letter_id": deterministic_id("dlq_", rec.topic, rec.partition, rec.offset, rec.line, raw),
            "error_code": failure.code,
            "reason": failure.reason,
            "source": {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset},
            "original_b64": base64.b64encode(raw).decode("ascii"),
            "original_key_b64": base64.b64encode(rec.key).decode("ascii") if rec.key is not None else None,
            "original_size": len(raw),
        }
        if rec.line is not None:
            value["source"]["line"] = rec.line
        if rec.timestamp_ms is not None:
            value["source"]["timestamp"] = iso_time(rec.timestamp_ms / 1000.0)
        key = rec.key.decode("utf-8", "replace") if rec.key is not None else None
        return Output("dlq", key, value, rec.partition)

    # -- other inputs ------------------------------------------------------------------------

    def process_acks(self, acks: Iterable[dict[str, Any]]) -> list[Output]:
        """Acknowledgements from enforcement points (already decoded and validated)."""
        out: list[Output] = []
        for ack in acks:
            agent_id = str(ack.get("agent_id", ""))
            if agent_id:
                self._agent(agent_id, self._agents[agent_id].partition if agent_id in self._agents else 0)
                self._dirty.add(agent_id)
            produced = self.responder.on_ack(ack) if self.responder is not None else []
            out.extend(produced)
            if self.tracker is not None:
                if produced:
                    out.extend(self.tracker.on_outputs(None, produced))
                out.extend(self.tracker.on_ack(ack))
        return out

    def process_control(self, messages: Iterable[dict[str, Any]]) -> list[Output]:
        """Analyst decisions (release, suppression, incident updates), already validated."""
        out: list[Output] = []
        for msg in messages:
            agent_id = str(msg.get("agent_id", ""))
            if agent_id:
                self._agent(agent_id, self._agents[agent_id].partition if agent_id in self._agents else 0)
                self._dirty.add(agent_id)
            produced = self.responder.on_control(msg) if self.responder is not None else []
            out.extend(produced)
            if self.tracker is not None:
                if produced:
                    out.extend(self.tracker.on_outputs(None, produced))
                out.extend(self.tracker.on_control(msg))
            payload = msg.get("payload") or {}
            if (
                self.baselines is not None
                and msg.get("type") == "incident_update"
                and payload.get("status") == "false_positive"
            ):
                events = []
                for data in payload.get("evidence_events") or ():
                    result = decode_event_dict(data)
                    if result is not None:
                        events.append(result)
                if events:
                    self.baselines.mark_normal(agent_id, events)
        return out

    def tick(self, now: float) -> list[Output]:
        """Time-driven work (ack timeouts, expiries, alert window flushes)."""
        return self._respond_without_event(self.responder.on_tick(now) if self.responder is not None else [])

    def finish(self) -> list[Output]:
        """End of input (replay): flush open alert groups as their final versions."""
        flush = getattr(self.responder, "flush", None)
        return self._respond_without_event(flush() if flush is not None else [])

    def _respond_without_event(self, produced: list[Output]) -> list[Output]:
        out = list(produced)
        if self.tracker is not None and produced:
            out.extend(self.tracker.on_outputs(None, produced))
        counts = self.stats.outputs
        for o in out:
            counts[o.kind] = counts.get(o.kind, 0) + 1
        return out


def decode_event_dict(data: Any) -> Event | None:
    """An Event from an already-decoded dict, or None if it is not a valid event."""
    from pipeline.validation import validate_event

    try:
        ts = validate_event(data)
    except ValidationFailure:
        return None
    return Event(data=data, ts=ts)
