"""agentwatch detectors: pure logic that turns an agent-action event into findings.

Nothing in this package knows about Kafka, faust or databases; the stream stages in
``pipeline/`` wire it up, and replay calls exactly the same code.
"""

from detectors.base import Detector, Event, Finding, Severity

__all__ = ["Detector", "Event", "Finding", "Severity"]
