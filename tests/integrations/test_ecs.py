"""ECS documents: categorization from ECS's allowed values, attribution, risk and ATT&CK."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from pipeline.outputs.ecs import ECS_VERSION, to_ecs_alert, to_ecs_enriched

from .records import KINDS, alert, alerts, enriched, enriched_records

# ECS 8.x event.category -> the event.type values ECS expects with it (ecs-allowed-values docs)
ECS_EXPECTED_TYPES = {
    "api": {
        "access",
        "admin",
        "allowed",
        "change",
        "creation",
        "deletion",
        "denied",
        "end",
        "info",
        "start",
        "user",
    },
    "database": {"access", "change", "info", "error"},
    "file": {"access", "change", "creation", "deletion", "info"},
    "intrusion_detection": {"allowed", "denied", "info"},
    "network": {"access", "allowed", "connection", "denied", "end", "info", "protocol", "start"},
    "process": {"access", "change", "end", "info", "start"},
    "web": {"access", "error", "info"},
}
ECS_KINDS = {"alert", "asset", "enrichment", "event", "metric", "state", "pipeline_error", "signal"}
ECS_OUTCOMES = {"success", "failure", "unknown"}


def _check_categorization(doc: dict) -> None:
    assert doc["event"]["kind"] in ECS_KINDS
    for cat in doc["event"]["category"]:
        assert set(doc["event"]["type"]) <= ECS_EXPECTED_TYPES[cat], (cat, doc["event"]["type"])
    if "outcome" in doc["event"]:
        assert doc["event"]["outcome"] in ECS_OUTCOMES


@pytest.mark.parametrize("kind", KINDS)
def test_categorization_is_ecs(kind: str) -> None:
    doc = to_ecs_enriched(enriched(kind))
    _check_categorization(doc)
    assert doc["ecs"]["version"] == ECS_VERSION


def test_enriched_attribution_and_fields() -> None:
    doc = to_ecs_enriched(enriched("shell"))
    assert doc["@timestamp"] == "2026-03-01T12:00:00.123Z"
    assert doc["user"]["name"] == "alice@example.com"  # the accountable owner
    assert doc["user"]["effective"] == {
        "name": "agent-billing-7",
        "id": "agent-billing-7",
        "roles": ["billing-assistant"],
    }
    assert doc["service"] == {
        "name": "mcp-gateway-eu1",
        "type": "enforcement-point",
        "environment": "prod",
    }
    assert doc["organization"] == {"id": "acme"}
    assert doc["related"]["user"] == ["alice@example.com", "agent-billing-7"]
    assert doc["process"] == {"name": "bash", "command_line": "rm -rf /var/lib/db"}
    assert doc["event"]["risk_score"] == 72.0 and doc["event"]["risk_score_norm"] == 72.0
    assert doc["event"]["outcome"] == "success" and doc["event"]["id"] == "7f1c2a9e-0001"
    assert doc["threat"]["framework"] == "MITRE ATT&CK"
    assert doc["threat"]["technique"]["id"] == ["T1059.004"]
    assert doc["threat"]["technique"]["reference"] == [
        "https://attack.mitre.org/techniques/T1059/004/"
    ]
    assert doc["threat"]["tactic"]["id"] == ["TA0002"]
    assert doc["rule"]["id"] == "shell.pipe-to-shell" and doc["rule"]["ruleset"] == "rules"
    aw = doc["agentwatch"]
    assert aw["session_id"] == "sess-42" and aw["findings"][0]["span"] == [0, 34]
    assert aw["extra"] == {"x_vendor_field": {"kept": True}}  # unknown fields are kept


def test_kind_specific_fields() -> None:
    assert to_ecs_enriched(enriched("file"))["file"] == {
        "path": "/home/svc/.aws/credentials",
        "name": "credentials",
    }
    http = to_ecs_enriched(enriched("http"))
    assert http["url"] == {"original": "https://paste.example/upload"}
    assert http["http"] == {"request": {"method": "POST"}}
    assert http["source"] == {"ip": "10.0.0.5", "bytes": 5_000_000}
    denied = to_ecs_enriched(enriched("sql", decision="deny"))
    assert denied["event"]["outcome"] == "failure" and denied["event"]["category"] == ["database"]


def test_alert_document() -> None:
    doc = to_ecs_alert(alert())
    _check_categorization(doc)
    assert (
        doc["event"]["kind"] == "alert"
        and doc["event"]["id"] == "alr_5d0c9a1e7b2f4c3d8e6a0b1c2d3e4f50"
    )
    assert (doc["event"]["start"], doc["event"]["end"]) == (
        "2026-03-01T12:00:00.000Z",
        "2026-03-01T12:05:00.000Z",
    )
    assert doc["event"]["risk_score"] == 91.0
    assert doc["rule"]["id"] == "exfil.bulk-upload"
    assert (
        doc["user"]["effective"]["id"] == "agent-billing-7"
        and doc["user"]["id"] == "alice@example.com"
    )
    assert doc["threat"]["technique"]["id"] == ["T1567.002"]
    assert doc["agentwatch"]["alert"]["event_ids"] == ["e1", "e2", "e3"]


@settings(max_examples=60, deadline=None)
@given(rec=enriched_records)
def test_any_enriched_record_is_categorized_per_ecs(rec: dict) -> None:
    doc = to_ecs_enriched(rec)
    _check_categorization(doc)
    assert doc["user"]["effective"]["id"] == rec["agent_id"]


@settings(max_examples=30, deadline=None)
@given(rec=alerts)
def test_any_alert_is_categorized_per_ecs(rec: dict) -> None:
    _check_categorization(to_ecs_alert(rec))
