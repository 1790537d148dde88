"""``agentwatch demo``: broker, topics, worker, enforcement points, simulated fleet, live view."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli.common import console
from pipeline.errors import InputError


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        ctx: typer.Context,
        directory: Path = typer.Option(Path("agentwatch-demo"), "--dir", help="Where the demo writes its files."),
        agents: int = typer.Option(40, "--agents", help="Simulated agents (6 roles)."),
        hours: float = typer.Option(48.0, "--hours", help="Simulated hours of fleet activity."),
        rate: float = typer.Option(1500.0, "--rate", help="Events per second to publish."),
        seed: int = typer.Option(7, "--seed", help="Simulation seed (same seed, same fleet)."),
        port: int = typer.Option(None, "--port", help="Broker port on 127.0.0.1 (default: a free one)."),
        no_live: bool = typer.Option(False, "--no-live", help="Print a summary only, no live view."),
    ) -> None:
        """Run the whole pipeline on a simulated fleet with injected attacks, then write the evidence."""
        from pipeline.demo import DemoOptions, run_demo

        if agents < 6 or agents > 10_000:
            raise InputError("--agents must be between 6 and 10000")
        if not 0 < hours <= 24 * 30:
            raise InputError("--hours must be between 0 and 720")
        if not 1 <= rate <= 200_000:
            raise InputError("--rate must be between 1 and 200000 events/s")
        state = ctx.find_root().obj
        opts = DemoOptions(directory=directory, agents=agents, hours=hours, rate=rate, seed=seed, port=port,
                           config=getattr(state, "config", None))
        run_demo(opts, console=console, live=not no_live and console.is_terminal)
