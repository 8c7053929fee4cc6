# taiinet: sans-io core
"""``SubscriptionIndex``: which of many subscriptions does a document match?

Theory of operation (a counting algorithm after Fabret et al., SIGMOD 2001, and
Carzaniga's SIENA forwarding tables).  Each query is planned into a few
*clauses*, each a conjunction of elementary predicates that can be looked up
from a document's values, kept in per-path tables:

- equality ``path == v`` (from ``$eq``, ``$in``, ``$all`` on scalars): a hash
  table value -> clauses;
- bounds ``path > v`` / ``path < v`` per type class, in arrays sorted by bound,
  so the bounds a value satisfies are one prefix or suffix found by bisection;
- number intervals (a finite lower and upper bound at one path), bucketed by
  width class and sorted by lower bound, so only intervals near the value are
  looked at;
- regexes, all patterns of a path searched at once by one ``re2.Set``.

A clause indexes its equalities if it has some (selective and cheap), else its
regexes, else its bounds and intervals.  A top-level ``$or`` is split into its
branches.  A branch that is a conjunction gets a *direct* clause, one
predicate per exactable condition, plus a *residual* matcher for the rest;
other shapes get *necessary* clauses (one of which every match satisfies).

For a document, every indexed path is resolved once; each value found counts
one hit for every clause whose predicate it satisfies.  A clause whose hits
reach its number of predicates is a *candidate*.  When its paths each held one
value, a direct clause's hits are exactly its indexed conditions, so only its
residual is checked; any other candidate is checked with its ``$or`` branch or
its whole compiled query.  Queries with nothing indexable (a lone ``$ne``,
``$nor``, ``$exists``) are checked on every document.

Departures: the paper counts over shared predicates; here predicates are not
shared between subscriptions, which keeps removal trivial at the cost of some
memory.  Over-counting (an array holding two values of one ``$in``) can only
make extra candidates, which the matcher then rejects: it never loses a match.

Files: ``clauses`` plans a query into clauses, ``tables`` holds the lookup
tables of one path, and this module keeps the subscriptions and counts hits.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from taiinet.errors import LocalProtocolError
from taiinet.pubsub.query.clauses import (
    Clause,
    Eq,
    Interval,
    Pred,
    RegexPred,
    indexed_predicates,
    plan,
)
from taiinet.pubsub.query.matcher import Matcher, compile_filter, resolver
from taiinet.pubsub.query.query import Query
from taiinet.pubsub.query.tables import BoundList, IntervalTable, PathIndex, RegexTable
from taiinet.pubsub.query.values import BOOL, BYTES, NULL, NUMBER, STRING

#: Default bound on the number of subscriptions in one index.
MAX_SUBSCRIPTIONS = 1_000_000
#: Up to this many subscriptions, ``match`` runs each compiled query instead of
#: counting hits: a compiled query takes about 0.5 us, counting 3-10 us whatever
#: the number (bench on a 256 B document: scanning wins up to about 16).
SCAN_LIMIT = 8

_SCALAR_CLASS = {int: NUMBER, float: NUMBER, str: STRING, bytes: BYTES, bool: BOOL}


def _count(hits: dict[int, int], ids: Iterable[int]) -> None:
    """One more hit for each clause of ``ids``."""
    get = hits.get
    for cid in ids:
        hits[cid] = get(cid, 0) + 1


class IndexFull(LocalProtocolError):
    """The index holds its maximum number of subscriptions."""


@dataclass(slots=True)
class _Subscription:
    query: Query
    clauses: list[int]


class SubscriptionIndex:
    """Subscriptions by id; ``match(document)`` returns the ids whose query matches.

    Memory per subscription is bounded by ``MAX_CLAUSES`` clauses of at most
    the query's size; the number of subscriptions by ``max_subscriptions``.
    """

    def __init__(self, max_subscriptions: int = MAX_SUBSCRIPTIONS,
                 scan_limit: int = SCAN_LIMIT) -> None:
        self.max_subscriptions = max_subscriptions
        #: ``match`` scans the queries when there are at most this many (``SCAN_LIMIT``).
        self.scan_limit = scan_limit
        self._subs: dict[Hashable, _Subscription] = {}
        self._paths: dict[str, PathIndex] = {}
        self._always: dict[Hashable, Matcher] = {}
        self._clause_sub: dict[int, Hashable] = {}
        self._clause_need: dict[int, int] = {}
        self._clause_preds: dict[int, Clause] = {}
        # direct clauses (see _direct) -> (their indexed paths, residual matcher or None)
        self._direct: dict[int, tuple[frozenset[str], Matcher | None]] = {}
        # clauses of a top-level $or branch -> the branch's matcher
        self._clause_check: dict[int, Matcher] = {}
        self._next_clause = 0

    def __len__(self) -> int:
        return len(self._subs)

    def __contains__(self, sub_id: object) -> bool:
        return sub_id in self._subs

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._subs)

    def get(self, sub_id: Hashable) -> Query | None:
        sub = self._subs.get(sub_id)
        return sub.query if sub else None

    def add(self, sub_id: Hashable, query: Query | Any) -> None:
        """Add or replace a subscription; ``query`` is a ``Query`` or a JSON-like query."""
        q = query if isinstance(query, Query) else Query(query)
        if sub_id in self._subs:
            self.remove(sub_id)
        elif len(self._subs) >= self.max_subscriptions:
            raise IndexFull(f"the index holds {self.max_subscriptions} subscriptions")
        entries = plan(q.ast)
        sub = _Subscription(q, [])
        self._subs[sub_id] = sub
        if entries is None or any(not entry.clause for entry in entries):
            self._always[sub_id] = q.matches
            return
        for entry in entries:
            cid = self._next_clause
            self._next_clause += 1
            preds = indexed_predicates(entry.clause)
            if entry.direct:
                residual = compile_filter(entry.residual) if entry.residual is not None else None
                self._direct[cid] = (frozenset(p.path for p in preds), residual)
            if entry.branch is not None:
                self._clause_check[cid] = compile_filter(entry.branch)
            sub.clauses.append(cid)
            self._clause_sub[cid] = sub_id
            self._clause_need[cid] = len(preds)
            self._clause_preds[cid] = preds
            for pred in preds:
                self._register(pred, cid)

    def remove(self, sub_id: Hashable) -> None:
        """Remove a subscription; unknown ids are ignored."""
        sub = self._subs.pop(sub_id, None)
        if sub is None:
            return
        self._always.pop(sub_id, None)
        for cid in sub.clauses:
            for pred in self._clause_preds.pop(cid):
                self._unregister(pred, cid)
            del self._clause_sub[cid]
            del self._clause_need[cid]
            self._direct.pop(cid, None)
            self._clause_check.pop(cid, None)

    def _register(self, pred: Pred, cid: int) -> None:
        index = self._paths.get(pred.path)
        if index is None:
            index = self._paths[pred.path] = PathIndex(resolver(pred.path))
        index.size += 1
        if isinstance(pred, Eq):
            for key in pred.keys:
                index.eq.setdefault(key, []).append(cid)
        elif isinstance(pred, Interval):
            if index.intervals is None:
                index.intervals = IntervalTable()
            index.intervals.add(pred.low, pred.high, cid)
        elif isinstance(pred, RegexPred):
            if index.regexes is None:
                index.regexes = RegexTable()
            index.regexes.add(pred.source, cid)
        else:
            table = index.lower if pred.lower else index.upper
            table.setdefault(pred.cls, BoundList()).add(pred.key, cid)

    def _unregister(self, pred: Pred, cid: int) -> None:
        index = self._paths[pred.path]
        if isinstance(pred, Eq):
            for key in pred.keys:
                ids = index.eq[key]
                ids.remove(cid)
                if not ids:
                    del index.eq[key]
        elif isinstance(pred, Interval):
            assert index.intervals is not None
            index.intervals.remove(pred.low, pred.high, cid)
            if not index.intervals.classes:
                index.intervals = None
        elif isinstance(pred, RegexPred):
            assert index.regexes is not None
            index.regexes.remove(cid)
            if not len(index.regexes):
                index.regexes = None
        else:
            table = index.lower if pred.lower else index.upper
            bounds = table[pred.cls]
            bounds.remove(pred.key, cid)
            if not bounds.keys:
                del table[pred.cls]
        index.size -= 1
        if not index.size:
            del self._paths[pred.path]

    def _hits(self, document: Any) -> tuple[dict[int, int], set[str]]:
        """Predicate hits per clause, and the indexed paths that held several values.

        (A plain dict and ``_count``: cheaper than a ``Counter`` for the few
        ids one document hits, and this runs for every document a node sees.)
        """
        hits: dict[int, int] = {}
        several: set[str] = set()
        for path, index in self._paths.items():
            values = index.find(document)
            if not values:
                continue
            if len(values) > 1 or isinstance(values[0], list):
                several.add(path)
            eq, lower, upper = index.eq, index.lower, index.upper
            numbers: list[Any] = []
            strings: list[str] = []
            for value in values:
                items = value if isinstance(value, list) else (value,)
                for item in items:
                    cls = _SCALAR_CLASS.get(type(item), NULL)
                    if cls == NULL:
                        continue
                    if cls == NUMBER:
                        numbers.append(item)
                    elif cls == STRING:
                        strings.append(item)
                    if eq:
                        ids = eq.get((cls, item))
                        if ids:
                            _count(hits, ids)
                    if lower:
                        bounds = lower.get(cls)
                        if bounds:
                            _count(hits, bounds.ids[:bisect_left(bounds.keys, (item, 1))])
                    if upper:
                        bounds = upper.get(cls)
                        if bounds:
                            _count(hits, bounds.ids[bisect_right(bounds.keys, (item, 0)):])
            if numbers and index.intervals is not None:
                _count(hits, index.intervals.overlapping(min(numbers), max(numbers)))
            if strings and index.regexes is not None:
                for text in strings:
                    _count(hits, index.regexes.search(text))
        return hits, several

    def candidates(self, document: Any) -> set[Hashable]:
        """Ids that may match: a superset of ``match(document)``."""
        hits, _ = self._hits(document)
        need = self._clause_need
        subs = self._clause_sub
        found = {subs[cid] for cid, n in hits.items() if n >= need[cid]}
        found.update(self._always)
        return found

    def match(self, document: Any) -> set[Hashable]:
        """Ids of the subscriptions whose query matches ``document``.

        A few subscriptions (``scan_limit``) are matched one query at a time.
        A hit direct clause whose indexed paths each held one value in the
        document needs only its residual checked; other hit clauses are checked
        with their ``$or`` branch, or their whole query.
        """
        subs = self._subs
        if len(subs) <= self.scan_limit:
            found: set[Hashable] = set()  # a loop, not a comprehension: no function call
            for sub_id, sub in subs.items():
                if sub.query.matcher(document):  # ``matches``, one call less
                    found.add(sub_id)
            return found
        hits, several = self._hits(document)
        need = self._clause_need
        clause_sub = self._clause_sub
        sure: set[Hashable] = set()
        maybe: set[Hashable] = set(self._always)
        direct = self._direct
        checks = self._clause_check
        for cid in [cid for cid, n in hits.items() if n >= need[cid]]:
            sub_id = clause_sub[cid]
            if sub_id in sure:
                continue
            plan_ = direct.get(cid)
            if plan_ is not None and (not several or plan_[0].isdisjoint(several)):
                residual = plan_[1]
                if residual is None or residual(document):
                    sure.add(sub_id)
                continue
            check = checks.get(cid)
            if check is None:
                maybe.add(sub_id)
            elif check(document):
                sure.add(sub_id)
        maybe -= sure
        sure.update(s for s in maybe if subs[s].query.matches(document))
        return sure
