"""``agentwatch worker``: run one stream-processing worker (scale out by running more)."""

from __future__ import annotations

import logging

import typer

from pipeline.cli.common import console, settings_of
from pipeline.errors import AgentwatchError
from pipeline.kafka import check_reachable


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        ctx: typer.Context,
        metrics_port: int = typer.Option(None, "--metrics-port", help="Prometheus port (0 = off)."),
    ) -> None:
        """Consume agent actions and run the pipeline until SIGTERM/Ctrl-C (graceful)."""
        settings = settings_of(ctx)
        if metrics_port is not None:
            if not 0 <= metrics_port < 65536:
                raise AgentwatchError(f"--metrics-port {metrics_port} is out of range (0-65535)")
            settings.worker.metrics_port = metrics_port
        check_reachable(settings.broker)
        if settings.worker.metrics_port:
            _check_port_free(settings.worker.metrics_port)
        run_worker(settings)


def _check_port_free(port: int) -> None:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))  # noqa: S104 - the metrics endpoint binds all interfaces
        except OSError:
            raise AgentwatchError(
                f"metrics port {port} is already in use; pass --metrics-port or set AGENTWATCH_WORKER__METRICS_PORT"
            ) from None


def run_worker(settings: object) -> None:
    import faust

    from pipeline.app import create_app
    from pipeline.settings import Settings

    assert isinstance(settings, Settings)
    app = create_app(settings)
    level = settings.log_level
    logging.getLogger("faust").setLevel(level.upper())
    console.print(f"worker starting: broker {settings.broker}, group {settings.worker.app_id}", highlight=False)
    faust.Worker(app, loglevel=level, quiet=True).execute_from_commandline()
