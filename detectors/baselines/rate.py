"""Rate: actions per minute against the agent's own exponentially weighted mean and variance.

Counts are kept per event-time minute; when a minute closes its count updates the agent's
``EW`` (time-decayed, ``half_life_days``) and the role's. The update is winsorised (a minute far
above the norm is clipped at mean + 4 std before learning), so a burst at a session start does not
drag the baseline, and idle minutes are not counted (the baseline is "per active minute").

A finding fires when the running count of the current minute crosses
``max(mean + rate_z * std, rate_ratio * mean, rate_min_per_minute)`` (std floored at the Poisson
sqrt(mean)), and again each time it doubles: one finding per crossing, not one per event of the
burst.
"""

from __future__ import annotations

import math

from detectors.baselines.common import Obs, make_finding
from detectors.events import Finding

__all__ = ["RateBaseline", "rate_threshold"]

MIN_MINUTES = 10.0  # weight of history before the rate baseline speaks


def rate_threshold(mean: float, std: float, z: float, ratio: float, floor: float) -> float:
    sd = max(std, math.sqrt(max(mean, 0.0)), 1.0)
    return max(mean + z * sd, ratio * mean, floor)


def crossed(count: int, thr: float) -> bool:
    """True when ``count`` is the first to reach ``thr * 2**k`` for some k >= 0."""
    if count < thr:
        return False
    k = math.floor(math.log2(count / thr))
    return count - 1 < thr * (2**k)


class RateBaseline:
    name = "rate"

    def __init__(self, z: float, ratio: float, floor: float, half_life: float) -> None:
        self.z = z
        self.ratio = ratio
        self.floor = floor
        self.half_life = half_life

    @staticmethod
    def current_count(o: Obs) -> int:
        st = o.st
        if st is None or o.f.minute > st.minute:
            return 1
        return st.mcount + 1

    def score(self, o: Obs) -> list[Finding]:
        st = o.st
        if st is None:
            o.count = 1
            return []
        c = 1 if o.f.minute > st.minute else st.mcount + 1
        o.count = c
        # the threshold is never below the floor: most events stop here without computing it
        if c < self.floor or not o.mature or st.rate.w < MIN_MINUTES:
            return []
        mean = st.rate.m
        thr = rate_threshold(mean, st.rate.std, self.z, self.ratio, self.floor)
        if not crossed(c, thr):
            return []
        strength = min(1.0, 0.6 + 0.2 * math.log2(c / thr))
        reason = (
            f"{c} actions within one minute; this agent's usual is {mean:.1f} ± {st.rate.std:.1f} "
            f"per active minute (threshold {thr:.0f})"
        )
        ctx = {
            "observed_per_minute": c,
            "baseline_mean_per_minute": round(mean, 3),
            "baseline_std_per_minute": round(st.rate.std, 3),
            "threshold": round(thr, 3),
        }
        return [make_finding("rate", "burst", strength, reason, ctx)]

    def observe(self, o: Obs, learn: bool = False) -> None:
        """Count the action in its minute; when learning, close the previous minute into the
        baseline (an agent under investigation is counted but does not teach its baseline)."""
        st = o.st
        assert st is not None
        m = o.f.minute
        if m > st.minute:
            if learn and st.minute >= 0 and st.mcount > 0:
                t = st.minute * 60.0
                st.rate.update(float(st.mcount), t, self.half_life, cap_z=4.0)
                o.role.rate.update(float(st.mcount), t, self.half_life, cap_z=4.0)
            st.minute = m
            st.mcount = 1
        else:  # same minute, or a late event: count it in the open minute
            st.mcount += 1

    def learn(self, o: Obs) -> None:
        st = o.st
        assert st is not None
        m = o.f.minute
        if m > st.minute:  # observe(o, learn=True), with the common case first
            if st.minute >= 0 and st.mcount > 0:
                t = st.minute * 60.0
                st.rate.update(float(st.mcount), t, self.half_life, cap_z=4.0)
                o.role.rate.update(float(st.mcount), t, self.half_life, cap_z=4.0)
            st.minute = m
            st.mcount = 1
        else:
            st.mcount += 1
