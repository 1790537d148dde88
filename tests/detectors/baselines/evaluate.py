"""Detection and false-finding figures of the baselines on the test generator (docs/baselines.md).

    python tests/detectors/baselines/evaluate.py [--agents-per-role 6] [--seed 7]

Warm 14 days of a benign fleet, then 5 more days during which one agent per role is hijacked
(off-hours burst, a tool it never used, a new destination, 5 MB uploads). Prints, per injected
change, which baselines caught it, and the false findings per 1,000 benign events.
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents-per-role", type=int, default=6)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    fleet = Fleet(agents_per_role=args.agents_per_role, seed=args.seed)
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


if __name__ == "__main__":
    raise SystemExit(main())
