"""The evidence export: figures, the three formats, and the HTML parsed and checked."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.incidents import IncidentTracker, open_store
from pipeline.incidents.evidence import ExportFilter, build_report, render_html
from pipeline.records import incident_id_for
from pipeline.settings import IncidentSettings

from .factories import T0, Clock, alert, event
from .test_store import fill, scenario


class Page(HTMLParser):
    """Collects what an auditor would see and what would make the file not self-contained."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.external: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.stack.append(tag)
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        for key in ("src", "href"):
            value = a.get(key) or ""
            if value and not value.startswith("#"):
                self.external.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack[-1:] != ["style"]:
            self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture()
def store_path(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "incidents.db"
    outs, inc = scenario()
    # an attacker-controlled command with markup in it must come out as text, never as HTML
    tr = IncidentTracker(IncidentSettings(), Clock(T0 + 86400 * 2))
    e = event(agent="agent-3", n=1, ts=T0 + 86400 * 2, command='<script>alert("x")</script> & rm -rf /')
    outs += [alert(e, severity="low", score=15, rule="odd"), *tr.on_outputs(e, [alert(e, severity="low", score=15, rule="odd")])]
    with open_store(f"sqlite:///{path}") as s:
        fill(s, outs)
        s.record_stats("2026-09-21", 12_000, 4, source="worker-1")
        s.record_stats("2026-09-22", 9_000, 0, source="worker-1")
        s.record_stats("2026-09-23", 7_000, 1, source="worker-1")
        s.ack_alert(outs[0].value["alert_id"], by="erin", ts="2026-09-21T14:20:00.000Z", comment="checked")
    return path, inc


def test_report_figures(store_path) -> None:
    path, inc = store_path
    with open_store(f"sqlite:///{path}") as s:
        r = build_report(s, ExportFilter(), generated_at=T0 + 10 * 86400)
    s_ = r["summary"]
    assert s_["events_processed"] == 28_000 and s_["dead_letters"] == 5 and s_["days_covered"] == 3
    assert s_["alerts_total"] == 4 and s_["alerts_by_severity"] == {"info": 0, "low": 1, "medium": 1, "high": 1, "critical": 1}
    assert s_["incidents_total"] == 3 and s_["incidents_by_status"]["resolved"] == 1
    assert s_["isolations"] == 1 and s_["acks_by_status"] == {"applied": 1}
    assert s_["ack_seconds"]["median"] == pytest.approx(0.3)
    # the scenario's incident opens at the clock (T0) and its first evidence event is at T0: detect 0 s;
    # the isolation is applied at T0 + 20.3
    assert s_["time_to_contain_seconds"]["count"] == 1 and s_["mttc_seconds"] == pytest.approx(20.3)
    assert s_["alerts_acknowledged"] == 1 and s_["analyst_actions_by_analyst"] == {"carol": 2}
    assert r["verification"]["ok"] is True and r["verification"]["checked"] > 0
    assert [c["criterion"] for c in r["soc2"]] == ["CC7.2", "CC7.3", "CC7.4"]
    apd = {d["day"]: d for d in r["charts"]["alerts_per_day"]}
    assert list(apd) == ["2026-09-21", "2026-09-22", "2026-09-23"], "every day of the range, empty ones too"
    assert apd["2026-09-22"]["critical"] == 0 and apd["2026-09-21"]["critical"] == 1
    assert sum(b["alerts"] for b in r["charts"]["risk_distribution"]) == 4
    assert sum(b["incidents"] for b in r["charts"]["time_to_contain"]) == 1
    got = next(i for i in r["incidents"] if i["incident_id"] == inc)
    assert [e["type"] for e in got["timeline"]].count("analyst") == 2


def test_filters(store_path) -> None:
    path, inc = store_path
    with open_store(f"sqlite:///{path}") as s:
        only = build_report(s, ExportFilter(agents=["agent-1"]), generated_at=T0)
        assert [i["incident_id"] for i in only["incidents"]] == [inc] and only["summary"]["alerts_total"] == 2
        risky = build_report(s, ExportFilter(min_risk=60), generated_at=T0)
        assert [i["incident_id"] for i in risky["incidents"]] == [inc]
        later = build_report(s, ExportFilter(since=T0 + 86400), generated_at=T0)
        assert [i["agent_id"] for i in later["incidents"]] == ["agent-3"]
        assert later["summary"]["events_processed"] == 7_000 + 9_000


def test_html_is_self_contained_and_complete(store_path) -> None:
    path, inc = store_path
    with open_store(f"sqlite:///{path}") as s:
        html = render_html(build_report(s, ExportFilter(), generated_at=T0 + 10 * 86400, store_label="incidents.db"))
    page = Page()
    page.feed(html)
    page.close()
    text = page.all_text
    assert {"criteria", "summary", "charts", "verification", "soc2", "incidents", "alerts", inc} <= page.ids
    assert page.external == [], "no external resources"
    assert "script" not in page.tags, "no scripts, and agent text is escaped"
    assert '<script>alert("x")</script> & rm -rf /' in text
    assert page.tags.count("svg") == 3 and page.tags.count("rect") > 5
    for needle in ("CC7.2", "CC7.3", "CC7.4", "chain intact", "28000", "mean time to contain", "20.3 s",
                   "isolate applied at gate-1", "creds rotated", "carol", "erin", "Alerts per day",
                   "Risk distribution", "Time to contain", "2026-09-22"):
        assert needle in text, needle
    assert "@media print" in html and "@page" in html


def test_html_reports_a_broken_chain(store_path) -> None:
    path, _ = store_path
    with open_store(f"sqlite:///{path}") as s:
        s._db.execute("UPDATE aw_chain SET text = REPLACE(text, 'carol', 'mallory') WHERE kind = 'timeline'")
        report = build_report(s, ExportFilter(), generated_at=T0)
    page = Page()
    page.feed(render_html(report))
    assert report["verification"]["ok"] is False
    assert "chain BROKEN: modified" in page.all_text and "THE CHAIN FAILED VERIFICATION" in page.all_text


def test_cli_export_all_formats(store_path, tmp_path, capsys) -> None:
    path, inc = store_path
    for fmt in ("json", "csv", "html"):
        out = tmp_path / f"evidence.{fmt}"
        code = main(["evidence", "export", "--db", str(path), "--from", "2026-09-21", "--to", "2026-09-21",
                     "--agent", "agent-1", "--agent", "agent-2", "--format", fmt, "--out", str(out)])
        printed = capsys.readouterr()
        assert code == 0, printed.err
        assert out.exists() and "chain OK" in printed.out
    data = json.loads((tmp_path / "evidence.json").read_text())
    assert data["criteria"]["agents"] == ["agent-1", "agent-2"]
    assert data["criteria"]["from"] == "2026-09-21T00:00:00.000Z" and data["criteria"]["to"] == "2026-09-22T00:00:00.000Z"
    assert data["summary"]["incidents_total"] == 2 and data["summary"]["events_processed"] == 12_000
    rows = list(csv.DictReader((tmp_path / "evidence.csv").open()))
    assert {r["incident_id"] for r in rows} == {inc, incident_id_for("agent-2", "agent-2-ev-1")}
    assert any(r["entry_type"] == "ack" for r in rows)
    summary = list(csv.reader((tmp_path / "evidence.summary.csv").open()))
    assert ["summary", "isolations", "1"] in summary and ["verification", "ok", "True"] in summary


def test_cli_export_errors(store_path, tmp_path, capsys) -> None:
    path, _ = store_path
    for args, needle in (
        (["--format", "pdf"], "--format"),
        (["--from", "2026-09-22", "--to", "2026-09-21"], "not after"),
        (["--from", "someday"], "cannot read"),
    ):
        code = main(["evidence", "export", "--db", str(path), "--out", str(tmp_path / "x"), *args])
        err = capsys.readouterr().err
        assert code != 0 and needle in err and len(err.strip().splitlines()) == 1
    with open_store(f"sqlite:///{path}") as s:
        s._db.execute("DELETE FROM aw_chain WHERE seq = 3")
    code = main(["evidence", "export", "--db", str(path), "--format", "html", "--out", str(tmp_path / "broken.html")])
    assert code == 1 and (tmp_path / "broken.html").exists(), "a broken chain still writes the report, and fails"
