"""Kafka connection helpers shared by every command: address parsing and reachability checks.

Nothing here is Tansu-specific: users point ``--broker`` at their own Apache Kafka cluster.
"""

from __future__ import annotations

import socket

from pipeline.errors import AgentwatchError

__all__ = ["BrokerUnreachable", "check_reachable", "parse_bootstrap"]


class BrokerUnreachable(AgentwatchError):
    """No broker answers at the configured address."""


def parse_bootstrap(value: str) -> list[tuple[str, int]]:
    """Parse ``host:port[,host:port...]`` (an optional ``kafka://`` prefix is allowed).

    >>> parse_bootstrap("kafka://a:9092,b:9093")
    [('a', 9092), ('b', 9093)]
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("broker address is empty; expected host:port")
    out = []
    for part in value.split(","):
        part = part.strip()
        for scheme in ("kafka://", "aiokafka://", "tcp://"):
            if part.startswith(scheme):
                part = part[len(scheme) :]
        host, sep, port_text = part.rpartition(":")
        if not sep or not host:
            raise ValueError(f"broker address {part!r} is not host:port")
        host = host.strip("[]")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"broker address {part!r} has no valid port (1-65535)")
        out.append((host, int(port_text)))
    return out


def check_reachable(bootstrap: str, timeout: float = 3.0) -> None:
    """Raise :class:`BrokerUnreachable` unless at least one bootstrap address accepts TCP."""
    errors = []
    for host, port in parse_bootstrap(bootstrap):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except OSError as exc:
            errors.append(f"{host}:{port} ({exc.strerror or exc})")
    raise BrokerUnreachable(
        "cannot reach Kafka at " + ", ".join(errors)
        + "; start one with `agentwatch broker` or pass --broker / AGENTWATCH_BROKER"
    )


def bootstrap_servers(bootstrap: str) -> str:
    """The address list in the plain ``host:port,...`` form the clients take."""
    return ",".join(f"{h}:{p}" for h, p in parse_bootstrap(bootstrap))
