"""Build the golden findings file ``corpus/golden.jsonl.gz`` (not a test module).

    python -m tests.detectors.rules.golden

Each line is ``{"data": <event>, "ts": <seconds>, "findings": [<Finding.to_dict()>...]}`` for the
built-in catalog with default settings. The events: every inline test case of every rule, the
events of the product simulator (seed 7, 40 agents, 48 h with every attack scenario) that have a
finding plus a seeded sample of those without, and the attacks and a sample of the ordinary events
of ``bench.rules``' workload. It was generated with the rule engine *before* the per-event
speed-up (commit 386c2d1), so ``test_rules_golden.py`` proves the faster engine reports exactly
the same findings (ids, spans, reasons, context). Regenerate it only when a rule or the parsers
change what is detected on purpose, and review the diff of the findings.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import Any

import orjson

from detectors.base import Event
from detectors.rulebook import RuleDetector, load_rules, make_event
from pipeline.settings import RulesSettings

GOLDEN = Path(__file__).parent / "corpus" / "golden.jsonl.gz"


def _sim_events() -> list[tuple[dict[str, Any], float]]:
    from pipeline.simulator import SCENARIOS, Fleet
    from pipeline.validation import decode_event

    fleet = Fleet(seed=7, agents=40, start="2026-11-02T08:00:00Z")
    out = []
    for ev, _truth in fleet.events(duration_hours=48, attacks=SCENARIOS):
        got = decode_event(orjson.dumps(ev), 65536)
        assert isinstance(got, Event)
        out.append((got.data, got.ts))
    return out


def _inline_events() -> list[tuple[dict[str, Any], float]]:
    rs = load_rules(RulesSettings())
    out = []
    for rule in rs.rules:
        for kind in ("match", "no_match"):
            for i, case in enumerate(rule.tests.get(kind) or []):
                ev = make_event(case, rule.category, f"{rule.id}-{kind}-{i}")
                out.append((ev.data, ev.ts))
    return out


def _bench_events() -> list[tuple[dict[str, Any], float]]:
    from bench.rules import events, workload

    return [(e.data, e.ts) for e in events(workload(20_000, 7, unique=True))]


def build() -> list[dict[str, Any]]:
    det = RuleDetector(RulesSettings())
    rng = random.Random(20261122)
    rows: list[dict[str, Any]] = []

    def add(pool: list[tuple[dict[str, Any], float]], sample: int | None) -> None:
        with_findings, without = [], []
        for data, ts in pool:
            found = [f.to_dict() for f in det.score_one(Event(data=data, ts=ts))]
            (with_findings if found else without).append(
                {"data": data, "ts": ts, "findings": found}
            )
        rows.extend(with_findings)
        rows.extend(without if sample is None else rng.sample(without, min(sample, len(without))))

    add(_inline_events(), None)
    add(_sim_events(), 1500)
    add(_bench_events(), 500)
    return rows


def main() -> None:
    rows = build()
    with gzip.GzipFile(GOLDEN, "wb", compresslevel=9, mtime=0) as fh:
        for row in rows:
            fh.write(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n")
    n = sum(1 for r in rows if r["findings"])
    print(f"{GOLDEN}: {len(rows)} events, {n} with findings")


if __name__ == "__main__":
    main()
