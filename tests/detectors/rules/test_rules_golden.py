"""Findings stay exactly what they were: the golden file (see ``golden.py``) replayed through the
current engine, in order and in a shuffled order (caches must not leak between events)."""

from __future__ import annotations

import gzip
import random
from typing import Any

import orjson
import pytest

from detectors.base import Event
from detectors.rulebook import RuleDetector
from pipeline.settings import RulesSettings
from tests.detectors.rules.golden import GOLDEN


@pytest.fixture(scope="module")
def golden() -> list[dict[str, Any]]:
    with gzip.open(GOLDEN, "rb") as fh:
        return [orjson.loads(line) for line in fh]


def _check(rows: list[dict[str, Any]], det: RuleDetector) -> None:
    bad = []
    for row in rows:
        got = [f.to_dict() for f in det.score_one(Event(data=row["data"], ts=row["ts"]))]
        got = orjson.loads(orjson.dumps(got))  # tuples -> lists, as stored
        if got != row["findings"]:
            bad.append((row["data"].get("event_id"), row["findings"], got))
    assert not bad, f"{len(bad)} events differ; first: {bad[0]}"


def test_golden_file_is_substantial(golden: list[dict[str, Any]]) -> None:
    assert len(golden) > 2500
    ids = {f["id"] for row in golden for f in row["findings"]}
    assert len(ids) >= 70  # nearly every rule fires somewhere in it


def test_same_findings_as_the_golden_file(golden: list[dict[str, Any]]) -> None:
    _check(golden, RuleDetector(RulesSettings()))


def test_same_findings_shuffled_and_repeated(golden: list[dict[str, Any]]) -> None:
    det = RuleDetector(RulesSettings())
    rows = list(golden) * 2
    random.Random(5).shuffle(rows)
    _check(rows, det)
