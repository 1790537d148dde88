"""The ``agentwatch`` command.

The root app holds the global options (``--config``, ``--broker``, ``--debug``); each command group
lives in its own module under ``pipeline/cli/`` and adds itself through ``register(app)``.
``main()`` turns every :class:`~pipeline.errors.AgentwatchError` into one line on stderr and a
non-zero exit; no traceback reaches a user unless they ask with ``--debug``.
"""

from __future__ import annotations

import importlib
import sys

import typer

from pipeline.cli.common import AppState, err_console
from pipeline.errors import AgentwatchError

__all__ = ["app", "main"]

app = typer.Typer(
    name="agentwatch",
    help="Streaming anomaly detection for AI-agent actions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: command modules, each with ``register(app)``; the order is the order in ``--help``
COMMAND_MODULES = (
    "pipeline.cli.demo",
    "pipeline.cli.broker",
    "pipeline.cli.topics",
    "pipeline.cli.worker",
    "pipeline.cli.replay",
    "pipeline.cli.simulate",
    "pipeline.cli.rules",
    "pipeline.cli.baseline",
    "pipeline.cli.alerts",
    "pipeline.cli.incidents",
    "pipeline.cli.isolation",
    "pipeline.cli.keys",
    "pipeline.cli.evidence",
    "pipeline.cli.config",
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: str = typer.Option(None, "--config", "-c", help="YAML settings file (or AGENTWATCH_CONFIG)."),
    broker: str = typer.Option(None, "--broker", "-b", help="Kafka bootstrap host:port (or AGENTWATCH_BROKER)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for internal errors."),
) -> None:
    ctx.obj = AppState(config=config, broker=broker, debug=debug)


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (usage errors 2, user errors 1 or 2, bugs 70)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        # standalone mode: click prints usage errors itself (one line plus usage) and exits 2
        app(args=args, prog_name="agentwatch", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except AgentwatchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        return 130
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if "--debug" in args:
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc} (rerun with --debug for details)",
            highlight=False,
            soft_wrap=True,
        )
        return 70
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
