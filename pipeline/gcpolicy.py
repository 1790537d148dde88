"""The worker's garbage-collector policy: keep collector pauses out of the response time.

CPython's cyclic collector stops the worker while it runs. Its full (generation 2) collections
scan every tracked object, and a worker holds many long-lived ones: compiled rules, per-agent
state for thousands of agents, caches. Measured with ``python -m bench.pauses``
(the latency benchmark's event mix through the processor): with Python's defaults a full
collection paused processing for up to ~185 ms, about every 10,000 events — straight into the
event -> isolation command p99. Yet those collections found almost nothing to free (75 objects in
8 collections): per-agent state is plain dicts and lists, released by reference counting, not
cycles.

So the worker:

* freezes (``gc.freeze``) what is alive after start-up and then every ``worker.gc_freeze_seconds``
  (1 s): frozen objects are never scanned again, so the automatic collections only look at what
  was allocated since, and stay short. (With 5 s between freezes, a busy worker's full
  collections still reached ~35 ms; with 1 s, ~10 ms. A freeze costs one young-generation
  collection, a millisecond or two.) Frozen objects are still freed by reference counting when
  they die; only garbage *cycles* among them wait for the next full collection;
* turns off the collector's *automatic* full collections (generation 2's threshold is raised
  out of reach): with survivors frozen every second they would only rescan the last second's
  survivors, and at a backlog's pace that is ~50,000-150,000 objects a time, ten times in 40,000
  events, each a 60-110 ms pause that found almost nothing (681 objects in 12 collections).
  Measured with ``python -m bench.throughput``'s full worker and a timing ``gc.callbacks`` hook:
  time in full collections 0.63-0.84 s → 0.10-0.12 s per 40,000 events (~15 µs of ~150 µs per
  event), worker CPU per event lower in each of three alternated pairs. Young collections
  (generations 0 and 1) run as before. The price: garbage *cycles* that die soon after
  surviving two young collections (681 objects per 40,000 events in that benchmark) are no
  longer freed within the second but frozen with the rest, and wait for the full collection
  below — at 8,000 events/s up to ~0.5 million objects an hour. Lower
  ``worker.gc_full_collect_seconds`` if memory matters more than the hourly pause;
* freezes what each processing step leaves alive, at once and without a collection
  (:meth:`GcPolicy.after_step`, unless ``worker.gc_freeze_each_step`` is off). A step's
  survivors (its outputs waiting for delivery and the state flush, new cache entries, fetched
  records) were otherwise scanned by one young collection and again by the next generation-1
  one before the freeze above: in a perf profile of the full worker of ``bench.throughput``
  (``perf record -e cpu-clock``) the collector's own functions took ~9% of the worker's CPU
  (``gc_collect_main`` 5.0%, ``visit_decref`` 2.7%, ``visit_reachable`` 1.4%, ``dict_traverse``
  0.7%), and a ``gc.callbacks`` count showed what those ~1,200 young collections per 40,000
  events freed: nothing (every object they collected was collected at start-up). Frozen per
  step, they fell to 0.3-0.5% (two profiles). ``gc.freeze`` is a constant-time splice of the
  generation lists, so each step pays nothing. The price is the one above, for cycles of one step's age instead of
  two young collections': they wait for the hourly full collection;
* runs one full collection of everything (``gc.unfreeze`` + ``gc.collect``) every
  ``worker.gc_full_collect_seconds`` (an hour by default), so garbage cycles cannot pile up;
* reports every pause in ``agentwatch_gc_pause_seconds{generation}``.

Setting ``worker.gc_freeze_seconds`` to 0 leaves Python's collector exactly as it is.
"""

from __future__ import annotations

import gc
import time
from typing import Any

__all__ = ["GcPolicy"]

#: generation 2's threshold while the policy runs: the number of generation-1 collections before
#: a full one is even considered (billions of allocations: never, between the hourly ones)
NO_AUTOMATIC_FULL = 1_000_000


class GcPolicy:
    def __init__(self, freeze_seconds: float, full_collect_seconds: float, pauses: Any | None = None,
                 *, freeze_each_step: bool = True) -> None:
        self.freeze_seconds = freeze_seconds
        self.freeze_each_step = freeze_each_step
        self.full_collect_seconds = full_collect_seconds
        self.pauses = pauses  # a Histogram with a "generation" label, or None
        self._started: float | None = None
        self._last_full = time.monotonic()
        self._last_freeze = 0.0
        self.full_collections = 0
        self._thresholds: tuple[int, int, int] | None = None  # the collector's, while installed

    @property
    def enabled(self) -> bool:
        return self.freeze_seconds > 0

    def install(self) -> None:
        """Measure pauses from now on and, if enabled, freeze what start-up allocated and turn off
        automatic full collections (until :meth:`uninstall`, which restores the thresholds)."""
        if self.pauses is not None and self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        if self.enabled:
            gc.collect()
            gc.freeze()
            self._last_freeze = self._last_full = time.monotonic()
            if self._thresholds is None:
                self._thresholds = gc.get_threshold()
                young, middle, _ = self._thresholds
                gc.set_threshold(young, middle, NO_AUTOMATIC_FULL)

    def uninstall(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self.enabled:
            gc.unfreeze()
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None

    def after_step(self) -> None:
        """Called after each processing step: freeze what it left alive (no collection; see the
        module's docs). Does nothing unless the policy is installed and enabled."""
        if self.freeze_each_step and self._thresholds is not None:
            gc.freeze()

    def tick(self, now: float | None = None) -> None:
        """Called from a timer: freeze or fully collect when due."""
        if not self.enabled:
            return
        now = time.monotonic() if now is None else now
        if self.full_collect_seconds > 0 and now - self._last_full >= self.full_collect_seconds:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.full_collections += 1
            self._last_full = self._last_freeze = now
        elif now - self._last_freeze >= self.freeze_seconds:
            gc.collect(1)  # young cycles out first: only survivors are frozen
            gc.freeze()
            self._last_freeze = now

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None and self.pauses is not None:
            self.pauses.labels(str(info.get("generation", "?"))).observe(time.perf_counter() - self._started)
            self._started = None
