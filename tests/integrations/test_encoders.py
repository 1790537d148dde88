"""encoder_for: the interface the stream core calls, for every kind and format."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings

from pipeline.errors import AgentwatchError
from pipeline.outputs import FORMATS, OutputFormatError, encoder_for, record_severity

from .records import KINDS, alert, alerts, enriched, enriched_records


def test_json_is_orjson_itself_for_the_hot_path() -> None:
    enc = encoder_for("enriched", "json")
    assert enc is orjson.dumps
    rec = enriched()
    assert enc(rec) == orjson.dumps(rec)
    assert orjson.loads(enc(rec)) == rec  # everything, unknown fields included, passes through


@pytest.mark.parametrize("kind", ["enforcement", "incidents", "dlq", "acks"])
def test_other_kinds_are_json_only(kind: str) -> None:
    assert encoder_for(kind, "json")({"a": 1}) == b'{"a":1}'
    for fmt in ("ocsf", "ecs", "cef"):
        with pytest.raises(OutputFormatError, match="json only"):
            encoder_for(kind, fmt)


def test_unknown_format_and_kind_are_config_errors() -> None:
    with pytest.raises(OutputFormatError, match="unknown output format 'xml'"):
        encoder_for("alerts", "xml")
    with pytest.raises(OutputFormatError, match="unknown record kind"):
        encoder_for("metrics", "json")
    assert issubclass(OutputFormatError, AgentwatchError)  # the CLI prints it as one line


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_format_encodes_every_action_kind_deterministically(fmt: str, kind: str) -> None:
    enc = encoder_for("enriched", fmt)
    a, b = enc(enriched(kind)), enc(enriched(kind))
    assert isinstance(a, bytes) and a == b
    assert b"\n" not in a  # one record per line in files and syslog


@pytest.mark.parametrize("fmt", FORMATS)
def test_alerts_encode_deterministically(fmt: str) -> None:
    enc = encoder_for("alerts", fmt)
    assert enc(alert()) == enc(alert())


@pytest.mark.parametrize("fmt", ["ocsf", "ecs", "cef"])
def test_a_record_without_the_documented_shape_is_one_clear_error(fmt: str) -> None:
    enc = encoder_for("enriched", fmt)
    try:
        out = enc({"agentwatch": "not a mapping", "action": []})
    except OutputFormatError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(out, bytes)  # tolerated: encoders fill what they can


@settings(max_examples=60, deadline=None)
@given(rec=enriched_records)
def test_any_contract_valid_enriched_record_encodes_in_every_format(rec: dict) -> None:
    for fmt in FORMATS:
        out = encoder_for("enriched", fmt)(rec)
        assert b"\n" not in out and b"\r" not in out


@settings(max_examples=40, deadline=None)
@given(rec=alerts)
def test_any_alert_encodes_in_every_format(rec: dict) -> None:
    for fmt in FORMATS:
        out = encoder_for("alerts", fmt)(rec)
        assert b"\n" not in out and b"\r" not in out


def test_record_severity() -> None:
    assert record_severity("enriched", enriched()).label == "high"  # its worst finding
    quiet = enriched()
    quiet["agentwatch"]["findings"] = []
    assert record_severity("enriched", quiet).label == "info"
    assert record_severity("alerts", alert(severity="medium")).label == "medium"
    assert record_severity("alerts", alert(severity="bogus")).label == "info"
