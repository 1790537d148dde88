"""The enforcement-point SDK: publish agent actions, receive and verify isolation commands.

- :class:`ActionPublisher` publishes validated, batched action events (``agent.actions``);
- :class:`CommandReceiver` reads ``agent.enforcement``, verifies each command (Ed25519 signature,
  key id, replay, expiry) for its own enforcement point, applies it through a callback and
  acknowledges it on ``agent.enforcement.acks``; :class:`CommandVerifier` is its pure core;
- :class:`Gate` is a reference command gate that refuses actions of isolated agents.
"""

from pipeline.sdk.gate import Gate
from pipeline.sdk.publisher import ActionPublisher, PublishError
from pipeline.sdk.receiver import CommandReceiver, CommandVerifier, Verdict

__all__ = ["ActionPublisher", "CommandReceiver", "CommandVerifier", "Gate", "PublishError", "Verdict"]
