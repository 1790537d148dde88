"""Event -> isolation command -> acknowledgement latency through the real worker.

    python -m bench.latency --rate 1000 --rate 5000 --seconds 20 --json latency.json

For each offered load the benchmark:

1. starts the embedded broker (or uses ``--broker``), creates the topics under a fresh prefix,
   generates a signing key and starts one ``agentwatch worker`` process;
2. starts the enforcement-point SDK in this process: a :class:`~pipeline.sdk.CommandReceiver`
   for enforcement point ``bench-ep`` with the reference :class:`~pipeline.sdk.Gate`, and an
   ack listener on ``agent.enforcement.acks``;
3. publishes, from a load-generator process of its own, benign agent actions at ``--rate``
   events/s with the SDK's ``ActionPublisher``,
   and every ``1/--attack-share``-th event is a destructive command from a new agent (one that
   the rules rate critical, so the pipeline isolates that agent);
4. measures, per attack, the time from just before ``publish`` to (a) the signed isolate command
   arriving, verified, at the receiver's callback and (b) its ``applied`` acknowledgement arriving
   back on the acks topic (what the pipeline consumes).

It splits each attack's time into the worker's own share — from the fetch holding the event
being handed to the processing stage to its command on Kafka, which the worker logs per command
(``agentwatch_enforcement_response_seconds`` is the same figure as a metric) — and the rest: the
broker delivering the event to the worker, the event waiting in the worker's consumer while the
previous fetch is processed, and the command's delivery to the enforcement point. It reads the
CPU of the broker, the worker, the load generator and the receiver over the run (they share this
machine's cores) and reports percentiles per 10 s window: Tansu's in-memory fetch cost grows
with a topic's length (``python -m bench.broker``: a plain aiokafka consumer of a 1,000
records/s topic went from p99 16 ms to 347 ms in 40 s, the broker's CPU to a whole core), so
on it the outside share grows during long runs; Apache Kafka's indexed log does not do that.

All clocks are this machine's wall clock (the worker runs here too). The JSON has ``p99_ms``
(event -> command, the worst over the rates run) at the top level, and per rate p50/p99/max of
both paths, counts and the achieved rate, plus machine info. Tansu is not Apache Kafka: its
figures are this machine's, not a cluster's.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from bench.common import EMBEDDED_BROKER, machine, percentile, process_cpu_seconds

ATTACK = "rm -rf / --no-preserve-root"
EP = "bench-ep"


def _event(agent: str, command: str, tool: str) -> dict[str, Any]:
    return {
        "schema_version": "1", "event_id": uuid.uuid4().hex,
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
        "agent_id": agent, "owner": "bench@example.com", "session_id": f"s-{agent}", "environment": "prod",
        "enforcement_point": EP, "action": {"kind": "shell", "tool": tool, "command": command},
        "decision": "allow",
    }


class AckListener(threading.Thread):
    """Reads the acks topic (assign, no group) and records arrival times by command id."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer, TopicPartition

        self.arrived: dict[str, float] = {}
        self.stop = threading.Event()
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                      fetch_max_wait_ms=10)  # as the receiver here
        parts = self.consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        self.consumer.assign(tps)
        self.consumer.seek_to_end(*tps)
        for tp in tps:
            self.consumer.position(tp)

    def run(self) -> None:
        while not self.stop.is_set():
            for recs in self.consumer.poll(timeout_ms=50).values():
                now = time.time()
                for r in recs:
                    ack = orjson.loads(r.value)
                    if ack.get("status") == "applied":
                        self.arrived.setdefault(ack["command_id"], now)
        self.consumer.close()


#: the worker's log line per isolation command (pipeline/stages/process.py)
_SENT_LINE = re.compile(r"isolation command (\S+) sent: .* ([0-9.]+) ms after its triggering event was handed to the processing stage")


def worker_shares(log: Path) -> dict[str, float]:
    """Command id -> ms from the triggering event's fetch handed to the stage to the command on Kafka."""
    shares: dict[str, float] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _SENT_LINE.search(line)
        if m:
            shares[m.group(1)] = float(m.group(2))
    return shares


