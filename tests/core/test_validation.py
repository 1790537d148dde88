"""The edge decoder: every byte string gives an Event or a coded failure, never an exception."""

from __future__ import annotations

import copy
import json
from datetime import datetime

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from detectors.base import Event
from pipeline.validation import ValidationFailure, decode_event, parse_ts, validate_event

VALID = json.loads((schemas.SCHEMA_DIR / "examples/agent-action/valid/shell-minimal.json").read_text())
CODES = {"oversized", "empty", "invalid_utf8", "not_json", "not_object", "unknown_schema_version",
         "schema_violation", "bad_timestamp"}
SCHEMA = jsonschema.Draft202012Validator(schemas.load("agent-action"))


@given(st.binary(max_size=2000))
@settings(max_examples=400)
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    result = decode_event(raw, 1024)
    assert isinstance(result, (Event, ValidationFailure))
    if isinstance(result, ValidationFailure):
        assert result.code in CODES and result.reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(st.sampled_from([*sorted(VALID), "action.kind", "action.tool", "action.command", "action.rows"]), json_values)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_events_agree_with_the_json_schema(field: str, value: object) -> None:
    """Our fast validator accepts exactly what the 2020-12 schema accepts (plus the ts check)."""
    doc = copy.deepcopy(VALID)
    target = doc
    parts = field.split(".")
    for p in parts[:-1]:
        target = target[p]
    target[parts[-1]] = value
    result = decode_event(orjson.dumps(doc), 65536)
    schema_ok = not list(SCHEMA.iter_errors(doc))
    if isinstance(result, Event):
        assert schema_ok
    else:
        assert result.code in CODES
        if result.code in {"schema_violation", "unknown_schema_version", "not_object"}:
            assert not schema_ok


def test_valid_example_decodes_with_event_time() -> None:
    ev = decode_event(orjson.dumps(VALID), 65536)
    assert isinstance(ev, Event)
    assert ev.ts == parse_ts("2026-11-02T09:15:02.123Z")
    assert ev.agent_id == "agent-devops-01"


def test_unknown_fields_are_kept() -> None:
    doc = dict(VALID, x_extra={"nested": [1, 2]}, another="kept")
    ev = decode_event(orjson.dumps(doc), 65536)
    assert isinstance(ev, Event)
    assert ev.data["x_extra"] == {"nested": [1, 2]} and ev.data["another"] == "kept"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "empty"),
        (None, "empty"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (orjson.dumps(dict(VALID, schema_version="2")), "unknown_schema_version"),
        (orjson.dumps({k: v for k, v in VALID.items() if k != "schema_version"}), "unknown_schema_version"),
        (orjson.dumps({k: v for k, v in VALID.items() if k != "owner"}), "schema_violation"),
        (orjson.dumps(dict(VALID, environment="moon")), "schema_violation"),
        (orjson.dumps(dict(VALID, ts="yesterday")), "bad_timestamp"),
        (orjson.dumps(dict(VALID, ts="2026-11-02T09:15:02")), "bad_timestamp"),
        (orjson.dumps(dict(VALID, ts="2026-02-30T09:15:02Z")), "bad_timestamp"),
        (b"{" + b" " * 70000 + b"}", "oversized"),
    ],
)
def test_failure_codes(raw: bytes | None, code: str) -> None:
    result = decode_event(raw, 65536)
    assert isinstance(result, ValidationFailure)
    assert result.code == code


def test_reason_names_the_field() -> None:
    result = decode_event(orjson.dumps(dict(VALID, action={"kind": "shell", "tool": "ls"})), 65536)
    assert isinstance(result, ValidationFailure)
    assert "command" in result.reason


@given(st.datetimes(timezones=st.timezones()))
def test_parse_ts_roundtrips_rfc3339(dt) -> None:  # type: ignore[no-untyped-def]
    text = dt.isoformat()
    if dt.utcoffset() is None or dt.year < 1900 or dt.utcoffset().seconds % 60:
        return
    assert parse_ts(text) == pytest.approx(dt.timestamp())


def test_validate_event_is_usable_by_publishers() -> None:
    assert validate_event(VALID) == parse_ts(VALID["ts"])
    with pytest.raises(ValidationFailure) as info:
        validate_event({"schema_version": "1"})
    assert info.value.code == "schema_violation"


_SHAPE_ALPHABET = "0123456789-:Tt Zz+.x\u0663\u00b2"


