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
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

import re2

from taiinet.errors import LocalProtocolError
from taiinet.pubsub.query.cover import normalize
from taiinet.pubsub.query.matcher import Matcher, compile_filter, resolve
from taiinet.pubsub.query.nodes import All, And, Compare, Field, Filter, In, Op, Or, Regex
from taiinet.pubsub.query.parser import regex_searcher, regex_source
from taiinet.pubsub.query.query import Query
from taiinet.pubsub.query.values import BOOL, BYTES, NULL, NUMBER, STRING, type_class

#: Most clauses kept for one subscription; beyond, the condition is widened.
MAX_CLAUSES = 16
#: Memory re2 may use for the patterns of one path, in bytes.
REGEX_SET_MAX_MEM = 64 << 20
#: Default bound on the number of subscriptions in one index.
MAX_SUBSCRIPTIONS = 1_000_000

_SCALAR_CLASS = {int: NUMBER, float: NUMBER, str: STRING, bytes: BYTES, bool: BOOL}


class IndexFull(LocalProtocolError):
    """The index holds its maximum number of subscriptions."""


@dataclass(frozen=True, slots=True)
class _Eq:
    path: str
    keys: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Bound:
    path: str
    lower: bool
    key: tuple[Any, int]  # (bound, tie-break) -- see _BoundList
    cls: int


@dataclass(frozen=True, slots=True)
class _Interval:
    """A lower and an upper bound on numbers at one path, both finite."""

    path: str
    low: tuple[Any, int]   # a lower-bound key
    high: tuple[Any, int]  # an upper-bound key


@dataclass(frozen=True, slots=True)
class _Re:
    path: str
    source: str  # pattern with inline options


_Pred = _Eq | _Bound | _Interval | _Re
_Clause = tuple[_Pred, ...]


def _scalar_key(value: Any) -> Any | None:
    cls = type_class(value)
    if cls in (NUMBER, STRING, BYTES, BOOL):
        return (cls, value)
    return None


def _field_preds(node: Field) -> list[_Pred]:
    eqs: list[_Pred] = []
    bounds: list[_Pred] = []
    for op in node.ops:
        if isinstance(op, Compare):
            if op.op == "eq":
                key = _scalar_key(op.value)
                if key is not None:
                    eqs.append(_Eq(node.path, (key,)))
            elif op.op != "ne" and op.value is not None:  # normalize rewrote null ranges
                cls = type_class(op.value)
                incl = op.op in ("gte", "lte")
                if op.op in ("gt", "gte"):
                    bounds.append(_Bound(node.path, True, (op.value, 0 if incl else 1), cls))
                else:
                    bounds.append(_Bound(node.path, False, (op.value, 1 if incl else 0), cls))
        elif isinstance(op, In) and not op.negate:
            keys = [_scalar_key(v) for v in op.values]
            if all(k is not None for k in keys):
                eqs.append(_Eq(node.path, tuple(dict.fromkeys(keys))))  # 1 and 1.0 once
        elif isinstance(op, Regex):
            eqs.append(_Re(node.path, regex_source(op.pattern, op.options)))
        elif isinstance(op, All) and op.values:
            for v in op.values:
                key = _scalar_key(v)
                if key is not None:
                    eqs.append(_Eq(node.path, (key,)))
    return eqs + bounds


def necessary_clauses(node: Filter) -> list[_Clause] | None:
    """Clauses one of which every matching document satisfies; ``None`` when unknown.

    ``[]`` means no document can match (an empty ``$in``).
    """
    if isinstance(node, Field):
        if any(isinstance(op, All) and not op.values for op in node.ops):
            return []
        preds = _field_preds(node)
        if any(isinstance(p, _Eq) and not p.keys for p in preds):
            return []
        return [tuple(preds)] if preds else None
    if isinstance(node, And):
        parts = [c for c in (necessary_clauses(k) for k in node.children) if c is not None]
        if not parts:
            return None
        if any(not p for p in parts):
            return []
        result: list[_Clause] = [()]
        for part in sorted(parts, key=len):
            if len(result) * len(part) <= MAX_CLAUSES:
                result = [a + b for a in result for b in part]
        return result
    if isinstance(node, Or):
        out: list[_Clause] = []
        for kid in node.children:
            sub = necessary_clauses(kid)
            if sub is None:
                return None
            out += sub
        return out if len(out) <= MAX_CLAUSES else None
    return None


