"""One settings object: defaults < YAML < environment < explicit overrides; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import ConfigError, load_settings

pytestmark = pytest.mark.usefixtures("clean_env")


def test_defaults() -> None:
    s = load_settings()
    assert s.broker == "127.0.0.1:9092"
    assert s.topic("actions") == "agent.actions"
    assert s.stream.max_message_bytes == 64 * 1024


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("broker: yaml:1\ntopics:\n  prefix: y.\n  partitions: 3\nstream:\n  max_message_bytes: 2048\n")
    s = load_settings(cfg)
    assert (s.broker, s.topics.prefix, s.topics.partitions) == ("yaml:1", "y.", 3)
    monkeypatch.setenv("AGENTWATCH_BROKER", "env:2")
    monkeypatch.setenv("AGENTWATCH_TOPICS__PREFIX", "e.")
    s = load_settings(cfg)
    assert (s.broker, s.topics.prefix, s.topics.partitions) == ("env:2", "e.", 3)
    assert s.stream.max_message_bytes == 2048
    s = load_settings(cfg, broker="cli:3")
    assert s.broker == "cli:3"
    monkeypatch.setenv("AGENTWATCH_CONFIG", str(cfg))
    assert load_settings().topics.partitions == 3


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("broker: [unclosed", "malformed config file"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("stream:\n  max_message_bytes: lots\n", "stream.max_message_bytes"),
        ("nonsense_key: 1\n", "nonsense_key"),
        ("broker: 'no-port'\n", "not host:port"),
        ("topics:\n  partitions: 0\n", "topics.partitions"),
    ],
)
def test_malformed_config_is_one_clear_line(tmp_path: Path, text: str, fragment: str) -> None:
    cfg = tmp_path / "bad.yml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yml")


def test_bad_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTWATCH_STREAM__MAX_MESSAGE_BYTES", "-1")
    with pytest.raises(ConfigError, match=r"stream\.max_message_bytes"):
        load_settings()


def test_secrets_are_not_in_the_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTWATCH_ENFORCEMENT__SIGNING_KEY", "super-secret-key-material")
    s = load_settings()
    assert "super-secret-key-material" not in repr(s)
    assert "super-secret-key-material" not in str(s.model_dump())
