"""Detection and false-finding figures of the baselines (docs/baselines.md).

    python tests/detectors/baselines/evaluate.py [--agents-per-role 6] [--seed 7]
    python tests/detectors/baselines/evaluate.py --simulator [--hours 168] [--agents 40] [--seed 7]

Test generator (default): warm 14 days of a benign fleet, then 5 more days during which one agent
per role is hijacked (off-hours burst, a tool it never used, a new destination, 5 MB uploads).
Prints, per injected change, which baselines caught it, and the false findings per 1,000 benign
events.

``--simulator``: the product simulator (``pipeline.simulator``) with every attack scenario, events
decoded by the pipeline's own decoder. Prints, per injected attack, whether a baseline finding
fell on one of its malicious events (and which), and the findings on benign events per 1,000
benign events of mature agents (the baselines are silent during warm-up by design).
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_sim import Fleet, run

from detectors.baselines import BaselineDetector
from pipeline.settings import BaselineSettings


def test_generator(agents_per_role: int, seed: int) -> int:
    fleet = Fleet(agents_per_role=agents_per_role, seed=seed)
    det = BaselineDetector(BaselineSettings())
    warm = fleet.benign(14)
    warm_found = run(det, warm)
    victims = [a for a in fleet.agents if a.agent_id.endswith("-01")]
    injected = []
    for i, a in enumerate(victims):
        injected += fleet.shift(a, day=15 + i % 2, hour=2.0 + i)
    post = fleet.benign(5, start_day=14) + injected
    post.sort(key=lambda e: (e.ts, e.agent_id))
    found = run(det, post)
    inj = {e.event_id for e in injected}
    caught = 0
    for a in victims:
        ids = [e.event_id for e in injected if e.agent_id == a.agent_id]
        by = collections.Counter(f.detector for i in ids for f in found.get(i, []))
        caught += bool(by)
        print(
            f"{a.agent_id}: {sum(i in found for i in ids)}/{len(ids)} injected events flagged; {dict(by)}"
        )
    benign = len(post) - len(inj)
    false = sum(len(v) for k, v in found.items() if k not in inj)
    warm_mature = sum(len(v) for v in warm_found.values())
    print(f"injected behaviour changes caught: {caught}/{len(victims)}")
    print(
        f"false findings after warm-up: {false} on {benign:,} benign events = {1000 * false / benign:.3f} per 1,000"
    )
    print(
        f"findings during the 14 warm-up days (agents mature after 50 events + 24 h): {warm_mature} on {len(warm):,} events = {1000 * warm_mature / len(warm):.3f} per 1,000"
    )
    return 0


def product_simulator(hours: float, agents: int, seed: int) -> int:
    import orjson

    from pipeline.simulator import SCENARIOS
    from pipeline.simulator import Fleet as SimFleet
    from pipeline.validation import decode_event

    fleet = SimFleet(seed=seed, agents=agents, start="2026-11-02T08:00:00Z")
    det = BaselineDetector(BaselineSettings())
    per_attack: dict[tuple[str, str], collections.Counter[str]] = {}
    attack_events: collections.Counter[tuple[str, str]] = collections.Counter()
    benign = benign_mature = false = 0
    false_by: collections.Counter[str] = collections.Counter()
    for data, truth in fleet.events(duration_hours=hours, attacks=SCENARIOS):
        ev = decode_event(orjson.dumps(data), 65536)
        assert not isinstance(ev, Exception) and hasattr(ev, "ts"), ev
        mature = det.maturity(ev.agent_id)["mature"]
        found = det.score_one(ev)
        det.learn_one(ev)
        if truth["malicious"]:
            key = (str(truth["scenario"]), ev.agent_id)
            attack_events[key] += 1
            c = per_attack.setdefault(key, collections.Counter())
            for f in found:
                c[f.detector] += 1
        else:
            benign += 1
            benign_mature += mature
            false += len(found)
            for f in found:
                false_by[f.detector] += 1
    caught = 0
    for key in sorted(per_attack):
        by = per_attack[key]
        caught += bool(by)
        print(f"{key[0]} by {key[1]}: {attack_events[key]} malicious events; findings {dict(by)}")
    print(f"injected attacks with a baseline finding: {caught}/{len(per_attack)}")
    print(
        f"findings on benign events: {false} on {benign_mature:,} benign events of mature agents "
        f"= {1000 * false / max(1, benign_mature):.3f} per 1,000 ({benign:,} benign events in all) "
        f"{dict(false_by)}"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents-per-role", type=int, default=6)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--simulator", action="store_true", help="use the product simulator")
    ap.add_argument("--hours", type=float, default=168.0, help="simulator: hours of events")
    ap.add_argument("--agents", type=int, default=40, help="simulator: fleet size")
    args = ap.parse_args()
    if args.simulator:
        return product_simulator(args.hours, args.agents, args.seed)
    return test_generator(args.agents_per_role, args.seed)


if __name__ == "__main__":
    raise SystemExit(main())
