"""Risk scoring: the event formula, the agent's sliding window, state round trips."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Finding, Severity
from pipeline.risk import RiskScorer, level_for
from pipeline.settings import RiskSettings

from .helpers import T0, event, finding

severities = st.sampled_from(list(Severity))
findings_st = st.lists(
    st.builds(lambda d, i, s, sc: Finding(d, f"r{i}", s, sc, "why"),
              st.sampled_from(["rules", "baseline.novelty", "policy"]), st.integers(0, 5), severities,
              st.floats(0, 100, allow_nan=False)),
    max_size=8)


def test_single_finding_scores_its_score_and_floor_applies() -> None:
    s = RiskScorer(RiskSettings())
    ra = s.assess(event(1), [finding(score=70, severity="high")])
    assert (ra.score, ra.agent_risk, ra.severity) == (70, 70, "high")
    assert ra.factors[0] == {"source": "rules", "id": "destructive.rm_rf", "contribution": 70.0,
                             "severity": "high", "reason": "destructive.rm_rf matched"}
    # a critical finding scores at least its floor even with a low raw score
    assert s.assess(event(2, agent="b"), [finding(severity="critical", score=5)]).score == 90
    # baseline findings are weighted 0.8 by default (prefix "baseline" matches "baseline.novelty")
    assert s.assess(event(3, agent="c"), [finding(detector="baseline.novelty", score=50, severity="low")]).score == 40


def test_two_signals_combine_noisy_or() -> None:
    ra = RiskScorer(RiskSettings()).assess(event(1), [finding("a", "medium", 40), finding("b", "medium", 40)])
    assert ra.score == 64  # 100 * (1 - 0.6 * 0.6)
    assert [f["contribution"] for f in ra.factors] == [32.0, 32.0]


@settings(max_examples=150, deadline=None)
@given(findings_st)
def test_score_bounds_and_contributions_add_up(findings: list[Finding]) -> None:
    s = RiskScorer(RiskSettings())
    raw, factors = s.event_factors(findings)
    assert 0 <= raw <= 100
    assert abs(sum(f["contribution"] for f in factors) - raw) < 0.01 * max(1, len(factors))
    assert all(f["contribution"] >= 0 for f in factors)
    assert factors == sorted(factors, key=lambda d: (-d["contribution"], d["source"], d["id"]))


@settings(max_examples=150, deadline=None)
@given(findings_st, findings_st)
def test_more_evidence_never_lowers_the_score(a: list[Finding], b: list[Finding]) -> None:
    s = RiskScorer(RiskSettings())
    assert s.event_factors(a + b)[0] >= s.event_factors(a)[0] - 1e-9


def test_many_low_signals_accumulate_one_noisy_rule_slowly() -> None:
    s = RiskScorer(RiskSettings())
    risks = [s.assess(event(i, ts=T0 + i), [finding(f"low.{i}", "low", 10)]).agent_risk for i in range(8)]
    assert risks == [10, 20, 30, 40, 50, 60, 70, 80]  # eight different weak signals
    s2 = RiskScorer(RiskSettings())
    risks = [s2.assess(event(i, ts=T0 + i), [finding("low.same", "low", 10)]).agent_risk for i in range(8)]
    assert risks[-1] == round(10 + 0.25 * 70)  # one rule repeating adds a quarter each time
    ra = s2.assess(event(99, ts=T0 + 9), [])
    assert ra.score == 0 and ra.agent_risk == risks[-1]
    assert ra.agent_factors == [{"source": "rules", "id": "low.same", "contribution": 27.5, "count": 8}]


def test_window_slides_on_event_time_and_late_events_do_not_enter() -> None:
    s = RiskScorer(RiskSettings(window_seconds=100))
    assert s.assess(event(1, ts=T0), [finding("a", "medium", 40)]).agent_risk == 40
    assert s.assess(event(2, ts=T0 + 50), [finding("b", "medium", 30)]).agent_risk == 70
    assert s.assess(event(3, ts=T0 + 120), []).agent_risk == 30  # "a" fell out
    late = s.assess(event(4, ts=T0 + 10), [finding("c", "high", 60)])  # 110 s behind the clock
    assert late.score == 60 and late.agent_risk == 30
    assert s.assess(event(5, ts=T0 + 151), []).agent_risk == 0


def test_replayed_event_id_is_idempotent() -> None:
    s = RiskScorer(RiskSettings())
    first = s.assess(event(1), [finding()])
    again = s.assess(event(1), [finding()])
    assert first.agent_risk == again.agent_risk == 70


def test_state_round_trips_through_json_and_is_bounded() -> None:
    cfg = RiskSettings(max_window_events=8)
    a = RiskScorer(cfg)
    for i in range(20):
        a.assess(event(i, ts=T0 + i), [finding(f"r{i % 3}", "low", 12)])
    assert a.dirty_agents() == {"agent-1"} and a.dirty_agents() == set()
    blob = json.loads(json.dumps(a.dump_state("agent-1")))
    assert len(blob["entries"]) == 8
    b = RiskScorer(cfg)
    b.load_state("agent-1", blob)
    ev = event(100, ts=T0 + 30)
    assert a.assess(ev, [finding("x", "medium", 40)]).to_dict() == b.assess(ev, [finding("x", "medium", 40)]).to_dict()
    b.forget("agent-1")
    assert b.dump_state("agent-1") is None and b.agent_risk("agent-1") == 0


def test_clean_events_of_unknown_agents_touch_no_state() -> None:
    s = RiskScorer(RiskSettings())
    assert s.assess(event(1), []).to_dict()["score"] == 0
    assert s.dirty_agents() == set() and s.dump_state("agent-1") is None


def test_levels() -> None:
    levels = RiskSettings().levels
    assert [level_for(x, levels) for x in (0, 14, 15, 40, 65, 85, 100)] == \
        ["info", "info", "low", "medium", "high", "critical", "critical"]


def _rescan(scorer: RiskScorer, agent_id: str) -> tuple[int, list[dict[str, object]]]:
    """The agent risk and factors computed from scratch from the window's entries: the way the
    scorer computed them before it kept them up to date incrementally."""
    blob = scorer.dump_state(agent_id)
    per_key: dict[str, list[float]] = {}
    for _ts, _eid, kept in blob["entries"] if blob else []:
        for key, contribution in kept:
            per_key.setdefault(key, []).append(float(contribution))
    cfg = scorer.settings
    totals = []
    for key, values in per_key.items():
        top = max(values)
        totals.append((top + cfg.repeat_weight * (sum(values) - top), key, len(values)))
    raw = sum(t for t, _, _ in totals)
    scale = 100.0 / raw if raw > 100 else 1.0
    totals.sort(key=lambda t: (-t[0], t[1]))
    factors = [{"source": k.partition(":")[0], "id": k.partition(":")[2], "contribution": round(t * scale, 2),
                "count": n} for t, k, n in totals[: cfg.max_factors]]
    return min(100, round(raw)), factors


_window_ops = st.lists(
    st.tuples(
        st.sampled_from(["assess", "assess", "assess", "exclude", "reload"]),
        st.integers(0, 40),  # event number (repeats are at-least-once replays)
        st.floats(-30, 120),  # seconds after T0: out of order, late, and past the window
        st.lists(st.tuples(st.integers(0, 6), st.floats(1, 99)), max_size=5),  # (rule, score)
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(_window_ops, st.integers(8, 12))
def test_agent_risk_kept_up_to_date_equals_a_rescan_of_the_window(ops: list[tuple], cap: int) -> None:
    """Whatever enters, repeats, arrives late, falls out of the window or the cap, is excluded or
    reloaded from a checkpoint, the incrementally kept agent risk and factors are exactly (to
    the bit) what a rescan of the window's entries gives."""
    cfg = RiskSettings(window_seconds=60, max_window_events=cap, max_factors=8)
    scorer = RiskScorer(cfg)
    for op, i, dt, rules in ops:
        findings = [finding(f"r{r}", "low", sc) for r, sc in rules]
        ev = event(i, ts=T0 + dt)
        if op == "assess":
            scorer.assess(ev, findings)
        elif op == "exclude":
            scorer.exclude(ev, findings[:1])
        else:
            blob = scorer.dump_state("agent-1")
            scorer = RiskScorer(cfg)
            scorer.load_state("agent-1", json.loads(json.dumps(blob)) if blob else None)
        risk, factors = _rescan(scorer, "agent-1")
        assert scorer.agent_risk("agent-1") == risk
        ra = scorer.assess(event("probe", ts=-1.0), [])  # a clean, very late event changes nothing
        assert ra.agent_risk == risk and ra.agent_factors == factors

