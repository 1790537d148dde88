"""Build script: metadata lives in pyproject.toml; this file only adds the optional compiled build.

``pip install .`` builds pure Python. ``AGENTWATCH_COMPILE=1 pip install .`` compiles the hot
path (:data:`pipeline.native.COMPILED`) with mypyc; ``compile_backend.py`` adds mypy to the build
requirements for that case only. An editable install (``pip install -e .``) should stay pure:
compiled extensions beside the sources would shadow edits to them.

The compile analyses only the listed files (``--follow-imports=skip``): every other import is
treated as ``Any``. That keeps the build to about a minute and a half of one core; following
imports into the dependencies (numpy, river, scikit-learn, pydantic) took 24 minutes and made the
compiled code no faster.
"""

import os
import runpy

from setuptools import setup

from compile_backend import compile_requested

ext_modules = []
if compile_requested():
    from mypyc.build import mypycify

    compiled = runpy.run_path("pipeline/native.py")["COMPILED"]
    ext_modules = mypycify(
        # no config file: pyproject's [tool.mypy] is for `make lint` (its pydantic plugin is not
        # in the build environment, and it checks the packages, not these files)
        ["--config-file=", "--follow-imports=skip", "--ignore-missing-imports", *compiled],
        opt_level=os.environ.get("MYPYC_OPT_LEVEL", "1"),
        group_name="agentwatch_native",
    )

setup(ext_modules=ext_modules)
