"""``agentwatch config show``: the effective settings, secrets masked."""

from __future__ import annotations

import typer
import yaml

from pipeline.cli.common import console, settings_of


def register(app: typer.Typer) -> None:
    config = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
    app.add_typer(config, name="config")

    @config.command("show")
    def show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON instead of YAML.")) -> None:
        """Print the settings after defaults, YAML file, environment and options (secrets masked)."""
        data = settings_of(ctx).model_dump(mode="json")
        if as_json:
            import json

            console.print_json(json.dumps(data))
        else:
            console.print(yaml.safe_dump(data, sort_keys=False), highlight=False, end="")
