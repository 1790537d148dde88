"""`agentwatch alerts` and `agentwatch incidents`: tables, filters, JSON, analyst actions written to
the store and published on the real broker, verify's exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

import schemas
from pipeline.cli import main
from pipeline.incidents import open_store

from .test_store import fill, scenario


@pytest.fixture()
def db(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "incidents.db"
    outs, inc = scenario()
    with open_store(f"sqlite:///{path}") as s:
        fill(s, outs)
    return path, inc


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def agent2_incident(path: Path) -> str:
    with open_store(f"sqlite:///{path}") as s:
        return str(s.list_incidents(agents=["agent-2"])[0]["incident_id"])


def test_list_and_show_with_filters(db, capsys) -> None:
    path, inc = db
    code, out, _ = run(capsys, "incidents", "list", "--db", str(path))
    assert code == 0 and "2 incident(s)" in out and inc[:12] in out
    code, out, _ = run(capsys, "incidents", "list", "--db", str(path), "--status", "open", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["agent_id"] for r in rows] == ["agent-2"]
    code, out, _ = run(capsys, "incidents", "list", "--db", str(path), "--severity", "critical", "--json")
    assert [r["incident_id"] for r in json.loads(out)] == [inc]
    _, out, _ = run(capsys, "incidents", "list", "--db", str(path), "--owner", "nobody@example.com", "--json")
    assert json.loads(out) == []
    _, out, _ = run(capsys, "incidents", "list", "--db", str(path), "--since", "2026-09-22", "--json")
    assert json.loads(out) == []
    _, out, _ = run(capsys, "incidents", "list", "--db", str(path), "--until", "2026-09-21", "--min-risk", "90", "--json")
    assert [r["incident_id"] for r in json.loads(out)] == [inc]
    code, out, _ = run(capsys, "incidents", "show", inc[:10], "--db", str(path))
    assert code == 0 and "timeline" in out and "creds rotated" in out and "isolate applied" in out
    code, out, _ = run(capsys, "incidents", "show", inc, "--db", str(path), "--json")
    shown = json.loads(out)
    assert shown["status"] == "resolved" and len(shown["timeline"]) == shown["timeline_total"]


def test_alerts_list_show_ack(db, capsys) -> None:
    path, _ = db
    code, out, _ = run(capsys, "alerts", "list", "--db", str(path), "--json")
    alerts = json.loads(out)
    assert code == 0 and len(alerts) == 3
    crit = next(a for a in alerts if a["severity"] == "critical")
    code, out, _ = run(capsys, "alerts", "list", "--db", str(path), "--agent", "agent-2")
    assert code == 0 and "1 alert(s)" in out
    code, out, _ = run(capsys, "alerts", "show", crit["alert_id"][:12], "--db", str(path))
    assert code == 0 and "risk factors" in out and "rules:exfil" in out
    code, out, _ = run(capsys, "alerts", "ack", crit["alert_id"], "--db", str(path), "--by", "carol", "-m", "looking", "--json")
    assert code == 0 and json.loads(out)["ack"]["by"] == "carol"
    _, out, _ = run(capsys, "alerts", "list", "--db", str(path), "--status", "acked", "--json")
    assert [a["alert_id"] for a in json.loads(out)] == [crit["alert_id"]]
    code, out, _ = run(capsys, "incidents", "verify", "--db", str(path))
    assert code == 0 and "OK" in out


def test_assign_without_publishing(db, capsys) -> None:
    path, _ = db
    inc2 = agent2_incident(path)
    code, out, _ = run(capsys, "incidents", "assign", inc2, "--to", "dave", "--by", "carol", "-m", "on it",
                       "--db", str(path), "--no-publish", "--json")
    result = json.loads(out)
    assert code == 0 and result["published"] is False
    assert result["incident"]["status"] == "triaged" and result["incident"]["assignee"] == "dave"
    msg = result["control_messages"][0]
    assert msg["type"] == "incident_update" and msg["payload"]["assignee"] == "dave"
    assert not list(schemas.validator("control").iter_errors(msg))
    with open_store(f"sqlite:///{path}") as s:
        analyst = [e for e in s.timeline(inc2) if e["type"] == "analyst"]
        assert analyst[0]["actor"] == "carol" and analyst[0]["data"]["comment"] == "on it"
        assert s.verify().ok


def test_resolved_incident_cannot_be_resolved_again(db, capsys) -> None:
    path, inc = db
    code, _, err = run(capsys, "incidents", "resolve", inc, "-d", "benign", "--by", "x", "--db", str(path), "--no-publish")
    assert code == 2 and "already resolved" in err and len(err.strip().splitlines()) == 1


def test_explicit_publish_to_unreachable_broker_fails_before_writing(db, capsys) -> None:
    path, _ = db
    inc2 = agent2_incident(path)
    code, _, err = run(capsys, "--broker", "127.0.0.1:1", "incidents", "resolve", inc2, "-d", "false_positive",
                       "--by", "carol", "--db", str(path), "--publish")
    assert code != 0 and "cannot reach Kafka" in err and len(err.strip().splitlines()) == 1
    with open_store(f"sqlite:///{path}") as s:
        assert s.get_incident(inc2, timeline=False)["status"] == "open", "nothing recorded"
    # default (auto): recorded, with a one-line note that nothing was published
    code, out, err = run(capsys, "--broker", "127.0.0.1:1", "incidents", "assign", inc2, "--to", "dave",
                         "--by", "carol", "--db", str(path))
    assert code == 0 and "not published" in err and "not published" in out


@pytest.mark.broker
def test_false_positive_publishes_update_and_suppression(db, capsys, broker, topic_prefix, monkeypatch) -> None:
    from kafka import KafkaConsumer, TopicPartition

    from pipeline.settings import load_settings
    from pipeline.topics import create_topics

    monkeypatch.setenv("AGENTWATCH_TOPICS__PREFIX", topic_prefix)
    create_topics(load_settings(None, broker=broker.bootstrap))
    path, _ = db
    inc2 = agent2_incident(path)
    code, out, err = run(capsys, "--broker", broker.bootstrap, "incidents", "resolve", inc2[:14], "-d", "false_positive",
                         "--by", "carol", "-m", "port checks by the inventory job", "--suppress-for", "7d",
                         "--db", str(path), "--publish", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["published"] is True and result["incident"]["status"] == "false_positive"

    topic = topic_prefix + "agent.control"
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=3000, auto_offset_reset="earliest")
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    msgs = [(m.key, orjson.loads(m.value)) for m in consumer]
    consumer.close()
    by_type = {v["type"]: (k, v) for k, v in msgs}
    assert set(by_type) == {"incident_update", "suppression"}
    key, update = by_type["incident_update"]
    assert key == b"agent-2" and update["by"] == "carol" and update["payload"]["status"] == "false_positive"
    assert [e["event_id"] for e in update["payload"]["evidence_events"]] == ["agent-2-ev-1"]
    _, sup = by_type["suppression"]
    assert sup["payload"] == {"scope": "rule", "rule": "rules:recon", "ttl_seconds": 7 * 86400.0, "incident_id": inc2}
    assert sup["agent_id"] == "agent-2" and sup["by"] == "carol"
    validator = schemas.validator("control")
    for _, m in msgs:
        assert not list(validator.iter_errors(m))
    with open_store(f"sqlite:///{path}") as s:
        entry = [e for e in s.timeline(inc2) if e["type"] == "analyst"][-1]
        assert entry["data"]["suppressions"][0]["rule"] == "rules:recon" and entry["actor"] == "carol"
        assert entry["data"]["disposition"] == "false_positive"


def test_verify_exit_codes_and_names_the_entry(db, capsys) -> None:
    path, _ = db
    code, out, _ = run(capsys, "incidents", "verify", "--db", str(path), "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    with open_store(f"sqlite:///{path}") as s:
        victim = s._db.one("SELECT entry_id FROM aw_chain WHERE seq = 7")[0]
        s._db.execute("DELETE FROM aw_chain WHERE seq = 7")
    code, out, _ = run(capsys, "incidents", "verify", "--db", str(path))
    assert code == 1 and "BROKEN" in out and victim in out and "deleted" in out


def test_verify_uses_the_configured_store_url(db, capsys, monkeypatch) -> None:
    path, _ = db
    monkeypatch.setenv("AGENTWATCH_INCIDENTS__STORE_URL", f"sqlite:///{path}")
    code, out, _ = run(capsys, "incidents", "verify")
    assert code == 0 and "OK" in out


def test_user_errors_are_one_line(db, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("AGENTWATCH_INCIDENTS__ANALYST", raising=False)
    path, inc = db
    cases = [
        (["incidents", "list", "--db", str(tmp_path / "missing.db")], "no incident store"),
        (["incidents", "show", "inc_nope", "--db", str(path)], "no incident"),
        (["incidents", "list", "--db", str(path), "--status", "weird"], "--status"),
        (["incidents", "list", "--db", str(path), "--since", "yesterday-ish"], "cannot read"),
        (["incidents", "resolve", inc, "-d", "meh", "--db", str(path)], "--disposition"),
        (["incidents", "assign", inc, "--to", "d", "--db", str(path), "--no-publish"], "--by"),
        (["alerts", "ack", "alr_nope", "--by", "x", "--db", str(path)], "no alert"),
        (["incidents", "list", "--db", "mysql://x"], "unsupported store URL"),
        (["incidents", "list", "--db", "postgresql://nobody@127.0.0.1:1/x"], "cannot connect"),
    ]
    for args, needle in cases:
        code, _, err = run(capsys, *args)
        assert code != 0 and needle in err, (args, err)
        assert len(err.strip().splitlines()) == 1, (args, err)
        assert "Traceback" not in err
