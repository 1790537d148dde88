"""Compact, JSON-round-trippable building blocks for the baselines.

- :func:`h64`: a stable 64-bit hash (BLAKE2b) of a string; never Python's ``hash()``, which is
  salted per process and would break determinism across workers and replays.
- :class:`EW`: an exponentially weighted mean/variance whose forgetting is measured in event
  time (a half-life in seconds), not in number of updates, so a quiet agent does not forget
  faster than a busy one.
- :class:`ItemTable`: a bounded set of 64-bit item hashes with a last-seen day and a saturating
  count each, 12 bytes per item in two parallel ``array`` objects. When full, the least recently
  seen (then least used) item is evicted, so an attacker flooding distinct items makes old items
  look new again (more findings), never blinds the detector.
- :class:`CountMin`: a count-min sketch (fixed width x depth) for fleet statistics; counts only
  over-estimate, and two sketches merge element-wise.

All state serialises to JSON values exactly: floats as Python floats, arrays as base64 of their
little-endian bytes.
"""

from __future__ import annotations

import base64
import hashlib
import math
import sys
import zlib
from array import array
from bisect import bisect_left
from typing import Any

import numpy as np

__all__ = ["EW", "CountMin", "ItemTable", "arr_from_b64", "arr_to_b64", "h64"]

_LITTLE = sys.byteorder == "little"
_META_DTYPE = np.dtype(f"=u{array('I').itemsize}")  # ItemTable.meta, native byte order
_HCACHE: dict[str, int] = {}
_HCACHE_MAX = 65536


def h64(text: str) -> int:
    """Stable 64-bit hash of ``text`` (memoised in a bounded cache: hashing is the hot spot)."""
    v = _HCACHE.get(text)
    if v is None:
        v = int.from_bytes(
            hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
        )
        if len(_HCACHE) >= _HCACHE_MAX:
            _HCACHE.clear()  # bounded; the values are pure functions of the text, so no drift
        _HCACHE[text] = v
    return v


def arr_to_b64(a: array, compress: bool = False) -> str:
    """Base64 of the array's little-endian bytes; ``compress`` zlib-compresses first (sparse
    sketches shrink ~100x) and prefixes ``z:``. zlib output is deterministic for a given input."""
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        a = array(a.typecode, a)
        a.byteswap()
    raw = a.tobytes()
    if compress:
        return "z:" + base64.b64encode(zlib.compress(raw, 6)).decode("ascii")
    return base64.b64encode(raw).decode("ascii")


def arr_from_b64(typecode: str, text: str, max_bytes: int = 1 << 24) -> array:
    a = array(typecode)
    if text.startswith("z:"):
        d = zlib.decompressobj()
        raw = d.decompress(base64.b64decode(text[2:].encode("ascii"), validate=True), max_bytes)
        if d.unconsumed_tail:
            raise ValueError("compressed array larger than allowed")
    else:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    a.frombytes(raw)
    if not _LITTLE:  # pragma: no cover
        a.byteswap()
    return a


class EW:
    """Exponentially weighted mean and variance with event-time decay.

    ``w`` is the decayed sum of weights, ``t`` the event time of the last update. On an update
    at time ``ts`` the old weight decays by ``0.5 ** ((ts - t) / half_life)``; the first
    updates therefore act like a plain running mean (fast convergence from nothing).
    """

    __slots__ = ("m", "t", "v", "w")

    def __init__(self, m: float = 0.0, v: float = 0.0, w: float = 0.0, t: float = 0.0) -> None:
        self.m = m
        self.v = v
        self.w = w
        self.t = t

    def update(self, x: float, ts: float, half_life: float, cap_z: float = 0.0) -> None:
        """Add ``x`` observed at ``ts``. ``cap_z`` > 0 winsorises ``x`` at mean + cap_z*std
        once there is some history, so one burst (a session start) cannot drag the baseline."""
        w0 = w = self.w  # the fields in locals: called for every closed minute and volume
        m0, v0, t0 = self.m, self.v, self.t
        if w > 0.0 and ts > t0:
            w *= 0.5 ** ((ts - t0) / half_life)
        if cap_z > 0.0 and w0 >= 5.0:
            hi = m0 + cap_z * math.sqrt(v0) + 1.0
            if x > hi:
                x = hi
        new_w = w + 1.0
        delta = x - m0
        m = m0 + delta / new_w
        # West's weighted incremental variance, with the old sum of squares decayed like w.
        self.v = (v0 * w + delta * (x - m)) / new_w
        self.m = m
        self.w = new_w
        if ts > t0:
            self.t = ts

    @property
    def std(self) -> float:
        return math.sqrt(self.v) if self.v > 0.0 else 0.0

    def to_json(self) -> list[float]:
        return [self.m, self.v, self.w, self.t]

    @classmethod
    def from_json(cls, data: Any) -> EW:
        m, v, w, t = (float(x) for x in data)
        return cls(m, v, w, t)

    def copy_scaled(self, max_weight: float) -> EW:
        """A copy whose weight is capped (a prior that new evidence quickly overrides)."""
        return EW(self.m, self.v, min(self.w, max_weight), self.t)


