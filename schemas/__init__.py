"""The JSON Schemas (2020-12) of every message agentwatch reads or writes.

``load("agent-action")`` returns the parsed schema of ``schemas/agent-action.schema.json``;
``examples("agent-action")`` yields ``(path, document, should_be_valid)`` for its examples.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_DIR", "examples", "load", "names", "validator"]

SCHEMA_DIR = Path(__file__).resolve().parent


def names() -> list[str]:
    """Stems of every schema file (``agent-action``, ``alert``, ...)."""
    return sorted(p.name[: -len(".schema.json")] for p in SCHEMA_DIR.glob("*.schema.json"))


@cache
def load(name: str) -> dict[str, Any]:
    path = SCHEMA_DIR / f"{name}.schema.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def examples(name: str) -> Iterator[tuple[Path, Any, bool]]:
    base = SCHEMA_DIR / "examples" / name
    for valid, sub in ((True, "valid"), (False, "invalid")):
        for path in sorted((base / sub).glob("*.json")):
            yield path, json.loads(path.read_text(encoding="utf-8")), valid


def validator(name: str) -> Any:
    """A ``jsonschema`` 2020-12 validator for ``name`` that resolves ``$ref`` between our schemas
    by their ``$id``. For tests, tools and publishers; the hot path uses pipeline.validation."""
    import jsonschema
    from referencing import Registry, Resource

    resources = [(load(n)["$id"], Resource.from_contents(load(n))) for n in names() if "$id" in load(n)]
    registry: Registry[Any] = Registry().with_resources(resources)
    return jsonschema.Draft202012Validator(load(name), registry=registry)
