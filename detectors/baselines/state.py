"""The state the baselines keep: one compact :class:`AgentState` per agent, and
:class:`SharedState` (one :class:`RoleProfile` per role plus one for the whole fleet).

Per-agent state is a ``__slots__`` object of floats, two bounded :class:`~.stats.ItemTable`
and two small float arrays: a few KB at most, whatever the agent sends. Role profiles are the
"fleet" side: how many agents of the role use an item (a count-min sketch), the role's rate,
hour and volume profiles (the prior a new agent starts from, and what the peer baseline compares
against) and the role's multivariate model. They are shared by all agents of a role, not per
agent, so their size does not grow with the number of agents.

Both serialise to JSON values (``to_json``/``from_json``) that round-trip exactly: a score after
dump + load equals the score without.
"""

from __future__ import annotations

from array import array
from typing import Any

from detectors.baselines.features import CATEGORIES
from detectors.baselines.stats import EW, CountMin, ItemTable, arr_from_b64, arr_to_b64

__all__ = ["STATE_VERSION", "AgentState", "RoleProfile", "SharedState"]

STATE_VERSION = 1
HOUR_BINS = 48
FLEET = "*"


class AgentState:
    """Everything the baselines remember about one agent."""

    __slots__ = (
        "first_ts",
        "hours",
        "hours_day",
        "hours_total",
        "items",
        "last_hour",
        "last_ts",
        "mcount",
        "minute",
        "mv_hour",
        "n",
        "nov_rate",
        "prev",
        "rate",
        "role",
        "seq_new_rate",
        "trans",
        "vb",
        "vr",
    )

    def __init__(self, role: str) -> None:
        self.role = role
        self.n = 0  # events learned
        self.first_ts = 0.0
        self.last_ts = 0.0
        self.rate = EW()  # actions per active minute
        self.minute = -1  # minute (since epoch) being counted
        self.mcount = 0  # actions in that minute so far
        self.hours = array("f", bytes(4 * HOUR_BINS))  # decayed activity per hour bin
        self.hours_day = 0  # day of the last decay of ``hours``
        self.hours_total = 0.0  # the profile's total, kept as it changes (not summed per event)
        self.last_hour = -1  # hour index of the last event
        self.vb = EW()  # log1p(bytes_out)
        self.vr = EW()  # log1p(rows)
        self.items = ItemTable()  # novelty: items seen (tool, host, destination, ...)
        self.nov_rate = array("f", bytes(4 * len(CATEGORIES)))  # per category: how often new
        self.trans = ItemTable()  # sequence: transition and from-symbol counts
        self.prev = ""  # previous action symbol
        self.seq_new_rate = 0.0  # how often this agent makes a never-seen transition
        self.mv_hour = -1  # hour index of the last multivariate finding (one per hour)

    @classmethod
    def from_role(cls, role: str, profile: RoleProfile | None, prior_weight: float) -> AgentState:
        """A new agent starts from its role's baseline (rate, hours, volume) with a small
        weight, so its own behaviour takes over quickly but it never starts from nothing."""
        st = cls(role)
        if profile is not None and profile.n > 0:
            st.rate = profile.rate.copy_scaled(prior_weight)
            st.vb = profile.vb.copy_scaled(prior_weight)
            st.vr = profile.vr.copy_scaled(prior_weight)
            total = sum(profile.hours)
            if total > 0:
                scale = prior_weight / total
                st.hours = array("f", (h * scale for h in profile.hours))
                st.hours_total = sum(st.hours)
            st.hours_day = profile.hours_day
        return st

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "role": self.role,
            "n": self.n,
            "t0": self.first_ts,
            "t1": self.last_ts,
            "rate": self.rate.to_json(),
            "min": self.minute,
            "mc": self.mcount,
            "hrs": arr_to_b64(self.hours),
            "hd": self.hours_day,
            "ht": self.hours_total,
            "lh": self.last_hour,
            "vb": self.vb.to_json(),
            "vr": self.vr.to_json(),
            "it": self.items.to_json(),
            "nr": arr_to_b64(self.nov_rate),
            "tr": self.trans.to_json(),
            "prev": self.prev,
            "sr": self.seq_new_rate,
            "mvh": self.mv_hour,
        }

    @classmethod
    def from_json(cls, blob: Any) -> AgentState:
        if not isinstance(blob, dict) or blob.get("v") != STATE_VERSION:
            raise ValueError("not a baseline state blob of version 1")
        st = cls(str(blob["role"]))
        st.n = int(blob["n"])
        st.first_ts = float(blob["t0"])
        st.last_ts = float(blob["t1"])
        st.rate = EW.from_json(blob["rate"])
        st.minute = int(blob["min"])
        st.mcount = int(blob["mc"])
        st.hours = arr_from_b64("f", blob["hrs"])
        st.hours_day = int(blob["hd"])
        st.hours_total = float(blob["ht"]) if "ht" in blob else sum(st.hours)
        st.last_hour = int(blob["lh"])
        st.vb = EW.from_json(blob["vb"])
        st.vr = EW.from_json(blob["vr"])
        st.items = ItemTable.from_json(blob["it"])
        st.nov_rate = arr_from_b64("f", blob["nr"])
        st.trans = ItemTable.from_json(blob["tr"])
        st.prev = str(blob["prev"])
        st.seq_new_rate = float(blob["sr"])
        st.mv_hour = int(blob["mvh"])
        if len(st.hours) != HOUR_BINS or len(st.nov_rate) != len(CATEGORIES):
            raise ValueError("corrupt baseline state blob")
        return st


