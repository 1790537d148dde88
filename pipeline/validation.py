"""Decode and validate one raw input message into an :class:`~detectors.base.Event`.

The edge of the pipeline: every byte string from Kafka (or a replayed line) passes through
:func:`decode_event`. It never raises for bad input; it returns a :class:`ValidationFailure` with a
stable error code and a one-line reason, which the processor turns into a dead letter. The codes:

=====================  =========================================================
``oversized``          larger than ``stream.max_message_bytes`` (checked first)
``empty``              no value (a tombstone or an empty message)
``invalid_utf8``       the bytes are not UTF-8
``not_json``           not a JSON document
``not_object``         JSON, but not an object
``unknown_schema_version``  ``schema_version`` missing or not ``"1"``
``schema_violation``   fails ``schemas/agent-action.schema.json`` (wrong types, missing fields)
``bad_timestamp``      ``ts`` is not an RFC 3339 date-time with a time zone
``time_skew``          ``ts`` too far from the partition's event-time clock (see processor)
=====================  =========================================================

Validation is JSON Schema (the file in ``schemas/`` is the single source of truth). Every event
is checked by jsonschema-rs, a compiled 2020-12 validator (~2.4 µs per event, against ~8.5 µs
for the same schema compiled to Python by fastjsonschema, measured on the simulator's events);
its regex engine is set to the linear-time one. Only an event it rejects goes through
fastjsonschema as well, whose errors name the field and the rule in the words our dead letters
have always used. Should the two ever disagree, the rejection stands. Unknown extra fields are
kept (``additionalProperties`` is never false within schema_version 1).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import fastjsonschema
import jsonschema_rs
import orjson

import schemas
from detectors.events import Event

__all__ = ["ValidationFailure", "decode_event", "parse_ts", "validate_event"]

SUPPORTED_SCHEMA_VERSIONS = frozenset({"1"})


class ValidationFailure(Exception):
    """Why an input is not a valid event: a stable ``code`` and a human ``reason``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def _schema() -> dict[str, Any]:
    schema = dict(schemas.load("agent-action"))
    # ts is checked by parse_ts (stricter and faster than a format regex)
    props = dict(schema["properties"])
    props["ts"] = {k: v for k, v in props["ts"].items() if k != "format"}
    schema["properties"] = props
    return schema


def _compile_fast() -> Any:
    return jsonschema_rs.Draft202012Validator(
        _schema(), validate_formats=False, pattern_options=jsonschema_rs.RegexOptions())


def _compile() -> Any:
    schema = _schema()
    # fastjsonschema knows drafts 4/6/7; our schema keeps to keywords common to 7 and 2020-12.
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(schema, use_default=False, use_formats=False)


_validate = _compile()
_is_valid = _compile_fast().is_valid

#: RFC 3339 date-time with a zone, the shape the contract requires. Every position has one way to
#: match (fixed-width digits; the fraction, 1-9 digits, is followed by a zone that starts with a
#: character no digit is), and the text is at most 40 characters long before it is tried, so a
#: failing match retries at most the fraction's nine lengths: bounded, whatever the input.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_rfc3339_shape = _RFC3339.fullmatch


def _is_rfc3339(text: str) -> bool:
    """RFC 3339 date-time shape check: ``YYYY-MM-DD``, ``T``/``t``/space, ``HH:MM:SS``, an
    optional fraction of 1-9 digits, and ``Z``/``z`` or ``±HH:MM``. ASCII digits only."""
    return 20 <= len(text) <= 40 and _rfc3339_shape(text) is not None


def parse_ts(value: object) -> float:
    """Seconds since the epoch for an RFC 3339 timestamp; raises ValidationFailure otherwise.

    Once the shape is checked, ``datetime.fromisoformat`` (Python 3.11+ reads ``Z``, any
    separator, and truncates fractions to microseconds) does the rest: 1.1 µs per event instead
    of 2.7 µs for a check by position and a rewritten copy of the text.

    >>> parse_ts("1970-01-01T00:01:00Z"), parse_ts("1970-01-01t01:01:00.5+01:00")
    (60.0, 60.5)
    """
    if not isinstance(value, str) or not _is_rfc3339(value):
        raise ValidationFailure("bad_timestamp", f"ts {str(value)[:64]!r} is not an RFC 3339 date-time with a time zone")
    try:
        return datetime.fromisoformat(value if value[-1] != "z" else value[:-1] + "Z").timestamp()
    except (ValueError, OverflowError, OSError):
        pass  # raised below, outside the handler (see validate_event)
    raise ValidationFailure("bad_timestamp", f"ts {value!r} is not a real date-time")


def validate_event(obj: Any) -> float:
    """Validate a decoded JSON value as an agent-action event; return its event time.

    Raises :class:`ValidationFailure`. Used by the processor and by publishers (the SDK) so an
    enforcement point finds out at once rather than through the dead-letter topic.
    """
    if not isinstance(obj, dict):
        raise ValidationFailure("not_object", f"expected a JSON object, got {type(obj).__name__}")
    version = obj.get("schema_version")
    if not isinstance(version, str) or version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ValidationFailure(
            "unknown_schema_version",
            f"schema_version {version!r} is not supported (expected \"1\")"
            if "schema_version" in obj
            else "schema_version is missing",
        )
    if not _is_valid(obj):
        # raised outside the handler: a failure raised inside it would keep fastjsonschema's
        # exception as its context, and that exception's frames lead back to the caller that
        # holds the failure: a reference cycle per rejected event, left to the collector
        reason = None
        try:
            _validate(obj)
        except fastjsonschema.JsonSchemaValueException as exc:
            reason = _reason(exc)
        raise ValidationFailure("schema_violation", reason if reason is not None else _fast_reason(obj))
    return parse_ts(obj["ts"])


def _fast_reason(obj: Any) -> str:
    for error in _compile_fast().iter_errors(obj):
        path = ".".join(str(p) for p in error.instance_path) or "event"
        return f"{path} {error.message}"[:300]
    return "the event does not match the schema"


def _reason(exc: fastjsonschema.JsonSchemaValueException) -> str:
    name = exc.name or "event"
    path = name.replace("data.", "", 1) if name.startswith("data.") else name
    message = str(exc.message)
    if message.startswith(name):
        message = message[len(name) :].strip()
    return f"{path} {message}"[:300]


def decode_event(raw: bytes | None, max_bytes: int) -> Event | ValidationFailure:
    """Turn raw message bytes into an Event, or say why not. Never raises for bad input."""
    if raw is None or len(raw) == 0:
        return ValidationFailure("empty", "the message has no value")
    if len(raw) > max_bytes:
        return ValidationFailure("oversized", f"message of {len(raw)} bytes exceeds the limit of {max_bytes}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return ValidationFailure("invalid_utf8", f"invalid UTF-8 at byte {uexc.start}")
        return ValidationFailure("not_json", f"not JSON: {str(exc)[:200]}")
    try:
        ts = validate_event(obj)
    except ValidationFailure as failure:
        # returned, not raised on: without its traceback (frames that refer back to it) it is
        # freed as soon as its dead letter is written, not by a collection of reference cycles
        return failure.with_traceback(None)
    return Event(data=obj, ts=ts)