def _reference_is_rfc3339(text: str) -> bool:
    """The shape rule written the slow, obvious way (one position at a time), to hold the fast
    check in ``pipeline.validation`` to it."""
    n = len(text)
    if not 20 <= n <= 40 or text[4] != "-" or text[7] != "-" or text[10] not in "Tt " \
            or text[13] != ":" or text[16] != ":":
        return False
    if any(not "0" <= text[i] <= "9" for i in (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)):
        return False
    i = 19
    if text[i] == ".":
        j = i + 1
        while j < n and "0" <= text[j] <= "9":
            j += 1
        if j == i + 1 or j - i - 1 > 9:
            return False
        i = j
    zone = text[i:]
    if zone in ("Z", "z"):
        return True
    return len(zone) == 6 and zone[0] in "+-" and zone[3] == ":" and all("0" <= c <= "9" for c in zone[1:3] + zone[4:])


def _edited(start: str, edits: list[tuple[int, str, int]]) -> str:
    """``start`` with each edit applied: (position, character, 0 replace / 1 insert / 2 delete)."""
    chars = list(start)
    for pos, ch, op in edits:
        i = min(pos, len(chars))
        if op == 0 and i < len(chars):
            chars[i] = ch
        elif op == 1:
            chars.insert(i, ch)
        elif i < len(chars):
            del chars[i]
    return "".join(chars)


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["2026-11-02T08:13:14.567Z", "2026-11-02T08:13:14+01:00",
                     "2026-11-02t08:13:14.123456789-05:30", "2026-11-02 08:13:14z"]),
    st.lists(st.tuples(st.integers(0, 40), st.sampled_from(_SHAPE_ALPHABET), st.integers(0, 2)), max_size=3),
)
def test_timestamp_shape_check_agrees_with_the_reference(start: str, edits: list[tuple[int, str, int]]) -> None:
    from pipeline.validation import _is_rfc3339

    text = _edited(start, edits)
    assert _is_rfc3339(text) == _reference_is_rfc3339(text)


def _reference_parse_ts(text: str) -> float | None:
    """The earlier parse: the shape by position, the fraction trimmed to microseconds and the
    ``Z`` spelled as an offset by hand, then ``datetime.fromisoformat``; None where it refused."""
    if not isinstance(text, str) or not text.isascii() or not _reference_is_rfc3339(text):
        return None
    frac_end = text.find(".")
    if frac_end != -1:
        end = frac_end + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        if end - frac_end - 1 > 6:
            text = text[: frac_end + 7] + text[end:]
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["2026-11-02T08:13:14.567Z", "2026-11-02T08:13:14+01:00", "0001-01-01T00:00:00Z",
                     "2106-02-07T06:28:15.999999999Z", "1833-11-24T17:31:44.999999Z", "1969-12-31T23:59:59.9999999z",
                     "2026-11-02t08:13:14.123456789-05:30", "2026-11-02 08:13:14z", "9999-12-31T23:59:59.9Z",
                     "2024-02-29T23:59:59-23:59", "2026-12-31T00:00:00.1234567+00:99"]),
    st.lists(st.tuples(st.integers(0, 40), st.sampled_from(_SHAPE_ALPHABET + "39"), st.integers(0, 2)), max_size=3),
)
def test_parse_ts_agrees_with_the_earlier_parse(start: str, edits: list[tuple[int, str, int]]) -> None:
    text = _edited(start, edits)
    expected = _reference_parse_ts(text)
    if expected is None:
        with pytest.raises(ValidationFailure) as info:
            parse_ts(text)
        assert info.value.code == "bad_timestamp"
    else:
        assert parse_ts(text) == expected


@given(st.floats(min_value=-2e9, max_value=4e10, allow_nan=False))
def test_iso_time_matches_datetime_formatting(ts: float) -> None:
    from datetime import UTC, datetime

    from pipeline.records import iso_time

    expected = datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert iso_time(ts) == expected


def test_rejected_events_leave_no_reference_cycles() -> None:
    """A rejection is freed when its dead letter is written, not by the cyclic collector (it
    once kept frames, through its traceback and context, that held it: cycles per bad event,
    which the attacker who sends them controls)."""
    import gc

    good = copy.deepcopy(VALID)
    bad = [b"{not json", b"\xff\xfe{}", b"[1, 2]", b"", b"x" * 70000,
           orjson.dumps({**good, "schema_version": "9"}), orjson.dumps({**good, "action": 5}),
           orjson.dumps({**good, "ts": "yesterday"}), orjson.dumps({**good, "ts": "2026-02-30T10:00:00Z"})]

    def admit(raw: bytes) -> str:  # as the processor: the result in a local of the caller
        result = decode_event(raw, 65536)
        assert isinstance(result, ValidationFailure)
        return result.code

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        codes = {admit(raw) for raw in bad * 3}
        gc.collect()
        found = [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert codes == {"not_json", "invalid_utf8", "not_object", "empty", "oversized", "unknown_schema_version",
                     "schema_violation", "bad_timestamp"}
    assert found == []
