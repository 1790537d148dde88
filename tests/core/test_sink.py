"""Output encoding: agentwatch's JSON per record kind, and values that are bytes already."""

from __future__ import annotations

import orjson

from pipeline.records import Output
from pipeline.settings import Settings
from pipeline.sink import Encoded, Encoders


def test_a_record_value_is_encoded_as_json() -> None:
    value = {"event_id": "e1", "risk_score": 42, "findings": [{"id": "r1"}]}
    assert orjson.loads(Encoders(Settings()).encode(Output("enriched", "a1", value))) == value


def test_an_encoded_value_goes_out_as_its_bytes_and_passes_for_a_dict() -> None:
    raw = b'{"copied": "as is", "not": "re-encoded"}'
    out = Output("enriched", "a1", Encoded(raw))  # the compiled build checks the value is a dict
    assert Encoders(Settings()).encode(out) is raw
    assert isinstance(out.value, dict) and out.value == {}  # nothing else reads it as content
