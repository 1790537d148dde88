"""``agentwatch simulate``: run the seeded fleet simulator into a JSONL file or a Kafka topic.

Publishing goes through :class:`pipeline.sdk.publisher.ActionPublisher`, the client an
enforcement point embeds, so the simulator exercises the same path as production traffic. Every
option defaults to the ``simulator`` settings section (``AGENTWATCH_SIMULATOR__*`` or YAML).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.cli.common import console, err_console, settings_of
from pipeline.errors import InputError


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command()
    def simulate(
        ctx: typer.Context,
        seed: int = typer.Option(None, "--seed", help="Random seed: same seed and options, same events. [default: 7]"),
        agents: int = typer.Option(None, "--agents", help="Number of simulated agents. [default: 40]"),
        hours: float = typer.Option(None, "--hours", help="Simulated time span in hours. [default: 24]"),
        start: str = typer.Option(None, "--start", help="Event time of the start (RFC 3339) or 'now'. [default: 2026-11-02T08:00:00Z]"),
        rate: float = typer.Option(None, "--rate", help="Pace publishing at this many events per second of wall time."),
        speed: float = typer.Option(None, "--speed", help="Pace by event time: simulated seconds per wall second (1 = real time; with --start now, a live feed)."),
        fast: bool = typer.Option(False, "--as-fast-as-possible", help="No pacing (the default unless settings set a rate)."),
        scenarios: str = typer.Option(None, "--scenarios", help="Attacks to inject: all, none or names separated by commas. [default: all]"),
        out: str = typer.Option(None, "--out", "-o", help="Write events to this JSONL file ('-' = stdout) instead of Kafka."),
        truth: str = typer.Option(None, "--truth", help="Write the ground truth (event_id, agent_id, scenario, malicious) to this JSONL file."),
        topic: str = typer.Option(None, "--topic", help="Kafka topic. [default: the configured actions topic]"),
        broker: str = typer.Option(None, "--broker", "-b", help="Kafka bootstrap host:port (overrides the global option)."),
        activity: float = typer.Option(None, "--activity", help="Multiply every agent's session rate. [default: 1.0]"),
        create_topics: bool = typer.Option(True, "--create-topics/--no-create-topics", help="Create agentwatch's topics first if missing (Kafka only)."),
        list_scenarios: bool = typer.Option(False, "--list-scenarios", help="List the attack scenarios and exit."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or plan table."),
    ) -> None:
        """Simulate a fleet of AI agents (benign work plus injected attacks) into Kafka or a file."""
        from pipeline.simulator import SCENARIOS, Fleet, JsonlWriter, select_scenarios
        from pipeline.simulator import simulate as run

        if list_scenarios:
            _print_scenarios(SCENARIOS)
            return
        settings = settings_of(ctx, broker=broker)
        cfg = settings.simulator
        if sum(x is not None and x is not False for x in (rate, speed, fast)) > 1:
            raise InputError("choose one of --rate, --speed and --as-fast-as-possible")
        pace = None if fast or speed is not None else (rate if rate is not None else cfg.rate)
        if speed is not None and not speed > 0:
            raise InputError(f"--speed must be more than 0, got {speed:g}")
        if pace is not None and not pace > 0:
            raise InputError(f"--rate must be more than 0 events per second, got {pace:g}")
        start_text = start if start is not None else cfg.start
        if start_text.strip().lower() == "now":
            # the one place the wall clock enters, and only because the user asked for it
            start_text = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        attacks = select_scenarios(scenarios if scenarios is not None else cfg.scenarios)
        fleet = Fleet(
            seed=cfg.seed if seed is None else seed,
            agents=cfg.agents if agents is None else agents,
            start=start_text,
            tenant=cfg.tenant,
            activity=cfg.activity if activity is None else activity,
        )
        duration = cfg.hours if hours is None else hours
        plan = fleet.plan(duration, attacks)  # validates duration and placement before any output
        # with events on stdout, everything for humans goes to stderr
        human: Console = err_console if out == "-" else console

        with ExitStack() as stack:
            if out is not None:
                sink = stack.enter_context(JsonlWriter(out))
                destination = "stdout" if out == "-" else out
                emit: Callable[[dict[str, Any]], None] = sink
            else:
                from pipeline.sdk.publisher import ActionPublisher

                name = topic or settings.topic("actions")
                if create_topics and name == settings.topic("actions"):
                    from pipeline.topics import create_topics as create

                    create(settings)
                publisher = stack.enter_context(
                    ActionPublisher(settings.broker, name, max_message_bytes=settings.stream.max_message_bytes)
                )
                destination = f"topic {name} at {settings.broker}"
                emit = publisher.publish
            truth_sink = stack.enter_context(JsonlWriter(truth)) if truth is not None else None
            if not quiet:
                _print_plan(human, fleet, duration, plan)
            progress = Progress(
                TextColumn("[bold]simulating[/]"),
                BarColumn(),
                TextColumn("{task.fields[clock]}"),
                TextColumn("{task.fields[events]:>9,} events"),
                TextColumn("[red]{task.fields[malicious]:,} malicious[/]"),
                TimeElapsedColumn(),
                console=err_console,
                disable=quiet,
            )
            with progress:
                task = progress.add_task("simulate", total=max(1, round(duration * 3_600_000)),
                                         clock=fleet.start[:16], events=0, malicious=0)

                def on_progress(elapsed_ms: int, total_ms: int, stats: Any) -> None:
                    from pipeline.simulator import iso_ms

                    progress.update(task, completed=min(elapsed_ms, total_ms),
                                    clock=iso_ms(fleet.start_ms + elapsed_ms)[:16].replace("T", " "),
                                    events=stats.events, malicious=stats.malicious)

                stats = run(fleet, emit, duration_hours=duration, attacks=attacks, truth=truth_sink,
                            rate=pace, speed=speed, on_progress=on_progress)
        # leaving the ExitStack flushed the publisher: every event above was acknowledged
        scen = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_scenario.items())) or "none injected"
        human.print(
            f"{stats.events:,} events ({stats.malicious:,} malicious: {scen}; {stats.denied:,} denied) "
            f"from {stats.first_ts} to {stats.last_ts} -> {destination}"
            + (f"; ground truth in {truth}" if truth is not None else ""),
            highlight=False, soft_wrap=True,
        )


def _print_scenarios(scenarios: Any) -> None:
    table = Table(box=box.SIMPLE, pad_edge=False)
    table.add_column("scenario", no_wrap=True)
    for name in ("tactic", "techniques", "roles", "what it does"):
        table.add_column(name)
    for s in scenarios:
        table.add_row(s.name, s.tactic, ", ".join(s.techniques), ", ".join(s.roles), s.title)
    console.print(table)


def _print_plan(human: Console, fleet: Any, duration: float, plan: Any) -> None:
    human.print(
        f"fleet: {len(fleet.agents)} agents, seed {fleet.seed}, {fleet.start} + {duration:g} h",
        highlight=False,
    )
    if not plan:
        return
    table = Table(box=box.SIMPLE, pad_edge=False)
    for name in ("injected attack", "agent", "at (UTC)", "local"):
        table.add_column(name, no_wrap=True)
    for inj in plan:
        local = inj.agent.local_hour(inj.at_ms)
        table.add_row(inj.scenario.name, inj.agent.agent_id, inj.at[5:16].replace("T", " "),
                      f"{int(local):02d}:{int(local % 1 * 60):02d}")
    human.print(table)
