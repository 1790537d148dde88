"""``agentwatch demo``: the whole system on one machine, with a live view.

It runs the real parts, wired as in production, only smaller:

1. the embedded Kafka-protocol broker and the topics;
2. a signing key for isolation commands;
3. one ``agentwatch worker`` process (the same command users scale out);
4. a reference enforcement point per enforcement-point id of the fleet: a
   :class:`~pipeline.sdk.CommandReceiver` that verifies signed commands and acknowledges them, and
   a :class:`~pipeline.sdk.Gate` that refuses the actions of agents under isolation;
5. the simulated fleet (benign work plus injected attacks), published through the SDK's
   :class:`~pipeline.sdk.ActionPublisher` after the gate has decided each action;
6. a live view that reads the output topics; at the end, the evidence report.

Everything lands in one directory (default ``./agentwatch-demo``), recreated on each run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.broker import EmbeddedBroker, free_port
from pipeline.errors import AgentwatchError
from pipeline.metrics import RESPONSE_BUCKETS, HistogramSummary, scrape_histogram
from pipeline.settings import Settings

__all__ = ["DemoOptions", "DemoResult", "run_demo"]


@dataclass
class DemoOptions:
    directory: Path = Path("agentwatch-demo")
    agents: int = 40
    hours: float = 48.0
    rate: float = 1500.0
    seed: int = 7
    port: int | None = None
    partitions: int = 4
    config: str | None = None


@dataclass
class DemoResult:
    directory: Path
    store: Path
    report: Path
    published: int
    counts: dict[str, int]
    alerts_by_severity: dict[str, int]
    commands_by_action: dict[str, int]
    acks_by_status: dict[str, int]
    chain_ok: bool
    #: the worker's own share of the isolation response (fetch handed to the stage -> command on Kafka)
    response: HistogramSummary | None = None


@dataclass
class LiveState:
    """What the live view shows; updated by the topic reader and the simulator threads."""

    started: float = field(default_factory=time.monotonic)
    published: int = 0
    malicious: int = 0
    sim_progress: float = 0.0
    sim_done: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    alerts_by_severity: Counter[str] = field(default_factory=Counter)
    commands_by_action: Counter[str] = field(default_factory=Counter)
    acks_by_status: Counter[str] = field(default_factory=Counter)
    denied_by_gate: int = 0
    response: HistogramSummary | None = None
    recent_alerts: deque[tuple[str, str, str]] = field(default_factory=lambda: deque(maxlen=6))
    rate_window: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=40))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def processed_rate(self) -> float:
        window = list(self.rate_window)
        if len(window) < 2 or window[-1][0] - window[0][0] <= 0:
            return 0.0
        return (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])


def _worker_env(opts: DemoOptions, broker: str, directory: Path, metrics_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWATCH_")}
    if opts.config:
        env["AGENTWATCH_CONFIG"] = str(Path(opts.config).resolve())
    env.update({
        "AGENTWATCH_BROKER": broker,
        "AGENTWATCH_TOPICS__PARTITIONS": str(opts.partitions),
        "AGENTWATCH_WORKER__APP_ID": "agentwatch-demo",
        "AGENTWATCH_WORKER__METRICS_PORT": str(metrics_port),
        "AGENTWATCH_WORKER__DATA_DIR": str(directory / "worker"),
        "AGENTWATCH_WORKER__SESSION_TIMEOUT_SECONDS": "6",
        "AGENTWATCH_INCIDENTS__STORE_URL": f"sqlite:///{(directory / 'incidents.db').resolve()}",
        "AGENTWATCH_ENFORCEMENT__SIGNING_KEY_PATH": str((directory / "keys" / "signing.key").resolve()),
        "AGENTWATCH_LOG_LEVEL": "warning",
    })
    return env


def _settings_for(opts: DemoOptions, broker: str, directory: Path) -> Settings:
    from pipeline.settings import load_settings

    s = load_settings(opts.config, broker=broker)
    s.topics.partitions = opts.partitions
    s.incidents.store_url = f"sqlite:///{(directory / 'incidents.db').resolve()}"
    s.enforcement.signing_key_path = (directory / "keys" / "signing.key").resolve()
    return s


class _TopicReader(threading.Thread):
    """Counts what the pipeline writes, for the live view (plain consumer, no group)."""

    def __init__(self, bootstrap: str, settings: Settings, state: LiveState) -> None:
        super().__init__(name="demo-topic-reader", daemon=True)
        from kafka import KafkaConsumer, TopicPartition

        self.state = state
        self.stop_event = threading.Event()
        self.kinds = {settings.topic(k): k for k in ("enriched", "alerts", "enforcement", "acks", "incidents", "dlq")}
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      auto_offset_reset="earliest", fetch_max_wait_ms=50)
        tps = []
        for topic in self.kinds:
            for p in self.consumer.partitions_for_topic(topic) or ():
                tps.append(TopicPartition(topic, p))
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning()

    def run(self) -> None:
        st = self.state
        seen_alerts: set[str] = set()
        incidents: set[str] = set()
        while not self.stop_event.is_set():
            batch = self.consumer.poll(timeout_ms=200, max_records=5000)
            with st.lock:
                for tp, records in batch.items():
                    kind = self.kinds[tp.topic]
                    for r in records:
                        if kind == "enriched":
                            st.counts["enriched"] += 1
                            continue
                        try:
                            v = orjson.loads(r.value)
                        except orjson.JSONDecodeError:
                            continue
                        if kind == "alerts":
                            alert_id = str(v.get("alert_id"))
                            if alert_id not in seen_alerts:
                                seen_alerts.add(alert_id)
                                st.counts["alerts"] += 1
                                st.alerts_by_severity[str(v.get("severity"))] += 1
                                st.recent_alerts.append((str(v.get("severity")), str(v.get("agent_id")),
                                                         str(v.get("title") or v.get("reason") or v.get("rule_id") or "")))
                        elif kind == "enforcement":
                            st.counts["commands"] += 1
                            st.commands_by_action[str(v.get("action"))] += 1
                        elif kind == "acks":
                            st.counts["acks"] += 1
                            st.acks_by_status[str(v.get("status"))] += 1
                        elif kind == "incidents":
                            incidents.add(str(v.get("incident_id")))
                            st.counts["incidents"] = len(incidents)
                        elif kind == "dlq":
                            st.counts["dead_letters"] += 1
                st.rate_window.append((time.monotonic(), st.counts["enriched"]))

    def close(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)
        self.consumer.close()


def _render(state: LiveState, fleet_agents: int) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    with state.lock:
        c = dict(state.counts)
        sev = dict(state.alerts_by_severity)
        cmds = dict(state.commands_by_action)
        acks = dict(state.acks_by_status)
        recent = list(state.recent_alerts)
        rate = state.processed_rate()
        published, malicious = state.published, state.malicious
        progress, gate_denied = state.sim_progress, state.denied_by_gate
    top = Table.grid(padding=(0, 3))
    top.add_row(
        f"[bold]simulated[/] {progress:5.1%} of the scenario",
        f"[bold]published[/] {published:,} ({malicious} malicious)",
        f"[bold]processed[/] {c.get('enriched', 0):,}  [dim]{rate:,.0f} events/s[/]",
        f"[bold]dead letters[/] {c.get('dead_letters', 0)}",
    )
    counts = Table("alerts", "isolation commands", "acknowledgements", "incidents", box=None)
    counts.add_row(
        "\n".join(f"{k}: {v}" for k, v in sorted(sev.items())) or "-",
        "\n".join(f"{k}: {v}" for k, v in sorted(cmds.items())) or "-",
        "\n".join(f"{k}: {v}" for k, v in sorted(acks.items())) + (f"\ngate refused: {gate_denied}" if gate_denied else "") or "-",
        str(c.get("incidents", 0)),
    )
    recent_table = Table("severity", "agent", "alert", box=None, show_header=True)
    for severity, agent, title in reversed(recent):
        recent_table.add_row(severity, agent, title[:70])
    return Panel(Group(top, counts, Panel(recent_table, title="latest alerts")),
                 title=f"agentwatch demo — {fleet_agents} agents", border_style="cyan")


@contextlib.contextmanager
def _worker(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = log_path.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


def run_demo(opts: DemoOptions, *, console: Any, live: bool = True) -> DemoResult:
    """Run the demo end to end; raises AgentwatchError with a one-line message on failure."""
    from pipeline.enforcement.keys import generate_key, keyring_path_for, load_keyring
    from pipeline.sdk import CommandReceiver, Gate
    from pipeline.simulator import SCENARIOS, Fleet
    from pipeline.topics import create_topics

    directory = opts.directory.resolve()
    if directory.exists():
        for name in ("incidents.db", "incidents.db-wal", "incidents.db-shm", "worker", "keys", "worker.log",
                     "evidence.html", "truth.jsonl"):
            target = directory / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AgentwatchError(f"cannot create the demo directory {directory}: {exc.strerror or exc}") from None

    key_path = directory / "keys" / "signing.key"
    generate_key(key_path, now=time.time(), force=True)
    keyring = load_keyring(keyring_path_for(key_path))

    fleet = Fleet(seed=opts.seed, agents=opts.agents, start="2026-11-02T08:00:00Z")
    plan = fleet.plan(duration_hours=opts.hours, attacks=SCENARIOS)
    enforcement_points = sorted({a.enforcement_point for a in fleet.agents})

    console.print(f"[bold]agentwatch demo[/] in {directory}")
    with EmbeddedBroker(opts.port) as broker:
        console.print(f"  broker      {broker.bootstrap} (embedded, in-memory)")
        settings = _settings_for(opts, broker.bootstrap, directory)
        create_topics(settings)
        metrics_port = free_port()
        env = _worker_env(opts, broker.bootstrap, directory, metrics_port)
        console.print(f"  worker      `agentwatch worker`, metrics on http://127.0.0.1:{metrics_port}/metrics")
        console.print(f"  enforcement {len(enforcement_points)} reference gates: {', '.join(enforcement_points)}")
        console.print(f"  fleet       {opts.agents} agents, {opts.hours:g} simulated hours, "
                      f"{len(plan)} injected attacks, ~{opts.rate:,.0f} events/s")
        state = LiveState()
        gate = Gate()
        receivers: list[Any] = []
        with _worker(env, directory / "worker.log") as worker:
            try:
                for ep in enforcement_points:
                    receivers.append(CommandReceiver(
                        broker.bootstrap, ep, keyring, callback=gate.apply, on_expire=gate.expire,
                        commands_topic=settings.topic("enforcement"), acks_topic=settings.topic("acks"),
                        max_command_age=settings.enforcement.max_command_age_seconds,
                        fetch_max_wait_ms=10,  # the embedded broker does not answer a waiting fetch early
                    ).start())
                reader = _TopicReader(broker.bootstrap, settings, state)
                reader.start()
                _wait_for_worker(worker, state, directory / "worker.log")
                result = _run_fleet(opts, fleet, gate, broker.bootstrap, settings, state, console, live,
                                    worker, directory)
                with contextlib.suppress(OSError, ValueError):  # a figure for the summary, not a result
                    state.response = scrape_histogram(f"http://127.0.0.1:{metrics_port}/metrics",
                                                      "agentwatch_enforcement_response_seconds")
            finally:
                for r in receivers:
                    with contextlib.suppress(Exception):
                        r.close()
                if "reader" in locals():
                    reader.close()
        return _finish(directory, state, result, console)


def _wait_for_worker(worker: subprocess.Popen[bytes], state: LiveState, log: Path) -> None:
    # the worker is ready when it has joined the group; a probe is not needed: events wait in Kafka
    time.sleep(0.5)
    if worker.poll() is not None:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise AgentwatchError(f"the worker exited at start: {tail[0] if tail else 'no output'} (see {log})")


def _run_fleet(opts: DemoOptions, fleet: Any, gate: Any, bootstrap: str, settings: Settings, state: LiveState,
               console: Any, live: bool, worker: subprocess.Popen[bytes], directory: Path) -> int:
    from rich.live import Live

    from pipeline.sdk import ActionPublisher
    from pipeline.simulator import SCENARIOS, JsonlWriter, simulate

    stop = threading.Event()
    errors: list[BaseException] = []

    def on_progress(elapsed_ms: int, total_ms: int, stats: Any) -> None:
        with state.lock:
            state.sim_progress = elapsed_ms / total_ms if total_ms else 1.0
            state.published = stats.events
            state.malicious = stats.malicious

    def run() -> None:
        try:
            with ActionPublisher(bootstrap, settings.topic("actions")) as publisher, \
                    JsonlWriter(directory / "truth.jsonl") as truth:
                def emit(event: dict[str, Any]) -> None:
                    decision = gate.check(event)
                    if decision != "allow" and event.get("decision") == "allow":
                        event["decision"] = decision  # the gate enforces the isolation
                        with state.lock:
                            state.denied_by_gate += 1
                    publisher.publish(event)

                stats = simulate(fleet, emit, duration_hours=opts.hours, attacks=SCENARIOS, truth=truth,
                                 rate=opts.rate, on_progress=on_progress, progress_every=200,
                                 should_stop=stop.is_set)
                on_progress(1, 1, stats)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            with state.lock:
                state.sim_done = True

    thread = threading.Thread(target=run, name="demo-fleet", daemon=True)
    thread.start()

    def settled() -> bool:
        with state.lock:
            return state.sim_done and state.counts["enriched"] + state.counts["dead_letters"] >= state.published

    view = Live(_render(state, opts.agents), console=console, refresh_per_second=4, transient=False) if live else None
    try:
        if view is not None:
            view.start()
        drained_at: float | None = None
        while True:
            time.sleep(0.25)
            if view is not None:
                view.update(_render(state, opts.agents))
            if worker.poll() is not None:
                stop.set()
                raise AgentwatchError(f"the worker stopped unexpectedly (exit {worker.returncode}); see {directory / 'worker.log'}")
            if errors:
                raise errors[0] if isinstance(errors[0], AgentwatchError) else AgentwatchError(
                    f"the simulated fleet failed: {type(errors[0]).__name__}: {errors[0]}")
            if settled():
                drained_at = drained_at or time.monotonic()
                if time.monotonic() - drained_at > 3.0:  # last commands, acks, incident updates
                    break
            elif state.sim_done and time.monotonic() - state.started > 600:
                raise AgentwatchError("the worker did not catch up within 10 minutes")
    except KeyboardInterrupt:
        stop.set()
        raise
    finally:
        stop.set()
        thread.join(timeout=10)
        if view is not None:
            view.update(_render(state, opts.agents))
            view.stop()
    return state.published


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds == float("inf"):  # past the histogram's last bucket
        return f"over {RESPONSE_BUCKETS[-1] * 1000:g} ms"
    return f"{seconds * 1000:g} ms"


def _finish(directory: Path, state: LiveState, published: int, console: Any) -> DemoResult:
    from pipeline.incidents import open_store
    from pipeline.incidents.evidence import ExportFilter, build_report, write_report

    store_path = directory / "incidents.db"
    store = open_store(f"sqlite:///{store_path}")
    try:
        report = build_report(store, ExportFilter(), generated_at=time.time(), store_label=str(store_path))
        verify = store.verify()
    finally:
        store.close()
    report_path = directory / "evidence.html"
    write_report(report, "html", report_path)
    with state.lock:
        result = DemoResult(
            directory=directory, store=store_path, report=report_path, published=published,
            counts=dict(state.counts), alerts_by_severity=dict(state.alerts_by_severity),
            commands_by_action=dict(state.commands_by_action), acks_by_status=dict(state.acks_by_status),
            chain_ok=bool(verify.ok), response=state.response,
        )
    console.print()
    console.print(f"[bold green]done[/]: {published:,} events, {result.counts.get('alerts', 0)} alerts, "
                  f"{sum(result.commands_by_action.values())} isolation commands, "
                  f"{result.counts.get('incidents', 0)} incidents; hash chain "
                  + ("[green]verified[/]" if result.chain_ok else "[red]BROKEN[/]"))
    if result.response is not None and result.response.count:
        console.print(f"  isolation response in the worker (fetch handed to the stage -> command on Kafka): "
                      f"p50 <= {_ms(result.response.p50_le)}, p99 <= {_ms(result.response.p99_le)} "
                      f"over {result.response.count} commands")
    console.print(f"  incident records  {store_path}")
    console.print(f"  evidence report   {report_path}")
    console.print(f"  worker log        {directory / 'worker.log'}")
    console.print(f"  ground truth      {directory / 'truth.jsonl'}")
    console.print(f"  next: agentwatch incidents list --db {store_path}")
    return result
