# taiinet: sans-io core
"""Covering and summarising queries, for interest tables that must stay small.

``covers(a, b)`` is a sound, incomplete test of containment: when it answers
True, every document that matches ``b`` matches ``a``; when unsure it answers
False.  It works on a normal form where every ``Field`` holds one operator
(``{p: {$gt: 1, $lt: 5}}`` is ``{p: {$gt: 1}} and {p: {$lt: 5}}``, which is
exact under the per-operator array semantics) and ``$and``/``$or`` are
flattened, with the rules

- ``b`` is an ``$or``: every branch is covered;  ``a`` is an ``$and``: every
  conjunct covers ``b``;  ``a`` is an ``$or``: one branch covers ``b``;
  ``b`` is an ``$and``: one conjunct is covered by ``a``;
- two fields on the same path: the operator of ``b`` implies that of ``a``
  (equal operators; a value inside a range or ``$in``; a narrower range, ``$in``
  set or substring; anything that needs the field implies ``$exists: true``).

``summarize(queries, max_filters)`` returns at most ``max_filters`` queries
whose union covers every input.  It drops inputs covered by others, then
merges queries of the same shape (same paths and operators), then of the same
paths, then of the same first path, and finally everything; two conjunctions
merge into the conjunction of their pairwise widened common conditions
(equalities become ``$in``, ranges take the looser bound, otherwise
``$exists``), which is the match-all query ``{}`` when they share nothing; an
``$or`` merges with anything into an ``$or`` of at most ``MAX_OR_BRANCHES``
branches, themselves summarised the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from taiinet.errors import LocalProtocolError
from taiinet.pubsub.query.matcher import null_comparison
from taiinet.pubsub.query.nodes import (
    MATCH_ALL,
    All,
    And,
    Compare,
    Contains,
    ElemMatch,
    Exists,
    Field,
    Filter,
    In,
    Nor,
    Op,
    Or,
    Regex,
    Size,
    node_key,
)
from taiinet.pubsub.query.query import Query
from taiinet.pubsub.query.values import BOOL, BYTES, NUMBER, STRING, type_class, value_key

#: Most values a widened ``$in`` may hold before it becomes ``$exists``.
MAX_MERGED_IN = 64
#: Most branches of an ``$or`` made by merging queries.
MAX_OR_BRANCHES = 8
#: Above this many queries, ``summarize`` skips the quadratic removal of covered ones.
MAX_PAIRWISE = 512

_ORDERED = (NUMBER, STRING, BYTES, BOOL)


# ---------------------------------------------------------------- normal form
def normalize(node: Filter) -> Filter:
    """One operator per field, nested ``$and``/``$or`` flattened, one-child lists removed;
    a range comparison with null replaced by its meaning (``null_comparison``)."""
    if isinstance(node, Field):
        ops = tuple(null_comparison(op) or op for op in node.ops)
        if len(ops) == 1:
            return node if ops == node.ops else Field(path=node.path, ops=ops)
        return And(children=tuple(Field(path=node.path, ops=(op,)) for op in ops))
    if isinstance(node, Nor):
        return Nor(children=tuple(normalize(c) for c in node.children))
    kind = type(node)
    flat: list[Filter] = []
    for child in node.children:
        child = normalize(child)
        if type(child) is kind:
            assert isinstance(child, And | Or)
            flat.extend(child.children)
        else:
            flat.append(child)
    if len(flat) == 1:
        return flat[0]
    return And(children=tuple(flat)) if isinstance(node, And) else Or(children=tuple(flat))


def _never(node: Filter) -> bool:
    """True when no document can match (an empty ``$in`` or ``$all``)."""
    if isinstance(node, Field):
        op = node.ops[0]
        return (isinstance(op, In) and not op.negate and not op.values) or (
            isinstance(op, All) and not op.values)
    return False


# ---------------------------------------------------------------- covers
def covers(a: Query | Filter, b: Query | Filter) -> bool:
    """Sound containment: True only if every document matching ``b`` matches ``a``."""
    fa = a.ast if isinstance(a, Query) else a
    fb = b.ast if isinstance(b, Query) else b
    return _covers(normalize(fa), normalize(fb))


@functools.lru_cache(maxsize=4096)
def query_covers(a: Query, b: Query) -> bool:
    """``covers`` of two queries, memoised: interest adverts repeat the same filters."""
    return covers(a, b)


def _same(a: Any, b: Any) -> bool:
    # Dataclass equality is coarser (1 == True) but cheap: check it first.
    return a is b or (a == b and bool(node_key(a) == node_key(b)))


def _covers(a: Filter, b: Filter) -> bool:
    if a == MATCH_ALL or _never(b) or _same(a, b):
        return True
    if isinstance(b, Or):
        return all(_covers(a, c) for c in b.children)
    if isinstance(a, And):
        return all(_covers(c, b) for c in a.children)
    if isinstance(a, Or) and any(_covers(c, b) for c in a.children):
        return True
    if isinstance(b, And):
        return any(_covers(a, c) for c in b.children)
    if isinstance(a, Field) and isinstance(b, Field) and a.path == b.path:
        return implies(b.ops[0], a.ops[0])
    return False


def _needs_field(op: Op) -> bool:
    """Whether a document can match ``op`` only when the field is present."""
    if isinstance(op, Compare):
        return op.op != "ne" and op.value is not None
    if isinstance(op, In):
        return not op.negate and all(v is not None for v in op.values)
    if isinstance(op, Exists):
        return op.present
    return isinstance(op, Contains | Regex | All | Size | ElemMatch)


def _scalar(value: Any) -> bool:
    return value is not None and type_class(value) in _ORDERED


def _in_range(value: Any, op: str, bound: Any) -> bool:
    if not _scalar(value) or type_class(value) != type_class(bound):
        return False
    if op == "gt":
        return bool(value > bound)
    if op == "gte":
        return bool(value >= bound)
    if op == "lt":
        return bool(value < bound)
    return bool(value <= bound)


def _value_set(op: Op) -> set[Any] | None:
    """The values ``op`` accepts as an equality set (``$eq`` or ``$in``), else None."""
    if isinstance(op, Compare) and op.op == "eq":
        return {value_key(op.value)}
    if isinstance(op, In) and not op.negate:
        return {value_key(v) for v in op.values}
    return None


def _values_of(op: Op) -> tuple[Any, ...]:
    if isinstance(op, Compare):
        return (op.value,)
    assert isinstance(op, In)
    return op.values


def implies(b: Op, a: Op) -> bool:
    """Sound: every resolved field that satisfies ``b`` satisfies ``a`` (same path)."""
    if _same(a, b):
        return True
    if null_comparison(a) is not None or null_comparison(b) is not None:
        return implies(null_comparison(b) or b, null_comparison(a) or a)
    if isinstance(a, Exists) and a.present:
        return _needs_field(b)
    set_a, set_b = _value_set(a), _value_set(b)
    if set_a is not None and set_b is not None:
        return set_b <= set_a
    if isinstance(a, Compare) and a.op in ("gt", "gte", "lt", "lte"):
        if set_b is not None:
            values = _values_of(b)
            return all(_in_range(v, a.op, a.value) for v in values)
        if isinstance(b, Compare) and b.op in ("gt", "gte", "lt", "lte"):
            if type_class(a.value) != type_class(b.value):
                return False
            if a.op in ("gt", "gte") and b.op in ("gt", "gte"):
                return bool(b.value > a.value or (b.value == a.value and (
                    a.op == "gte" or b.op == "gt")))
            if a.op in ("lt", "lte") and b.op in ("lt", "lte"):
                return bool(b.value < a.value or (b.value == a.value and (
                    a.op == "lte" or b.op == "lt")))
        return False
    if isinstance(a, Contains) and isinstance(a.value, str):
        # Only from an equality: a wider $contains can hold through a nested array.
        return isinstance(b, Compare) and b.op == "eq" and isinstance(b.value, str) and (
            a.value in b.value)
    if isinstance(a, All) and a.values:
        have = {value_key(v) for v in b.values} if isinstance(b, All) else (
            {value_key(b.value)} if isinstance(b, Compare) and b.op == "eq" else set())
        return {value_key(v) for v in a.values} <= have
    return False


# ---------------------------------------------------------------- widening
def _atoms(node: Filter) -> tuple[Filter, ...]:
    return node.children if isinstance(node, And) else (node,)


def _widen_ops(x: Op, y: Op) -> Op | None:
    """An operator implied by both ``x`` and ``y`` (same path), or None."""
    x, y = null_comparison(x) or x, null_comparison(y) or y
    if implies(y, x):
        return x
    if implies(x, y):
        return y
    set_x, set_y = _value_set(x), _value_set(y)
    if set_x is not None and set_y is not None:
        merged: dict[Any, Any] = {}
        for v in (*_values_of(x), *_values_of(y)):
            merged.setdefault(value_key(v), v)
        if len(merged) <= MAX_MERGED_IN:
            return In(values=tuple(merged.values()))
    if (isinstance(x, Compare) and isinstance(y, Compare) and x.op in ("gt", "gte", "lt", "lte")
            and y.op in ("gt", "gte", "lt", "lte")
            and (x.op in ("gt", "gte")) == (y.op in ("gt", "gte"))
            and type_class(x.value) == type_class(y.value)):
        lower = x.op in ("gt", "gte")
        looser = min(x.value, y.value) if lower else max(x.value, y.value)
        return Compare(op="gte" if lower else "lte", value=looser)
    if _needs_field(x) and _needs_field(y):
        return Exists(present=True)
    return None


def _branches(node: Filter) -> tuple[Filter, ...]:
    return node.children if isinstance(node, Or) else (node,)


def _keep(kept: list[Filter], node: Filter) -> None:
    if not any(_same(node, k) for k in kept):
        kept.append(node)


def widen(a: Filter, b: Filter) -> Filter:
    """A filter that covers both ``a`` and ``b`` (normal forms), as narrow as cheaply found.

    An ``$or`` and anything become one ``$or`` of their branches, summarised to
    at most ``MAX_OR_BRANCHES``; two conjunctions become the conjunction of
    their widened common conditions.
    """
    if _covers(a, b):
        return a
    if _covers(b, a):
        return b
    if isinstance(a, Or) or isinstance(b, Or):
        branches = [*_branches(a), *_branches(b)]
        merged = _summarize(branches, MAX_OR_BRANCHES)
        return merged[0] if len(merged) == 1 else Or(children=tuple(merged))
    kept: list[Filter] = []
    for x in _atoms(a):
        for y in _atoms(b):
            if isinstance(x, Field) and isinstance(y, Field) and x.path == y.path:
                op = _widen_ops(x.ops[0], y.ops[0])
                if op is not None:
                    _keep(kept, Field(path=x.path, ops=(op,)))
                    break
            elif _same(x, y):
                _keep(kept, x)
                break
    if not kept:
        return MATCH_ALL
    return kept[0] if len(kept) == 1 else And(children=tuple(kept))


# ---------------------------------------------------------------- summarize
def _op_kind(op: Op) -> str:
    if isinstance(op, Compare):
        return "range" if op.op in ("gt", "gte", "lt", "lte") else op.op
    return type(op).__name__


def _shape(node: Filter) -> Hashable:
    return tuple(sorted((a.path, _op_kind(a.ops[0])) if isinstance(a, Field) else
                        (type(a).__name__, "") for a in _atoms(node)))


def _paths(node: Filter) -> Hashable:
    return tuple(sorted({a.path if isinstance(a, Field) else type(a).__name__
                         for a in _atoms(node)}))


def _first_path(node: Filter) -> Hashable:
    paths = _paths(node)
    assert isinstance(paths, tuple)
    return paths[0] if paths else ""


def _whole(node: Filter) -> Hashable:
    return ()


def _drop_covered(filters: list[Filter]) -> list[Filter]:
    unique = list({node_key(f): f for f in filters}.values())
    if len(unique) > MAX_PAIRWISE:
        return unique
    kept: list[Filter] = []
    for i, f in enumerate(unique):
        if not any(j != i and _covers(g, f) and not (j > i and _covers(f, g))
                   for j, g in enumerate(unique)):
            kept.append(f)
    return kept


def summarize(queries: Iterable[Query | Filter], max_filters: int) -> list[Query]:
    """At most ``max_filters`` queries whose union covers every input query."""
    if max_filters < 1:
        raise LocalProtocolError("max_filters must be at least 1")
    filters = [normalize(q.ast if isinstance(q, Query) else q) for q in queries]
    return [Query.from_ast(f) for f in _summarize(filters, max_filters)]


def _summarize(filters: list[Filter], max_filters: int) -> list[Filter]:
    filters = _drop_covered(filters)
    keys: list[Callable[[Filter], Hashable]] = [_shape, _paths, _first_path, _whole]
    for key in keys:
        if len(filters) <= max_filters:
            break
        groups: dict[Hashable, list[Filter]] = {}
        for f in filters:
            groups.setdefault(key(f), []).append(f)
        # Merge the largest groups first, only as far as needed.
        order = sorted(groups.values(), key=len, reverse=True)
        count = len(filters)
        merged: list[Filter] = []
        for group in order:
            if count > max_filters and len(group) > 1:
                acc = group[0]
                for f in group[1:]:
                    acc = widen(acc, f)
                merged.append(acc)
                count -= len(group) - 1
            else:
                merged.extend(group)
        filters = _drop_covered(merged)
    if len(filters) > max_filters:  # cannot happen after the last key; kept as a guard
        filters = [MATCH_ALL]
    return filters
