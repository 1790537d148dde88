"""The auditor's evidence export (SOC 2 CC7.2 / CC7.3 / CC7.4) as JSON, CSV or one HTML file.

:func:`build_report` reads the store (after verifying its hash chain) and returns one dict: the
filter criteria, summary figures, chart series, every matching incident with its whole timeline,
the alerts, the chain verification result and the CC7 mapping. :func:`write_report` writes it:

- ``json``: the dict as it is;
- ``csv``: one row per timeline entry of every incident (incident columns repeated) in FILE, and
  the criteria, summary figures and verification as ``section,key,value`` rows in
  ``FILE.summary.csv`` (two tables do not fit one CSV);
- ``html``: one self-contained file (inline CSS and SVG charts drawn here, no JavaScript, no
  external resources) with print styles, so it can be archived or printed as it is.

Definitions: *time to detect* is from an incident's first evidence event to the event that opened
it (both event time, so live runs, replays and the demo's accelerated clock measure the same
thing; the pipeline's own latency, milliseconds, is measured by ``bench.latency``); *time to
contain* from opening to the first isolation acknowledged as applied;
*acknowledgement time* from a command's issue to the enforcement point's ``applied`` ack. Events
processed come from the run figures the worker and replay record per day (fleet-wide: the agent
filter does not apply to them). Nothing here reads the wall clock: the caller passes
``generated_at``.
"""

from __future__ import annotations

import csv
import html
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import orjson

from pipeline.incidents.store import IncidentStore
from pipeline.incidents.tracker import TERMINAL, alert_risk, parse_time
from pipeline.records import iso_time

__all__ = ["ExportFilter", "build_report", "render_html", "write_report"]

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_COLOR = {"info": "#9aa5b1", "low": "#4aa3df", "medium": "#f0b429", "high": "#e8590c", "critical": "#c92a2a"}
TTC_BUCKETS = ((1, "< 1 s"), (10, "1-10 s"), (60, "10-60 s"), (600, "1-10 min"), (3600, "10-60 min"),
               (6 * 3600, "1-6 h"), (float("inf"), "> 6 h"))
GENERATOR = "agentwatch"


@dataclass
class ExportFilter:
    """Which records the report covers. Times are epoch seconds, ``until`` exclusive."""

    since: float | None = None
    until: float | None = None
    agents: list[str] = field(default_factory=list)
    min_risk: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": iso_time(self.since) if self.since is not None else None,
            "to": iso_time(self.until) if self.until is not None else None,
            "to_is_exclusive": True,
            "agents": list(self.agents),
            "min_risk": self.min_risk,
            "events_scope": "fleet-wide (the agent filter does not apply to event counts)",
        }


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def _stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "mean": None, "median": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"count": len(values), "mean": round(statistics.fmean(values), 3), "median": round(statistics.median(values), 3),
            "p95": round(p95, 3), "max": round(ordered[-1], 3)}


def _between(a: Any, b: Any) -> float | None:
    ta, tb = parse_time(a), parse_time(b)
    if ta is None or tb is None:
        return None
    return max(0.0, tb - ta)