def _argmin(a: array) -> int:
    """Index of the first smallest element, as ``a.index(min(a))``: numpy reads the array's
    buffer in place (~1 µs for 256 entries, where ``min`` boxes every element: ~15 µs). The view
    is dropped before returning, so the array can be resized again."""
    return int(np.frombuffer(a, dtype=_META_DTYPE).argmin())


class ItemTable:
    """A bounded set of 64-bit keys, each with (last-seen day, saturating count).

    Keys are kept sorted in ``array('Q')`` for ``bisect`` lookups; ``meta`` packs
    ``day << 16 | count`` in ``array('I')``. Capacity is enforced on insert.
    """

    __slots__ = ("keys", "meta")

    def __init__(self) -> None:
        self.keys = array("Q")
        self.meta = array("I")

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, key: int) -> int:
        """Packed meta of ``key`` or -1."""
        keys = self.keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            return self.meta[i]
        return -1

    def lookup(self, key: int) -> tuple[int, int]:
        """``(packed meta, index)`` of ``key``, or ``(-1, -1)``."""
        keys = self.keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            return self.meta[i], i
        return -1, -1

    def bump(self, i: int, day: int) -> None:
        """A use on ``day`` of the key at index ``i`` (from :meth:`lookup`, nothing inserted or
        evicted since): ``touch`` without searching again."""
        meta = self.meta
        old = meta[i]
        last = old >> 16
        count = (old & 0xFFFF) + 1
        meta[i] = ((day if day > last else last) << 16) | (count if count < 0xFFFF else 0xFFFF)

    def touch(self, key: int, day: int, cap: int, add: int = 1, per_day: bool = False) -> bool:
        """Record a use of ``key`` on ``day``; returns True if the key was not present.
        ``per_day``: the count is of days used (only the first use of a day counts)."""
        keys = self.keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            old = self.meta[i]
            if per_day and (old >> 16) >= day:
                return False
            count = min(0xFFFF, (old & 0xFFFF) + add)
            self.meta[i] = (max(day, old >> 16) << 16) | count
            return False
        if len(keys) >= cap:
            meta = self.meta
            j = _argmin(meta)  # oldest day, then fewest uses
            del keys[j]
            del meta[j]
            if j < i:
                i -= 1
        keys.insert(i, key)
        self.meta.insert(i, (day << 16) | min(0xFFFF, add))
        return True

    def to_json(self) -> list[str]:
        return [arr_to_b64(self.keys), arr_to_b64(self.meta)]

    @classmethod
    def from_json(cls, data: Any) -> ItemTable:
        t = cls()
        t.keys = arr_from_b64("Q", data[0])
        t.meta = arr_from_b64("I", data[1])
        if len(t.keys) != len(t.meta) or any(
            t.keys[i] >= t.keys[i + 1] for i in range(len(t.keys) - 1)
        ):
            raise ValueError("corrupt item table")
        return t


class CountMin:
    """Count-min sketch: ``depth`` rows of ``width`` 32-bit counters (width a power of two).

    Row ``r`` indexes with bits ``[r*16, r*16+16)`` of the item's 64-bit hash, so one hash serves
    all rows (depth <= 4, width <= 65536).
    """

    __slots__ = ("depth", "mask", "rows", "width")

    def __init__(self, width: int = 2048, depth: int = 3) -> None:
        if width & (width - 1) or not 16 <= width <= 65536 or not 1 <= depth <= 4:
            raise ValueError("CountMin width must be a power of two in [16, 65536], depth 1..4")
        self.width = width
        self.depth = depth
        self.mask = width - 1
        self.rows = array("I", bytes(4 * width * depth))

    def add(self, key: int, n: int = 1) -> None:
        rows, mask, width = self.rows, self.mask, self.width
        i = key & mask
        for r in range(self.depth):
            v = rows[i] + n
            rows[i] = v if v < 0xFFFFFFFF else 0xFFFFFFFF
            key >>= 16
            i = (r + 1) * width + (key & mask)

    def get(self, key: int) -> int:
        rows, mask, width = self.rows, self.mask, self.width
        best = rows[key & mask]
        for r in range(1, self.depth):
            v = rows[r * width + ((key >> (16 * r)) & mask)]
            if v < best:
                best = v
        return best

    def merge_max(self, other: CountMin) -> None:
        """Element-wise max: idempotent, so merging the same snapshot twice cannot double count."""
        if (other.width, other.depth) != (self.width, self.depth):
            raise ValueError("cannot merge count-min sketches of different shapes")
        self.rows = array("I", map(max, self.rows, other.rows))

    def to_json(self) -> list[Any]:
        return [self.width, self.depth, arr_to_b64(self.rows, compress=True)]

    @classmethod
    def from_json(cls, data: Any) -> CountMin:
        c = cls(int(data[0]), int(data[1]))
        rows = arr_from_b64("I", data[2])
        if len(rows) != c.width * c.depth:
            raise ValueError("corrupt count-min sketch")
        c.rows = rows
        return c
