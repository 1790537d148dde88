"""``agentwatch baseline``: warm the behavioural baselines from history and inspect them.

- ``baseline fit EVENTS.jsonl --out STATE.json`` learns every valid event of a JSON-lines file (in
  file order, which should be time order) so a new deployment does not start blind; invalid lines
  are counted and skipped, never fatal. ``--from STATE.json`` continues from an earlier fit.
- ``baseline show STATE.json [--agent ID]`` prints maturity per agent and the role profiles.

The state file holds ``BaselineDetector.dump_all()``: the per-agent blobs and the shared (role and
fleet) state, exactly what the worker keeps in its tables, so the lead's replay/worker can load
it as a warm start.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from detectors.base import Event
from detectors.baselines import BaselineDetector
from pipeline.cli.common import console, err_console, settings_of
from pipeline.errors import InputError
from pipeline.validation import ValidationFailure, decode_event


def _read_events(path: Path, max_bytes: int, bad: list[tuple[int, str]]) -> Iterator[Event]:
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            ev = decode_event(raw, max_bytes)
            if isinstance(ev, ValidationFailure):
                bad.append((lineno, f"{ev.code}: {ev.reason}"))
                continue
            yield ev


def _load_state_file(path: Path, settings: Any) -> BaselineDetector:
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from None
    try:
        return BaselineDetector.load_all(settings, data)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise InputError(f"{path} is not a baseline state file: {exc}") from None


def _write_atomic(path: Path, payload: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    group = typer.Typer(
        help="Per-agent behavioural baselines: fit from history, inspect.", no_args_is_help=True
    )
    app.add_typer(group, name="baseline")

    @group.command("fit")
    def fit_command(
        ctx: typer.Context,
        events: Path = typer.Argument(
            ..., help="JSON-lines file of agent-action events (time order)."
        ),
        out: Path = typer.Option(
            ..., "--out", "-o", help="Where to write the baseline state (JSON)."
        ),
        start: Path = typer.Option(None, "--from", help="Continue from this earlier state file."),
    ) -> None:
        """Warm the baselines from historical events so a new deployment does not start blind."""
        settings = settings_of(ctx)
        if not events.is_file():
            raise InputError(f"events file not found: {events}")
        det = (
            _load_state_file(start, settings.baselines)
            if start
            else BaselineDetector(settings.baselines)
        )
        bad: list[tuple[int, str]] = []
        with Progress(
            TextColumn("fitting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        ) as bar:
            task = bar.add_task("fit", total=None)
            n = 0
            for ev in _read_events(events, settings.stream.max_message_bytes, bad):
                det.learn_one(ev)
                n += 1
                if n % 5000 == 0:
                    bar.update(task, completed=n)
        if n == 0:
            first = f" (line {bad[0][0]}: {bad[0][1]})" if bad else ""
            raise InputError(f"no valid events in {events}{first}")
        _write_atomic(out, orjson.dumps(det.dump_all(), option=orjson.OPT_SORT_KEYS))
        agents = det.agents()
        mature = sum(1 for a in agents if det.maturity(a)["mature"])
        table = Table("what", "value")
        table.add_row("events learned", f"{n:,}")
        table.add_row("invalid lines skipped", f"{len(bad):,}")
        table.add_row("agents", f"{len(agents):,}")
        table.add_row("agents past warm-up", f"{mature:,}")
        table.add_row("roles", ", ".join(sorted(det.dump_shared()["roles"])) or "-")
        table.add_row("state file", f"{out} ({out.stat().st_size:,} bytes)")
        console.print(table)
        if bad:
            err_console.print(
                f"skipped {len(bad)} invalid line(s); first: line {bad[0][0]}: {bad[0][1]}",
                highlight=False,
            )

    @group.command("show")
    def show_command(
        ctx: typer.Context,
        state: Path = typer.Argument(..., help="A state file written by `baseline fit`."),
        agent: str = typer.Option(None, "--agent", "-a", help="Only this agent."),
        limit: int = typer.Option(50, "--limit", help="At most this many agents."),
    ) -> None:
        """Maturity of each agent's baseline (events, hours of history, past warm-up?)."""
        settings = settings_of(ctx)
        det = _load_state_file(state, settings.baselines)
        agents = det.agents()
        if agent is not None:
            if agent not in agents:
                raise InputError(f"agent {agent!r} is not in {state}")
            agents = [agent]
        table = Table("agent", "role", "events", "hours", "mature")
        for a in agents[:limit]:
            m = det.maturity(a)
            blob = det.dump_state(a) or {}
            role = str(blob.get("role", ""))
            table.add_row(
                a, role, f"{m['events']:,}", f"{m['hours']:.1f}", "yes" if m["mature"] else "no"
            )
        console.print(table)
        if len(agents) > limit:
            console.print(f"... and {len(agents) - limit} more (use --limit)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: agentwatch baseline")
