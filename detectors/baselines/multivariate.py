"""Multivariate: river's HalfSpaceTrees over the per-event signals of the other baselines.

One model per role, never one per agent (a default HalfSpaceTrees costs ~1.3 MB: 10,000 agents
would take 12 GB). The features are per-agent *relative* signals in [0, 1] — how unusual the hour
is for this agent, the minute's count over the agent's mean, the volume z, how new the items are,
how improbable the transition, whether the action was denied, absolute volume — so one shared
model learns what combinations are normal for the role while each agent is judged against itself.

Raw HST scores are not comparable across roles or over time, so they are calibrated: each role
keeps a decayed 50-bin histogram of the raw scores it learned, and the finding's test is the tail
probability (the share of learned actions scoring at least as high) <= ``multivariate_tail``.
Only mature agents teach the model (warm-up noise would teach it that everything is new).

The model serialises to JSON without pickle (loading a pickle from a Kafka table would let
whoever can write the changelog run code): the tree structure is rebuilt from the seed and the
node masses restored in depth-first order; a checksum of the split thresholds guards against a
river version that builds trees differently.
"""

from __future__ import annotations

import math
from typing import Any

from river.anomaly import HalfSpaceTrees

from detectors.baselines.common import Obs, make_finding
from detectors.baselines.timeofday import hour_share
from detectors.events import Finding

__all__ = ["FEATURES", "MultivariateBaseline", "hst_from_json", "hst_to_json"]

FEATURES = ("bytes", "deny", "novel", "rate", "seq", "time", "vol")
LABELS = {
    "bytes": "large volume",
    "deny": "denied by policy",
    "novel": "new items",
    "rate": "high rate",
    "seq": "unusual sequence",
    "time": "unusual hour",
    "vol": "volume above norm",
}
BINS = 50
UNIFORM = 1.0 / 48.0  # an hour bin's share of a flat week
STEPS = 10  # grid steps per unit: features are quantised to 1/STEPS
QUANT = float(STEPS)
HIST_MAX = 100_000.0


def _nodes(tree: Any) -> list[Any]:
    return list(tree.iter_dfs())


def hst_to_json(hst: HalfSpaceTrees) -> dict[str, Any]:
    built = bool(hst.trees)
    masses: list[list[int]] = []
    thr = 0.0
    if built:
        for tree in hst.trees:
            flat: list[int] = []
            for node in _nodes(tree):
                flat.append(int(node.l_mass))
                flat.append(int(node.r_mass))
                thr += float(getattr(node, "threshold", 0.0))
            masses.append(flat)
    return {
        "n_trees": hst.n_trees,
        "height": hst.height,
        "window": hst.window_size,
        "seed": hst.seed,
        "built": built,
        "counter": hst.counter,
        "first_window": hst._first_window,
        "thr": round(thr, 9),
        "mass": masses,
    }


def new_hst(n_trees: int, height: int, window: int, seed: int) -> HalfSpaceTrees:
    return HalfSpaceTrees(n_trees=n_trees, height=height, window_size=window, seed=seed)


def hst_from_json(blob: dict[str, Any]) -> HalfSpaceTrees:
    hst = new_hst(int(blob["n_trees"]), int(blob["height"]), int(blob["window"]), int(blob["seed"]))
    if blob["built"]:
        hst.learn_one(dict.fromkeys(FEATURES, 0.0))  # builds the trees exactly as the seed did
        thr = 0.0
        if len(blob["mass"]) != len(hst.trees):
            raise ValueError("multivariate model: tree count mismatch")
        for tree, flat in zip(hst.trees, blob["mass"], strict=True):
            nodes = _nodes(tree)
            if len(flat) != 2 * len(nodes):
                raise ValueError("multivariate model: tree shape mismatch")
            for i, node in enumerate(nodes):
                node.l_mass = int(flat[2 * i])
                node.r_mass = int(flat[2 * i + 1])
                thr += float(getattr(node, "threshold", 0.0))
        if round(thr, 9) != blob["thr"]:
            raise ValueError("multivariate model: this river version builds different trees")
    hst.counter = int(blob["counter"])
    hst._first_window = bool(blob["first_window"])
    return hst


