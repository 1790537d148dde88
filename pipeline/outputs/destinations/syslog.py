"""``syslog``: RFC 5424 messages over UDP or TCP, carrying CEF (default) or JSON.

``<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID - MSG``

- PRI = facility * 8 + syslog severity (critical 2, high 3, medium 4, low 5, info 6);
- TIMESTAMP is the record's own time (processed_at / last_seen), never the sender's clock, so the
  SIEM sees when things happened and a replay sends identical messages;
- HOSTNAME is the enforcement point (the device that reported the action), sanitised to
  printable ASCII without spaces as RFC 5424 requires; MSGID is ``enriched`` or ``alerts``.

UDP: one datagram per message, truncated to ``max_datagram_bytes``. TCP: one persistent
connection, RFC 6587 octet counting (``LEN SP MSG``) or newline framing; a broken connection
is reopened at the next flush, after a back-off, with the unsent records kept.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from detectors.base import Severity
from pipeline.outputs.common import agentwatch_meta, to_ms
from pipeline.outputs.registry import Destination, register
from pipeline.records import iso_time

#: agentwatch severity -> syslog severity (RFC 5424 table 2)
SYSLOG_SEVERITY = {
    Severity.CRITICAL: 2,
    Severity.HIGH: 3,
    Severity.MEDIUM: 4,
    Severity.LOW: 5,
    Severity.INFO: 6,
}
_NOT_PRINTUSASCII = re.compile(r"[^!-~]")
_RETRY_SECONDS = 5.0


def _hostname(value: Any) -> str:
    if not value:
        return "-"
    return _NOT_PRINTUSASCII.sub("_", str(value))[:255]


def _timestamp(kind: str, value: Mapping[str, Any]) -> str:
    candidates: tuple[Any, ...]
    if kind == "enriched":
        candidates = (agentwatch_meta(value).get("processed_at"), value.get("ts"))
    else:
        candidates = (value.get("last_seen"), value.get("created_at"), value.get("issued_at"))
    for c in candidates:
        ms = to_ms(c)
        if ms is not None and ms >= 0:
            return iso_time(ms / 1000)
    return "-"


@register("syslog")
class SyslogOutput(Destination):
    def __init__(self, config: Any, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(config)
        self._sock: socket.socket | None = None
        self._clock = clock
        self._retry_at = 0.0

    def frame(
        self, kind: str, value: Mapping[str, Any], severity: Severity, payload: bytes
    ) -> bytes:
        pri = self.config.facility * 8 + SYSLOG_SEVERITY[severity]
        host = _hostname(value.get("enforcement_point"))
        header = f"<{pri}>1 {_timestamp(kind, value)} {host} {self.config.app_name} - {kind} - "
        return header.encode("ascii") + payload

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        if self._clock() < self._retry_at:
            raise ConnectionError("collector unreachable; waiting before reconnecting")
        cfg = self.config
        try:
            if cfg.protocol == "udp":
                info = socket.getaddrinfo(cfg.host, cfg.port, type=socket.SOCK_DGRAM)[0]
                sock = socket.socket(info[0], socket.SOCK_DGRAM)
                sock.connect(info[4])
            else:
                sock = socket.create_connection(
                    (cfg.host, cfg.port), timeout=cfg.connect_timeout_seconds
                )
                sock.settimeout(cfg.connect_timeout_seconds)
        except OSError:
            self._retry_at = self._clock() + _RETRY_SECONDS
            raise
        self._sock = sock
        return sock

    def write(self, records: list[tuple[str, bytes]]) -> None:
        sock = self._connect()
        cfg = self.config
        try:
            if cfg.protocol == "udp":
                limit = cfg.max_datagram_bytes
                for _, msg in records:
                    sock.send(msg[:limit])
            else:
                if cfg.framing == "octet-counting":
                    data = b"".join(b"%d %s" % (len(msg), msg) for _, msg in records)
                else:
                    data = b"".join(msg.replace(b"\n", b" ") + b"\n" for _, msg in records)
                sock.sendall(data)
        except OSError:
            self.close()
            self._retry_at = self._clock() + _RETRY_SECONDS
            raise

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
