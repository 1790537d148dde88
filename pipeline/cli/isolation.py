"""``agentwatch isolation``: release an agent (a named human's decision) and list isolations.

    agentwatch isolation release AGENT --by NAME --reason TEXT [--enforcement-point EP]
    agentwatch isolation list [--json]

``release`` publishes a control message (``schemas/control.schema.json``) on the control topic;
the worker that owns the agent issues the signed ``release`` command naming the human, and the
incident timeline records it. ``list`` reads the enforcement and acknowledgement topics (their
retention bounds how far back it sees) and shows every agent whose latest command is a rung still
in force.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import orjson
import typer
from rich.table import Table

from pipeline.cli.common import console, settings_of
from pipeline.errors import AgentwatchError, InputError
from pipeline.records import epoch_of, iso_time
from pipeline.settings import Settings


def control_message(agent: str, by: str, reason: str, *, now: float, enforcement_point: str | None = None,
                    control_id: str | None = None) -> dict[str, Any]:
    if not agent.strip() or agent == "*":
        raise InputError("name one agent to release (not empty, not *)")
    if not by.strip():
        raise InputError("a release needs a named human: --by NAME")
    if not reason.strip():
        raise InputError("a release needs a reason: --reason TEXT")
    payload: dict[str, Any] = {}
    if enforcement_point:
        payload["enforcement_point"] = enforcement_point
    return {"schema_version": "1", "control_id": control_id or f"ctl_{uuid.uuid4().hex}", "type": "release",
            "agent_id": agent, "by": by.strip(), "reason": reason.strip(), "ts": iso_time(now), "payload": payload}




def read_topic(bootstrap: str, topic: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every JSON record currently in ``topic`` (partition order), read without a consumer group."""
    from kafka import KafkaConsumer, TopicPartition

    from pipeline.kafka import bootstrap_servers

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers(bootstrap), group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=10)
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise AgentwatchError(f"topic {topic} does not exist; run `agentwatch topics create`")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=100).values():
                for rec in recs:
                    try:
                        value = orjson.loads(rec.value) if rec.value else None
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(value, dict):
                        out.append(value)
        return out
    finally:
        consumer.close()


def isolations(commands: list[dict[str, Any]], acks: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Agents whose latest enforced command (highest sequence) is a rung not yet expired."""
    latest: dict[str, dict[str, Any]] = {}
    for c in commands:
        if c.get("mode") != "enforce" or not isinstance(c.get("agent_id"), str):
            continue
        seq = c.get("sequence") if isinstance(c.get("sequence"), int) else -1
        prev = latest.get(c["agent_id"])
        if prev is None or seq >= prev.get("sequence", -1):
            latest[c["agent_id"]] = c
    ack_of: dict[str, dict[str, Any]] = {}
    for a in acks:
        if isinstance(a.get("command_id"), str):
            ack_of[a["command_id"]] = a
    rows = []
    for agent in sorted(latest):
        c = latest[agent]
        expires = epoch_of(c.get("expires_at"))
        ack = ack_of.get(str(c.get("command_id")), {})
        if c.get("action") == "release" or (expires is not None and expires <= now) \
                or ack.get("status") in ("rejected", "expired"):
            continue
        rows.append({"agent_id": agent, "action": c.get("action"), "enforcement_point": c.get("enforcement_point"),
                     "issued_at": c.get("issued_at"), "expires_at": c.get("expires_at"),
                     "ack": ack.get("status", "pending"), "incident_id": c.get("incident_id"),
                     "reason": c.get("reason"), "command_id": c.get("command_id")})
    return rows


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    grp = typer.Typer(help="Release agents from the isolation ladder; list isolations.", no_args_is_help=True)
    app.add_typer(grp, name="isolation")

    @grp.command()
    def release(
        ctx: typer.Context,
        agent: str = typer.Argument(..., help="The agent to release."),
        by: str = typer.Option(..., "--by", help="Your name: releases are recorded against a named human."),
        reason: str = typer.Option(..., "--reason", help="Why the agent may act again."),
        enforcement_point: str = typer.Option(None, "--enforcement-point",
                                              help="Where to send it if the pipeline has not seen the agent."),
    ) -> None:
        """Ask the pipeline to release AGENT (publishes a control message; the worker signs the release)."""
        settings: Settings = settings_of(ctx)
        msg = control_message(agent, by, reason, now=time.time(), enforcement_point=enforcement_point)
        from pipeline.incidents.triage import ControlPublisher

        with ControlPublisher(settings.broker, settings.topic("control")) as pub:
            pub.publish([msg])
        console.print(f"release of [bold]{agent}[/] requested by {msg['by']} (control {msg['control_id']} "
                      f"on {settings.topic('control')})", highlight=False)

    @grp.command("list")
    def list_(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
    ) -> None:
        """Agents under a rung of the ladder now, from the enforcement and ack topics."""
        from pipeline.kafka import check_reachable

        settings: Settings = settings_of(ctx)
        check_reachable(settings.broker)
        rows = isolations(read_topic(settings.broker, settings.topic("enforcement")),
                          read_topic(settings.broker, settings.topic("acks")), time.time())
        if as_json:
            for row in rows:
                typer.echo(json.dumps(row, sort_keys=True))
            return
        if not rows:
            console.print("no agent is under a rung of the isolation ladder")
            return
        table = Table(title="isolations in force")
        for col in ("agent", "rung", "enforcement point", "issued", "expires", "ack", "incident"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["agent_id"], str(r["action"]), str(r["enforcement_point"]), str(r["issued_at"]),
                          str(r["expires_at"] or "never"), str(r["ack"]), str(r["incident_id"] or ""))
        console.print(table)
