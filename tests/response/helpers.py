"""Factories shared by the response tests: events, findings, a settable clock."""

from __future__ import annotations

from typing import Any

from detectors.base import Event, Finding, Severity
from pipeline.enforcement.signing import dev_signer
from pipeline.response import Responder
from pipeline.risk import RiskScorer
from pipeline.settings import Settings

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def event(i: int | str, *, agent: str = "agent-1", ts: float = T0, ep: str = "ep-1", decision: str = "allow",
          command: str = "rm -rf /var/data", kind: str = "shell", tool: str = "rm", **extra: Any) -> Event:
    data = {
        "schema_version": "1", "event_id": f"e-{i}", "ts": "2027-01-15T08:00:00Z", "agent_id": agent,
        "owner": "alice@example.com", "session_id": "s-1", "environment": "prod", "enforcement_point": ep,
        "action": {"kind": kind, "tool": tool, "command": command}, "decision": decision,
    }
    data.update(extra)
    return Event(data, ts=ts)


def finding(rule: str = "destructive.rm_rf", severity: str = "high", score: float = 70,
            detector: str = "rules", **kw: Any) -> Finding:
    return Finding(detector, rule, Severity.parse(severity), score, f"{rule} matched", **kw)


class Harness:
    """Scorer + responder driven by one clock that follows event time (like replay)."""

    def __init__(self, settings: Settings | None = None, *, replay: bool = False, **overrides: Any) -> None:
        self.settings = settings or Settings(**overrides)
        self.clock = Clock()
        self.scorer = RiskScorer(self.settings.risk)
        self.resp = Responder(self.settings, self.clock, signer=dev_signer(), replay=replay)
        self.outputs: list[Any] = []

    def send(self, ev: Event, findings: list[Finding] | None = None, maturity: dict | None = None) -> list[Any]:
        self.clock.t = max(self.clock.t, ev.ts)
        findings = findings or []
        ra = self.scorer.assess(ev, findings)
        out = self.resp.on_event(ev, findings, ra, maturity=maturity)
        self.outputs += out
        return out

    def tick(self, now: float) -> list[Any]:
        self.clock.t = now
        out = self.resp.on_tick(now)
        self.outputs += out
        return out

    def commands(self, outs: list[Any] | None = None) -> list[dict]:
        return [o.value for o in (self.outputs if outs is None else outs) if o.kind == "enforcement"]

    def alerts(self, outs: list[Any] | None = None) -> list[dict]:
        return [o.value for o in (self.outputs if outs is None else outs) if o.kind == "alerts"]
