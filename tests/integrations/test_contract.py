"""The encoders follow the project's own message schemas: the samples used by these tests are
valid enriched events and alerts, and every valid schema example encodes in every format (and
as schema-valid OCSF)."""

from __future__ import annotations

import pytest

import schemas
from pipeline.outputs import FORMATS, encoder_for
from pipeline.outputs.ocsf import to_ocsf_alert, to_ocsf_enriched

from .records import KINDS, alert, enriched
from .test_ocsf import assert_valid_ocsf


@pytest.mark.parametrize("kind", KINDS)
def test_sample_enriched_records_follow_the_schema(kind: str) -> None:
    rec = enriched(kind)
    rec["agentwatch"]["record_id"] = "enr_" + "0" * 32
    errors = [e.message for e in schemas.validator("enriched-event").iter_errors(rec)]
    assert not errors, errors


def test_sample_alert_follows_the_schema() -> None:
    errors = [e.message for e in schemas.validator("alert").iter_errors(alert())]
    assert not errors, errors


@pytest.mark.parametrize(("name", "kind"), [("enriched-event", "enriched"), ("alert", "alerts")])
def test_every_valid_schema_example_encodes(name: str, kind: str) -> None:
    found = 0
    for path, doc, valid in schemas.examples(name):
        if not valid:
            continue
        found += 1
        for fmt in FORMATS:
            out = encoder_for(kind, fmt)(doc)
            assert out and b"\n" not in out, (path.name, fmt)
        assert_valid_ocsf(to_ocsf_enriched(doc) if kind == "enriched" else to_ocsf_alert(doc))
    assert found, f"no valid examples for {name}"
