"""What the cyclic garbage collector did during a measured step (``--gc-stats``).

Opt-in: it reads ``gc.get_objects()`` at the start of every full collection
to count the objects that collection walks, which itself costs CPU.  Counts
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
        self.seconds = 0.0
        self._began = 0.0
        self._on = False

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            generation = info["generation"]
            self.collections[generation] += 1
            if generation == 2:
                self.full_walked += len(gc.get_objects())
            self._began = time.process_time()
        else:
            self.seconds += time.process_time() - self._began

    def start(self) -> None:
        self.collections = [0, 0, 0]
        self.full_walked = 0
        self.seconds = 0.0
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
                f"GC {self.seconds * 1e6 / max(deliveries, 1):.2f} us/delivery; "
                f"{len(gc.get_objects()):,} objects tracked now")


def tracked_by_type(top: int = 15) -> list[tuple[str, int]]:
    """The most numerous types among the objects the collector tracks now."""
    return Counter(type(o).__qualname__ for o in gc.get_objects()).most_common(top)
