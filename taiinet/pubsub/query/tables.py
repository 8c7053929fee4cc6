# taiinet: sans-io core
"""The lookup tables of one indexed path, for ``SubscriptionIndex``.

Each answers "which clauses does this value satisfy?" without looking at
every clause: bounds sorted so a value satisfies a prefix or suffix
(``BoundList``), number intervals bucketed by width (``IntervalTable``) and all
regexes of a path in one ``re2.Set`` (``RegexTable``).  ``PathIndex`` holds the
tables of one path.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import re2

from taiinet.pubsub.query.parser import regex_searcher

#: Memory re2 may use for the patterns of one path, in bytes.
REGEX_SET_MAX_MEM = 64 << 20


def _width_class(low: Any, high: Any) -> int:
    """``e`` with ``high - low < 2 ** e`` (so a stabbing window of ``2 ** (e + 1)`` is safe)."""
    width = high - low
    return math.frexp(float(width))[1] if width > 0 else 0


class IntervalTable:
    """Number intervals of one path, bucketed by width class and sorted by lower bound.

    An interval of class ``e`` that holds ``x`` has its lower bound in
    ``[x - 2 ** (e + 1), x]``: a bisection finds them, and only intervals near
    ``x`` are looked at, so the cost follows the matches, not the table size.
    """

    __slots__ = ("classes",)

    def __init__(self) -> None:
        # width class -> (sorted lower bound values, entries in the same order)
        self.classes: dict[int, tuple[list[Any], list[tuple[Any, Any, int]]]] = {}

    def add(self, low: tuple[Any, int], high: tuple[Any, int], clause: int) -> None:
        los, entries = self.classes.setdefault(_width_class(low[0], high[0]), ([], []))
        i = bisect_right(los, low[0])
        los.insert(i, low[0])
        entries.insert(i, (low, high, clause))

    def remove(self, low: tuple[Any, int], high: tuple[Any, int], clause: int) -> None:
        e = _width_class(low[0], high[0])
        los, entries = self.classes[e]
        i = bisect_left(los, low[0])
        while entries[i][2] != clause:
            i += 1
        del los[i]
        del entries[i]
        if not los:
            del self.classes[e]

    def overlapping(self, smallest: Any, largest: Any) -> list[int]:
        """Intervals whose lower bound ``largest`` passes and upper bound ``smallest`` passes."""
        out: list[int] = []
        top_low = (largest, 1)
        bottom_high = (smallest, 0)
        for e, (los, entries) in self.classes.items():
            try:
                start = bisect_left(los, smallest - 2.0 ** (e + 1))
            except OverflowError:  # an integer beyond floats, in a local document
                start = 0
            stop = bisect_right(los, largest)
            for low, high, clause in entries[start:stop]:
                if low < top_low and high > bottom_high:
                    out.append(clause)
        return out


class RegexTable:
    """The patterns of one path, searched together by one ``re2.Set``.

    New patterns wait in a short pending list (searched one by one) and removed
    ones are skipped until the set is rebuilt, so adds and removes stay cheap.
    """

    __slots__ = ("compiled", "dead", "ids", "pending", "sources")

    PENDING_LIMIT = 32

    def __init__(self) -> None:
        self.sources: list[str] = []
        self.ids: list[int] = []
        self.compiled: Any = None
        self.pending: list[tuple[Callable[[str], bool], int]] = []
        self.dead: set[int] = set()

    def __len__(self) -> int:
        return len(self.ids) - len(self.dead)

    def add(self, source: str, clause: int) -> None:
        self.sources.append(source)
        self.ids.append(clause)
        self.pending.append((regex_searcher(source, ""), clause))
        if len(self.pending) > self.PENDING_LIMIT:
            self._rebuild()

    def remove(self, clause: int) -> None:
        self.dead.add(clause)
        if len(self.dead) * 2 > len(self.ids):
            self._rebuild()

    def _rebuild(self) -> None:
        keep = [(s, c) for s, c in zip(self.sources, self.ids, strict=True) if c not in self.dead]
        self.sources = [s for s, _ in keep]
        self.ids = [c for _, c in keep]
        self.dead = set()
        self.pending = []
        self.compiled = None
        if self.sources:
            self.compiled = re2.Set.SearchSet(_set_options())
            for source in self.sources:
                self.compiled.Add(source)
            self.compiled.Compile()

    def search(self, text: str) -> list[int]:
        out: list[int] = []
        if self.compiled is not None:
            found = self.compiled.Match(text)
            if found:
                ids = self.ids
                out = [ids[i] for i in found]
        for search, clause in self.pending:
            if search(text):
                out.append(clause)
        if self.dead:
            out = [c for c in out if c not in self.dead]
        return out


def _set_options() -> Any:
    opts = re2.Options()
    opts.log_errors = False
    opts.max_mem = REGEX_SET_MAX_MEM
    return opts


class BoundList:
    """Bounds of one path and type class, sorted; a value satisfies a prefix or suffix.

    Lower bounds are keyed ``(v, 0)`` for ``>= v`` and ``(v, 1)`` for ``> v``: ``x``
    satisfies exactly the keys below ``(x, 1)``.  Upper bounds are keyed ``(v, 1)``
    for ``<= v`` and ``(v, 0)`` for ``< v``: ``x`` satisfies the keys above ``(x, 0)``.
    """

    __slots__ = ("ids", "keys")

    def __init__(self) -> None:
        self.keys: list[tuple[Any, int]] = []
        self.ids: list[int] = []

    def add(self, key: tuple[Any, int], clause: int) -> None:
        i = bisect_right(self.keys, key)
        self.keys.insert(i, key)
        self.ids.insert(i, clause)

    def remove(self, key: tuple[Any, int], clause: int) -> None:
        i = bisect_left(self.keys, key)
        while self.ids[i] != clause:
            i += 1
        del self.keys[i]
        del self.ids[i]


@dataclass(slots=True)
class PathIndex:
    #: The values the path reaches in a document (``matcher.resolver``).
    find: Callable[[Any], list[Any]]
    eq: dict[Any, list[int]] = field(default_factory=dict)
    lower: dict[int, BoundList] = field(default_factory=dict)
    upper: dict[int, BoundList] = field(default_factory=dict)
    intervals: IntervalTable | None = None
    regexes: RegexTable | None = None
    size: int = 0