def by_window(samples: list[tuple[float, float]], width: float) -> list[dict[str, Any]]:
    """p50/p99 of (seconds into the run, ms) samples per ``width``-second window."""
    windows: dict[int, list[float]] = {}
    for at, ms in samples:
        windows.setdefault(int(at // width), []).append(ms)
    return [{"from_s": k * width, "n": len(v), "p50": _r(percentile(v, 0.5)), "p99": _r(percentile(v, 0.99))}
            for k, v in sorted(windows.items())]


def run_once(bootstrap: str, rate: int, seconds: float, attack_share: float, extra_env: dict[str, str],
             console: Console, warmup: float = 90.0, broker_pid: int | None = None,
             raw: Path | None = None) -> dict[str, Any]:
    from pipeline.enforcement.keys import generate_key, keyring_path_for, load_keyring
    from pipeline.sdk import ActionPublisher, CommandReceiver, Gate
    from pipeline.settings import Settings
    from pipeline.topics import create_topics

    prefix = f"lat{uuid.uuid4().hex[:8]}."
    tmp = Path(tempfile.mkdtemp(prefix="aw-bench-latency-"))
    key = tmp / "keys" / "signing.key"
    generate_key(key, now=time.time())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWATCH_")}
    env.update({
        "AGENTWATCH_BROKER": bootstrap,
        "AGENTWATCH_TOPICS__PREFIX": prefix,
        "AGENTWATCH_TOPICS__PARTITIONS": "4",
        "AGENTWATCH_WORKER__APP_ID": f"aw-{prefix.strip('.')}",
        "AGENTWATCH_WORKER__METRICS_PORT": "0",
        "AGENTWATCH_WORKER__WEB_PORT": "0",
        "AGENTWATCH_WORKER__SESSION_TIMEOUT_SECONDS": "4",
        "AGENTWATCH_WORKER__HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "AGENTWATCH_WORKER__DATA_DIR": str(tmp / "worker"),
        "AGENTWATCH_INCIDENTS__STORE_URL": f"sqlite:///{tmp / 'incidents.db'}",
        "AGENTWATCH_ENFORCEMENT__SIGNING_KEY_PATH": str(key),
        # the benchmark isolates many agents on purpose: lift the fleet-wide safety cap
        "AGENTWATCH_ENFORCEMENT__MAX_ISOLATIONS_PER_MINUTE": "1000000",
        # info: the worker logs each isolation command with its own share of the response time
        "AGENTWATCH_LOG_LEVEL": "info",
    })
    env.update(extra_env)
    settings = Settings(broker=bootstrap, topics={"prefix": prefix, "partitions": 4})
    create_topics(settings)
    log = (tmp / "worker.log").open("ab")
    worker = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "worker"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, cwd=tmp)
    sent_at: dict[str, float] = {}  # attack event id -> time just before publish
    cmd_at: dict[str, float] = {}  # attack event id -> command verified at the receiver
    cmd_event: dict[str, str] = {}  # command id -> attack event id
    issued_at: dict[str, float] = {}  # attack event id -> the command's issued_at (worker clock)

    def on_command(cmd: Any) -> None:
        from pipeline.records import epoch_of

        now = time.time()
        eid = cmd.get("trigger_event_id")
        if eid:
            cmd_at.setdefault(eid, now)
            cmd_event[cmd["command_id"]] = eid
            issued = epoch_of(cmd.get("issued_at"))
            if issued is not None:
                issued_at.setdefault(eid, issued)
        gate.apply(cmd)

    gate = Gate()
    receiver = CommandReceiver(bootstrap, EP, load_keyring(keyring_path_for(key)), callback=on_command,
                               commands_topic=settings.topic("enforcement"), acks_topic=settings.topic("acks"),
                               lookback_seconds=0, fetch_max_wait_ms=10)
    acks = AckListener(bootstrap, settings.topic("acks"))
    publisher = ActionPublisher(bootstrap, settings.topic("actions"), linger_ms=2)
    receiver.start()
    acks.start()
    try:
        # warm-up: wait until the worker owns its partitions and answers an attack
        console.print(f"[dim]rate {rate}/s: waiting for the worker to join...[/]")
        deadline = time.monotonic() + warmup
        probe = 0
        while not cmd_at and time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited ({worker.returncode}); see {tmp / 'worker.log'}")
            ev = _event(f"warm-{probe}", ATTACK, "rm")
            probe += 1
            publisher.publish(ev)
            publisher.flush()
            time.sleep(1.0)
        if not cmd_at:
            raise RuntimeError("no isolation command arrived during warm-up: are the rule detectors enabled "
                               f"and is {ATTACK!r} rated critical? see {tmp / 'worker.log'}")
        cmd_at.clear()
        console.print(f"[dim]rate {rate}/s: measuring for {seconds:g}s...[/]")
        # this process plays the enforcement point: keep its own collector pauses (imports,
        # rich, the pipeline's modules) out of what is measured, as the worker does with its own
        gc.collect()
        gc.freeze()
        # the load comes from a process of its own, as it would from the enforcement points: a
        # 5,000 events/s publisher sharing this process's interpreter lock with the receiver
        # delayed the receiver, and that delay was being measured as pipeline latency
        sent_file = tmp / "sent.json"
        broker_cpu0, worker_cpu0, wall0 = process_cpu_seconds(broker_pid), process_cpu_seconds(worker.pid), time.monotonic()
        own_cpu0 = time.process_time()
        gen = subprocess.run(
            [sys.executable, "-m", "bench.latency", "--generate", bootstrap, settings.topic("actions"),
             str(rate), str(seconds), str(attack_share), str(sent_file)],
            capture_output=True, text=True, timeout=seconds * 4 + 60, cwd=str(Path(__file__).resolve().parent.parent))
        if gen.returncode != 0:
            raise RuntimeError(f"the load generator failed: {gen.stderr.strip()[-500:]}")
        broker_cpu1, worker_cpu1, wall1 = process_cpu_seconds(broker_pid), process_cpu_seconds(worker.pid), time.monotonic()
        own_cpu1 = time.process_time()
        generated = json.loads(sent_file.read_text(encoding="utf-8"))
        sent_at.update(generated["sent_at"])
        total, elapsed = generated["total"], generated["elapsed"]
        wait_until = time.monotonic() + 15
        while time.monotonic() < wait_until:
            done_cmds = sum(1 for e in sent_at if e in cmd_at)
            done_acks = sum(1 for c, e in cmd_event.items() if e in sent_at and c in acks.arrived)
            if done_cmds >= len(sent_at) and done_acks >= done_cmds:
                break
            time.sleep(0.1)
    finally:
        publisher.close()
        receiver.close()
        acks.stop.set()
        acks.join(timeout=5)
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    to_cmd = [(cmd_at[e] - t) * 1000 for e, t in sent_at.items() if e in cmd_at]
    to_ack = [(acks.arrived[c] - sent_at[e]) * 1000 for c, e in cmd_event.items()
              if e in sent_at and c in acks.arrived]
    # where the time goes (same machine, same clock): publish -> the worker issued the command,
    # and issued -> verified at the enforcement point
    to_issue = [(issued_at[e] - t) * 1000 for e, t in sent_at.items() if e in issued_at]
    first_sent = min(sent_at.values(), default=0.0)
    slowest = sorted(((cmd_at[e] - t) * 1000, t - first_sent) for e, t in sent_at.items() if e in cmd_at)[-10:]
    issue_to_cmd = [(cmd_at[e] - issued_at[e]) * 1000 for e in sent_at if e in issued_at and e in cmd_at]
    # the worker's own share (event reached it -> command on Kafka, from its log) and the rest:
    # the broker delivering the event to the worker and the command to the enforcement point
    shares = worker_shares(tmp / "worker.log")
    in_worker: list[float] = []
    outside: list[float] = []
    for c, e in cmd_event.items():
        if e in sent_at and e in cmd_at and c in shares:
            in_worker.append(shares[c])
            outside.append((cmd_at[e] - sent_at[e]) * 1000 - shares[c])
    if raw is not None:  # per attack, for looking into the slow ones
        by_event = {e: c for c, e in cmd_event.items()}
        rows = [{"event_id": e, "sent": t, "issued": issued_at.get(e), "command": cmd_at.get(e),
                 "in_worker_ms": shares.get(by_event.get(e, ""))} for e, t in sorted(sent_at.items(), key=lambda kv: kv[1])]
        raw.write_text(json.dumps(rows) + "\n", encoding="utf-8")

    def cores(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round((b - a) / (wall1 - wall0), 2)
    return {
        "offered_rate": rate, "achieved_rate": round(total / elapsed, 1), "seconds": round(elapsed, 2),
        "events": total, "attacks": len(sent_at), "commands": len(to_cmd), "acks": len(to_ack),
        "to_command_ms": {"p50": _r(percentile(to_cmd, 0.5)), "p99": _r(percentile(to_cmd, 0.99)), "max": _r(max(to_cmd, default=None))},
        "to_ack_ms": {"p50": _r(percentile(to_ack, 0.5)), "p99": _r(percentile(to_ack, 0.99)), "max": _r(max(to_ack, default=None))},
        "to_issued_ms": {"p50": _r(percentile(to_issue, 0.5)), "p99": _r(percentile(to_issue, 0.99))},
        "issued_to_command_ms": {"p50": _r(percentile(issue_to_cmd, 0.5)), "p99": _r(percentile(issue_to_cmd, 0.99))},
        "in_worker_ms": {"n": len(in_worker), "p50": _r(percentile(in_worker, 0.5)), "p99": _r(percentile(in_worker, 0.99)),
                         "max": _r(max(in_worker, default=None))},
        "outside_worker_ms": {"p50": _r(percentile(outside, 0.5)), "p99": _r(percentile(outside, 0.99))},
        # the embedded broker's CPU (cores busy) while the load ran: Tansu's in-memory fetch cost
        # grows with the topic's length, which is what makes long runs slow down
        "broker_cpu_cores": cores(broker_cpu0, broker_cpu1),
        # the rest of the machine (2 cores here): the worker, the load generator, the receiver
        "cpu_cores": {"worker": cores(worker_cpu0, worker_cpu1), "load_generator": generated.get("cpu_cores"),
                      "receiver_and_ack_listener": cores(own_cpu0, own_cpu1)},
        "to_command_ms_by_window": by_window([(t - first_sent, (cmd_at[e] - t) * 1000)
                                              for e, t in sent_at.items() if e in cmd_at], 10.0),
        # the ten slowest attacks: (ms to command, seconds into the run): spikes vs a periodic cause
        "slowest": [[round(ms, 1), round(at, 2)] for ms, at in reversed(slowest)],
    }


def generate(bootstrap: str, topic: str, rate: int, seconds: float, attack_share: float, out: Path) -> None:
    """The load generator process: benign actions at ``rate``/s from 500 agents, and every
    ``1/attack_share``-th event a destructive command from a new agent; writes the attacks'
    send times (just before ``publish``), the achieved count and time, and its own CPU to ``out``.

    The load generator shares this machine's two cores with the worker and the broker (real
    enforcement points run elsewhere), so benign events cost it as little as possible: each of the
    three benign shapes is validated once, then sent as bytes with a fresh id and time
    (``publish_raw``: ~21 µs an event instead of ~59 µs). Attacks go through the validating
    ``publish``, as an enforcement point's would."""
    from pipeline.sdk import ActionPublisher
    from pipeline.validation import validate_event

    publisher = ActionPublisher(bootstrap, topic, linger_ms=2)
    sent_at: dict[str, float] = {}
    cpu: float | None = None
    every = max(1, round(1 / attack_share))
    shapes = []
    for tool, cmd in [("ls", "ls -la /srv/app"), ("git", "git status"), ("kubectl", "kubectl get pods -n web")]:
        shape = _event("agent-0", cmd, tool)
        validate_event(shape)
        shapes.append(shape)
    run = uuid.uuid4().hex[:12]
    total = int(rate * seconds)
    gc.collect()
    gc.freeze()
    cpu0 = time.process_time()
    start = time.monotonic()
    n = 0
    try:
        while n < total:
            due = min(total, int((time.monotonic() - start) * rate) + 1)
            ts = _event("x", "", "")["ts"]
            while n < due:
                if n % every == every - 1:
                    ev = _event(f"attacker-{n}", ATTACK, "rm")
                    sent_at[ev["event_id"]] = time.time()
                    publisher.publish(ev)
                else:
                    ev = shapes[n % len(shapes)]
                    agent = f"agent-{n % 500}"
                    ev.update(event_id=f"{run}-{n}", ts=ts, agent_id=agent, session_id=f"s-{agent}")
                    publisher.publish_raw(agent.encode(), orjson.dumps(ev))
                n += 1
            time.sleep(0.005)
        elapsed = time.monotonic() - start
        publisher.flush()
        cpu = round((time.process_time() - cpu0) / max(elapsed, 1e-9), 2)
    finally:
        publisher.close()
    out.write_text(json.dumps({"sent_at": sent_at, "total": total, "elapsed": elapsed, "cpu_cores": cpu}),
                   encoding="utf-8")


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _machine(external_broker: bool) -> dict[str, Any]:
    return {**machine(), "broker": "external (--broker)" if external_broker else EMBEDDED_BROKER}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, action="append", help="offered events/s (repeatable; default 1000 and 5000)")
    ap.add_argument("--seconds", type=float, default=15.0, help="measurement time per rate")
    ap.add_argument("--attack-share", type=float, default=0.01, help="share of events that are attacks")
    ap.add_argument("--broker", help="use this Kafka instead of the embedded broker")
    ap.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the worker")
    ap.add_argument("--generate", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=float, default=90.0, help="max seconds to wait for the worker's first command")
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--raw", help="also write every attack's timings here (JSON; one file per rate: RATE.json appended)")
    args = ap.parse_args(argv)
    if args.generate:
        b, topic, rate, secs, share, out = args.generate
        generate(b, topic, int(rate), float(secs), float(share), Path(out))
        return 0
    rates = args.rate or [1000, 5000]
    extra = dict(item.split("=", 1) for item in args.env)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    from pipeline.broker import EmbeddedBroker

    runs = []
    broker = None
    try:
        if args.broker:
            bootstrap = args.broker
        else:
            broker = EmbeddedBroker().start()
            bootstrap = broker.bootstrap
        for rate in rates:
            raw = Path(f"{args.raw}.{rate}.json") if args.raw else None
            runs.append(run_once(bootstrap, rate, args.seconds, args.attack_share, extra, console, args.warmup,
                                 broker.pid if broker is not None else None, raw))
    except RuntimeError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 1
    finally:
        if broker is not None:
            broker.stop()
    table = Table(title="event -> isolation command -> ack (ms)")
    for col in ("offered/s", "achieved/s", "attacks", "commands", "cmd p50", "cmd p99", "cmd max",
                "ack p99", "worker p99", "outside p99", "broker cpu"):
        table.add_column(col, justify="right")
    for r in runs:
        table.add_row(str(r["offered_rate"]), str(r["achieved_rate"]), str(r["attacks"]), str(r["commands"]),
                      str(r["to_command_ms"]["p50"]), str(r["to_command_ms"]["p99"]),
                      str(r["to_command_ms"]["max"]), str(r["to_ack_ms"]["p99"]), str(r["in_worker_ms"]["p99"]),
                      str(r["outside_worker_ms"]["p99"]), str(r["broker_cpu_cores"]))
    console.print(table)
    p99s = [r["to_command_ms"]["p99"] for r in runs if r["to_command_ms"]["p99"] is not None]
    worker_p99s = [r["in_worker_ms"]["p99"] for r in runs if r["in_worker_ms"]["p99"] is not None]
    result = {"benchmark": "latency", "p99_ms": max(p99s) if p99s else None,
              "p99_in_worker_ms": max(worker_p99s) if worker_p99s else None,
              "p99_ack_ms": max((r["to_ack_ms"]["p99"] for r in runs if r["to_ack_ms"]["p99"] is not None), default=None),
              "goal_p99_ms": 200, "runs": runs, "machine": _machine(bool(args.broker)),
              "command": "python -m bench.latency " + " ".join(argv if argv is not None else sys.argv[1:])}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
