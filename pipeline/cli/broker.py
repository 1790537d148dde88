"""``agentwatch broker``: run the embedded Kafka-protocol broker until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal

import typer

from pipeline.broker import EmbeddedBroker
from pipeline.cli.common import console


def register(app: typer.Typer) -> None:
    @app.command()
    def broker(
        port: int = typer.Option(9092, "--port", "-p", help="Port on 127.0.0.1 to listen on."),
    ) -> None:
        """Start the embedded broker (Tansu, in-memory) on 127.0.0.1 for trying agentwatch out."""
        b = EmbeddedBroker(port)
        b.start()
        console.print(f"broker ready on [bold]{b.bootstrap}[/] (in-memory; Ctrl-C stops it)")

        def _stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            code = b.wait()
            console.print(f"broker exited with code {code}")
            raise typer.Exit(1 if code else 0)
        except KeyboardInterrupt:
            console.print("stopping broker")
        finally:
            b.stop()
            signal.signal(signal.SIGTERM, previous)
