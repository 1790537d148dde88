"""Extra destinations: built from settings, routed by kind and minimum severity, real sockets.

Syslog tests listen on 127.0.0.1 only (UDP and TCP servers started here) and are bounded.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.outputs.registry import Destinations, build_destinations, destination_types
from pipeline.records import Output
from pipeline.settings import ConfigError, OutputSettings, load_settings

from .records import alert, enriched
from .test_cef import parse_cef


def _settings(*dests: dict[str, Any]) -> OutputSettings:
    return OutputSettings.model_validate({"destinations": list(dests)})


def test_every_registered_type_has_a_settings_model_and_vice_versa() -> None:
    from typing import get_args

    from pipeline.settings import Destination

    union = get_args(get_args(Destination)[0])
    configured = {cls.model_fields["type"].default for cls in union}
    assert configured == set(destination_types()) == {"file", "syslog", "stdout"}


def test_destinations_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, clean_env: None, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "AGENTWATCH_OUTPUTS__DESTINATIONS",
        json.dumps(
            [
                {
                    "name": "archive",
                    "type": "file",
                    "path": str(tmp_path / "{kind}.jsonl"),
                    "kinds": ["enriched", "alerts"],
                },
                {"name": "soc", "type": "syslog", "port": 5514, "min_severity": "high"},
                {"name": "off", "type": "stdout", "enabled": False},
            ]
        ),
    )
    s = load_settings()
    dests = build_destinations(s)
    assert [d.name for d in dests] == ["archive", "soc"]  # the disabled one is not built
    soc = next(d for d in dests if d.name == "soc")
    assert soc.format == "cef" and soc.min_severity.label == "high" and soc.kinds == {"alerts"}


def test_invalid_destination_settings_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    for bad, needle in [
        ([{"name": "x", "type": "kafka"}], "destinations"),
        ([{"name": "x", "type": "syslog", "min_severity": "urgent"}], "min_severity"),
        (
            [{"name": "x", "type": "stdout"}, {"name": "x", "type": "stdout"}],
            "duplicate destination name",
        ),
        ([{"name": "x", "type": "file"}], "path"),
    ]:
        monkeypatch.setenv("AGENTWATCH_OUTPUTS__DESTINATIONS", json.dumps(bad))
        with pytest.raises(ConfigError) as exc:
            load_settings()
        assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_file_destination_routes_by_kind_and_min_severity(tmp_path: Path) -> None:
    path = tmp_path / "out" / "agentwatch-{kind}.jsonl"
    settings = _settings(
        {
            "name": "all",
            "type": "file",
            "path": str(path),
            "kinds": ["enriched", "alerts"],
            "format": "json",
        },
        {
            "name": "crit",
            "type": "file",
            "path": str(tmp_path / "crit.cef"),
            "format": "cef",
            "min_severity": "critical",
        },
    )
    quiet = enriched("sql")
    quiet["agentwatch"]["findings"] = []  # info
    with build_destinations(settings) as dests:
        dests.publish_outputs(
            [
                Output("enriched", "a", enriched("shell")),  # high
                Output("enriched", "a", quiet),
                Output("alerts", "a", alert(severity="critical")),
                Output("alerts", "a", alert(severity="medium", alert_id="alr_2")),
                Output("enforcement", "ep", {"command_id": "c1"}),  # taken by no destination
            ]
        )
        dests.flush()
        stats = dests.stats()
    enriched_lines = (tmp_path / "out" / "agentwatch-enriched.jsonl").read_bytes().splitlines()
    alert_lines = (tmp_path / "out" / "agentwatch-alerts.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["event_id"] for x in enriched_lines] == [
        "7f1c2a9e-0001",
        "7f1c2a9e-0001",
    ]
    assert [orjson.loads(x)["alert_id"] for x in alert_lines] == [
        "alr_5d0c9a1e7b2f4c3d8e6a0b1c2d3e4f50",
        "alr_2",
    ]
    crit = (tmp_path / "crit.cef").read_text().splitlines()
    assert (
        len(crit) == 1
        and parse_cef(crit[0])[1]["externalId"] == "alr_5d0c9a1e7b2f4c3d8e6a0b1c2d3e4f50"
    )
    assert stats["all"].sent == 4 and stats["crit"].sent == 1


def test_stdout_destination(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    dests = build_destinations(_settings({"name": "out", "type": "stdout", "format": "ecs"}))
    dests.publish("alerts", alert())
    dests.close()
    line = capsysbinary.readouterr().out.splitlines()
    assert len(line) == 1 and orjson.loads(line[0])["event"]["kind"] == "alert"


def test_a_record_that_cannot_be_encoded_is_counted_not_raised(tmp_path: Path) -> None:
    dests = build_destinations(
        _settings({"name": "o", "type": "file", "path": str(tmp_path / "o"), "format": "ocsf"})
    )
    dests.publish("alerts", alert(risk={"score": float("nan")}))  # no JSON decoder makes this
    dests.publish("alerts", alert())
    dests.close()
    st = dests.stats()["o"]
    assert (st.sent, st.failed) == (1, 1)
    assert orjson.loads((tmp_path / "o").read_bytes())["class_uid"] == 2004


def test_buffer_is_bounded_when_a_destination_keeps_failing(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")  # the file destination cannot create a directory here
    dests = build_destinations(
        _settings(
            {"name": "f", "type": "file", "path": str(blocker / "out.jsonl"), "max_buffer": 3}
        )
    )
    for i in range(5):
        dests.publish("alerts", alert(alert_id=f"a{i}"))
        dests.flush()
    st = dests.stats()["f"]
    assert (st.sent, st.buffered, st.dropped, st.errors) == (0, 3, 2, 5)


# -- syslog over real sockets on 127.0.0.1 -------------------------------------------------------


def _udp_server() -> tuple[socket.socket, int]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    return s, s.getsockname()[1]


def test_syslog_udp_carries_rfc5424_cef() -> None:
    server, port = _udp_server()
    with server:
        dests = build_destinations(
            _settings(
                {
                    "name": "siem",
                    "type": "syslog",
                    "port": port,
                    "kinds": ["enriched", "alerts"],
                    "min_severity": "high",
                }
            )
        )
        low = enriched("file")
        low["agentwatch"]["findings"][0]["severity"] = "low"
        dests.publish("enriched", low)  # below min severity: not sent
        dests.publish("enriched", enriched("shell"))
        dests.publish("alerts", alert())
        dests.close()
        got = [server.recv(65535) for _ in range(2)]
    first = got[0].decode()
    assert first.startswith(
        "<83>1 2026-03-01T12:00:00.200Z mcp-gateway-eu1 agentwatch - enriched - CEF:0|"
    )  # 10*8+3
    assert parse_cef(first.split(" - enriched - ", 1)[1])[1]["cs1"] == "agent-billing-7"
    assert (
        got[1]
        .decode()
        .startswith("<82>1 2026-03-01T12:05:00.000Z mcp-gateway-eu1 agentwatch - alerts - CEF:0|")
    )


def _collect(srv: socket.socket, expected: int) -> tuple[list[bytes], threading.Thread]:
    srv.listen(4)
    received: list[bytes] = []

    def run() -> None:
        conn, _ = srv.accept()
        conn.settimeout(10)
        buf = b""
        with conn:
            while len(received) < expected:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while b" " in buf:  # octet counting: LEN SP MSG
                    n, _, rest = buf.partition(b" ")
                    if len(rest) < int(n):
                        break
                    received.append(rest[: int(n)])
                    buf = rest[int(n) :]

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return received, t


def test_syslog_tcp_octet_counting_and_retry_after_the_collector_comes_up() -> None:
    # the collector's port is bound but not listening yet, so the first flush is refused
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(10)
    port = srv.getsockname()[1]
    now = [0.0]
    dests: Destinations = build_destinations(
        _settings(
            {
                "name": "t",
                "type": "syslog",
                "protocol": "tcp",
                "port": port,
                "format": "json",
                "kinds": ["alerts"],
            }
        )
    )
    (dest,) = list(dests)
    dest._clock = lambda: now[0]  # type: ignore[attr-defined]  # back-off without sleeping
    dests.publish("alerts", alert(alert_id="a1", reason="multi\nline"))
    dests.flush()
    assert dests.stats()["t"].errors == 1 and dests.stats()["t"].buffered == 1

    received, thread = _collect(srv, expected=2)  # the collector comes up
    with srv:
        dests.publish("alerts", alert(alert_id="a2"))
        dests.flush()  # still backing off: nothing sent, nothing lost
        assert dests.stats()["t"].buffered == 2
        now[0] += 10
        dests.flush()
        dests.close()
        thread.join(10)
    assert [orjson.loads(m.split(b" - alerts - ", 1)[1])["alert_id"] for m in received] == [
        "a1",
        "a2",
    ]
    assert dests.stats()["t"].sent == 2
