"""Peer group: the agent deviates from its role's fleet profile.

The agent's own baseline can be trained slowly by an attacker (or drift with a bad deployment);
its role's profile, learned from every agent of the role, cannot. Checks, each against the role:

- volume: ``log1p(bytes_out)``/``log1p(rows)`` z-score against the role >= ``peer_z``, above the
  volume floors;
- rate: the current minute's count above the role's per-minute norm by ``peer_z`` std (and the
  rate floor), on crossing only, like the rate baseline;
- hour: the role's share of activity near this hour below ``peer_min_share``, first event of the
  agent in that clock hour.

Only the strongest check makes a finding. Nothing fires until the role has ``peer_min_agents``
agents. New agents are seeded from the role profile (see ``AgentState.from_role``).
"""

from __future__ import annotations

import math
from typing import Any

from detectors.baselines.common import Obs, fmt_bytes, fmt_pct, make_finding
from detectors.baselines.rate import crossed, rate_threshold
from detectors.baselines.timeofday import hour_share, usual_hours
from detectors.events import Finding

__all__ = ["PeerBaseline"]


class PeerBaseline:
    name = "peer"
    learns = False  # see learn(): the detector does not call it

    def __init__(
        self,
        min_agents: int,
        z: float,
        min_share: float,
        min_bytes: int,
        min_rows: int,
        rate_floor: float,
    ) -> None:
        self.min_agents = min_agents
        self.z = z
        self.min_share = min_share
        self.min_bytes = min_bytes
        self.min_rows = min_rows
        self.rate_floor = rate_floor

    def score(self, o: Obs) -> list[Finding]:
        role = o.role
        st = o.st
        if st is None or not o.mature or role.agents < self.min_agents or role.n < 100:
            return []
        f = o.f
        best: tuple[float, str, str, dict[str, Any]] | None = None

        for lx, x, ew, floor, what in (
            ()
            if f.log_bytes is None and f.log_rows is None
            else (
                (f.log_bytes, f.bytes_out, role.vb, self.min_bytes, "bytes_out"),
                (f.log_rows, f.rows, role.vr, self.min_rows, "rows"),
            )
        ):
            if lx is None or x is None or ew.w < 50 or x < floor:
                continue
            z = (lx - ew.m) / max(ew.std, 0.5)
            if z < self.z:
                continue
            typical = math.expm1(ew.m)
            strength = min(1.0, 0.5 + 0.08 * (z - self.z))
            own = math.expm1(st.vb.m if what == "bytes_out" else st.vr.m)
            if what == "bytes_out":
                reason = (
                    f"sent {fmt_bytes(x)} in one action; agents with role {role.name} typically send "
                    f"{fmt_bytes(typical)} (this agent's own typical: {fmt_bytes(own)})"
                )
            else:
                reason = (
                    f"{x:,} rows in one action; agents with role {role.name} typically touch "
                    f"{typical:,.0f} (this agent's own typical: {own:,.0f})"
                )
            ctx = {
                "observed": x,
                "role_typical": round(typical, 3),
                "agent_typical": round(own, 3),
                "role_z": round(z, 3),
            }
            if best is None or strength > best[0]:
                best = (strength, what, reason, ctx)

        c = o.count
        if c >= self.rate_floor and role.rate.w >= 50:  # the threshold is >= the floor
            thr = rate_threshold(role.rate.m, role.rate.std, self.z, 3.0, self.rate_floor)
            if crossed(c, thr):
                strength = min(1.0, 0.5 + 0.2 * math.log2(c / thr))
                reason = (
                    f"{c} actions within one minute; agents with role {role.name} do "
                    f"{role.rate.m:.1f} ± {role.rate.std:.1f} per active minute"
                )
                ctx = {
                    "observed_per_minute": c,
                    "role_mean_per_minute": round(role.rate.m, 3),
                    "threshold": round(thr, 3),
                }
                if best is None or strength > best[0]:
                    best = (strength, "rate", reason, ctx)

        if f.hour_index != st.last_hour:
            share = hour_share(role.hours, f.hour_bin, role.hours_total)
            if share < self.min_share and role.hours_total >= 200:
                strength = 0.5 + 0.3 * (1.0 - share / self.min_share)
                reason = (
                    f"activity at {f.hour_bin % 24:02d}:00 UTC; only {fmt_pct(share)} of the activity of agents "
                    f"with role {role.name} falls near that time (usually {usual_hours(role.hours)})"
                )
                ctx = {
                    "observed_hour_utc": f.hour_bin % 24,
                    "role_share": round(share, 6),
                }
                if best is None or strength > best[0]:
                    best = (strength, "hour", reason, ctx)

        if best is None:
            return []
        strength, check, reason, found_ctx = best
        out_ctx: dict[str, Any] = dict(found_ctx)
        out_ctx["role"] = role.name
        out_ctx["role_agents"] = role.agents
        return [make_finding("peer", check, strength, reason, out_ctx)]

    def learn(self, o: Obs) -> None:
        """The role profile is learned by the other baselines (rate, time, volume)."""
