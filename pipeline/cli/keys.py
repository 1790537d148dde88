"""``agentwatch keys``: create, rotate and show the Ed25519 keys that sign isolation commands.

    agentwatch keys generate              # .agentwatch/keys/signing.key (0600) + keyring.json
    agentwatch keys rotate --overlap 24h  # new key; the old public key verifies 24 h more
    agentwatch keys show-public [--json]  # the keyring enforcement points load

The private key stays with the workers (or comes from AGENTWATCH_ENFORCEMENT__SIGNING_KEY); the
keyring holds only public keys and goes to every enforcement point.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table

from pipeline.cli.common import console, settings_of
from pipeline.enforcement.keys import (
    generate_key,
    keyring_path_for,
    read_keyring_entries,
    rotate_key,
)
from pipeline.errors import InputError
from pipeline.records import iso_time

PATH_HELP = "Private key file (default: enforcement.signing_key_path)."


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``24h``, ``7d`` -> seconds.

    >>> parse_duration("24h"), parse_duration("90")
    (86400.0, 90.0)
    """
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    mult = units.get(text[-1:], None)
    number = text[:-1] if mult is not None else text
    try:
        value = float(number) * (mult or 1)
    except ValueError:
        raise InputError(f"duration {text!r} is not a number with an optional s/m/h/d unit") from None
    if value < 0:
        raise InputError(f"duration {text!r} is negative")
    return value


def _key_path(ctx: typer.Context, path: Path | None) -> Path:
    return path if path is not None else Path(settings_of(ctx).enforcement.signing_key_path)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    grp = typer.Typer(help="Signing keys for isolation commands: generate, rotate, show-public.",
                      no_args_is_help=True)
    app.add_typer(grp, name="keys")

    @grp.command()
    def generate(
        ctx: typer.Context,
        path: Path = typer.Option(None, "--path", help=PATH_HELP),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing key (prefer rotate)."),
    ) -> None:
        """Create the signing key and add its public key to the keyring."""
        key = _key_path(ctx, path)
        signer = generate_key(key, now=time.time(), force=force)
        console.print(f"created signing key [bold]{signer.key_id}[/] at {key} (mode 0600)", highlight=False)
        console.print(f"give enforcement points the keyring: {keyring_path_for(key)}", highlight=False)

    @grp.command()
    def rotate(
        ctx: typer.Context,
        path: Path = typer.Option(None, "--path", help=PATH_HELP),
        overlap: str = typer.Option(None, "--overlap", help="How long the old key still verifies "
                                    "(e.g. 24h; default enforcement.rotation_overlap_seconds)."),
    ) -> None:
        """Replace the signing key; the previous public key verifies until the overlap ends."""
        key = _key_path(ctx, path)
        seconds = parse_duration(overlap) if overlap is not None else settings_of(ctx).enforcement.rotation_overlap_seconds
        now = time.time()
        old_id, new = rotate_key(key, now=now, overlap_seconds=seconds)
        console.print(f"new signing key [bold]{new.key_id}[/]; {old_id} verifies until {iso_time(now + seconds)}",
                      highlight=False)
        console.print(f"redistribute {keyring_path_for(key)} to enforcement points, then restart the workers",
                      highlight=False)

    @grp.command("show-public")
    def show_public(
        ctx: typer.Context,
        path: Path = typer.Option(None, "--path", help=PATH_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print the keyring JSON."),
    ) -> None:
        """Show the public keys enforcement points trust (the keyring)."""
        key = _key_path(ctx, path)
        ring = keyring_path_for(key)
        entries = read_keyring_entries(ring)
        if not entries:
            raise InputError(f"no keyring at {ring}; create one with `agentwatch keys generate`")
        if as_json:
            typer.echo(json.dumps({"version": 1, "keys": entries}, indent=2))
            return
        table = Table(title=str(ring))
        for col in ("key id", "public key (base64)", "created", "verifies until"):
            table.add_column(col)
        for e in entries:
            table.add_row(str(e.get("key_id")), str(e.get("public_key")), str(e.get("created_at")),
                          str(e.get("not_after") or "no end (active)"))
        console.print(table)
