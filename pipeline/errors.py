"""Errors a user can act on.

    AgentwatchError            base: the CLI prints its message as one line and exits non-zero
    ├── ConfigError            malformed or invalid configuration (pipeline.settings)
    ├── BrokerError            the embedded broker cannot start (pipeline.broker)
    ├── BrokerUnreachable      no Kafka answers at --broker (pipeline.kafka)
    └── InputError             a file or argument given on the command line is unusable

Anything else reaching the CLI is a bug: it is reported in one line too, with a hint to rerun
with ``--debug`` for the traceback.
"""

from __future__ import annotations

__all__ = ["AgentwatchError", "InputError"]


class AgentwatchError(Exception):
    """An error with a message meant for the user."""

    exit_code = 1


class InputError(AgentwatchError):
    """A file or argument given by the user cannot be used."""

    exit_code = 2