def _access(clause: _Clause) -> _Clause:
    """The predicates indexed for a clause: its equalities if any, else its regexes,
    else its bounds, with a finite lower and upper bound on numbers at one path
    paired into an interval."""
    eqs = tuple(p for p in clause if isinstance(p, _Eq))
    if eqs:
        return eqs
    regexes = tuple(p for p in clause if isinstance(p, _Re))
    if regexes:
        return regexes
    lows: dict[str, tuple[Any, int]] = {}
    highs: dict[str, tuple[Any, int]] = {}
    for p in clause:
        if isinstance(p, _Bound) and p.cls == NUMBER and math.isfinite(p.key[0]):
            table = lows if p.lower else highs
            best = table.get(p.path)
            if best is None or (p.key > best if p.lower else p.key < best):
                table[p.path] = p.key
    paired = set(lows) & set(highs)
    out: list[_Pred] = [_Interval(path, lows[path], highs[path]) for path in sorted(paired)]
    out += [p for p in clause if not (isinstance(p, _Bound) and p.cls == NUMBER
                                      and p.path in paired)]
    return tuple(out)


def _exactable(op: Op) -> bool:
    """Operators whose one predicate, hit by a path holding one value, is the operator."""
    if isinstance(op, Compare):
        return op.op != "ne" and _scalar_key(op.value) is not None
    if isinstance(op, In):
        return (not op.negate and bool(op.values)
                and all(_scalar_key(v) is not None for v in op.values))
    return isinstance(op, Regex)


def _covered(pred: _Pred, access: _Clause) -> bool:
    if pred in access:
        return True
    return isinstance(pred, _Bound) and any(
        isinstance(a, _Interval) and a.path == pred.path
        and (a.low if pred.lower else a.high) == pred.key for a in access)


def _direct(node: Filter) -> tuple[_Clause, Filter | None] | None:
    """A clause of one predicate per exactable conjunct of ``node``, and the residual:
    the conjuncts its indexed predicates do not decide (None when there are none).

    When every indexed path of a document holds one value, the clause is hit
    exactly when those conjuncts hold, so ``node`` matches iff the residual does.
    """
    atoms = node.children if isinstance(node, And) else (node,)
    preds: list[_Pred] = []
    owners: list[Filter] = []
    residual: list[Filter] = []
    for atom in atoms:
        if isinstance(atom, Field) and len(atom.ops) == 1 and _exactable(atom.ops[0]):
            (pred,) = _field_preds(atom)
            preds.append(pred)
            owners.append(atom)
        else:
            residual.append(atom)
    if not preds:
        return None
    clause = tuple(preds)
    access = _access(clause)
    residual += [atom for pred, atom in zip(preds, owners, strict=True)
                 if not _covered(pred, access)]
    if not residual:
        return clause, None
    return clause, residual[0] if len(residual) == 1 else And(children=tuple(residual))


@dataclass(frozen=True, slots=True)
class _PlanEntry:
    clause: _Clause
    branch: Filter | None      # the top-level $or branch it stands for; None: the whole query
    direct: bool               # hits decide the indexed conjuncts (see _direct)
    residual: Filter | None    # what remains to check for a direct clause


def plan(node: Filter) -> list[_PlanEntry] | None:
    """The clauses to index for a query; ``None`` when it must be checked on every document.

    A top-level ``$or`` is split: each branch gets its own clauses and, when a
    clause is hit, only that branch is checked, not the whole query.  A branch
    (or the whole query) that is a conjunction with exactable conditions gets a
    *direct* clause; otherwise its necessary clauses.
    """
    node = normalize(node)
    is_or = isinstance(node, Or)
    branches = node.children if isinstance(node, Or) else (node,)
    entries: list[_PlanEntry] = []
    for branch in branches:
        owner = branch if is_or else None
        direct = _direct(branch)
        if direct is not None and not _prefer_necessary(branch, direct[0]):
            entries.append(_PlanEntry(direct[0], owner, True, direct[1]))
            continue
        clauses = necessary_clauses(branch)
        if clauses is None:
            return None
        entries += [_PlanEntry(c, owner, False, None) for c in clauses]
    return entries if len(entries) <= MAX_CLAUSES else None


