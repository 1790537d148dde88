"""OCSF 1.5.0 output: the right class per record, attribution, and validity against the schema.

Every mapped event is checked three ways: the ocsf-emitter model's full ``validate()`` (types,
enums, required attributes, class/category/type_uid invariants, pinned version) and the
official OCSF 1.5.0 JSON Schema (shipped by ocsf-json-schema, generated for the profiles the
event declares, ``additionalProperties: false`` so a misspelt attribute fails).
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from ocsf_emitter import models as m
from ocsf_emitter import validate as emitter_validate
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from pipeline.outputs import encoder_for
from pipeline.outputs.ocsf import OCSF_VERSION, to_ocsf_alert, to_ocsf_enriched

from .records import alert, alerts, enriched, enriched_records

_SCHEMA = OcsfJsonSchemaEmbedded(get_ocsf_schema(OCSF_VERSION))
_MODELS = {1007: m.ProcessActivity, 1001: m.FileActivity, 6005: m.DatastoreActivity,
           6003: m.ApiActivity, 2004: m.DetectionFinding}  # fmt: skip


@functools.cache
def _validator(class_uid: int, profiles: tuple[str, ...]) -> jsonschema.Draft202012Validator:
    name = _SCHEMA.lookup_class_name_from_uid(class_uid)
    schema = _SCHEMA.get_class_schema(name, list(profiles))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def assert_valid_ocsf(doc: dict[str, Any]) -> None:
    assert doc["metadata"]["version"] == "1.5.0"
    validator = _validator(doc["class_uid"], tuple(doc["metadata"].get("profiles", ())))
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:160]}"
        for e in validator.iter_errors(doc)
    ]
    assert not errors, errors
    emitter_validate(_MODELS[doc["class_uid"]].model_validate(doc))


@pytest.mark.parametrize(
    ("kind", "class_uid", "activity"),
    [
        ("shell", 1007, "Launch"),
        ("file", 1001, "Read"),
        ("sql", 6005, "Query"),
        ("tool_call", 6003, "Read"),
        ("http", 6003, "Create"),
    ],
)
def test_enriched_action_maps_to_the_closest_activity_class(
    kind: str, class_uid: int, activity: str
) -> None:
    doc = to_ocsf_enriched(enriched(kind))
    assert_valid_ocsf(doc)
    assert doc["class_uid"] == class_uid
    assert doc["activity_name"] == activity
    assert doc["type_uid"] == class_uid * 100 + doc["activity_id"]


def test_attribution_risk_and_attack_on_an_activity() -> None:
    rec = enriched("shell")
    rec["action"]["bytes_out"] = 1200
    doc = to_ocsf_enriched(rec)
    assert doc["actor"]["app_uid"] == rec["agent_id"]  # the agent is the actor
    assert doc["actor"]["user"]["name"] == rec["owner"]  # the accountable owner is the user
    assert doc["actor"]["session"] == {
        "uid": "sess-42",
        "credential_uid": "tok-9",
        "expiration_time": 1772409600000,
    }
    assert doc["device"]["name"] == rec["enforcement_point"]  # the enforcement point is the device
    assert doc["metadata"]["log_provider"] == rec["enforcement_point"]
    assert doc["metadata"]["uid"] == rec["event_id"]
    assert doc["metadata"]["tenant_uid"] == "acme"
    assert doc["process"]["cmd_line"] == rec["action"]["command"]
    assert doc["time"] == 1772366400123
    assert doc["risk_score"] == 72 and doc["risk_level"] == "High"
    assert doc["attacks"][0]["technique"]["uid"] == "T1059.004"
    assert doc["attacks"][0]["tactic"]["uid"] == "TA0002"
    assert doc["severity_id"] == 4  # worst finding: high
    assert (doc["action"], doc["disposition"], doc["status"]) == ("Allowed", "Allowed", "Success")
    finding = next(e for e in doc["enrichments"] if e["name"] == "agentwatch.finding")
    assert finding["value"] == "shell.pipe-to-shell" and finding["data"]["span"] == [0, 34]
    risk = next(e for e in doc["enrichments"] if e["name"] == "agentwatch.risk_score")
    assert risk["data"]["risk_factors"][0]["contribution"] == 60
    # what OCSF has no attribute for is kept, not dropped
    assert doc["unmapped"]["event"]["x_vendor_field"] == {"kept": True}
    assert doc["unmapped"]["event"]["agent_role"] == "billing-assistant"
    assert doc["unmapped"]["event"]["action"] == {"bytes_out": 1200}
    assert doc["unmapped"]["agentwatch"]["record_id"] == "enr_0123"


@pytest.mark.parametrize(
    ("decision", "action", "disposition", "status_id"),
    [
        ("deny", "Denied", "Blocked", 2),
        ("denied", "Denied", "Rejected", 2),
        ("approved", "Allowed", "Approved", 1),
        ("approval_required", "Approval Required", "Delayed", 99),
    ],
)
def test_decision_maps_to_security_control_action(
    decision: str, action: str, disposition: str, status_id: int
) -> None:
    doc = to_ocsf_enriched(enriched("tool_call", decision=decision))
    assert_valid_ocsf(doc)
    assert (doc["action"], doc["disposition"], doc["status_id"]) == (action, disposition, status_id)


def test_http_and_sql_details() -> None:
    http = to_ocsf_enriched(enriched("http"))
    assert http["http_request"]["http_method"] == "POST"
    assert http["http_request"]["url"]["hostname"] == "paste.example"
    assert http["dst_endpoint"] == {"hostname": "paste.example"}
    assert http["src_endpoint"]["ip"] == "10.0.0.5"
    sql = to_ocsf_enriched(enriched("sql"))
    assert sql["query_info"]["query_string"] == "SELECT * FROM customers"
    assert sql["table"] == {"name": "customers"}
    assert sql["unmapped"]["event"]["action"] == {"rows": 90000}


def test_a_source_ip_that_is_not_an_ip_stays_out_of_ip_fields() -> None:
    doc = to_ocsf_enriched(enriched("http", source_ip="not-an-ip"))
    assert_valid_ocsf(doc)
    assert "ip" not in doc["src_endpoint"]
    assert doc["unmapped"]["event"]["source_ip"] == "not-an-ip"


def test_alert_is_a_detection_finding() -> None:
    rec = alert()
    doc = to_ocsf_alert(rec)
    assert_valid_ocsf(doc)
    assert (doc["class_uid"], doc["category_uid"]) == (2004, 2)
    assert doc["activity_name"] == "Update"  # version 2 of the alert
    assert doc["is_alert"] is True
    assert doc["severity"] == "Critical" and doc["severity_id"] == 5
    info = doc["finding_info"]
    assert info["uid"] == rec["alert_id"] and info["title"] == rec["title"]
    assert info["analytic"] == {
        "name": "exfil.bulk-upload",
        "uid": "exfil.bulk-upload",
        "type": "Rule",
        "type_id": 1,
    }
    assert info["attacks"] == [
        {
            "technique": {
                "uid": "T1567.002",
                "src_url": "https://attack.mitre.org/techniques/T1567/002/",
            },
            "tactic": {"uid": "TA0010", "src_url": "https://attack.mitre.org/tactics/TA0010/"},
        }
    ]
    assert [e["uid"] for e in info["related_events"]] == ["e1", "e2", "e3"]
    assert (doc["count"], doc["start_time"], doc["end_time"]) == (3, 1772366400000, 1772366700000)
    assert doc["risk_score"] == 91 and doc["risk_level"] == "Critical"
    assert "exfil.bulk-upload +70" in doc["risk_details"]
    assert (
        doc["actor"]["app_uid"] == rec["agent_id"] and doc["actor"]["user"]["name"] == rec["owner"]
    )
    assert doc["evidences"][0]["actor"]["app_uid"] == rec["agent_id"]
    assert doc["device"]["name"] == rec["enforcement_point"]
    assert doc["unmapped"]["alert"]["incident_id"] == "inc_77"


def test_alert_lifecycle_maps_to_activity() -> None:
    assert to_ocsf_alert(alert(version=1, count=1))["activity_name"] == "Create"
    assert to_ocsf_alert(alert(status="closed"))["activity_name"] == "Close"
    baseline = to_ocsf_alert(alert(detector="baseline.volume"))
    assert baseline["finding_info"]["analytic"]["type"] == "Behavioral"


def test_encoder_bytes_are_the_same_event() -> None:
    rec = enriched("file")
    assert orjson.loads(encoder_for("enriched", "ocsf")(rec)) == to_ocsf_enriched(rec)
    assert orjson.loads(encoder_for("alerts", "ocsf")(alert())) == to_ocsf_alert(alert())


@settings(max_examples=80, deadline=None)
@given(rec=enriched_records)
def test_every_enriched_record_gives_a_schema_valid_ocsf_event(rec: dict) -> None:
    assert_valid_ocsf(to_ocsf_enriched(rec))


@settings(max_examples=40, deadline=None)
@given(rec=alerts)
def test_every_alert_gives_a_schema_valid_detection_finding(rec: dict) -> None:
    assert_valid_ocsf(to_ocsf_alert(rec))
