"""``stdout``: one record per line on standard output (containers: let the runtime ship logs)."""

from __future__ import annotations

import sys

from pipeline.outputs.registry import Destination, register


@register("stdout")
class StdoutOutput(Destination):
    def write(self, records: list[tuple[str, bytes]]) -> None:
        out = sys.stdout.buffer
        out.write(b"".join(payload + b"\n" for _, payload in records))
        out.flush()
