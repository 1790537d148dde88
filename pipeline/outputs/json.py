"""agentwatch's own JSON: the record exactly as the pipeline built it, one compact object.

This is the hot path (one call per event), so the encoder *is* ``orjson.dumps``: no wrapper,
no key sorting (records are built in a fixed order, so the bytes are already deterministic).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["encode"]

encode: Callable[[Any], bytes] = orjson.dumps
