"""Novelty: first use by this agent of a tool, binary, target host, table, path prefix or a
destination named in tool-call arguments (recipient and its domain, account/IBAN, URL domain,
channel, share-with user).

The strength of a first use is ``weight(category) * rarity * habit``:

- ``rarity`` = ``(1 - share)^2`` where ``share`` is the fraction of agents of the same role (or
  half the fleet fraction, whichever is larger) that have used the item: a tool half the role uses
  is a weak signal, one nobody uses a strong one;
- ``habit`` = ``(1 - r)^3`` where ``r`` is how often this agent meets new values in that category
  (an exponentially weighted rate): a support agent writing to new customers every hour is not
  surprising when it writes to one more; a finance agent that always pays the same five accounts is.

An item unused for ``novelty_memory_days`` counts as new again (forgetting). The per-agent item
table is bounded (``max_items_per_agent``, least recently used evicted, then the one used on the
fewest days). It records (last day used, days used) per item, so learning a known item writes
only on its first use of a day: the common event costs one lookup per item, no update.
"""

from __future__ import annotations

from bisect import bisect_left

from detectors.baselines.common import Obs, fmt_pct, fmt_span, make_finding
from detectors.baselines.features import CAT_INDEX, CATEGORY_LABEL, DESTINATIONS
from detectors.baselines.stats import h64
from detectors.events import Finding

__all__ = ["NoveltyBaseline", "item_key"]

#: how much a first use in each category says on its own
WEIGHTS = {
    "tool": 0.8,
    "binary": 0.75,
    "host": 0.8,
    "table": 0.7,
    "path": 0.6,
    "recipient": 0.75,
    "recipient_domain": 0.9,
    "account": 0.9,
    "url_domain": 0.85,
    "channel": 0.7,
    "share_user": 0.8,
}
RATE_ALPHA = 0.05
MAX_FINDINGS = 3
# MITRE hints for an analyst: a new destination smells of exfiltration, a new tool of discovery
_MITRE = {
    "recipient": ("T1567", "TA0010"),
    "recipient_domain": ("T1567", "TA0010"),
    "account": ("T1657", "TA0040"),
    "url_domain": ("T1567", "TA0010"),
    "share_user": ("T1567", "TA0010"),
    "channel": ("T1567", "TA0010"),
    "host": ("T1021", "TA0008"),
    "table": ("T1213", "TA0009"),
}


def item_key(category: str, value: str) -> int:
    return h64(category + "\x00" + value)


_KEYS: dict[tuple[str, str], tuple[int, int]] = {}


def _item_key(item: tuple[str, str]) -> tuple[int, int]:
    """(:func:`item_key` of an item, bit of its category), remembered (bounded: values are
    attacker-controlled). The pair's hash reuses its strings' cached hashes, so a repeated item
    costs one dict lookup."""
    kb = (h64(item[0] + "\x00" + item[1]), 1 << CAT_INDEX[item[0]])
    if len(_KEYS) >= 65536:
        _KEYS.clear()
    _KEYS[item] = kb
    return kb


#: category indexes of each set of categories (bit mask): the rates learning updates
_CAT_SETS = [
    tuple(ci for ci in range(len(CAT_INDEX)) if mask >> ci & 1) for mask in range(1 << len(CAT_INDEX))
]


