"""simulate(): sinks, ground-truth file, pacing, early stop; the CLI writing files."""

from __future__ import annotations

import io

import orjson
import pytest

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.simulator import Fleet, JsonlWriter, parse_start, simulate


def test_jsonl_file_is_byte_identical_across_runs(tmp_path) -> None:
    outs = []
    for run in range(2):
        ev_path, truth_path = tmp_path / f"ev{run}.jsonl", tmp_path / f"truth{run}.jsonl"
        with JsonlWriter(ev_path) as ev_sink, JsonlWriter(truth_path) as truth_sink:
            stats = simulate(Fleet(seed=9, agents=12), ev_sink, duration_hours=6, truth=truth_sink)
        outs.append((ev_path.read_bytes(), truth_path.read_bytes()))
        assert ev_sink.lines == truth_sink.lines == stats.events > 0
    assert outs[0] == outs[1]
    events = [orjson.loads(line) for line in outs[0][0].splitlines()]
    truths = [orjson.loads(line) for line in outs[0][1].splitlines()]
    assert [e["event_id"] for e in events] == [t["event_id"] for t in truths]
    assert stats.malicious == sum(t["malicious"] for t in truths) == sum(stats.by_scenario.values())
    assert stats.first_ts == events[0]["ts"] and stats.last_ts == events[-1]["ts"]


def test_pacing_follows_the_rate_on_the_given_clock() -> None:
    now = [100.0]
    sleeps: list[float] = []

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    got: list[dict] = []
    stats = simulate(Fleet(seed=1, agents=6), got.append, duration_hours=4, attacks=(), rate=50.0,
                     max_events=101, clock=clock, sleep=sleep)
    assert stats.events == len(got) == 101
    assert now[0] - 100.0 == pytest.approx(100 / 50.0)  # event i is due at i / rate
    assert all(s > 0 for s in sleeps)


def test_speed_paces_by_event_time() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    fleet = Fleet(seed=1, agents=6)
    got: list[dict] = []
    simulate(fleet, got.append, duration_hours=2, attacks=(), speed=3600.0, clock=lambda: now[0], sleep=sleep)
    # two simulated hours at 3600x take about two seconds: the last event's offset / speed
    last_offset_s = (parse_start(got[-1]["ts"]) - fleet.start_ms) / 1000
    assert now[0] == pytest.approx(last_offset_s / 3600.0)
    with pytest.raises(InputError, match="not both"):
        simulate(fleet, got.append, duration_hours=1, rate=5, speed=5)


def test_unpaced_run_never_sleeps() -> None:
    def sleep(seconds: float) -> None:
        raise AssertionError("slept")

    stats = simulate(Fleet(seed=1, agents=6), lambda ev: None, duration_hours=2, attacks=(), sleep=sleep)
    assert stats.events > 0


def test_should_stop_ends_the_run_early_and_progress_reports() -> None:
    seen: list[tuple[int, int, int]] = []
    stats = simulate(
        Fleet(seed=1, agents=30), lambda ev: None, duration_hours=24,
        on_progress=lambda done, total, s: seen.append((done, total, s.events)),
        progress_every=100, should_stop=lambda: len(seen) >= 3,
    )
    assert stats.stopped and stats.events == 300
    assert [e for _, _, e in seen[:3]] == [100, 200, 300]
    assert all(total == 24 * 3_600_000 and 0 <= done <= total for done, total, _ in seen)


def test_rate_must_be_positive() -> None:
    with pytest.raises(InputError):
        simulate(Fleet(agents=3), lambda ev: None, duration_hours=1, rate=0)


def test_jsonl_writer_to_a_stream_and_unwritable_path(tmp_path) -> None:
    buf = io.BytesIO()
    with JsonlWriter(buf) as w:
        w({"a": 1, "b": "é"})
    assert buf.getvalue() == '{"a":1,"b":"é"}\n'.encode()
    with pytest.raises(InputError, match="cannot write"):
        JsonlWriter(tmp_path / "missing-dir" / "x.jsonl")


# ---------------------------------------------------------------- CLI


def test_cli_writes_events_and_truth(tmp_path, capsys, clean_env) -> None:
    out, truth = tmp_path / "ev.jsonl", tmp_path / "truth.jsonl"
    code = main(["simulate", "--seed", "4", "--agents", "10", "--hours", "8", "--out", str(out), "--truth", str(truth),
                 "--scenarios", "credential_theft,offhours_bulk_export"])
    assert code == 0
    text = capsys.readouterr()
    assert "credential_theft" in text.out and "events" in text.out
    lines = out.read_bytes().splitlines()
    truths = [orjson.loads(line) for line in truth.read_bytes().splitlines()]
    assert len(lines) == len(truths) > 100
    assert {t["scenario"] for t in truths} == {None, "credential_theft", "offhours_bulk_export"}
    # the CLI and the library produce the same bytes
    fleet = Fleet(seed=4, agents=10)
    from pipeline.simulator import select_scenarios

    expected = [orjson.dumps(ev) for ev, _ in fleet.events(8, select_scenarios("credential_theft,offhours_bulk_export"))]
    assert lines == expected


def test_cli_reads_defaults_from_settings(tmp_path, capsys, clean_env, monkeypatch) -> None:
    monkeypatch.setenv("AGENTWATCH_SIMULATOR__AGENTS", "6")
    monkeypatch.setenv("AGENTWATCH_SIMULATOR__HOURS", "3")
    monkeypatch.setenv("AGENTWATCH_SIMULATOR__SCENARIOS", "none")
    out = tmp_path / "ev.jsonl"
    assert main(["simulate", "--out", str(out), "-q"]) == 0
    agents = {orjson.loads(line)["agent_id"] for line in out.read_bytes().splitlines()}
    assert 0 < len(agents) <= 6


def test_cli_stdout_keeps_humans_on_stderr(capsys, clean_env) -> None:
    assert main(["simulate", "--agents", "4", "--hours", "1", "--scenarios", "none", "--out", "-"]) == 0
    captured = capsys.readouterr()
    events = [orjson.loads(line) for line in captured.out.splitlines()]
    assert events and all(e["schema_version"] == "1" for e in events)
    assert "events" in captured.err


def test_cli_lists_scenarios(capsys, clean_env) -> None:
    assert main(["simulate", "--list-scenarios"]) == 0
    assert "privilege_escalation" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--agents", "0"], "agents"),
    (["--hours", "0"], "duration"),
    (["--start", "tomorrow"], "RFC 3339"),
    (["--scenarios", "bogus"], "unknown scenario"),
    (["--rate", "5", "--as-fast-as-possible"], "choose one"),
    (["--rate", "5", "--speed", "60"], "choose one"),
    (["--speed", "0"], "speed"),
    (["--rate", "-3"], "rate"),
    (["--agents", "1"], "data-analyst"),
])
def test_cli_bad_input_is_one_line(args, message, tmp_path, capsys, clean_env) -> None:
    code = main(["simulate", "--out", str(tmp_path / "x.jsonl"), *args])
    assert code != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_unreachable_broker_is_one_line(capsys, clean_env) -> None:
    code = main(["simulate", "--broker", "127.0.0.1:1", "--hours", "1", "-q"])
    assert code != 0
    err = capsys.readouterr().err.strip()
    assert "cannot reach Kafka at 127.0.0.1:1" in err and len(err.splitlines()) == 1
