"""Every schema is valid JSON Schema 2020-12 and its examples validate (or fail) as labelled."""

from __future__ import annotations

import jsonschema
import pytest

import schemas

ALL = schemas.names()


def test_every_message_has_a_schema() -> None:
    expected = {"agent-action", "enriched-event", "dead-letter"}
    assert expected <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_schema_is_valid_2020_12(name: str) -> None:
    schema = schemas.load(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", ALL)
def test_examples_validate_as_labelled(name: str) -> None:
    validator = schemas.validator(name)
    found = {True: 0, False: 0}
    for path, doc, should_be_valid in schemas.examples(name):
        errors = list(validator.iter_errors(doc))
        assert (not errors) == should_be_valid, f"{path}: {[e.message for e in errors]}"
        found[should_be_valid] += 1
    assert found[True] >= 1 and found[False] >= 1, f"{name} needs valid and invalid examples"
