"""What every command shares: the global options, settings loading and output consoles."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import typer
from rich.console import Console

from pipeline.settings import Settings, load_settings

__all__ = ["AppState", "console", "err_console", "settings_of"]

console = Console()
err_console = Console(stderr=True)


@dataclass
class AppState:
    config: str | None = None
    broker: str | None = None
    debug: bool = False

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config, broker=self.broker)


def settings_of(ctx: typer.Context, **overrides: Any) -> Settings:
    """The settings for this invocation (global options applied). Raises ConfigError."""
    state = ctx.find_root().obj
    if not isinstance(state, AppState):  # called without the root callback (tests)
        state = AppState()
    if overrides:
        base = state.settings.model_dump()
        for key, value in overrides.items():
            if value is not None:
                base[key] = value
        return Settings.model_validate(base)
    return state.settings
