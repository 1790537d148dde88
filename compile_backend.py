"""In-tree build backend: setuptools' own, plus mypy as a build requirement when
``AGENTWATCH_COMPILE=1`` asks for the compiled build (see ``setup.py``). A pure build does not
download a type checker. This is setuptools' documented way to make build requirements dynamic.
"""

import contextlib
import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (the PEP 517 hooks we do not change)

#: the version ``make lint`` type-checks with; the compiled build must agree with it
MYPY = "mypy==1.18.2"


def compile_requested() -> bool:
    """Whether this build compiles (``setup.py`` asks the same question)."""
    return os.environ.get("AGENTWATCH_COMPILE", "").strip().lower() in ("1", "true", "yes")


@contextlib.contextmanager
def _not_compiling():
    """For the hooks that run setup.py only to learn something (requirements, metadata): mypyc
    would analyse and generate C at setup.py's import, before mypy is even installed."""
    saved = os.environ.get("AGENTWATCH_COMPILE")
    os.environ["AGENTWATCH_COMPILE"] = "0"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["AGENTWATCH_COMPILE"]
        else:
            os.environ["AGENTWATCH_COMPILE"] = saved


def _requires(setuptools_hook, config_settings):
    compiling = compile_requested()
    with _not_compiling():
        requires = setuptools_hook(config_settings)
    return [*requires, MYPY] if compiling else requires


def get_requires_for_build_wheel(config_settings=None):
    return _requires(_setuptools.get_requires_for_build_wheel, config_settings)


def get_requires_for_build_editable(config_settings=None):
    return _requires(_setuptools.get_requires_for_build_editable, config_settings)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    with _not_compiling():
        return _setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    with _not_compiling():
        return _setuptools.prepare_metadata_for_build_editable(metadata_directory, config_settings)
