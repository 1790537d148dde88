"""Make ``import detectors`` find the real package, not this ``tests/detectors`` directory.

pytest puts ``tests/`` on ``sys.path`` (rootless conftest); ``tests/detectors`` then shadows the
``detectors`` package as a namespace package when the package is installed editable (its finder
runs after the path finder). Putting the repository root first fixes the lookup order.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_ROOT = str(_HERE.parents[2])
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)
if str(_HERE) not in sys.path:  # the test helpers (fleet_sim) sit next to the tests
    sys.path.append(str(_HERE))
_mod = sys.modules.get("detectors")
if _mod is not None and getattr(_mod, "__file__", None) is None:  # a namespace impostor
    for _name in [n for n in sys.modules if n == "detectors" or n.startswith("detectors.")]:
        del sys.modules[_name]
