"""Time: activity at hours and days far from the agent's learned profile.

The profile is 48 bins (hour of day in UTC x weekday/weekend) of exponentially decayed activity
(``half_life_days``). An event's share is the smoothed mass of its bin (neighbouring hours count
half, the same hour on the other kind of day a quarter) over the total. A finding fires when the
share is below ``time_min_share`` and the event is the agent's first in that clock hour, so a
night of activity gives one time finding, not one per action.
"""

from __future__ import annotations

from typing import Any

from detectors.baselines.common import Obs, fmt_pct, make_finding
from detectors.events import Finding

__all__ = ["TimeBaseline", "hour_share"]

MIN_MASS = 20.0  # decayed events of history before the time baseline speaks
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def hour_share(hours: Any, b: int, total: float) -> float:
    """Smoothed share of activity at bin ``b`` (0-47) in the profile ``hours`` (48 floats)
    whose total is ``total`` (kept with the profile: summing 48 floats per event is not free)."""
    if total <= 0.0:
        return 1.0
    h = hours
    base = 24 if b >= 24 else 0
    hr = b - base
    s = h[b] + 0.5 * (h[base + (hr - 1) % 24] + h[base + (hr + 1) % 24]) + 0.25 * h[24 - base + hr]
    return float(s / (2.25 * total))


def usual_hours(hours: object) -> str:
    """The hours (UTC) that hold most of the activity, as "08:00-18:00 UTC"."""
    h = hours
    by_hour = [h[i] + h[i + 24] for i in range(24)]  # type: ignore[index]
    total = sum(by_hour)
    if total <= 0:
        return "no history"
    active = [i for i in range(24) if by_hour[i] >= 0.02 * total]
    if not active:
        return "no clear pattern"
    return f"{min(active):02d}:00-{max(active) + 1:02d}:00 UTC"


class TimeBaseline:
    name = "time"

    def __init__(self, min_share: float, half_life_days: float) -> None:
        self.min_share = min_share
        self.half_life_days = half_life_days

    def score(self, o: Obs) -> list[Finding]:
        st = o.st
        # one finding per clock hour: only the agent's first event in the hour is judged
        if st is None or not o.mature or o.f.hour_index == st.last_hour:
            return []
        share = hour_share(st.hours, o.f.hour_bin, st.hours_total)
        if share >= self.min_share or st.hours_total < MIN_MASS:
            return []
        strength = 0.55 + 0.35 * (1.0 - share / self.min_share)
        hour = o.f.hour_bin % 24
        weekday = _DAYS[(o.f.day + 3) % 7]
        reason = (
            f"activity at {hour:02d}:00 UTC on a {weekday}; only {fmt_pct(share)} of this agent's "
            f"activity falls near that time (usually active {usual_hours(st.hours)})"
        )
        ctx = {
            "observed_hour_utc": hour,
            "observed_weekday": weekday,
            "baseline_share": round(share, 6),
            "baseline_usual_hours": usual_hours(st.hours),
            "threshold_share": self.min_share,
        }
        return [make_finding("time", "unusual_hour", strength, reason, ctx)]

    def _decay(self, hours: Any, last_day: int, day: int) -> float:
        """Decay the profile by the days since ``last_day`` (lazily: on the first event of a
        day); returns the new total."""
        factor = 0.5 ** ((day - last_day) / self.half_life_days)
        h = hours
        for i in range(48):
            h[i] *= factor
        return float(sum(h))

    def observe(self, o: Obs) -> None:
        st = o.st
        assert st is not None
        if o.f.hour_index > st.last_hour:
            st.last_hour = o.f.hour_index

    def learn(self, o: Obs) -> None:
        st = o.st
        assert st is not None
        f = o.f
        day = f.day
        b = f.hour_bin
        if day > st.hours_day:
            st.hours_total = self._decay(st.hours, st.hours_day, day)
            st.hours_day = day
        st.hours[b] += 1.0
        st.hours_total += 1.0
        role = o.role
        if day > role.hours_day:
            role.hours_total = self._decay(role.hours, role.hours_day, day)
            role.hours_day = day
        role.hours[b] += 1.0
        role.hours_total += 1.0
        if f.hour_index > st.last_hour:
            st.last_hour = f.hour_index
