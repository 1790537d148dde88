"""`agentwatch alerts`: list, show and acknowledge alerts kept in the incident store.

The store holds the latest version of every alert the pipeline emitted (the worker and replay
write them); acknowledging one records the analyst's name, time and comment on the hash chain.
An acknowledgement concerns the analysts' queue only, so it is not sent to the workers (the
control topic carries releases, suppressions and incident updates).
"""

from __future__ import annotations

import time
from typing import Any

import typer

from pipeline.cli.common import console
from pipeline.cli.incidents import DB_HELP, _check_choices, _json, analyst, open_from
from pipeline.errors import InputError
from pipeline.incidents.store import IncidentStore
from pipeline.incidents.views import alert_panel, alerts_table, parse_when
from pipeline.records import iso_time

SEVERITIES = ["info", "low", "medium", "high", "critical"]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    grp = typer.Typer(help="Triage alerts: list, show, acknowledge.", no_args_is_help=True)
    app.add_typer(grp, name="alerts")

    @grp.command("list")
    def list_(
        ctx: typer.Context,
        db: str = typer.Option(None, "--db", help=DB_HELP),
        status: list[str] = typer.Option([], "--status", "-s", help="Triage status: open or acked (repeatable)."),
        severity: str = typer.Option(None, "--severity", help="Minimum severity."),
        agent: list[str] = typer.Option([], "--agent", "-a", help="Agent id (repeatable)."),
        owner: list[str] = typer.Option([], "--owner", help="Owner (repeatable)."),
        incident: str = typer.Option(None, "--incident", help="Only alerts of this incident."),
        since: str = typer.Option(None, "--since", help="Last seen at or after: YYYY-MM-DD, RFC 3339 or 24h/7d."),
        until: str = typer.Option(None, "--until", help="Last seen before (a date includes that day)."),
        min_risk: float = typer.Option(None, "--min-risk", help="Minimum risk 0-100."),
        limit: int = typer.Option(100, "--limit", "-n", min=1, help="At most this many (newest first)."),
        as_json: bool = typer.Option(False, "--json", help="JSON array of alerts."),
    ) -> None:
        """List alerts, most recently seen first."""
        _check_choices(status, ["open", "acked"], "--status")
        if severity:
            _check_choices([severity], SEVERITIES, "--severity")
        _, store = open_from(ctx, db)
        now = time.time()
        with store:
            rows = store.list_alerts(status=status, min_severity=severity, agents=agent, owners=owner,
                                     incident_id=incident, since=parse_when(since, now=now),
                                     until=parse_when(until, now=now, end=True), min_risk=min_risk, limit=limit)
        if as_json:
            _json(rows)
        else:
            console.print(alerts_table(rows))

    @grp.command("show")
    def show(
        ctx: typer.Context,
        alert_id: str = typer.Argument(..., help="Alert id (a unique prefix is enough)."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Show one alert: why it fired, its risk factors and evidence event ids."""
        _, store = open_from(ctx, db)
        with store:
            alert = _get(store, alert_id)
        if as_json:
            _json(alert)
        else:
            console.print(alert_panel(alert))

    @grp.command("ack")
    def ack(
        ctx: typer.Context,
        alert_id: str = typer.Argument(..., help="Alert id (a unique prefix is enough)."),
        by: str = typer.Option(None, "--by", help="Who acknowledges (default: incidents.analyst)."),
        comment: str = typer.Option(None, "--comment", "-m", help="Recorded with the acknowledgement."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Acknowledge an alert (recorded on the hash chain with your name)."""
        settings, store = open_from(ctx, db)
        with store:
            name = analyst(settings, by)
            alert = _get(store, alert_id)
            alert = store.ack_alert(alert["alert_id"], by=name, ts=iso_time(time.time()), comment=comment)
        if as_json:
            _json(alert)
        else:
            console.print(f"alert [bold]{alert['alert_id']}[/] acknowledged by {name}", highlight=False)


def _get(store: IncidentStore, alert_id: str) -> dict[str, Any]:
    alert = store.get_alert(alert_id)
    if alert is None:
        full = store.find_alert(alert_id)
        alert = store.get_alert(full) if full else None
    if alert is None:
        raise InputError(f"no alert {alert_id!r} in the store (or the prefix matches several)")
    return alert
