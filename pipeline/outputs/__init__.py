"""SIEM output formats and extra destinations.

Formats (one module each): ``json`` (agentwatch's own records, the default), ``ocsf``
(OCSF 1.5.0: alerts as Detection Finding, agent actions as the closest activity class),
``ecs`` (Elastic Common Schema 8.17) and ``cef`` (ArcSight CEF lines for syslog SIEMs).

The stream core asks once for an encoder and calls it per record::

    enc = encoder_for("enriched", settings.outputs.enriched_format)
    payload: bytes = enc(record)

``kind`` is ``enriched`` or ``alerts`` for every format; other kinds (``enforcement``,
``incidents``, ``dlq``) exist only as ``json``. ``encoder_for`` raises :class:`OutputFormatError`
for an unknown kind/format pair (a configuration error, caught at start-up). An encoder raises
:class:`OutputFormatError` only if a record lacks the documented shape (the OCSF encoder validates
every event against the models and refuses to emit an invalid one).

Extra destinations (files, syslog), each with its own format and minimum severity, are built from
settings by :func:`pipeline.outputs.registry.build_destinations`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.errors import AgentwatchError
from pipeline.outputs.common import record_severity

__all__ = ["FORMATS", "KINDS", "Encoder", "OutputFormatError", "encoder_for", "record_severity"]

Encoder = Callable[[Any], bytes]

FORMATS = ("json", "ocsf", "ecs", "cef")
#: record kinds that every format can encode; other kinds are JSON only
KINDS = ("enriched", "alerts")
_ALL_KINDS = ("enriched", "alerts", "enforcement", "acks", "incidents", "dlq")


class OutputFormatError(AgentwatchError):
    """An output format cannot encode this kind of record, or this record."""


def _wrap(fn: Callable[[Any], bytes], name: str) -> Encoder:
    """Turn mapping errors of a non-JSON encoder into OutputFormatError (one line, no traceback)."""

    def encode(value: Any) -> bytes:
        try:
            return fn(value)
        except OutputFormatError:
            raise
        except AgentwatchError as exc:
            raise OutputFormatError(str(exc)) from None
        except Exception as exc:  # one odd record must never stop the worker: report it
            raise OutputFormatError(
                f"cannot encode record as {name}: {type(exc).__name__}: {exc}"
            ) from None

    encode.__name__ = f"encode_{name}"
    return encode


def encoder_for(kind: str, fmt: str) -> Encoder:
    """The encoder for records of ``kind`` in format ``fmt`` (see the module docstring)."""
    if fmt not in FORMATS:
        raise OutputFormatError(
            f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}"
        )
    if kind not in _ALL_KINDS:
        raise OutputFormatError(
            f"unknown record kind {kind!r}; expected one of {', '.join(_ALL_KINDS)}"
        )
    if fmt == "json":
        from pipeline.outputs.json import encode

        return encode
    if kind not in KINDS:
        raise OutputFormatError(f"{kind} records are written as json only, not {fmt}")
    if fmt == "cef":
        from pipeline.outputs import cef as mod
    elif fmt == "ecs":
        from pipeline.outputs import ecs as mod  # type: ignore[no-redef]
    else:
        from pipeline.outputs import ocsf as mod  # type: ignore[no-redef]
    fn = mod.encode_enriched if kind == "enriched" else mod.encode_alert
    return _wrap(fn, f"{fmt} {kind}")
