"""`agentwatch keys` and `agentwatch isolation`: in-process, release and list against the broker."""

from __future__ import annotations

import json
import time

import orjson
import pytest
from kafka import KafkaProducer

from pipeline.cli import main
from pipeline.cli.isolation import read_topic
from pipeline.enforcement.keys import load_keyring
from pipeline.enforcement.signing import dev_signer
from pipeline.response import Responder
from pipeline.settings import Settings
from pipeline.topics import create_topics

from .helpers import Clock


@pytest.fixture(autouse=True)
def _clean(clean_env) -> None:
    pass


def test_keys_generate_rotate_show(tmp_path, capsys) -> None:
    key = tmp_path / "k" / "signing.key"
    assert main(["keys", "generate", "--path", str(key)]) == 0
    assert "created signing key k_" in capsys.readouterr().out
    assert main(["keys", "generate", "--path", str(key)]) == 2  # exists: one-line error
    assert "already exists" in capsys.readouterr().err
    assert main(["keys", "rotate", "--path", str(key), "--overlap", "2h"]) == 0
    assert "verifies until" in capsys.readouterr().out
    assert main(["keys", "show-public", "--path", str(key), "--json"]) == 0
    ring = json.loads(capsys.readouterr().out)
    assert len(ring["keys"]) == 2 and ring["keys"][0]["not_after"] and ring["keys"][1]["not_after"] is None
    assert len(load_keyring(key.parent / "keyring.json").key_ids()) == 2
    assert main(["keys", "rotate", "--path", str(key), "--overlap", "soon"]) == 2
    assert "not a number" in capsys.readouterr().err
    assert main(["keys", "show-public", "--path", str(tmp_path / "none.key")]) == 2


def test_key_path_comes_from_settings(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AGENTWATCH_ENFORCEMENT__SIGNING_KEY_PATH", str(tmp_path / "s.key"))
    assert main(["keys", "generate"]) == 0
    assert (tmp_path / "s.key").exists() and (tmp_path / "keyring.json").exists()


def test_release_needs_a_named_human(capsys) -> None:
    assert main(["--broker", "127.0.0.1:1", "isolation", "release", "a1", "--by", " ", "--reason", "x"]) == 2
    err = capsys.readouterr().err
    assert "named human" in err and "Traceback" not in err
    assert main(["--broker", "127.0.0.1:1", "isolation", "release", "a1", "--by", "carol", "--reason", "x"]) != 0
    assert "cannot reach Kafka" in capsys.readouterr().err


@pytest.mark.broker
def test_release_publishes_a_control_message_the_responder_turns_into_a_signed_release(
        broker, topic_prefix, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AGENTWATCH_TOPICS__PREFIX", topic_prefix)
    monkeypatch.setenv("AGENTWATCH_TOPICS__PARTITIONS", "2")
    settings = Settings(broker=broker.bootstrap)
    create_topics(settings)
    assert main(["--broker", broker.bootstrap, "isolation", "release", "agent-9", "--by", "carol@example.com",
                 "--reason", "false positive", "--enforcement-point", "ep-3"]) == 0
    assert "release of agent-9 requested by carol@example.com" in capsys.readouterr().out
    [msg] = read_topic(broker.bootstrap, settings.topic("control"))
    assert (msg["type"], msg["agent_id"], msg["by"], msg["payload"]) == ("release", "agent-9", "carol@example.com",
                                                                         {"enforcement_point": "ep-3"})
    resp = Responder(settings, Clock(time.time()), signer=dev_signer())
    [out] = resp.on_control(msg)
    assert out.kind == "enforcement" and out.key == "ep-3"
    assert out.value["action"] == "release" and out.value["requested_by"]["by"] == "carol@example.com"

    # `isolation list` shows what is in force: publish the command and one isolation
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    iso = dict(out.value, agent_id="agent-1", action="isolate", command_id="cmd_1", sequence=1,
               expires_at="2999-01-01T00:00:00.000Z")
    for value in (out.value, iso):
        producer.send(settings.topic("enforcement"), key=b"ep-3", value=orjson.dumps(value))
    producer.send(settings.topic("acks"), key=b"agent-1", value=orjson.dumps(
        {"command_id": "cmd_1", "agent_id": "agent-1", "status": "applied"}))
    producer.flush()
    producer.close()
    assert main(["--broker", broker.bootstrap, "isolation", "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["agent_id"], r["action"], r["ack"]) for r in rows] == [("agent-1", "isolate", "applied")]
