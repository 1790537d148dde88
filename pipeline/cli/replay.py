"""``agentwatch replay EVENTS.jsonl --out DIR``: backtest rules and baselines on history."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.cli.common import console, err_console, settings_of
from pipeline.replay import OUTPUT_FILES, open_source, replay


def register(app: typer.Typer) -> None:
    @app.command("replay")
    def replay_command(
        ctx: typer.Context,
        events: str = typer.Argument(..., help="JSON-lines file of agent-action events, or - for stdin."),
        out: Path = typer.Option(..., "--out", "-o", help="Directory for the outputs (created if missing)."),
    ) -> None:
        """Run the exact pipeline code over a file: enriched, alerts, enforcement, dlq, incidents."""
        settings = settings_of(ctx)
        source = open_source(events)
        total = None
        if events != "-":
            try:
                with open(events, "rb") as f:
                    total = sum(1 for _ in f)
            except OSError:
                total = None
        with source as stream, Progress(
            TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err_console, transient=True, disable=not err_console.is_terminal and not os.environ.get("AGENTWATCH_PROGRESS"),
        ) as bar:
            task = bar.add_task("replay", total=total)
            result = replay(settings, stream, out, progress=lambda n: bar.update(task, completed=n))
        table = Table("output", "records", "file")
        for kind, name in OUTPUT_FILES.items():
            table.add_row(kind, str(result.counts.get(kind, 0)), str(out / name))
        table.add_row("duplicates dropped", str(result.duplicates), "")
        table.add_row("incident store", "", str(result.store_path))
        console.print(f"{result.lines} lines replayed")
        console.print(table)