def build_report(store: IncidentStore, flt: ExportFilter, *, generated_at: float, store_label: str = "") -> dict[str, Any]:
    """Everything the export shows, as one JSON-ready dict (see the module doc)."""
    verification = store.verify()
    incidents = store.list_incidents(agents=flt.agents, since=flt.since, until=flt.until, min_risk=flt.min_risk)
    incidents.sort(key=lambda i: (parse_time(i.get("opened_at")) or 0.0, i["incident_id"]))
    for inc in incidents:
        inc["timeline"] = store.timeline(inc["incident_id"])
    alerts = store.list_alerts(agents=flt.agents, since=flt.since, until=flt.until, min_risk=flt.min_risk)
    alerts.sort(key=lambda a: (parse_time(a.get("last_seen")) or 0.0, str(a.get("alert_id"))))
    stats = store.stats(_day(flt.since) if flt.since is not None else None,
                        _day(flt.until - 0.001) if flt.until is not None else None)

    # -- figures ------------------------------------------------------------------------------
    by_sev = Counter(str(a.get("severity") or "info") for a in alerts)
    detect, contain, resolve, ack_secs = [], [], [], []
    commands: Counter[str] = Counter()
    shadow: Counter[str] = Counter()
    acks: Counter[str] = Counter()
    analysts: Counter[str] = Counter()
    for inc in incidents:
        d = _between(inc.get("first_event_at"), inc.get("detected_at") or inc.get("opened_at"))
        if d is not None:
            detect.append(d)
        c = _between(inc.get("opened_at"), inc.get("contained_at"))
        if c is not None:
            contain.append(c)
        r = _between(inc.get("opened_at"), inc.get("resolved_at"))
        if r is not None and inc.get("status") in TERMINAL:
            resolve.append(r)
        for e in inc["timeline"]:
            data = e.get("data") or {}
            if e.get("type") == "command":
                (shadow if data.get("mode") == "shadow" else commands)[str(data.get("action"))] += 1
            elif e.get("type") == "ack":
                acks[str(data.get("status"))] += 1
                if data.get("status") == "applied" and isinstance(data.get("ack_seconds"), int | float):
                    ack_secs.append(float(data["ack_seconds"]))
            elif e.get("type") == "analyst":
                analysts[str(e.get("actor"))] += 1
    status_counts = Counter(str(i.get("status")) for i in incidents)
    closed = [i for i in incidents if i.get("status") in TERMINAL]
    dispositions = Counter(str(i.get("disposition")) for i in closed)
    acked_alerts = [a for a in alerts if a.get("triage_status") == "acked"]
    summary = {
        "days_covered": len(stats),
        "events_processed": sum(d.get("events", 0) for d in stats.values()),
        "dead_letters": sum(d.get("dead_letters", 0) for d in stats.values()),
        "alerts_total": len(alerts),
        "alerts_by_severity": {s: by_sev.get(s, 0) for s in SEVERITIES},
        "alerts_acknowledged": len(acked_alerts),
        "incidents_total": len(incidents),
        "incidents_by_status": {s: status_counts.get(s, 0) for s in ("open", "triaged", "contained", "resolved", "false_positive")},
        "incidents_by_severity": {s: sum(1 for i in incidents if i.get("severity") == s) for s in SEVERITIES},
        "dispositions": dict(sorted(dispositions.items())),
        "isolations": commands.get("isolate", 0),
        "commands_by_action": dict(sorted(commands.items())),
        "shadow_commands_by_action": dict(sorted(shadow.items())),
        "acks_by_status": dict(sorted(acks.items())),
        "ack_seconds": _stats(ack_secs),
        "time_to_detect_seconds": _stats(detect),
        "time_to_contain_seconds": _stats(contain),
        "time_to_resolve_seconds": _stats(resolve),
        "mttd_seconds": _stats(detect)["mean"],
        "mttc_seconds": _stats(contain)["mean"],
        "analyst_actions_by_analyst": dict(sorted(analysts.items())),
    }

    # -- chart series ---------------------------------------------------------------------------
    per_day: dict[str, Counter[str]] = {}
    for a in alerts:
        t = parse_time(a.get("last_seen"))
        if t is not None:
            per_day.setdefault(_day(t), Counter())[str(a.get("severity") or "info")] += 1
    days = _day_range(per_day, flt)
    charts = {
        "alerts_per_day": [{"day": d, **{s: per_day.get(d, Counter()).get(s, 0) for s in SEVERITIES}} for d in days],
        "risk_distribution": [
            {"bucket": f"{lo}-{lo + 10 if lo < 90 else 100}",
             "alerts": sum(1 for a in alerts if lo <= alert_risk(a) < lo + 10 or (lo == 90 and alert_risk(a) >= 100))}
            for lo in range(0, 100, 10)
        ],
        "time_to_contain": [{"bucket": label, "incidents": n} for label, n in _ttc_buckets(contain)],
    }
    return {
        "report": {"title": "agentwatch incident evidence (SOC 2 CC7)", "generated_at": iso_time(generated_at),
                   "generator": GENERATOR, "store": store_label},
        "criteria": flt.to_dict(),
        "summary": summary,
        "daily": [{"day": d, **v} for d, v in sorted(stats.items())],
        "charts": charts,
        "verification": verification.to_dict() | {"summary": verification.line()},
        "soc2": _soc2_mapping(summary, verification.ok, len(incidents)),
        "incidents": incidents,
        "alerts": alerts,
    }


