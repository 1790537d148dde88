"""In-tree build backend: setuptools' own, plus mypy as a build requirement when
``AGENTWATCH_COMPILE=1`` asks for the compiled build (see ``setup.py``). A pure build does not
download a type checker. This is setuptools' documented way to make build requirements dynamic.
"""

import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (the PEP 517 hooks we do not change)

#: the version ``make lint`` type-checks with; the compiled build must agree with it
MYPY = "mypy==1.18.2"


def compile_requested() -> bool:
    """Whether this build compiles (``setup.py`` asks the same question)."""
    return os.environ.get("AGENTWATCH_COMPILE", "").strip().lower() in ("1", "true", "yes")


def _compile_requires() -> list[str]:
    return [MYPY] if compile_requested() else []


def get_requires_for_build_wheel(config_settings=None):
    return _setuptools.get_requires_for_build_wheel(config_settings) + _compile_requires()


def get_requires_for_build_editable(config_settings=None):
    return _setuptools.get_requires_for_build_editable(config_settings) + _compile_requires()
