"""Detection quality on the simulated fleet, against its ground truth.

    python -m bench.detection [--seed 7] [--agents 40] [--hours 72] [--json PATH]

Runs the same processing as the worker (``agentwatch replay``'s code path, event time) over a
seeded simulated fleet with every attack scenario injected, then joins the outputs with the
simulator's ground truth:

- per scenario: whether any finding, alert and isolation command hit its malicious events, and
  the delay from the scenario's first event to its first alert (event time);
- false findings per 1,000 benign events, by detector family (rules, policy, baseline);
- alerts and isolation commands that name only benign events (false alarms).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson

from bench.common import machine, write_json


def run(seed: int, agents: int, hours: float) -> dict[str, Any]:
    from pipeline.replay import replay
    from pipeline.settings import Settings
    from pipeline.simulator import SCENARIOS, Fleet
    from pipeline.validation import parse_ts

    fleet = Fleet(seed=seed, agents=agents, start="2026-11-02T08:00:00Z")
    lines: list[bytes] = []
    truth: dict[str, dict[str, Any]] = {}
    for ev, t in fleet.events(duration_hours=hours, attacks=SCENARIOS):
        lines.append(orjson.dumps(ev))
        truth[ev["event_id"]] = t
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        replay(settings, io.BytesIO(b"\n".join(lines) + b"\n"), out)
        enriched = [orjson.loads(x) for x in (out / "enriched.jsonl").read_bytes().splitlines()]
        alerts = [orjson.loads(x) for x in (out / "alerts.jsonl").read_bytes().splitlines()]
        commands = [orjson.loads(x) for x in (out / "enforcement.jsonl").read_bytes().splitlines()]

    benign = sum(1 for t in truth.values() if not t["malicious"])
    false_findings: Counter[str] = Counter()
    scen: dict[str, dict[str, Any]] = defaultdict(lambda: {"events": 0, "with_findings": 0, "first_ts": None,
                                                          "alerted": False, "first_alert_ts": None,
                                                          "isolated": False})
    ts_of: dict[str, float] = {}
    for rec in enriched:
        eid = rec["event_id"]
        t = truth[eid]
        ts_of[eid] = parse_ts(rec["ts"])
        findings = rec["agentwatch"]["findings"]
        if t["malicious"]:
            s = scen[t["scenario"]]
            s["events"] += 1
            s["with_findings"] += bool(findings)
            s["first_ts"] = min(filter(None, [s["first_ts"], ts_of[eid]]))
        else:
            for f in findings:
                family = f["detector"].split(".")[0]
                false_findings[family] += 1
    by_event_scenario = {eid: t["scenario"] for eid, t in truth.items() if t["malicious"]}
    latest: dict[str, dict[str, Any]] = {}
    for a in alerts:  # alerts are re-emitted as they grow: keep each id's last version
        latest[a["alert_id"]] = a
    false_alerts = 0
    for a in latest.values():
        hit = {by_event_scenario[e] for e in a.get("event_ids", []) if e in by_event_scenario}
        if not hit:
            false_alerts += 1
        for name in hit:
            s = scen[name]
            s["alerted"] = True
            first = min((ts_of[e] for e in a.get("event_ids", [])
                         if e in ts_of and by_event_scenario.get(e) == name), default=None)
            if first is not None:
                s["first_alert_ts"] = min(filter(None, [s["first_alert_ts"], first]))
    malicious_agents = {t["agent_id"]: t["scenario"] for t in truth.values() if t["malicious"]}
    false_commands = 0
    for c in commands:
        if c.get("action") == "release":
            continue
        name = malicious_agents.get(c.get("agent_id"))
        if name is None:
            false_commands += 1
        else:
            scen[name]["isolated"] = True
    scenarios = {}
    for name, s in sorted(scen.items()):
        delay = (s["first_alert_ts"] - s["first_ts"]) if s["first_alert_ts"] is not None and s["first_ts"] else None
        scenarios[name] = {"events": s["events"], "events_with_findings": s["with_findings"],
                           "alerted": s["alerted"], "isolation_command": s["isolated"],
                           "first_alert_after_s": round(delay, 1) if delay is not None else None}
    return {
        "events": len(lines), "benign_events": benign, "malicious_events": len(lines) - benign,
        "scenarios": scenarios,
        "detected": sum(1 for s in scenarios.values() if s["alerted"]),
        "false_findings_per_1000_benign": {k: round(v * 1000 / benign, 2) for k, v in sorted(false_findings.items())},
        "alerts": len(latest), "false_alerts": false_alerts,
        "isolation_commands": sum(1 for c in commands if c.get("action") != "release"),
        "false_isolation_commands": false_commands,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--agents", type=int, default=40)
    ap.add_argument("--hours", type=float, default=72.0)
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    result = run(args.seed, args.agents, args.hours)
    result.update({"benchmark": "detection", "machine": machine(),
                   "params": {"seed": args.seed, "agents": args.agents, "hours": args.hours}})
    console = Console()
    table = Table(title=f"detection on the simulated fleet ({result['events']:,} events, "
                        f"{result['malicious_events']} malicious)")
    for col in ("scenario", "events", "with findings", "alerted", "isolation cmd", "first alert after"):
        table.add_column(col)
    for name, s in result["scenarios"].items():
        table.add_row(name, str(s["events"]), str(s["events_with_findings"]), "yes" if s["alerted"] else "NO",
                      "yes" if s["isolation_command"] else "no",
                      f"{s['first_alert_after_s']:.0f} s" if s["first_alert_after_s"] is not None else "-")
    console.print(table)
    console.print(f"false findings per 1,000 benign events: {result['false_findings_per_1000_benign']}")
    console.print(f"alerts: {result['alerts']} ({result['false_alerts']} on benign events only); "
                  f"isolation commands: {result['isolation_commands']} ({result['false_isolation_commands']} "
                  f"for agents that never attacked)")
    write_json(args.json_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
