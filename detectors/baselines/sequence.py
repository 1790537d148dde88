"""Sequence: a low-probability transition between consecutive actions.

The agent's transition model is a first-order Markov chain over action symbols (``kind:tool``),
with a session-start symbol ``^`` after a gap of more than ``SESSION_GAP`` seconds. Counts live in
a bounded :class:`~.stats.ItemTable` (``max_transitions_per_agent``). ``P(cur | prev)`` is
additively smoothed. A finding needs enough evidence about ``prev`` (``sequence_min_from``
transitions), a transition never seen before, both actions already familiar to the agent (a new
tool is the novelty baseline's business), and an agent whose workflow is structured: the strength
is scaled by ``(1 - r)^3`` with ``r`` the agent's rate of never-seen transitions.
"""

from __future__ import annotations

from bisect import bisect_left

from detectors.baselines.common import Obs, make_finding
from detectors.baselines.stats import h64
from detectors.events import Finding

__all__ = ["SequenceBaseline"]

SESSION_GAP = 1800.0
START = "^"
SMOOTH = 0.5
SYMBOLS = 8.0  # smoothing assumes this many possible next actions
RATE_ALPHA = 0.02


def _from_key(prev: str) -> int:
    return h64("\x01" + prev)


def _pair_key(prev: str, cur: str) -> int:
    return h64("\x02" + prev + "\x00" + cur)


_KEYS: dict[tuple[str, str], tuple[int, int]] = {}


def _keys(prev: str, cur: str) -> tuple[int, int]:
    """``(_from_key(prev), _pair_key(prev, cur))``, memoised: symbols are few and their string
    hashes are cached, so this is one dict lookup instead of two concatenations and lookups."""
    k = (prev, cur)
    v = _KEYS.get(k)
    if v is None:
        v = (_from_key(prev), _pair_key(prev, cur))
        if len(_KEYS) >= 16384:  # bounded: symbols are attacker-controlled
            _KEYS.clear()
        _KEYS[k] = v
    return v


def _count(meta: int) -> int:
    return 0 if meta < 0 else meta & 0xFFFF


class SequenceBaseline:
    name = "sequence"

    def __init__(self, max_prob: float, min_from: int, min_score: float, max_items: int) -> None:
        self.max_prob = max_prob
        self.min_from = min_from
        self.min_score = min_score
        self.max_items = max_items

    @staticmethod
    def prev_symbol(o: Obs) -> str:
        st = o.st
        if st is None or not st.prev or o.event.ts - st.last_ts > SESSION_GAP:
            return START
        return st.prev

    def score(self, o: Obs) -> list[Finding]:
        st = o.st
        if st is None:
            o.seq_prev = START
            return []
        prev = st.prev  # prev_symbol(o), inlined
        if not prev or o.event.ts - st.last_ts > SESSION_GAP:
            prev = START
        o.seq_prev = prev
        cur = o.f.symbol
        kk = _KEYS.get((prev, cur))
        kf, kp = kk if kk is not None else _keys(prev, cur)
        keys = st.trans.keys  # ItemTable.lookup, inlined
        meta = st.trans.meta
        size = len(keys)
        i_f = bisect_left(keys, kf)
        if i_f < size and keys[i_f] == kf:
            mf = meta[i_f]
        else:
            mf = i_f = -1
        i_p = bisect_left(keys, kp)
        if i_p < size and keys[i_p] == kp:
            mp = meta[i_p]
        else:
            mp = i_p = -1
        o.seq_from = (kf, mf, i_f)
        o.seq_pair = (kp, mp, i_p)
        cp = 0 if mf < 0 else mf & 0xFFFF
        cpc = 0 if mp < 0 else mp & 0xFFFF
        p = (cpc + SMOOTH) / (cp + SMOOTH * SYMBOLS)
        o.seq_p = p
        if not o.mature or cpc > 0 or cp < self.min_from or p >= self.max_prob:
            return []
        # both actions must be familiar: the first use of a tool is novelty's finding
        tool_known = o.item_keys and not o.item_keys[0][2]
        if not tool_known:
            return []
        strength = 0.75 * (1.0 - st.seq_new_rate) ** 3
        if strength < self.min_score:
            return []
        shown_prev = "the start of a session" if prev == START else f"`{prev}`"
        reason = (
            f"`{cur}` right after {shown_prev}: never seen in {cp} transitions from it by this "
            f"agent (estimated probability {p:.2%})"
        )
        ctx = {
            "previous_action": prev,
            "observed_action": cur,
            "baseline_transitions_from_previous": cp,
            "baseline_probability": round(p, 6),
            "agent_new_transition_rate": round(st.seq_new_rate, 4),
        }
        return [make_finding("sequence", "rare_transition", strength, reason, ctx)]

    def observe(self, o: Obs) -> None:
        st = o.st
        assert st is not None
        st.prev = o.f.symbol[:160]

    def learn(self, o: Obs) -> None:
        st = o.st
        assert st is not None
        day = o.f.day
        trans = st.trans
        sf, sp = o.seq_from, o.seq_pair
        if sf is None or sp is None:
            prev = o.seq_prev or self.prev_symbol(o)
            cur = o.f.symbol
            trans.touch(_from_key(prev), day, self.max_items)
            trans.touch(_pair_key(prev, cur), day, self.max_items)
            new = 1.0
        else:
            # reuse the scoring lookups: no second search unless an insert moved things
            # (ItemTable.bump inlined: the meta read while scoring is still the table's)
            moved = False
            meta = trans.meta
            i, old = sf[2], sf[1]
            if i >= 0:
                last = old >> 16
                count = (old & 0xFFFF) + 1
                meta[i] = ((day if day > last else last) << 16) | (
                    count if count < 0xFFFF else 0xFFFF
                )
            else:
                moved = trans.touch(sf[0], day, self.max_items)
            i, old = sp[2], sp[1]
            if i >= 0 and not moved:
                last = old >> 16
                count = (old & 0xFFFF) + 1
                meta[i] = ((day if day > last else last) << 16) | (
                    count if count < 0xFFFF else 0xFFFF
                )
            else:
                trans.touch(sp[0], day, self.max_items)
            new = 1.0 if old < 0 or not old & 0xFFFF else 0.0
        st.seq_new_rate += RATE_ALPHA * (new - st.seq_new_rate)
        st.prev = o.f.symbol[:160]  # observe(), inlined
