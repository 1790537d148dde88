"""`agentwatch incidents`: list, show, assign, resolve and verify incidents in the store.

Analyst actions (assign, resolve) are written to the store at once (chained, with the analyst's
name, time and comment) and published as control messages on the control topic so the workers
learn of them. By default they are published when the broker answers (and a one-line note says
so when it does not); ``--publish`` makes publishing required (refused before anything is written
if the broker is unreachable), ``--no-publish`` skips it.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import typer

from pipeline.cli.common import console, err_console, settings_of
from pipeline.errors import InputError
from pipeline.incidents import open_store
from pipeline.incidents.store import IncidentStore
from pipeline.incidents.tracker import DISPOSITIONS, STATUSES
from pipeline.incidents.views import (
    incident_panel,
    incidents_table,
    parse_duration,
    parse_when,
    store_url,
)
from pipeline.settings import Settings

DB_HELP = "Incident store: an SQLite file path or a store URL (default: incidents.store_url)."


def _json(obj: Any) -> None:
    console.out(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode(), highlight=False)


def open_from(ctx: typer.Context, db: str | None) -> tuple[Settings, IncidentStore]:
    settings = settings_of(ctx)
    return settings, open_store(store_url(db, settings.incidents.store_url))


def analyst(settings: Settings, by: str | None) -> str:
    name = (by or settings.incidents.analyst or "").strip()
    if not name:
        raise InputError("name the analyst with --by NAME (or set AGENTWATCH_INCIDENTS__ANALYST)")
    return name


def publisher_for(settings: Settings, publish: bool | None) -> Any:
    """A ControlPublisher, or None when not publishing. Explicit --publish fails fast."""
    if publish is False:
        return None
    from pipeline.incidents.triage import ControlPublisher
    from pipeline.kafka import BrokerUnreachable

    try:
        return ControlPublisher(settings.broker, settings.topic("control"))
    except BrokerUnreachable as exc:
        if publish:
            raise BrokerUnreachable(f"{exc} (nothing was recorded; use --no-publish to record without publishing)") from None
        err_console.print(f"[yellow]note:[/] broker {settings.broker} unreachable: recorded in the store only, "
                          "not published to the workers (use --publish to require it)", highlight=False)
        return None


def _finish(result: Any, pub: Any, as_json: bool) -> None:
    if pub is not None:
        try:
            pub.publish(result.messages)
            result.published = True
        finally:
            pub.close()
    if as_json:
        _json({"incident": result.incident, "notes": result.notes, "published": result.published,
               "control_messages": [{k: v for k, v in m.items()} for m in result.messages]})
        return
    inc = result.incident
    console.print(f"incident [bold]{inc['incident_id']}[/]: {'; '.join(result.notes)}", highlight=False)
    sups = [m for m in result.messages if m["type"] == "suppression"]
    if sups:
        for m in sups:
            p = m["payload"]
            console.print(f"  suppression ({p['scope']}{' ' + p['rule'] if p.get('rule') else ''}) "
                          f"for {m['agent_id']}, {p['ttl_seconds'] / 86400:g} days, by {m['by']}", highlight=False)
    console.print(f"  {'published ' + str(len(result.messages)) + ' control message(s)' if result.published else 'not published'}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    grp = typer.Typer(help="Triage incidents: list, show, assign, resolve; verify the evidence chain.",
                      no_args_is_help=True)
    app.add_typer(grp, name="incidents")

    @grp.command("list")
    def list_(
        ctx: typer.Context,
        db: str = typer.Option(None, "--db", help=DB_HELP),
        status: list[str] = typer.Option([], "--status", "-s", help=f"{', '.join(STATUSES)}, active or closed (repeatable)."),
        severity: str = typer.Option(None, "--severity", help="Minimum severity (info, low, medium, high, critical)."),
        agent: list[str] = typer.Option([], "--agent", "-a", help="Agent id (repeatable)."),
        owner: list[str] = typer.Option([], "--owner", help="Owner (repeatable)."),
        assignee: str = typer.Option(None, "--assignee", help="Assigned analyst."),
        since: str = typer.Option(None, "--since", help="Opened at or after: YYYY-MM-DD, RFC 3339 or 24h/7d."),
        until: str = typer.Option(None, "--until", help="Opened before (a date includes that day)."),
        min_risk: float = typer.Option(None, "--min-risk", help="Minimum peak risk 0-100."),
        limit: int = typer.Option(100, "--limit", "-n", min=1, help="At most this many (newest first)."),
        as_json: bool = typer.Option(False, "--json", help="JSON array of incident headers."),
    ) -> None:
        """List incidents, newest first."""
        _check_choices(status, [*STATUSES, "active", "closed"], "--status")
        if severity:
            _check_choices([severity], ["info", "low", "medium", "high", "critical"], "--severity")
        _, store = open_from(ctx, db)
        now = time.time()
        with store:
            rows = store.list_incidents(status=status, min_severity=severity, agents=agent, owners=owner,
                                        assignee=assignee, since=parse_when(since, now=now),
                                        until=parse_when(until, now=now, end=True), min_risk=min_risk, limit=limit)
        if as_json:
            _json(rows)
        else:
            console.print(incidents_table(rows))

    @grp.command("show")
    def show(
        ctx: typer.Context,
        incident_id: str = typer.Argument(..., help="Incident id (a unique prefix is enough)."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
        as_json: bool = typer.Option(False, "--json", help="The incident with its whole timeline as JSON."),
    ) -> None:
        """Show one incident and its timeline."""
        _, store = open_from(ctx, db)
        with store:
            inc = _get(store, incident_id)
        if as_json:
            _json(inc)
        else:
            console.print(incident_panel(inc))

    @grp.command("assign")
    def assign_(
        ctx: typer.Context,
        incident_id: str = typer.Argument(..., help="Incident id (a unique prefix is enough)."),
        to: str = typer.Option(..., "--to", help="The analyst taking the incident."),
        by: str = typer.Option(None, "--by", help="Who decides (default: incidents.analyst)."),
        comment: str = typer.Option(None, "--comment", "-m", help="Why; recorded on the timeline."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
        publish: bool = typer.Option(None, "--publish/--no-publish", help="Publish to the control topic (default: if reachable)."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Assign an incident to an analyst (an open incident becomes triaged)."""
        from pipeline.incidents.triage import assign

        settings, store = open_from(ctx, db)
        with store:
            name = analyst(settings, by)
            _get(store, incident_id)
            pub = publisher_for(settings, publish)
            result = assign(store, incident_id, to=to, by=name, now=time.time(), comment=comment)
        _finish(result, pub, as_json)

    @grp.command("resolve")
    def resolve_(
        ctx: typer.Context,
        incident_id: str = typer.Argument(..., help="Incident id (a unique prefix is enough)."),
        disposition: str = typer.Option(..., "--disposition", "-d", help=f"One of: {', '.join(DISPOSITIONS)}."),
        by: str = typer.Option(None, "--by", help="Who decides (default: incidents.analyst)."),
        comment: str = typer.Option(None, "--comment", "-m", help="Why; recorded on the timeline."),
        suppress: str = typer.Option("rule", "--suppress",
                                     help="false_positive only: suppress the incident's rules for this agent (rule), "
                                          "the same rules and commands (pattern), everything from the agent (agent), or none."),
        suppress_for: str = typer.Option(None, "--suppress-for", help="Suppression lifetime, e.g. 7d, 12h (default: setting)."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
        publish: bool = typer.Option(None, "--publish/--no-publish", help="Publish to the control topic (default: if reachable)."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Close an incident. false_positive also suppresses it and tells the baseline it is normal."""
        from pipeline.incidents.triage import resolve

        _check_choices([disposition], list(DISPOSITIONS), "--disposition")
        _check_choices([suppress], ["rule", "pattern", "agent", "none"], "--suppress")
        settings, store = open_from(ctx, db)
        ttl = settings.incidents.false_positive_suppression_seconds
        if suppress_for:
            ttl = parse_duration(suppress_for, "--suppress-for")
        with store:
            name = analyst(settings, by)
            _get(store, incident_id)
            pub = publisher_for(settings, publish)
            result = resolve(store, incident_id, disposition=disposition, by=name, now=time.time(),
                             comment=comment, suppress=suppress, suppress_seconds=ttl)  # type: ignore[arg-type]
        _finish(result, pub, as_json)

    @grp.command("verify")
    def verify(
        ctx: typer.Context,
        db: str = typer.Option(None, "--db", help=DB_HELP),
        as_json: bool = typer.Option(False, "--json", help="The result as JSON."),
    ) -> None:
        """Check the hash chain and every stored record against it. Exits 1 on any break,
        naming the first entry that was modified, deleted or reordered."""
        settings = settings_of(ctx)
        with open_store(store_url(db, settings.incidents.store_url)) as store:
            result = store.verify()
        if as_json:
            _json(result.to_dict())
        elif result.ok:
            console.print(f"[green]OK[/] {result.line()}", highlight=False)
        else:
            console.print(f"[bold red]BROKEN[/] {result.line()}", highlight=False)
        if not result.ok:
            raise typer.Exit(1)


def _get(store: IncidentStore, incident_id: str) -> dict[str, Any]:
    inc = store.get_incident(incident_id)
    if inc is None:
        full = store.find_incident(incident_id)
        inc = store.get_incident(full) if full else None
    if inc is None:
        raise InputError(f"no incident {incident_id!r} in the store (or the prefix matches several)")
    return inc


def _check_choices(values: list[str], allowed: list[str], option: str) -> None:
    for v in values:
        if v not in allowed:
            raise InputError(f"{option} {v!r}: expected one of {', '.join(allowed)}")
