"""Volume: ``bytes_out`` or ``rows`` far above the agent's norm, when the event carries them.

The baseline is an exponentially weighted mean and variance of ``log1p(value)`` (volumes are
heavy-tailed; in log space "ten times the usual" is a fixed distance), decayed in event time and
winsorised like the rate. A finding needs all of: z >= ``volume_z`` (std floored at 0.5, i.e. a
factor of ~1.6), at least ``volume_min_ratio`` times the typical value, and an absolute floor
(``volume_min_bytes`` / ``volume_min_rows``) so tiny values never alert.
"""

from __future__ import annotations

import math

from detectors.baselines.common import Obs, fmt_bytes, make_finding
from detectors.baselines.stats import EW
from detectors.events import Finding

__all__ = ["VolumeBaseline"]

MIN_WEIGHT = 10.0
STD_FLOOR = 0.5


class VolumeBaseline:
    name = "volume"

    def __init__(
        self, z: float, min_ratio: float, min_bytes: int, min_rows: int, half_life: float
    ) -> None:
        self.z = z
        self.min_ratio = min_ratio
        self.min_bytes = min_bytes
        self.min_rows = min_rows
        self.half_life = half_life

    def _check(
        self, o: Obs, ew: EW, lx: float, x: int, floor: int, what: str
    ) -> tuple[float, Finding | None]:
        if ew.w < MIN_WEIGHT:
            return 0.0, None
        sd = max(ew.std, STD_FLOOR)
        z = (lx - ew.m) / sd
        if not o.mature or z < self.z or x < floor:
            return z, None
        typical = math.expm1(ew.m)
        ratio = (x + 1.0) / (typical + 1.0)
        if ratio < self.min_ratio:
            return z, None
        upper = math.expm1(ew.m + 2.0 * ew.std)
        strength = min(1.0, 0.55 + 0.1 * (z - self.z) + 0.05 * math.log10(ratio))
        if what == "bytes":
            shown, usual, high = fmt_bytes(x), fmt_bytes(typical), fmt_bytes(upper)
            head = f"sent {shown} in one action"
        else:
            shown, usual, high = f"{x:,}", f"{typical:,.0f}", f"{upper:,.0f}"
            head = f"{shown} rows in one action"
        reason = f"{head}, {ratio:,.0f}x this agent's typical {usual} (usually under {high}; z = {z:.1f})"
        ctx = {
            "observed": x,
            "baseline_typical": round(typical, 3),
            "baseline_usual_max": round(upper, 3),
            "z": round(z, 3),
            "ratio": round(ratio, 3),
        }
        check = "bytes_out" if what == "bytes" else "rows"
        tech = ("T1048", "TA0010") if what == "bytes" else ("T1213", "TA0009")
        return z, make_finding(
            "volume", check, strength, reason, ctx, technique=tech[0], tactic=tech[1]
        )

    def score(self, o: Obs) -> list[Finding]:
        st = o.st
        f = o.f
        if st is None or (f.log_bytes is None and f.log_rows is None):
            return []
        out: list[Finding] = []
        zmax = 0.0
        if f.log_bytes is not None and f.bytes_out is not None:
            z, fb = self._check(o, st.vb, f.log_bytes, f.bytes_out, self.min_bytes, "bytes")
            zmax = max(zmax, z)
            if fb:
                out.append(fb)
        if f.log_rows is not None and f.rows is not None:
            z, fr = self._check(o, st.vr, f.log_rows, f.rows, self.min_rows, "rows")
            zmax = max(zmax, z)
            if fr:
                out.append(fr)
        o.vol_z = zmax
        return out

    def learn(self, o: Obs) -> None:
        st = o.st
        assert st is not None
        f, ts, hl = o.f, o.event.ts, self.half_life
        if f.log_bytes is not None:
            st.vb.update(f.log_bytes, ts, hl, cap_z=4.0)
            o.role.vb.update(f.log_bytes, ts, hl, cap_z=4.0)
        if f.log_rows is not None:
            st.vr.update(f.log_rows, ts, hl, cap_z=4.0)
            o.role.vr.update(f.log_rows, ts, hl, cap_z=4.0)