def _prefer_necessary(branch: Filter, clause: _Clause) -> bool:
    """A direct clause of bounds only is weak when nested ``$or``s offer equalities."""
    if any(isinstance(p, _Eq | _Re) for p in _access(clause)):
        return False
    atoms = branch.children if isinstance(branch, And) else (branch,)
    if all(isinstance(a, Field) for a in atoms):
        return False
    clauses = necessary_clauses(branch)
    return bool(clauses) and all(any(isinstance(p, _Eq | _Re) for p in _access(c))
                                 for c in clauses or ())


def _width_class(low: Any, high: Any) -> int:
    """``e`` with ``high - low < 2 ** e`` (so a stabbing window of ``2 ** (e + 1)`` is safe)."""
    width = high - low
    return math.frexp(float(width))[1] if width > 0 else 0


class _IntervalTable:
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


class _RegexTable:
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


class _BoundList:
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
class _PathIndex:
    parts: tuple[str, ...]
    eq: dict[Any, list[int]] = field(default_factory=dict)
    lower: dict[int, _BoundList] = field(default_factory=dict)
    upper: dict[int, _BoundList] = field(default_factory=dict)
    intervals: _IntervalTable | None = None
    regexes: _RegexTable | None = None
    size: int = 0


@dataclass(slots=True)
class _Subscription:
    query: Query
    clauses: list[int]


class SubscriptionIndex:
    """Subscriptions by id; ``match(document)`` returns the ids whose query matches.

    Memory per subscription is bounded by ``MAX_CLAUSES`` clauses of at most
    the query's size; the number of subscriptions by ``max_subscriptions``.
    """

    def __init__(self, max_subscriptions: int = MAX_SUBSCRIPTIONS) -> None:
        self.max_subscriptions = max_subscriptions
        self._subs: dict[Hashable, _Subscription] = {}
        self._paths: dict[str, _PathIndex] = {}
        self._always: dict[Hashable, Matcher] = {}
        self._clause_sub: dict[int, Hashable] = {}
        self._clause_need: dict[int, int] = {}
        self._clause_preds: dict[int, _Clause] = {}
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
            preds = _access(entry.clause)
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

    def _register(self, pred: _Pred, cid: int) -> None:
        index = self._paths.get(pred.path)
        if index is None:
            index = self._paths[pred.path] = _PathIndex(tuple(pred.path.split(".")))
        index.size += 1
        if isinstance(pred, _Eq):
            for key in pred.keys:
                index.eq.setdefault(key, []).append(cid)
        elif isinstance(pred, _Interval):
            if index.intervals is None:
                index.intervals = _IntervalTable()
            index.intervals.add(pred.low, pred.high, cid)
        elif isinstance(pred, _Re):
            if index.regexes is None:
                index.regexes = _RegexTable()
            index.regexes.add(pred.source, cid)
        else:
            table = index.lower if pred.lower else index.upper
            table.setdefault(pred.cls, _BoundList()).add(pred.key, cid)

    def _unregister(self, pred: _Pred, cid: int) -> None:
        index = self._paths[pred.path]
        if isinstance(pred, _Eq):
            for key in pred.keys:
                ids = index.eq[key]
                ids.remove(cid)
                if not ids:
                    del index.eq[key]
        elif isinstance(pred, _Interval):
            assert index.intervals is not None
            index.intervals.remove(pred.low, pred.high, cid)
            if not index.intervals.classes:
                index.intervals = None
        elif isinstance(pred, _Re):
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

    def _hits(self, document: Any) -> tuple[Counter[int], set[str]]:
        """Predicate hits per clause, and the indexed paths that held several values."""
        hits: Counter[int] = Counter()
        update = hits.update
        several: set[str] = set()
        for path, index in self._paths.items():
            values = resolve(document, index.parts)
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
                    ids = eq.get((cls, item))
                    if ids:
                        update(ids)
                    if lower:
                        bounds = lower.get(cls)
                        if bounds:
                            update(bounds.ids[:bisect_left(bounds.keys, (item, 1))])
                    if upper:
                        bounds = upper.get(cls)
                        if bounds:
                            update(bounds.ids[bisect_right(bounds.keys, (item, 0)):])
            if numbers and index.intervals is not None:
                update(index.intervals.overlapping(min(numbers), max(numbers)))
            if strings and index.regexes is not None:
                for text in strings:
                    update(index.regexes.search(text))
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

        A hit direct clause whose indexed paths each held one value in the
        document needs only its residual checked; other hit clauses are checked
        with their ``$or`` branch, or their whole query.
        """
        hits, several = self._hits(document)
        need = self._clause_need
        clause_sub = self._clause_sub
        subs = self._subs
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
