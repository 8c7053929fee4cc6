"""What the cyclic garbage collector did during a measured step (``--gc-stats``).

Opt-in: it reads ``gc.get_objects()`` at the start of every full collection
to count the objects that collection walks, and the oldest generation around
every gen1 collection to count what it promoted, which itself costs CPU.  Counts
are deterministic for a seeded run (``bench/hotpath.py``), so they compare two
trees without timing them: collections per generation per 1,000 deliveries,
objects walked per full collection, and the GC's own time per delivery.
Standard library only.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from typing import Any


class GcStats:
    """Collections, objects walked by full ones and GC time between ``start`` and ``stop``."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.full_walked = 0
        #: Objects gen1 collections moved to the oldest generation: what brings the
        #: next full collection nearer (one runs when these exceed a quarter of
        #: what the last one left).
        self.promoted = 0
        self._old = 0
        self.seconds = 0.0
        #: GC seconds per generation collected.
        self.by_generation = [0.0, 0.0, 0.0]
        self._generation = 0
        self._began = 0.0
        self._on = False
        #: Ids of the objects tracked at ``start``: a dict of ints, which the
        #: collector does not track (a set would be walked by every collection
        #: it is in: ~160,000 entries in a WebRTC run, the bench's, not the library's).
        self._before: dict[int, None] = {}

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            generation = self._generation = info["generation"]
            self.collections[generation] += 1
            if generation == 2:
                self.full_walked += len(gc.get_objects())
            elif generation == 1:
                self._old = len(gc.get_objects(2))
            self._began = time.process_time()
        else:
            spent = time.process_time() - self._began
            self.seconds += spent
            self.by_generation[self._generation] += spent
            if self._generation == 1:
                self.promoted += len(gc.get_objects(2)) - self._old

    def start(self) -> None:
        self.collections = [0, 0, 0]
        self.full_walked = 0
        self.promoted = 0
        self.seconds = 0.0
        self.by_generation = [0.0, 0.0, 0.0]
        self._before = dict.fromkeys(map(id, gc.get_objects()))
        if not self._on:
            gc.callbacks.append(self._callback)
            self._on = True

    def stop(self) -> None:
        if self._on:
            gc.callbacks.remove(self._callback)
            self._on = False

    def report(self, deliveries: int) -> str:
        per = 1000 / max(deliveries, 1)
        gen0, gen1, gen2 = self.collections
        walked = self.full_walked / gen2 if gen2 else 0.0
        return (f"GC per 1,000 deliveries: gen0 {gen0 * per:.1f}, gen1 {gen1 * per:.2f}, "
                f"gen2 {gen2 * per:.3f} ({gen2} full, {walked:,.0f} objects each); "
                f"{self.promoted / max(deliveries, 1):.2f} objects promoted to gen2 per delivery; "
                f"GC {self.seconds * 1e6 / max(deliveries, 1):.2f} us/delivery ("
                + "/".join(f"{t * 1e6 / max(deliveries, 1):.2f}" for t in self.by_generation)
                + " in gen0/1/2); "
                f"{len(gc.get_objects()):,} objects tracked now")


    def new_by_type(self, top: int = 12) -> str:
        """The most numerous types among tracked objects made since ``start`` and
        still alive (what the step leaves for full collections to walk)."""
        before = self._before
        counts = Counter(type(o).__qualname__ for o in gc.get_objects() if id(o) not in before)
        total = sum(counts.values())
        return f"{total:,} new tracked objects alive: " + ", ".join(
            f"{name} {n}" for name, n in counts.most_common(top))
