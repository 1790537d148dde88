"""Docstring examples are executable: every module's doctests run here."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import detectors
import pipeline


def _modules() -> list[str]:
    names = []
    for package in (pipeline, detectors):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return sorted(names)


def test_modules_with_examples_exist() -> None:
    finder = doctest.DocTestFinder()
    with_examples = [n for n in _modules() if any(t.examples for t in finder.find(importlib.import_module(n)))]
    assert len(with_examples) >= 5, with_examples


@pytest.mark.parametrize("name", _modules())
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