class RoleProfile:
    """Fleet statistics of one role (or of the whole fleet, role ``*``)."""

    __slots__ = (
        "agents",
        "hours",
        "hours_day",
        "hours_total",
        "hst",
        "hst_cache",
        "hst_hist",
        "hst_total",
        "items",
        "n",
        "name",
        "rate",
        "vb",
        "vr",
    )

    def __init__(self, name: str, cms_width: int, cms_depth: int) -> None:
        self.name = name
        self.agents = 0  # agents of this role seen (approximate: see docs/baselines.md)
        self.n = 0  # events learned
        self.items = CountMin(cms_width, cms_depth)  # agents that have used each item
        self.rate = EW()
        self.hours = array("d", bytes(8 * HOUR_BINS))
        self.hours_day = 0
        self.hours_total = 0.0
        self.vb = EW()
        self.vr = EW()
        self.hst: Any = None  # river HalfSpaceTrees, built on first use (multivariate.py)
        self.hst_hist = array("d", bytes(8 * 50))  # calibration: histogram of learned scores
        self.hst_total = 0.0  # not state: about sum(hst_hist), kept as it changes (multivariate)
        self.hst_cache: dict[
            tuple[float, ...], float
        ] = {}  # not state: scores until the next pivot

    def fraction(self, key: int) -> float | None:
        """Share of this role's agents that have used item ``key`` (None: too few agents)."""
        if self.agents < 3:
            return None
        return min(1.0, self.items.get(key) / self.agents)

    def to_json(self) -> dict[str, Any]:
        from detectors.baselines.multivariate import hst_to_json

        return {
            "agents": self.agents,
            "n": self.n,
            "items": self.items.to_json(),
            "rate": self.rate.to_json(),
            "hrs": arr_to_b64(self.hours),
            "hd": self.hours_day,
            "ht": self.hours_total,
            "vb": self.vb.to_json(),
            "vr": self.vr.to_json(),
            "hst": hst_to_json(self.hst) if self.hst is not None else None,
            "hh": arr_to_b64(self.hst_hist),
        }

    @classmethod
    def from_json(cls, name: str, blob: Any) -> RoleProfile:
        from detectors.baselines.multivariate import hst_from_json

        items = CountMin.from_json(blob["items"])
        p = cls(name, items.width, items.depth)
        p.items = items
        p.agents = int(blob["agents"])
        p.n = int(blob["n"])
        p.rate = EW.from_json(blob["rate"])
        p.hours = arr_from_b64("d", blob["hrs"])
        p.hours_day = int(blob["hd"])
        p.hours_total = float(blob["ht"]) if "ht" in blob else sum(p.hours)
        p.vb = EW.from_json(blob["vb"])
        p.vr = EW.from_json(blob["vr"])
        p.hst = hst_from_json(blob["hst"]) if blob.get("hst") is not None else None
        p.hst_hist = arr_from_b64("d", blob["hh"])
        p.hst_total = sum(p.hst_hist)
        if len(p.hours) != HOUR_BINS or len(p.hst_hist) != 50:
            raise ValueError("corrupt role profile")
        return p


class SharedState:
    """Role profiles (bounded number of roles) plus the fleet-wide profile."""

    __slots__ = ("cms_depth", "cms_width", "fleet", "max_roles", "roles")

    def __init__(self, max_roles: int, cms_width: int = 2048, cms_depth: int = 3) -> None:
        self.max_roles = max_roles
        self.cms_width = cms_width
        self.cms_depth = cms_depth
        self.roles: dict[str, RoleProfile] = {}
        self.fleet = RoleProfile(FLEET, cms_width, cms_depth)

    def role(self, name: str) -> RoleProfile:
        p = self.roles.get(name)
        if p is None:
            if len(self.roles) >= self.max_roles - 1:  # one slot kept for "(other)"
                # an unbounded set of role names would grow memory: fold the rest together
                name = "(other)"
                p = self.roles.get(name)
                if p is not None:
                    return p
            p = self.roles[name] = RoleProfile(name, self.cms_width, self.cms_depth)
        return p

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "fleet": self.fleet.to_json(),
            "roles": {name: self.roles[name].to_json() for name in sorted(self.roles)},
        }

    @classmethod
    def from_json(cls, blob: Any, max_roles: int) -> SharedState:
        if not isinstance(blob, dict) or blob.get("v") != STATE_VERSION:
            raise ValueError("not a shared baseline blob of version 1")
        fleet = RoleProfile.from_json(FLEET, blob["fleet"])
        s = cls(max_roles, fleet.items.width, fleet.items.depth)
        s.fleet = fleet
        for name, rb in blob["roles"].items():
            s.roles[str(name)] = RoleProfile.from_json(str(name), rb)
        return s
