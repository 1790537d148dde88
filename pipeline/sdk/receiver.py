"""Receive, verify and acknowledge isolation commands: the enforcement point's other half.

    from pipeline.enforcement.keys import load_keyring
    from pipeline.sdk import CommandReceiver, Gate
    gate = Gate()
    with CommandReceiver("kafka-1:9092", "cmd-proxy-eu-1", load_keyring("keyring.json"),
                         callback=gate.apply, on_expire=gate.expire):
        ...  # your proxy asks gate.check(event) before running each action

Contract:

- The receiver reads ``agent.enforcement`` with ``assign()`` to every partition (no consumer group:
  each enforcement point must see every command addressed to it, groups join slowly, and
  command volume is tiny). It starts ``lookback_seconds`` back in time (default: the maximum
  command age) so a restarted enforcement point picks up commands still in force.
- Each command goes through :class:`CommandVerifier` — commands for other enforcement points are
  skipped; then the Ed25519 signature and key id against the keyring (a retired key stops
  verifying after its ``not_after``); ``mode: shadow`` commands are verified and then ignored
  (no callback, no ack); a release must name the human who asked for it; expired commands are
  acknowledged ``expired``; commands issued more than ``max_command_age`` ago or more than
  ``max_clock_skew`` in the future, and replays (a nonce or command id already seen, or a
  sequence not above the last one applied for that agent) are ``rejected``.
- An accepted command is passed to ``callback(command)``; if it returns without raising the
  receiver publishes ``applied``, else ``rejected`` with code ``callback_error``. When an applied
  command's ``expires_at`` passes, ``on_expire(command)`` is called and ``expired`` published.
- Acks go to ``agent.enforcement.acks`` keyed by ``agent_id`` (``schemas/enforcement-ack.schema.json``).
  Rejections of unparseable messages without a ``command_id`` or ``agent_id`` are counted only.

Memory is bounded: seen nonces are kept until their command expires (at most ``max_remembered``),
last sequences for at most ``max_remembered`` agents. Replay memory does not survive a restart;
the age limit bounds what a restarted enforcement point can be fooled with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from pipeline.enforcement.ladder import RELEASE, RUNGS
from pipeline.enforcement.signing import Keyring, VerificationError
from pipeline.kafka import bootstrap_servers, check_reachable
from pipeline.records import deterministic_id, iso_time

__all__ = ["CommandReceiver", "CommandVerifier", "Verdict"]

log = logging.getLogger(__name__)

_ACTIONS = frozenset((*RUNGS, RELEASE))


@dataclass(slots=True)
class Verdict:
    """What the verifier decided: ``status`` is applied (accepted), rejected, expired or ignored."""

    status: str
    code: str = ""
    reason: str = ""
    command: Mapping[str, Any] | None = None


def _ts(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.timestamp() if dt.tzinfo is not None else None


class CommandVerifier:
    """The pure decision for one command (no I/O; ``now`` passed in)."""

    def __init__(self, enforcement_point: str, keys: Any, *, max_command_age: float = 300.0,
                 max_clock_skew: float = 30.0, max_remembered: int = 100_000) -> None:
        self.enforcement_point = enforcement_point
        self.keyring = Keyring.of(keys)
        self.max_command_age = max_command_age
        self.max_clock_skew = max_clock_skew
        self.max_remembered = max_remembered
        self._nonces: OrderedDict[str, float] = OrderedDict()  # nonce/command_id -> forget after
        self._last_seq: OrderedDict[str, int] = OrderedDict()

    def check(self, cmd: Any, now: float) -> Verdict:
        if not isinstance(cmd, Mapping):
            return Verdict("rejected", "malformed", "the command is not a JSON object")
        if cmd.get("enforcement_point") != self.enforcement_point:
            return Verdict("ignored", "other_enforcement_point", "", cmd)
        for name in ("command_id", "agent_id", "action", "nonce", "issued_at", "sequence"):
            if name not in cmd:
                return Verdict("rejected", "malformed", f"the command has no {name}", cmd)
        try:
            self.keyring.verify(cmd, now=now)
        except VerificationError as exc:
            return Verdict("rejected", exc.code, exc.reason, cmd)
        # from here on the content is authentic (signed by a trusted key)
        if cmd.get("mode") == "shadow":
            return Verdict("ignored", "shadow", "shadow-mode command: recorded, not applied", cmd)
        action = cmd["action"]
        if action not in _ACTIONS:
            return Verdict("rejected", "malformed", f"unknown action {str(action)[:40]!r}", cmd)
        if action == RELEASE:
            by = (cmd.get("requested_by") or {}).get("by") if isinstance(cmd.get("requested_by"), Mapping) else None
            if not isinstance(by, str) or not by.strip():
                return Verdict("rejected", "not_allowed", "a release must name the human who requested it", cmd)
        issued = _ts(cmd["issued_at"])
        expires = _ts(cmd.get("expires_at")) if cmd.get("expires_at") is not None else None
        seq = cmd["sequence"]
        if issued is None or not isinstance(seq, int) or (cmd.get("expires_at") is not None and expires is None):
            return Verdict("rejected", "malformed", "issued_at/expires_at/sequence are not valid", cmd)
        if expires is not None and now >= expires:
            return Verdict("expired", "expired", f"expired at {cmd['expires_at']}", cmd)
        if issued > now + self.max_clock_skew:
            return Verdict("rejected", "future", f"issued at {cmd['issued_at']}, in the future", cmd)
        if issued < now - self.max_command_age:
            return Verdict("rejected", "stale", f"issued at {cmd['issued_at']}, more than "
                           f"{self.max_command_age:g}s ago", cmd)
        self._forget_old(now)
        nonce = str(cmd["nonce"])
        cid = str(cmd["command_id"])
        if nonce in self._nonces or cid in self._nonces:
            return Verdict("rejected", "replay", "this command was already received", cmd)
        agent = str(cmd["agent_id"])
        last = self._last_seq.get(agent)
        if last is not None and seq <= last:
            return Verdict("rejected", "replay", f"sequence {seq} is not above the last applied {last}", cmd)
        remember_until = max(now, issued) + self.max_command_age + self.max_clock_skew
        if expires is not None:
            remember_until = max(remember_until, expires)
        self._nonces[nonce] = remember_until
        self._nonces[cid] = remember_until
        self._last_seq[agent] = seq
        self._last_seq.move_to_end(agent)
        while len(self._nonces) > 2 * self.max_remembered:
            self._nonces.popitem(last=False)
        while len(self._last_seq) > self.max_remembered:
            self._last_seq.popitem(last=False)
        return Verdict("applied", "", "", cmd)

    def _forget_old(self, now: float) -> None:
        # insertion order is close to expiry order; stop at the first one still needed
        while self._nonces:
            _key, until = next(iter(self._nonces.items()))
            if until > now:
                break
            self._nonces.popitem(last=False)


class CommandReceiver:
    """Polls commands for one enforcement point, verifies them, calls back, acknowledges.

    Use as a context manager (a background thread polls) or call :meth:`poll_once` yourself.
    ``consumer_config``/``producer_config`` pass kafka-python settings (TLS, SASL) through; they
    win over the receiver's own.

    ``fetch_max_wait_ms`` is how long the broker may hold a fetch when no command is waiting.
    Apache Kafka answers as soon as a command arrives, so the wait costs no latency there, and a
    short one only costs CPU: polling every 10 ms kept a receiver at ~12% of a core while idle,
    500 ms (Kafka's own default) at ~2%. The embedded broker (Tansu, for the demo and tests) does
    not answer a waiting fetch early, so there pass a short wait (the demo uses 10 ms).
    """

    def __init__(
        self,
        bootstrap: str,
        enforcement_point: str,
        public_keys: Any,
        *,
        callback: Callable[[Mapping[str, Any]], Any] | None = None,
        on_expire: Callable[[Mapping[str, Any]], Any] | None = None,
        commands_topic: str = "agent.enforcement",
        acks_topic: str = "agent.enforcement.acks",
        max_command_age: float = 300.0,
        max_clock_skew: float = 30.0,
        lookback_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
        connect_timeout: float = 3.0,
        fetch_max_wait_ms: int = 500,
        consumer_config: Mapping[str, Any] | None = None,
        producer_config: Mapping[str, Any] | None = None,
    ) -> None:
        from kafka import KafkaConsumer, KafkaProducer  # I/O clients only where they are used

        check_reachable(bootstrap, timeout=connect_timeout)
        self.enforcement_point = enforcement_point
        self.verifier = CommandVerifier(enforcement_point, public_keys, max_command_age=max_command_age,
                                        max_clock_skew=max_clock_skew)
        self.callback = callback
        self.on_expire = on_expire
        self.commands_topic = commands_topic
        self.acks_topic = acks_topic
        self.clock = clock
        self.lookback_seconds = max_command_age if lookback_seconds is None else lookback_seconds
        self.stats: dict[str, int] = {}
        self.verdicts: list[Verdict] = []  # recent verdicts (bounded), for tests and diagnostics
        self._applied: dict[str, Mapping[str, Any]] = {}  # agent -> command in force with an expiry
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        servers = bootstrap_servers(bootstrap)
        self._consumer = KafkaConsumer(**{
            "bootstrap_servers": servers, "group_id": None, "enable_auto_commit": False,
            "fetch_max_wait_ms": fetch_max_wait_ms, "client_id": f"agentwatch-receiver-{enforcement_point}"[:200],
            **dict(consumer_config or {}),
        })
        self._producer = KafkaProducer(**{
            "bootstrap_servers": servers, "linger_ms": 0, "acks": 1,
            "client_id": f"agentwatch-acks-{enforcement_point}"[:200], **dict(producer_config or {}),
        })
        self._assign(timeout=10.0)

    def _assign(self, timeout: float) -> None:
        from kafka import TopicPartition

        deadline = time.monotonic() + timeout
        parts = self._consumer.partitions_for_topic(self.commands_topic)
        while not parts and time.monotonic() < deadline:
            time.sleep(0.1)
            parts = self._consumer.partitions_for_topic(self.commands_topic)
        if not parts:
            raise RuntimeError(f"topic {self.commands_topic} does not exist; run `agentwatch topics create`")
        tps = [TopicPartition(self.commands_topic, p) for p in sorted(parts)]
        self._consumer.assign(tps)
        self._consumer.seek_to_end(*tps)
        if self.lookback_seconds > 0:
            since = int((self.clock() - self.lookback_seconds) * 1000)
            try:
                found = self._consumer.offsets_for_times({tp: since for tp in tps})
            except Exception as exc:  # brokers without timestamp lookup: start at the end
                log.warning("cannot look back on %s (%s); starting at the end", self.commands_topic, exc)
                found = {}
            for tp, oat in found.items():
                if oat is not None:
                    self._consumer.seek(tp, oat.offset)
        for tp in tps:  # resolve lazy seeks now so nothing published after this point is missed
            self._consumer.position(tp)

    # -- processing ----------------------------------------------------------------------------

    def handle(self, value: bytes | None) -> Verdict:
        """Verify one raw command, apply it through the callback and acknowledge it."""
        now = self.clock()
        try:
            cmd = orjson.loads(value) if value else None
        except orjson.JSONDecodeError:
            cmd = None
        verdict = self.verifier.check(cmd, now)
        if verdict.status == "applied" and self.callback is not None:
            try:
                self.callback(cmd)  # type: ignore[arg-type]
            except Exception as exc:  # the enforcement point's own failure, reported upstream
                verdict = Verdict("rejected", "callback_error", f"{type(exc).__name__}: {exc}"[:500], cmd)
        if verdict.status == "applied" and isinstance(cmd, Mapping):
            with self._lock:
                if cmd["action"] == RELEASE:
                    self._applied.pop(str(cmd["agent_id"]), None)
                elif cmd.get("expires_at") is not None:
                    self._applied[str(cmd["agent_id"])] = cmd
                else:
                    self._applied.pop(str(cmd["agent_id"]), None)
        self._count(verdict)
        if verdict.status in ("applied", "rejected", "expired"):
            self._ack(verdict, now)
        return verdict

    def _count(self, verdict: Verdict) -> None:
        key = verdict.status if not verdict.code else f"{verdict.status}:{verdict.code}"
        self.stats[key] = self.stats.get(key, 0) + 1
        self.verdicts.append(verdict)
        del self.verdicts[:-1000]

    def _ack(self, verdict: Verdict, now: float) -> None:
        cmd = verdict.command
        if not isinstance(cmd, Mapping) or not isinstance(cmd.get("command_id"), str) \
                or not isinstance(cmd.get("agent_id"), str) or not cmd["command_id"] or not cmd["agent_id"]:
            return
        ack: dict[str, Any] = {
            "schema_version": "1",
            "ack_id": deterministic_id("ack_", self.enforcement_point, cmd["command_id"], verdict.status,
                                       verdict.code),
            "command_id": cmd["command_id"][:256],
            "agent_id": cmd["agent_id"][:256],
            "enforcement_point": self.enforcement_point,
            "status": verdict.status,
            "ts": iso_time(now),
        }
        if verdict.code:
            ack["code"] = verdict.code
        if verdict.reason:
            ack["reason"] = verdict.reason[:2000]
        if isinstance(cmd.get("action"), str):
            ack["action"] = cmd["action"][:64]
        if isinstance(cmd.get("sequence"), int) and cmd["sequence"] >= 0:
            ack["sequence"] = cmd["sequence"]
        if isinstance(cmd.get("key_id"), str):
            ack["key_id"] = cmd["key_id"][:64]
        self._producer.send(self.acks_topic, key=ack["agent_id"].encode("utf-8"), value=orjson.dumps(ack))

    def expire_due(self) -> list[Mapping[str, Any]]:
        """Expire applied commands whose TTL passed: call ``on_expire`` and acknowledge ``expired``."""
        now = self.clock()
        with self._lock:
            due = [c for c in self._applied.values() if (_ts(c.get("expires_at")) or float("inf")) <= now]
            for c in due:
                self._applied.pop(str(c["agent_id"]), None)
        for c in due:
            if self.on_expire is not None:
                try:
                    self.on_expire(c)
                except Exception as exc:
                    log.warning("on_expire failed for %s: %s", c.get("command_id"), exc)
            verdict = Verdict("expired", "ttl", f"expired at {c.get('expires_at')} after being applied", c)
            self._count(verdict)
            self._ack(verdict, now)
        return due

    def poll_once(self, timeout: float = 0.1) -> list[Verdict]:
        """Read what is available (waiting up to ``timeout`` s), handle it, flush the acks."""
        verdicts: list[Verdict] = []
        batches = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=500)
        for tp in sorted(batches, key=lambda t: t.partition):
            for rec in batches[tp]:
                verdicts.append(self.handle(rec.value))
        if self.expire_due() or any(v.status != "ignored" for v in verdicts):
            self._producer.flush(timeout=10)
        return verdicts

    def poll_until(self, predicate: Callable[[list[Verdict]], bool], timeout: float = 10.0) -> list[Verdict]:
        """Poll until ``predicate(all verdicts so far)`` holds or ``timeout`` passes (for tests, demos)."""
        seen: list[Verdict] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen.extend(self.poll_once(0.05))
            if predicate(seen):
                break
        return seen

    # -- lifecycle -------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(0.1)
            except Exception as exc:  # keep receiving; a transient broker error must not stop enforcement
                log.warning("command receiver poll failed: %s", exc)
                self._stop.wait(0.5)

    def start(self) -> CommandReceiver:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"receiver-{self.enforcement_point}",
                                            daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        try:
            self._producer.flush(timeout=5)
        finally:
            self._producer.close(timeout=5)
            self._consumer.close()

    def __enter__(self) -> CommandReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

