"""``agentwatch topics create|list``: the topics with their partitions, retention and cleanup."""

from __future__ import annotations

import typer
from rich.table import Table

from pipeline.cli.common import console, settings_of
from pipeline.topics import create_topics, topic_specs


def register(app: typer.Typer) -> None:
    topics = typer.Typer(help="Create and describe agentwatch's Kafka topics.", no_args_is_help=True)
    app.add_typer(topics, name="topics")

    @topics.command("create")
    def create(ctx: typer.Context) -> None:
        """Create every topic that does not exist yet (safe to run twice)."""
        settings = settings_of(ctx)
        result = create_topics(settings)
        for name in result.created:
            console.print(f"created  {name}")
        for name in result.existing:
            console.print(f"exists   {name}")
        for warning in result.warnings:
            console.print(f"[yellow]warning[/] {warning}")

    @topics.command("list")
    def list_(ctx: typer.Context) -> None:
        """Show the topics agentwatch uses, as configured (no broker needed)."""
        table = Table("topic", "partitions", "cleanup", "retention")
        for spec in topic_specs(settings_of(ctx)):
            days = f"{spec.retention_ms / 86_400_000:g} days" if spec.retention_ms else "-"
            table.add_row(spec.name, str(spec.partitions), spec.cleanup, days)
        console.print(table)