class MultivariateBaseline:
    name = "multivariate"

    def __init__(
        self,
        tail: float,
        min_raw: float,
        n_trees: int,
        height: int,
        window: int,
        seed: int,
        sample: int = 1,
    ) -> None:
        self.sample = max(1, sample)
        self.tail = tail
        self.min_raw = min_raw
        self.n_trees = n_trees
        self.height = height
        self.window = window
        self.seed = seed

    def vector(self, o: Obs) -> tuple[int, ...]:
        """The features in :data:`FEATURES` order, quantised to a 1/10 grid and kept as grid
        steps (ints): the HST only resolves a few levels per feature anyway, and a quantised
        vector makes its score cacheable (see ``_score``). :func:`as_dict` gives the 0-1 values.

        Each is a 0-1 "how unusual for this agent" signal made from what the other baselines
        computed while scoring (``o.count``, ``o.vol_z``, ``o.novel``, ``o.seq_p``)."""
        st = o.st
        assert st is not None
        f = o.f
        q = QUANT
        lb = f.log_bytes
        share = hour_share(st.hours, f.hour_bin, st.hours_total)
        x = o.count / (st.rate.m + 1.0)
        z = o.vol_z
        t = 1.0 - share / UNIFORM
        return (
            (STEPS if lb >= 25.0 else round(lb / 25.0 * q)) if lb else 0,
            STEPS if f.denied else 0,
            round(o.novel * q),
            round(x / (x + 4.0) * q),
            round((1.0 - o.seq_p) * q),
            round(t * q) if t > 0.0 else 0,
            round(z / (z + 3.0) * q) if z > 0 else 0,
        )

    @staticmethod
    def _score(role: Any, key: tuple[int, ...]) -> float:
        """HST scores read only the reference masses, which change only when a window pivots,
        so a score is cached per vector until the next pivot: exact, not an approximation."""
        cache = role.hst_cache
        raw = cache.get(key)
        if raw is None:
            raw = float(role.hst.score_one(as_dict(key)))
            if len(cache) < 4096:
                cache[key] = raw
        return raw

    def score(self, o: Obs) -> list[Finding]:
        st = o.st
        if st is None or not o.mature:
            return []
        role = o.role
        hst = role.hst
        if hst is None or hst._first_window:
            if role.n % self.sample == 0:  # learn_one will teach the model this event
                o.mv_x = self.vector(o)  # (from the state before learning changes it)
            return []
        key = self.vector(o)
        o.mv_x = key
        raw = self._score(role, key)
        o.mv_raw = raw
        if raw < self.min_raw or st.mv_hour == o.f.hour_index:
            return []  # HST flags clustered anomalies as a run: one finding per agent-hour
        hist = role.hst_hist
        total = sum(hist)
        if total < 2 * self.window:
            return []
        b = min(BINS - 1, int(raw * BINS))
        tail = sum(hist[b:]) / total
        if tail > self.tail:
            return []
        x = as_dict(key)
        o.mv_fired = True
        top = sorted((v, k) for k, v in x.items() if v > 0.3 and k != "bytes")[::-1][:3]
        why = ", ".join(LABELS[k] for _, k in top) or "a combination of small deviations"
        strength = min(1.0, 0.5 + 0.1 * (-math.log10(max(tail, 1e-9)) - 3.0) + 0.2 * raw)
        reason = (
            f"unusual combination for an agent with role {role.name}: anomaly score {raw:.2f}, "
            f"{_rarity(tail)} of the role's learned actions ({why})"
        )
        ctx = {
            "raw_score": round(raw, 4),
            "tail_probability": round(tail, 6),
            "features": {k: round(v, 4) for k, v in x.items()},
            "role": role.name,
        }
        return [make_finding("multivariate", "hst", strength, reason, ctx)]

    def learn(self, o: Obs) -> None:
        st = o.st
        if o.mv_fired and st is not None:
            st.mv_hour = o.f.hour_index
        if not o.mature:
            return
        role = o.role
        raw = o.mv_raw
        if raw is not None:  # calibration: every learned score (the tail is a 1-in-3,000 event)
            hist = role.hst_hist
            b = int(raw * BINS)
            hist[b if b < BINS - 1 else BINS - 1] += 1.0
            # a running total says when to look; the decision is taken on the exact sum, so a
            # restored profile (total recomputed) decides exactly as the one that kept running
            role.hst_total += 1.0
            if role.hst_total > HIST_MAX - 64.0:
                total = role.hst_total = sum(hist)
                if total > HIST_MAX:  # keep recent behaviour weighing more
                    for i in range(BINS):
                        hist[i] *= 0.5
                    role.hst_total = sum(hist)
        # the model itself learns from a deterministic 1-in-N sample of the role's learned events
        # (by the role's event counter): an unbiased sample of what is normal for the role, at
        # 1/N of the cost; its reference window then spans N x window events
        if role.n % self.sample:
            return
        if role.hst is None:
            role.hst = new_hst(self.n_trees, self.height, self.window, self.seed)
        key = o.mv_x
        hst = role.hst
        hst.learn_one(as_dict(key if key is not None else self.vector(o)))
        if hst.counter == 0:  # the window pivoted: reference masses changed
            role.hst_cache.clear()


def as_dict(key: tuple[int, ...]) -> dict[str, float]:
    """A quantised vector (grid steps in :data:`FEATURES` order) as the model's 0-1 features.

    Spelled out rather than a comprehension over :data:`FEATURES` (a frame per call; built for
    every model update and every score not yet cached); the order is that of ``FEATURES``."""
    b, d, n, r, s, t, v = key
    q = QUANT
    return {
        "bytes": b / q,
        "deny": d / q,
        "novel": n / q,
        "rate": r / q,
        "seq": s / q,
        "time": t / q,
        "vol": v / q,
    }


assert tuple(as_dict((0,) * len(FEATURES))) == FEATURES  # as_dict follows FEATURES


def _rarity(tail: float) -> str:
    if tail <= 0.0:
        return "higher than all"
    return f"higher than {min(99.99, 100.0 * (1.0 - tail)):.2f}%"
