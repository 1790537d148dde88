"""What the triage and evidence commands share: store location, time filters, rich rendering.

Rendering only: tables and panels for a terminal, nothing an API depends on (scripts use
``--json``, which prints the stored records as they are).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group, JustifyMethod
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pipeline.errors import InputError
from pipeline.incidents.tracker import alert_risk, parse_time

__all__ = [
    "SEVERITY_STYLE",
    "alert_panel",
    "alerts_table",
    "incident_panel",
    "incidents_table",
    "parse_duration",
    "parse_when",
    "store_url",
]

SEVERITY_STYLE = {"info": "dim", "low": "cyan", "medium": "yellow", "high": "bold red", "critical": "bold white on red"}
STATUS_STYLE = {"open": "bold red", "triaged": "yellow", "contained": "magenta", "resolved": "green",
                "false_positive": "dim green", "acked": "green"}


def store_url(db: str | None, default: str) -> str:
    """``--db`` may be a path (an SQLite file) or a store URL; without it, the configured URL."""
    if not db:
        return default
    if "://" in db:
        return db
    path = Path(db)
    if not path.exists():
        raise InputError(f"no incident store at {db} (run a replay or the worker first, or pass a store URL)")
    return f"sqlite:///{path}"


def parse_duration(text: str, option: str = "duration") -> float:
    """Seconds in ``90m``, ``12h``, ``7d`` or ``2w`` (a positive number and one unit)."""
    t = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    number = t[:-1]
    if t[-1:] not in units or not number.replace(".", "", 1).isdigit() or float(number) <= 0:
        raise InputError(f"{option} {text!r}: use a duration such as 90m, 12h or 7d")
    return float(number) * units[t[-1]]


def parse_when(text: str | None, *, now: float, end: bool = False) -> float | None:
    """A time filter: ``YYYY-MM-DD`` (a whole UTC day: with ``end`` the day is included),
    an RFC 3339 time, or a duration back from now (``90m``, ``24h``, ``7d``)."""
    if text is None or text == "":
        return None
    t = text.strip()
    if t[-1:] in ("m", "h", "d", "w") and t[:-1].replace(".", "", 1).isdigit():
        unit = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[t[-1]]
        return now - float(t[:-1]) * unit
    if len(t) == 10:
        try:
            day = datetime.strptime(t, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise InputError(f"cannot read the date {text!r}; use YYYY-MM-DD, RFC 3339 or e.g. 24h") from None
        return (day + timedelta(days=1) if end else day).timestamp()
    value = parse_time(t)
    if value is None:
        raise InputError(f"cannot read the time {text!r}; use YYYY-MM-DD, RFC 3339 or e.g. 24h")
    return value


def _sev(label: Any) -> Text:
    label = str(label or "info")
    return Text(label, style=SEVERITY_STYLE.get(label, ""))


def _status(label: Any) -> Text:
    label = str(label or "")
    return Text(label, style=STATUS_STYLE.get(label, ""))


def _short_time(value: Any) -> str:
    text = str(value or "")
    return text[:19].replace("T", " ") if text else "-"


def _table(title: str, columns: list[tuple[str, int, JustifyMethod]]) -> Table:
    """A table that stays readable in an 80-column terminal: every column but the last keeps its
    values on one line (long ones end in an ellipsis); the last (free text) takes the rest of the
    width and wraps. ``columns``: (header, width, justify); width 0 means "as needed"."""
    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 0))  # the box puts one space between columns
    last = len(columns) - 1
    for i, (name, width, justify) in enumerate(columns):
        if i == last:
            table.add_column(name, min_width=max(width, 12), overflow="fold", justify=justify)
        else:
            table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=width or None,
                             justify=justify)
    return table


def _cells(*values: Any) -> list[Text]:
    # every value as plain Text: agents control command text, which must never be read as markup
    return [v if isinstance(v, Text) else Text(str(v)) for v in values]


def incidents_table(incidents: list[dict[str, Any]]) -> Table:
    wide = Console().width >= 110  # the assignee column only where it fits beside the title
    columns: list[tuple[str, int, JustifyMethod]] = [
        ("incident", 12, "left"), ("opened UTC", 11, "left"), ("agent", 12, "left"),
        ("severity", 8, "left"), ("risk", 4, "right"), ("status", 9, "left")]
    if wide:
        columns.append(("assignee", 16, "left"))
    table = _table(f"{len(incidents)} incident(s)", [*columns, ("title", 14, "left")])
    for inc in incidents:
        cells = [inc["incident_id"][:12], _short_time(inc.get("opened_at"))[5:16], inc.get("agent_id"),
                 _sev(inc.get("severity")), f"{float(inc.get('peak_risk') or 0):.0f}", _status(inc.get("status"))]
        if wide:
            cells.append(inc.get("assignee") or "-")
        table.add_row(*_cells(*cells, inc.get("title") or ""))
    return table


def alerts_table(alerts: list[dict[str, Any]]) -> Table:
    table = _table(f"{len(alerts)} alert(s)", [
        ("alert", 12, "left"), ("last seen", 11, "left"), ("agent", 12, "left"), ("severity", 8, "left"),
        ("risk", 4, "right"), ("count", 5, "right"), ("triage", 6, "left"), ("title", 14, "left"),
    ])
    for a in alerts:
        table.add_row(*_cells(
            str(a.get("alert_id"))[:12], _short_time(a.get("last_seen"))[5:16], a.get("agent_id"),
            _sev(a.get("severity")), f"{alert_risk(a):.0f}", a.get("count", ""), _status(a.get("triage_status")),
            a.get("title") or "",
        ))
    return table


def _kv(rows: list[tuple[str, Any]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for k, v in rows:
        grid.add_row(k, v if isinstance(v, Text) else Text(str(v if v not in (None, "") else "-")))
    return grid


def incident_panel(inc: dict[str, Any]) -> Group:
    counts = inc.get("counts") or {}
    head = _kv([
        ("incident", inc["incident_id"]),
        ("title", inc.get("title")),
        ("agent / owner", f"{inc.get('agent_id')} / {inc.get('owner') or '-'}"),
        ("enforcement point", inc.get("enforcement_point")),
        ("severity / peak risk", Text.assemble(_sev(inc.get("severity")), f" / {float(inc.get('peak_risk') or 0):.0f}")),
        ("status", Text.assemble(_status(inc.get("status")),
                                 f" ({inc.get('disposition')} by {inc.get('resolved_by')})" if inc.get("disposition") else "")),
        ("assignee", inc.get("assignee")),
        ("opened / contained / resolved", f"{_short_time(inc.get('opened_at'))} / {_short_time(inc.get('contained_at'))}"
                                          f" / {_short_time(inc.get('resolved_at'))}"),
        ("counts", ", ".join(f"{k} {v}" for k, v in counts.items())),
        ("techniques", ", ".join(inc.get("techniques") or []) or "-"),
    ])
    table = Table(title="timeline", header_style="bold", expand=True)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("actor", no_wrap=True, max_width=24, overflow="ellipsis")
    table.add_column("what", overflow="fold")
    for e in inc.get("timeline") or []:
        table.add_row(*_cells(_short_time(e.get("ts")), e.get("type"), e.get("actor") or "", e.get("summary") or ""))
    return Group(Panel(head, title=f"incident {inc['incident_id'][:16]}", expand=False), table)


def alert_panel(alert: dict[str, Any]) -> Panel:
    raw = alert.get("risk")
    risk: dict[str, Any] = raw if isinstance(raw, dict) else {}
    factors = ", ".join(f"{f.get('source')}:{f.get('id')} +{f.get('contribution')}" for f in risk.get("factors") or [])
    ack = alert.get("ack") or {}
    rows = [
        ("alert", alert.get("alert_id")),
        ("title", alert.get("title")),
        ("reason", alert.get("reason")),
        ("kind / rule", f"{alert.get('kind')} / {alert.get('detector')}:{alert.get('rule_id')}"),
        ("severity / risk", Text.assemble(_sev(alert.get("severity")), f" / {alert_risk(alert):.0f}")),
        ("risk factors", factors),
        ("agent / owner", f"{alert.get('agent_id')} / {alert.get('owner') or '-'}"),
        ("enforcement point", alert.get("enforcement_point")),
        ("first / last seen", f"{_short_time(alert.get('first_seen'))} / {_short_time(alert.get('last_seen'))}"),
        ("count / events", f"{alert.get('count')} / {', '.join(alert.get('event_ids') or [])}"),
        ("baseline maturity", alert.get("baseline_maturity")),
        ("incident", alert.get("incident_id")),
        ("triage", Text.assemble(_status(alert.get("triage_status")),
                                 f" by {ack.get('by')} at {_short_time(ack.get('ts'))}: {ack.get('comment') or ''}" if ack else "")),
    ]
    return Panel(_kv(rows), title=f"alert {str(alert.get('alert_id'))[:16]}", expand=False)
