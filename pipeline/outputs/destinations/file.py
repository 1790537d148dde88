"""``file``: append one record per line (JSON Lines for json/ocsf/ecs, one CEF line for cef).

``path`` may contain ``{kind}`` so enriched records and alerts go to separate files. Files are
opened in append mode on first use and flushed at every :meth:`flush`, so a crash loses at most
the last batch, and a log shipper (Filebeat, Fluent Bit, the Splunk forwarder) can tail them.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from pipeline.outputs.registry import Destination, register


@register("file")
class FileOutput(Destination):
    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._files: dict[str, IO[bytes]] = {}

    def path_for(self, kind: str) -> Path:
        return Path(str(self.config.path).replace("{kind}", kind))

    def _file(self, kind: str) -> IO[bytes]:
        f = self._files.get(kind)
        if f is None:
            path = self.path_for(kind)
            path.parent.mkdir(parents=True, exist_ok=True)
            f = self._files[kind] = path.open("ab")
        return f

    def write(self, records: list[tuple[str, bytes]]) -> None:
        touched = set()
        for kind, payload in records:
            f = self._file(kind)
            f.write(payload + b"\n")
            touched.add(kind)
        for kind in touched:
            self._files[kind].flush()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