def _day_range(per_day: dict[str, Any], flt: ExportFilter) -> list[str]:
    known = sorted(per_day)
    start = _day(flt.since) if flt.since is not None else (known[0] if known else None)
    end = _day(flt.until - 0.001) if flt.until is not None else (known[-1] if known else None)
    if start is None or end is None:
        return []
    d0 = datetime.strptime(start, "%Y-%m-%d")
    d1 = datetime.strptime(end, "%Y-%m-%d")
    n = (d1 - d0).days + 1
    if n <= 0:
        return []
    if n > 400:  # a bar per day stops being readable; show the days that had alerts
        return known
    return [(d0 + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(n)]


def _ttc_buckets(values: list[float]) -> list[tuple[str, int]]:
    out = []
    lower = 0.0
    for upper, label in TTC_BUCKETS:
        out.append((label, sum(1 for v in values if lower <= v < upper)))
        lower = upper
    return out


def _fmt_secs(value: Any) -> str:
    if value is None:
        return "n/a"
    v = float(value)
    if v < 1:
        return f"{v * 1000:.0f} ms"
    if v < 120:
        return f"{v:.1f} s"
    if v < 7200:
        return f"{v / 60:.1f} min"
    return f"{v / 3600:.1f} h"


def _soc2_mapping(s: dict[str, Any], chain_ok: bool, n_incidents: int) -> list[dict[str, Any]]:
    sev = s["alerts_by_severity"]
    return [
        {
            "criterion": "CC7.2",
            "title": "Monitoring of system components for anomalies",
            "requirement": "The entity monitors system components and their operation for anomalies indicative of "
                           "malicious acts, natural disasters and errors, and analyzes anomalies to determine whether "
                           "they are security events.",
            "evidence": [
                f"{s['events_processed']} agent actions monitored over {s['days_covered']} day(s) by rule and "
                f"per-agent behavioural-baseline detectors (daily figures in this report).",
                f"{s['dead_letters']} malformed inputs quarantined to the dead-letter topic, none silently dropped.",
                f"{s['alerts_total']} alerts raised (critical {sev['critical']}, high {sev['high']}, medium {sev['medium']}, "
                f"low {sev['low']}, info {sev['info']}); mean time to detect {_fmt_secs(s['mttd_seconds'])}.",
            ],
            "sections": ["summary", "charts", "alerts"],
        },
        {
            "criterion": "CC7.3",
            "title": "Evaluation of security events",
            "requirement": "The entity evaluates security events to determine whether they could or have resulted in a "
                           "failure to meet its objectives (security incidents) and, if so, takes action.",
            "evidence": [
                f"{n_incidents} incident(s) opened from alerts, each with its evidence events, findings and alerts.",
                f"{s['alerts_acknowledged']} alert(s) acknowledged by named analysts; analyst actions by analyst: "
                + (", ".join(f"{k} {v}" for k, v in s["analyst_actions_by_analyst"].items()) or "none") + ".",
                "Dispositions: " + (", ".join(f"{k} {v}" for k, v in s["dispositions"].items()) or "none yet")
                + "; false positives create scoped, expiring suppressions recorded with the analyst's name.",
            ],
            "sections": ["incidents"],
        },
        {
            "criterion": "CC7.4",
            "title": "Response to identified security incidents",
            "requirement": "The entity responds to identified security incidents by executing a defined incident-response "
                           "program to understand, contain, remediate and communicate them.",
            "evidence": [
                f"{s['isolations']} isolation command(s) sent; enforcement commands by action: "
                + (", ".join(f"{k} {v}" for k, v in s["commands_by_action"].items()) or "none") + ".",
                "Acknowledgements by status: " + (", ".join(f"{k} {v}" for k, v in s["acks_by_status"].items()) or "none")
                + f"; median acknowledgement time {_fmt_secs(s['ack_seconds']['median'])}; "
                f"mean time to contain {_fmt_secs(s['mttc_seconds'])}.",
                "Every incident version, timeline entry, alert and analyst action is on a SHA-256 hash chain; "
                + ("the chain verified intact when this report was generated." if chain_ok
                   else "THE CHAIN FAILED VERIFICATION: see the verification section."),
            ],
            "sections": ["incidents", "verification"],
        },
    ]


# -- writers ------------------------------------------------------------------------------------


def write_report(report: dict[str, Any], fmt: str, out: Path) -> list[Path]:
    """Write ``report`` as ``json``, ``csv`` or ``html`` to ``out``; returns the files written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        return [out]
    if fmt == "html":
        out.write_text(render_html(report), encoding="utf-8")
        return [out]
    if fmt == "csv":
        return _write_csv(report, out)
    raise ValueError(f"unknown format {fmt!r}")


CSV_COLUMNS = ("incident_id", "agent_id", "owner", "enforcement_point", "severity", "peak_risk", "status",
               "disposition", "assignee", "opened_at", "contained_at", "resolved_at", "resolved_by",
               "entry_time", "entry_type", "actor", "summary", "ref", "entry_id")


def _csv_safe(value: Any) -> Any:
    # spreadsheet formula injection: agents control command text, so neutralise leading = + - @
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _write_csv(report: dict[str, Any], out: Path) -> list[Path]:
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for inc in report["incidents"]:
            base = [inc.get(k) for k in CSV_COLUMNS[:13]]
            entries = inc.get("timeline") or [{}]
            for e in entries:
                row = [*base, e.get("ts"), e.get("type"), e.get("actor"), e.get("summary"), e.get("ref"), e.get("entry_id")]
                w.writerow([_csv_safe(v) for v in row])
    summary_path = out.with_name(out.stem + ".summary.csv")
    with summary_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("section", "key", "value"))
        for section in ("report", "criteria", "verification"):
            for k, v in report[section].items():
                w.writerow((section, k, _csv_safe(orjson.dumps(v).decode() if isinstance(v, dict | list) else v)))
        for k, v in report["summary"].items():
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    w.writerow(("summary", f"{k}.{k2}", v2))
            else:
                w.writerow(("summary", k, v))
        for day in report["daily"]:
            for k, v in day.items():
                if k != "day":
                    w.writerow(("daily", f"{day['day']}.{k}", v))
    return [out, summary_path]


# -- HTML ---------------------------------------------------------------------------------------

e = html.escape


def _svg_bars(title: str, labels: list[str], series: list[tuple[str, str, list[int]]], *, y_label: str,
              width: int = 720, height: int = 260) -> str:
    """A (stacked) vertical bar chart as inline SVG. ``series``: (name, colour, values)."""
    n = len(labels)
    left, right, top, bottom = 44, 10, 24, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s[2][i] for s in series) for i in range(n)]
    peak = max(totals) if totals and max(totals) > 0 else 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="{e(title)}" class="chart"><title>{e(title)}</title>']
    for i in range(5):  # gridlines and y ticks
        v = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{v:.0f}</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2:.0f}" transform="rotate(-90 12 {top + plot_h / 2:.0f})" '
                 f'text-anchor="middle" class="axis">{e(y_label)}</text>')
    if n == 0:
        parts.append(f'<text x="{width / 2:.0f}" y="{top + plot_h / 2:.0f}" text-anchor="middle" class="axis">no data</text>')
    slot = plot_w / max(n, 1)
    bar_w = max(1.0, slot * 0.7)
    label_every = max(1, n // 14)
    for i in range(n):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        for name, colour, values in series:
            h = plot_h * values[i] / peak
            if h > 0:
                y -= h
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}">'
                             f'<title>{e(labels[i])}: {values[i]} {e(name)}</title></rect>')
        if totals[i] and n <= 40:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" class="val">{totals[i]}</text>')
        if i % label_every == 0:
            lx, ly = x + bar_w / 2, top + plot_h + 14
            parts.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="end" transform="rotate(-35 {lx:.1f} {ly:.1f})" '
                         f'class="tick">{e(labels[i])}</text>')
    if len(series) > 1:  # legend
        lx = left
        for name, colour, _ in series:
            parts.append(f'<rect x="{lx}" y="4" width="10" height="10" fill="{colour}"/>'
                         f'<text x="{lx + 14}" y="13" class="tick">{e(name)}</text>')
            lx += 16 + 8 * len(name) + 12
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else e(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _badge(text: str, kind: str) -> _Raw:
    return _Raw(f'<span class="badge {e(kind)}">{e(text)}</span>')


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML document (every value escaped)."""
    s = report["summary"]
    v = report["verification"]
    crit = report["criteria"]
    charts = report["charts"]
    sections: list[str] = []

    chain_badge = _badge("chain intact" if v["ok"] else f"chain BROKEN: {v['how']}", "ok" if v["ok"] else "bad")
    sections.append(
        '<section id="criteria"><h2>1. Scope and filter criteria</h2>'
        + _table(["criterion", "value"], [
            ["from (inclusive)", crit["from"] or "beginning of records"],
            ["to (exclusive)", crit["to"] or "end of records"],
            ["agents", ", ".join(crit["agents"]) or "all agents"],
            ["minimum risk", crit["min_risk"] if crit["min_risk"] is not None else "none"],
            ["event counts", crit["events_scope"]],
            ["store", report["report"]["store"] or "-"],
        ], "kv") + "</section>")

    ack = s["ack_seconds"]
    sections.append(
        '<section id="summary"><h2>2. Summary figures</h2><div class="cards">'
        + "".join(f'<div class="card"><div class="num">{e(str(num))}</div><div class="lbl">{e(lbl)}</div></div>' for num, lbl in [
            (s["events_processed"], "events processed"), (s["alerts_total"], "alerts"),
            (s["incidents_total"], "incidents"), (s["isolations"], "isolations"),
            (_fmt_secs(s["mttd_seconds"]), "mean time to detect"), (_fmt_secs(s["mttc_seconds"]), "mean time to contain"),
            (_fmt_secs(ack["median"]), "median ack time"), (s["dead_letters"], "dead letters"),
        ]) + "</div>"
        + _table(["figure", "value"], [
            ["alerts by severity", ", ".join(f"{k} {n}" for k, n in s["alerts_by_severity"].items())],
            ["alerts acknowledged", s["alerts_acknowledged"]],
            ["incidents by status", ", ".join(f"{k} {n}" for k, n in s["incidents_by_status"].items())],
            ["incidents by severity", ", ".join(f"{k} {n}" for k, n in s["incidents_by_severity"].items())],
            ["dispositions", ", ".join(f"{k} {n}" for k, n in s["dispositions"].items()) or "-"],
            ["enforcement commands", ", ".join(f"{k} {n}" for k, n in s["commands_by_action"].items()) or "-"],
            ["shadow-mode commands (would have)", ", ".join(f"{k} {n}" for k, n in s["shadow_commands_by_action"].items()) or "-"],
            ["acknowledgements", ", ".join(f"{k} {n}" for k, n in s["acks_by_status"].items()) or "-"],
            ["acknowledgement time (applied)", f"median {_fmt_secs(ack['median'])}, p95 {_fmt_secs(ack['p95'])}, "
                                               f"max {_fmt_secs(ack['max'])} over {ack['count']}"],
            ["time to detect", _stats_line(s["time_to_detect_seconds"])],
            ["time to contain", _stats_line(s["time_to_contain_seconds"])],
            ["time to resolve", _stats_line(s["time_to_resolve_seconds"])],
            ["analyst actions", ", ".join(f"{k} {n}" for k, n in s["analyst_actions_by_analyst"].items()) or "-"],
        ], "kv")
        + (_table(["day (UTC)", "events processed", "dead letters"],
                  [[d["day"], d.get("events", 0), d.get("dead_letters", 0)] for d in report["daily"]], "daily")
           if report["daily"] else '<p class="muted">No run figures recorded for this period.</p>')
        + "</section>")

    apd = charts["alerts_per_day"]
    sections.append(
        '<section id="charts"><h2>3. Charts</h2>'
        '<figure><figcaption>Alerts per day (UTC), by severity</figcaption>'
        + _svg_bars("Alerts per day", [d["day"] for d in apd],
                    [(sev, SEVERITY_COLOR[sev], [d[sev] for d in apd]) for sev in SEVERITIES], y_label="alerts")
        + '</figure><figure><figcaption>Risk distribution of alerts (0-100)</figcaption>'
        + _svg_bars("Risk distribution", [b["bucket"] for b in charts["risk_distribution"]],
                    [("alerts", "#5f3dc4", [b["alerts"] for b in charts["risk_distribution"]])], y_label="alerts")
        + '</figure><figure><figcaption>Time to contain (incident opened to isolation applied)</figcaption>'
        + _svg_bars("Time to contain", [b["bucket"] for b in charts["time_to_contain"]],
                    [("incidents", "#2b8a3e", [b["incidents"] for b in charts["time_to_contain"]])], y_label="incidents")
        + "</figure></section>")

    sections.append(
        '<section id="verification"><h2>4. Hash-chain verification</h2>'
        f"<p>{chain_badge} {e(v['summary'])}</p>"
        + _table(["field", "value"], [
            ["result", "intact" if v["ok"] else "BROKEN"], ["entries checked", v["checked"]],
            ["first bad entry", v["first_bad"] or "-"], ["how", v["how"] or "-"],
            ["detail", v["detail"] or "-"], ["head hash (anchor this value outside the system)", _Raw(f"<code>{e(v['head_hash'])}</code>")],
        ], "kv")
        + '<p class="muted">Every incident version, timeline entry, alert version and analyst action is appended to a '
          "chain in which each entry's SHA-256 covers its canonical JSON and the previous entry's hash. Changing, "
          "deleting or reordering any stored entry breaks the chain at that entry. Re-run "
          "<code>agentwatch incidents verify</code> against the store to check it independently.</p></section>")

    sections.append(
        '<section id="soc2"><h2>5. SOC 2 mapping</h2>'
        + "".join(
            f'<div class="crit"><h3>{e(m["criterion"])} — {e(m["title"])}</h3><p class="req">{e(m["requirement"])}</p><ul>'
            + "".join(f"<li>{e(x)}</li>" for x in m["evidence"])
            + "</ul><p class=\"muted\">See: " + ", ".join(f'<a href="#{e(x)}">{e(x)}</a>' for x in m["sections"]) + "</p></div>"
            for m in report["soc2"]) + "</section>")

    inc_parts = []
    for inc in report["incidents"]:
        iid = inc["incident_id"]
        head = _table(["field", "value"], [
            ["agent / owner", f"{inc.get('agent_id')} / {inc.get('owner') or '-'}"],
            ["enforcement point", inc.get("enforcement_point") or "-"],
            ["severity / peak risk", _Raw(f'{_badge(str(inc.get("severity")), "sev-" + str(inc.get("severity")))} '
                                          f'{float(inc.get("peak_risk") or 0):.0f}')],
            ["status", _Raw(str(_badge(str(inc.get("status")), "st-" + str(inc.get("status"))))
                            + (e(f" {inc.get('disposition')} by {inc.get('resolved_by')}") if inc.get("disposition") else ""))],
            ["assignee", inc.get("assignee") or "-"],
            ["opened / contained / resolved", f"{inc.get('opened_at') or '-'} / {inc.get('contained_at') or '-'} / "
                                              f"{inc.get('resolved_at') or '-'}"],
            ["first evidence event", inc.get("first_event_at") or "-"],
            ["techniques", ", ".join(inc.get("techniques") or []) or "-"],
        ], "kv")
        rows = [[en.get("ts"), _badge(str(en.get("type")), "t-" + str(en.get("type"))), en.get("actor") or "",
                 _Raw(e(str(en.get("summary") or "")) + (f'<div class="comment">“{e(str((en.get("data") or {}).get("comment")))}”</div>'
                                                          if (en.get("data") or {}).get("comment") else ""))]
                for en in inc.get("timeline") or []]
        inc_parts.append(
            f'<article class="incident" id="{e(iid)}"><h3>{e(iid)} — {e(str(inc.get("title") or ""))}</h3>{head}'
            f'<h4>Timeline ({len(rows)} entries)</h4>' + _table(["time (UTC)", "type", "actor", "what"], rows, "timeline")
            + "</article>")
    sections.append('<section id="incidents"><h2>6. Incidents</h2>'
                    + ("".join(inc_parts) or '<p class="muted">No incidents match the criteria.</p>') + "</section>")

    alert_rows = [[a.get("last_seen"), a.get("alert_id"), a.get("agent_id"),
                   _badge(str(a.get("severity")), "sev-" + str(a.get("severity"))), f"{alert_risk(a):.0f}",
                   a.get("count"), a.get("title") or "",
                   (f"acked by {(a.get('ack') or {}).get('by')}" if a.get("triage_status") == "acked" else "open"),
                   a.get("incident_id") or "-"] for a in report["alerts"]]
    sections.append('<section id="alerts"><h2>7. Alerts</h2>'
                    + (_table(["last seen", "alert", "agent", "severity", "risk", "count", "title", "triage", "incident"],
                              alert_rows, "alerts") if alert_rows else '<p class="muted">No alerts match the criteria.</p>')
                    + "</section>")

    template = Template(resources.files("pipeline.incidents").joinpath("report.html").read_text(encoding="utf-8"))
    r = report["report"]
    return template.substitute(
        title=e(r["title"]),
        generated_at=e(r["generated_at"]),
        generator=e(r["generator"]),
        period=e(f"{crit['from'] or 'beginning'} to {crit['to'] or 'end'}"),
        chain=str(chain_badge),
        body="\n".join(sections),
    )


def _stats_line(st: dict[str, Any]) -> str:
    if not st["count"]:
        return "n/a"
    return (f"mean {_fmt_secs(st['mean'])}, median {_fmt_secs(st['median'])}, p95 {_fmt_secs(st['p95'])}, "
            f"max {_fmt_secs(st['max'])} over {st['count']}")
