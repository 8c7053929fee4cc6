"""Test support for the query layer: hypothesis strategies and a naive reference matcher.

The naive matcher interprets the JSON-like query directly, with none of the
engine's compilation, so the two can be compared on generated cases.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from hypothesis import strategies as st

KEYS = ["a", "b", "c"]
PATHS = ["a", "b", "c", "a.b", "a.c", "b.a", "a.0", "c.1.a"]
STRINGS = ["", "a", "b", "ab", "ba", "abc", "x"]
REGEXES = ["a", "^a", "b$", "a.c", "^$", "[bc]", "(?:ab)+", "A"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([-1.5, 0.0, 2.5, 1.0, 3.0]),
    st.sampled_from(STRINGS),
    st.sampled_from([b"", b"a", b"ab"]),
)

documents_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    ),
    max_leaves=8,
)
documents = st.dictionaries(st.sampled_from(KEYS), documents_values, max_size=3)

rangeable = st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from([-1.5, 0.5, 2.5]),
                      st.sampled_from(STRINGS), st.sampled_from([b"", b"a", b"ab"]), st.none())
small_values = st.one_of(scalars, st.lists(scalars, max_size=2),
                         st.dictionaries(st.sampled_from(KEYS), scalars, max_size=2))


@cache
def operator_maps(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.deferred(lambda: _operator_maps(depth))


def _operator_maps(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    ops: list[st.SearchStrategy[tuple[str, Any]]] = [
        st.tuples(st.sampled_from(["$eq", "$ne"]), small_values),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), rangeable),
        st.tuples(st.sampled_from(["$in", "$nin", "$all"]), st.lists(small_values, max_size=3)),
        st.tuples(st.just("$exists"), st.booleans()),
        st.tuples(st.just("$contains"), st.one_of(st.sampled_from(STRINGS), scalars)),
        st.tuples(st.just("$regex"), st.sampled_from(REGEXES)),
        st.tuples(st.just("$size"), st.integers(0, 3)),
    ]
    if depth > 0:
        ops.append(st.tuples(st.just("$not"), operator_maps(depth - 1)))
        ops.append(st.tuples(st.just("$elemMatch"), st.one_of(operator_maps(depth - 1),
                                                              queries(depth - 1, min_size=1))))
    return st.lists(st.one_of(ops), min_size=1, max_size=3, unique_by=lambda kv: kv[0]).map(dict)


@cache
def queries(depth: int = 2, min_size: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    return st.deferred(lambda: _queries(depth, min_size))


def _queries(depth: int, min_size: int) -> st.SearchStrategy[dict[str, Any]]:
    field = st.tuples(st.sampled_from(PATHS), st.one_of(small_values, operator_maps(depth)))
    items: list[st.SearchStrategy[tuple[str, Any]]] = [field]
    if depth > 0:
        items.append(st.tuples(st.sampled_from(["$and", "$or", "$nor"]),
                               st.lists(queries(depth - 1), min_size=1, max_size=3)))
    return st.lists(st.one_of(items), min_size=min_size, max_size=3,
                    unique_by=lambda kv: kv[0]).map(dict)


# ---------------------------------------------------------------- naive matcher
def kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return type(v).__name__


def same(x: Any, y: Any) -> bool:
    if kind(x) != kind(y):
        return False
    if isinstance(x, list):
        return len(x) == len(y) and all(same(p, q) for p, q in zip(x, y, strict=True))
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
    return bool(x == y)


def lookup(doc: Any, parts: list[str]) -> list[Any]:
    if not parts:
        return [doc]
    head, rest = parts[0], parts[1:]
    found: list[Any] = []
    if isinstance(doc, dict) and head in doc:
        found += lookup(doc[head], rest)
    if isinstance(doc, list):
        if head.isdigit() and int(head) < len(doc):
            found += lookup(doc[int(head)], rest)
        for e in doc:
            if isinstance(e, dict):
                found += lookup(e, parts)
    return found


def flat(values: list[Any]) -> list[Any]:
    out = list(values)
    for v in values:
        if isinstance(v, list):
            out += v
    return out


def naive_op(name: str, arg: Any, values: list[Any], ops: dict[str, Any]) -> bool:
    cands = flat(values)
    if name == "$eq":
        return any(same(c, arg) for c in cands) or (arg is None and not values)
    if name == "$ne":
        return not naive_op("$eq", arg, values, ops)
    if name in ("$gt", "$gte", "$lt", "$lte"):
        if arg is None:  # MongoDB: null is its own type bracket; $gte/$lte null mean $eq null
            return name in ("$gte", "$lte") and naive_op("$eq", None, values, ops)
        cmp = {"$gt": lambda c: c > arg, "$gte": lambda c: c >= arg,
               "$lt": lambda c: c < arg, "$lte": lambda c: c <= arg}[name]
        return any(kind(c) == kind(arg) and cmp(c) for c in cands)
    if name == "$in":
        return any(naive_op("$eq", a, values, ops) for a in arg)
    if name == "$nin":
        return not naive_op("$in", arg, values, ops)
    if name == "$all":
        return bool(arg) and all(naive_op("$eq", a, values, ops) for a in arg)
    if name == "$exists":
        return bool(values) == arg
    if name == "$contains":
        return any((isinstance(c, str) and isinstance(arg, str) and arg in c)
                   or (isinstance(c, list) and any(same(e, arg) for e in c)) for c in cands)
    if name == "$regex":
        flags = sum(getattr(re, o.upper()) for o in ops.get("$options", ""))
        return any(isinstance(c, str) and re.search(arg, c, flags) is not None for c in cands)
    if name == "$options":
        return True
    if name == "$size":
        return any(isinstance(v, list) and len(v) == arg for v in values)
    if name == "$not":
        return not naive_ops(arg, values)
    if name == "$elemMatch":
        is_ops = all(k.startswith("$") for k in arg) and not any(
            k in ("$and", "$or", "$nor") for k in arg)
        for v in values:
            if isinstance(v, list):
                for e in v:
                    if is_ops and naive_ops(arg, [e]):
                        return True
                    if not is_ops and isinstance(e, dict) and naive_match(arg, e):
                        return True
        return False
    raise AssertionError(name)


def naive_ops(ops: dict[str, Any], values: list[Any]) -> bool:
    return all(naive_op(k, v, values, ops) for k, v in ops.items())


def naive_match(query: dict[str, Any], doc: Any) -> bool:
    for key, arg in query.items():
        if key == "$and":
            ok = all(naive_match(q, doc) for q in arg)
        elif key == "$or":
            ok = any(naive_match(q, doc) for q in arg)
        elif key == "$nor":
            ok = not any(naive_match(q, doc) for q in arg)
        else:
            values = lookup(doc, key.split("."))
            if isinstance(arg, dict) and arg and all(k.startswith("$") for k in arg):
                ok = naive_ops(arg, values)
            else:
                ok = naive_op("$eq", arg, values, {})
        if not ok:
            return False
    return True
