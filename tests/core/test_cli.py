"""Bad input to CLI commands: one clear line on stderr, a non-zero exit, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWATCH_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, timeout=timeout, env=full_env
    )


def assert_clean_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    assert fragment in proc.stderr, proc.stderr


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_lists_the_commands() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for command in ("demo", "broker", "topics", "worker", "replay", "simulate"):
        assert command in proc.stdout


def test_unknown_broker_address() -> None:
    port = unused_port()
    assert_clean_error(run("--broker", f"127.0.0.1:{port}", "topics", "create"), "cannot reach Kafka")
    assert_clean_error(run("--broker", f"127.0.0.1:{port}", "worker"), "cannot reach Kafka")


def test_malformed_broker_address() -> None:
    assert_clean_error(run("--broker", "nonsense", "topics", "create"), "not host:port")


def test_malformed_config(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("stream: {max_message_bytes: [1,2]\n")
    assert_clean_error(run("--config", str(cfg), "topics", "list"), "malformed config file")
    assert_clean_error(run("topics", "list", env={"AGENTWATCH_CONFIG": str(cfg)}), "malformed config file")


def test_broker_port_in_use() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert_clean_error(run("broker", "--port", str(port)), "already in use")


@pytest.mark.broker
def test_topics_create_is_safe_to_run_twice(broker, topic_prefix: str) -> None:  # type: ignore[no-untyped-def]
    # the state changelog is named after the app id, not the prefix: make it this test's own
    env = {"AGENTWATCH_TOPICS__PREFIX": topic_prefix, "AGENTWATCH_TOPICS__PARTITIONS": "2",
           "AGENTWATCH_WORKER__APP_ID": f"aw-{topic_prefix.strip('.')}"}
    first = run("--broker", broker.bootstrap, "topics", "create", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("created") == 9
    second = run("--broker", broker.bootstrap, "topics", "create", env=env)
    assert second.returncode == 0, second.stderr
    assert "created" not in second.stdout and second.stdout.count("exists") == 9