class NoveltyBaseline:
    name = "novelty"

    def __init__(self, min_score: float, memory_days: float, max_items: int) -> None:
        self.min_score = min_score
        self.memory_days = memory_days
        self.max_items = max_items

    def score(self, o: Obs) -> list[Finding]:
        st = o.st
        keys = o.item_keys
        seen = novel_cats = 0  # bit per category index: what learning updates the rates of
        if st is None:
            for item in o.f.items:
                kb = _KEYS.get(item)
                key, bit = kb if kb is not None else _item_key(item)
                seen |= bit
                keys.append((key, -1, True, -1))
            o.nov_seen = o.nov_new = seen
            o.nov_write = True
            return []
        day = o.f.day
        memory = self.memory_days
        mature = o.mature
        table_keys = st.items.keys  # ItemTable.lookup, inlined: the hot loop of the baselines
        table_meta = st.items.meta
        size = len(table_keys)
        write = False  # does learning write the table (a new item, or the first use of a day)?
        cands: list[tuple[float, int, Finding]] | None = None
        total = 0.0
        for idx, item in enumerate(o.f.items):
            kb = _KEYS.get(item)  # (item_key(*item), category bit), memoised by the pair
            key, bit = kb if kb is not None else _item_key(item)
            seen |= bit
            i = bisect_left(table_keys, key)
            if i < size and table_keys[i] == key:
                meta = table_meta[i]
                last = meta >> 16
                if last < day:
                    write = True
                novel = (day - last) > memory
            else:
                meta = i = -1
                novel = write = True
            keys.append((key, meta, novel, i))
            if not novel:
                continue
            novel_cats |= bit
            if not mature:
                continue
            cat = item[0]
            fr = o.role.fraction(key)
            ff = o.fleet.fraction(key)
            share = max(fr or 0.0, 0.5 * (ff or 0.0))
            rarity = (1.0 - share) ** 2
            habit = (1.0 - st.nov_rate[CAT_INDEX[cat]]) ** 3
            strength = WEIGHTS[cat] * rarity * habit
            total += strength
            if strength < self.min_score:
                continue
            if cands is None:
                cands = []
            cands.append(
                (strength, idx, self._finding(o, cat, item[1], meta, strength, fr, ff, habit))
            )
        o.nov_seen = seen
        o.nov_new = novel_cats
        o.nov_write = write
        o.novel = min(1.0, total)
        if cands is None:
            return []
        cands.sort(key=lambda c: (-c[0], c[1]))
        return [c[2] for c in cands[:MAX_FINDINGS]]

    def _finding(
        self,
        o: Obs,
        cat: str,
        value: str,
        meta: int,
        strength: float,
        fr: float | None,
        ff: float | None,
        habit: float,
    ) -> Finding:
        st = o.st
        assert st is not None
        history = min(o.event.ts - st.first_ts, self.memory_days * 86400)
        shown = value.split(":", 1)[1] if cat == "tool" and ":" in value else value
        label = CATEGORY_LABEL[cat]
        if meta == -1:
            head = f"first use of {label} `{shown}` by this agent in {fmt_span(history)} of history"
        else:
            idle = o.f.day - (meta >> 16)
            head = f"first use of {label} `{shown}` by this agent in {idle} days (forgotten after {self.memory_days:g})"
        if fr is not None:
            tail = f"used by {fmt_pct(fr)} of agents with role {o.role.name}"
        elif ff is not None:
            tail = f"used by {fmt_pct(ff)} of the fleet"
        else:
            tail = "too few agents yet to compare with peers"
        context = {
            "category": cat,
            "value": value,
            "observed": "first use",
            "baseline_history_seconds": round(history, 3),
            "role": o.role.name,
            "role_fraction": None if fr is None else round(fr, 4),
            "fleet_fraction": None if ff is None else round(ff, 4),
            "agent_new_value_rate": round(1.0 - habit ** (1 / 3), 4),
            "destination": cat in DESTINATIONS,
        }
        technique, tactic = _MITRE.get(cat, (None, None))
        return make_finding(
            "novelty", cat, strength, f"{head}; {tail}", context, technique=technique, tactic=tactic
        )

    def learn(self, o: Obs) -> None:
        st = o.st
        assert st is not None
        if o.nov_write:  # else every item is known and already used today: nothing to write
            day = o.f.day
            table = st.items
            table_meta = table.meta
            moved = False  # an insert or eviction happened: indexes from scoring are stale
            for key, meta, _novel, i in o.item_keys:
                if i >= 0 and not moved:
                    # a known item: its meta is (last day, days used), so only the first use of
                    # a day writes anything (the count only orders evictions: fewest days go first)
                    if (meta >> 16) < day:
                        count = (meta & 0xFFFF) + 1
                        table_meta[i] = (day << 16) | (count if count < 0xFFFF else 0xFFFF)
                elif table.touch(key, day, self.max_items, per_day=True):
                    # a new (or evicted and re-learned) item for this agent: one more agent using it
                    moved = True
                    o.role.items.add(key)
                    o.fleet.items.add(key)
        rates = st.nov_rate
        novel_cats = o.nov_new
        for ci in _CAT_SETS[o.nov_seen]:
            r = rates[ci]
            rates[ci] = r + RATE_ALPHA * ((1.0 if novel_cats >> ci & 1 else 0.0) - r)
