# taiinet: sans-io core
"""Interest summaries: the filters a node advertises, canonical and bounded.

``Summarizer.summary(queries)`` merges ``{p: v}`` / ``{p: {$in: [...]}}`` on one
path into one sorted ``$in`` (exact and canonical, so the same interest always
gives the same advert), then widens with the query engine's ``summarize``
until at most ``max_filters`` remain; ``{}`` among the inputs gives ``{}``.
Results are memoised by their inputs' ``node_key`` set: adverts are
recomputed after every change and mostly come out the same.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from taiinet.pubsub.query import Query
from taiinet.pubsub.query.cover import MAX_MERGED_IN, summarize
from taiinet.pubsub.query.nodes import MATCH_ALL, Compare, Field, In, node_key
from taiinet.pubsub.query.values import value_key

#: Summaries memoised by their inputs.
SUMMARY_CACHE_SIZE = 256
MATCH_ALL_QUERY = Query.from_ast(MATCH_ALL)
MATCH_ALL_KEY = node_key(MATCH_ALL)

#: (``node_key``, query) pairs: keys are costly, so computed once.
Keyed = tuple[tuple[Any, Query], ...]


class Summarizer:
    """``summarize`` of distinct queries (by ``node_key``), memoised, with their keys."""

    __slots__ = ("_cache", "max_filters")

    def __init__(self, max_filters: int) -> None:
        self.max_filters = max_filters
        self._cache: OrderedDict[frozenset[Any], Keyed] = OrderedDict()

    def summary(self, unique: dict[Any, Query]) -> Keyed:
        if not unique:
            return ()
        if MATCH_ALL_KEY in unique:
            return ((MATCH_ALL_KEY, MATCH_ALL_QUERY),)
        key = frozenset(unique)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        merged = merge_equalities(list(unique.values()))
        result = tuple((q.key, q) for q in summarize(merged, self.max_filters))
        self._cache[key] = result
        if len(self._cache) > SUMMARY_CACHE_SIZE:
            self._cache.popitem(last=False)
        return result


def merge_equalities(queries: list[Query]) -> list[Query]:
    """Merge ``{p: v}`` / ``{p: {$in: [...]}}`` queries on one path into one sorted ``$in``.

    Exact (the union matches the same documents) and canonical, so summaries
    built from the same interest in any order compare equal and do not churn.
    """
    groups: dict[str, list[Any]] = {}
    rest: list[Query] = []
    for query in queries:
        ast = query.ast
        if isinstance(ast, Field) and len(ast.ops) == 1:
            op = ast.ops[0]
            if isinstance(op, Compare) and op.op == "eq":
                groups.setdefault(ast.path, []).append(op.value)
                continue
            if isinstance(op, In) and not op.negate:
                groups.setdefault(ast.path, []).extend(op.values)
                continue
        rest.append(query)
    for path, values in groups.items():
        unique = {value_key(v): v for v in values}
        if len(unique) > MAX_MERGED_IN:
            rest.extend(Query.from_ast(Field(path=path, ops=(In(values=(v,)),)))
                        for v in unique.values())
            continue
        try:
            ordered = [unique[k] for k in sorted(unique)]
        except TypeError:
            ordered = [unique[k] for k in sorted(unique, key=repr)]
        op = (Compare(op="eq", value=ordered[0]) if len(ordered) == 1
              else In(values=tuple(ordered)))
        rest.append(Query.from_ast(Field(path=path, ops=(op,))))
    return rest
