"""The query language: parsing, errors, limits, semantics, and differential tests."""

from __future__ import annotations

from functools import cache
from typing import Any

import mongoquery
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from query_support import REGEXES, STRINGS, documents, naive_match, queries

import taiinet
from taiinet.pubsub.query import InvalidQuery, Query, QueryLimits
from taiinet.pubsub.query.nodes import And, Compare, Field, Or

ORIGIN_QUERY = {"key": "value", "age": {"$gt": 4},
                "$and": [{"$or": [{"name": {"$contains": "b"}}, {"name": {"$contains": "a"}}]},
                         {"type": {"$in": [1, 4, 5]}}]}

# The recursive strategies have long reprs; hypothesis warns about printing them.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


def test_origin_example_matches_as_intended() -> None:
    q = taiinet.Query(ORIGIN_QUERY)
    doc = {"key": "value", "age": 5, "name": "aaa", "type": 4}
    assert q.matches(doc)
    assert not q.matches({**doc, "age": 4})
    assert not q.matches({**doc, "name": "ccc"})
    assert q.matches({**doc, "name": "cbc"})
    assert not q.matches({**doc, "type": 2})
    assert not q.matches({**doc, "key": "other"})
    assert not q.matches({k: v for k, v in doc.items() if k != "age"})


def test_implicit_equality_and_fields_parse_to_a_conjunction() -> None:
    q = Query({"a": 1, "b": {"$gt": 2}})
    assert q.ast == And(children=(Field(path="a", ops=(Compare(op="eq", value=1),)),
                                  Field(path="b", ops=(Compare(op="gt", value=2),))))
    assert Query({"$or": [{"a": 1}]}).ast == Or(children=(
        Field(path="a", ops=(Compare(op="eq", value=1),)),))


@pytest.mark.parametrize(("query", "doc", "expected"), [
    ({"a": 1}, {"a": [0, 1]}, True),                      # array element equality
    ({"a": [0, 1]}, {"a": [0, 1]}, True),                 # whole array equality
    ({"a": [1, 0]}, {"a": [0, 1]}, False),
    ({"a.b": 2}, {"a": [{"b": 1}, {"b": 2}]}, True),      # path through an array of maps
    ({"a.1": 5}, {"a": [4, 5]}, True),                    # numeric index
    ({"a": {"$ne": 1}}, {}, True),                        # $ne matches a missing field
    ({"a": {"$nin": [1]}}, {}, True),
    ({"a": None}, {}, True),                              # null matches missing
    ({"a": {"$gt": 1}}, {"a": "2"}, False),               # no cross-type comparison
    ({"a": {"$gt": "a"}}, {"a": "b"}, True),
    ({"a": 1}, {"a": True}, False),                       # booleans are not numbers
    ({"a": 1}, {"a": 1.0}, True),
    ({"a": {"$contains": "b"}}, {"a": "abc"}, True),      # substring
    ({"a": {"$contains": 2}}, {"a": [1, 2]}, True),       # array element
    ({"a": {"$contains": "b"}}, {"a": ["abc"]}, True),    # substring of an element
    ({"a": {"$contains": "b"}}, {"a": 5}, False),
    ({"a": {"$regex": "^A", "$options": "i"}}, {"a": "abc"}, True),
    ({"a": {"$all": [1, 2]}}, {"a": [2, 3, 1]}, True),
    ({"a": {"$all": []}}, {"a": [1]}, False),
    ({"a": {"$size": 2}}, {"a": [2, 3]}, True),
    ({"a": {"$elemMatch": {"$gt": 1, "$lt": 3}}}, {"a": [0, 4]}, False),
    ({"a": {"$gt": 1, "$lt": 3}}, {"a": [0, 4]}, True),   # per-operator any-element
    ({"a": {"$elemMatch": {"b": 1, "c": 2}}}, {"a": [{"b": 1}, {"b": 1, "c": 2}]}, True),
    ({"a": {"$not": {"$gt": 2}}}, {}, True),
    ({"$nor": [{"a": 1}, {"b": 1}]}, {"a": 2}, True),
    ({"a": {"$exists": False}}, {"a": None}, False),
    ({"a": {"b": 1}}, {"a": {"b": 1}}, True),             # embedded map equality
    ({}, {"anything": 1}, True),
    # Comparisons with null (MongoDB): null is a type bracket of its own, so
    # $gte/$lte null match null and a missing field, $gt/$lt null match nothing.
    ({"a": {"$gte": None}}, {}, True),
    ({"a": {"$gte": None}}, {"a": None}, True),
    ({"a": {"$lte": None}}, {"a": [1, None]}, True),
    ({"a": {"$lte": None}}, {"a": 0}, False),
    ({"a": {"$gte": None}}, {"a": False}, False),
    ({"a": {"$gt": None}}, {"a": None}, False),
    ({"a": {"$lt": None}}, {}, False),
    ({"a": {"$lt": None}}, {"a": -1}, False),
    ({"a": {"$not": {"$gt": None}}}, {"a": 1}, True),
    ({"a": {"$not": {"$gte": None}}}, {}, False),
    ({"a": {"$gte": None, "$lte": None}}, {"a": None}, True),
    ({"a": {"$elemMatch": {"$lte": None}}}, {"a": [1, None]}, True),
    ({"a": {"$elemMatch": {"$lt": None}}}, {"a": [None]}, False),
])
def test_semantics(query: dict[str, Any], doc: dict[str, Any], expected: bool) -> None:
    assert Query(query).matches(doc) is expected
    assert naive_match(query, doc) is expected


@pytest.mark.parametrize(("query", "path"), [
    ({"a": {"$foo": 1}}, "a.$foo"),
    ({"$and": [{"a": 1}, {"b": {"$in": 3}}]}, "$and.1.b.$in"),
    ({"$or": []}, "$or"),
    ({"$where": "x"}, "$where"),
    ({"a": {"$regex": "("}}, "a.$regex"),
    ({"a": {"$regex": 5}}, "a.$regex"),
    ({"a": {"$options": "i"}}, "a.$options"),
    ({"a": {"$regex": "a", "$options": "q"}}, "a.$regex.$options"),
    ({"a": {"$size": -1}}, "a.$size"),
    ({"a": {"$size": True}}, "a.$size"),
    ({"a": {"$exists": 1}}, "a.$exists"),
    ({"a": {"$gt": [1]}}, "a.$gt"),
    ({"a": {"$gt": {"b": None}}}, "a.$gt"),
    ({"a": {"$gt": 1, "b": 2}}, "a"),
    ({"a..b": 1}, "a..b"),
    ({"a.$b": 1}, "a.$b"),
    ({"a": {"$not": 1}}, "a.$not"),
    ({"a": {"$elemMatch": {}}}, "a.$elemMatch"),
    ({"a": float("nan")}, "a"),
    ({"a": 1 << 70}, "a"),
    ({"a": object()}, "a"),
    ({"a": "\ud800"}, "a"),
    ({"\ud800": 1}, "\ud800"),
    ({"a": {"$size": 1 << 64}}, "a.$size"),
])
def test_bad_queries_name_the_offending_path(query: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        Query(query)
    assert info.value.path == path
    assert isinstance(info.value, taiinet.LocalProtocolError)
    assert isinstance(info.value, ValueError)


def test_a_query_must_be_a_map() -> None:
    with pytest.raises(InvalidQuery):
        Query([1, 2])


def test_limits() -> None:
    deep: dict[str, Any] = {"a": 1}
    for _ in range(40):
        deep = {"$and": [deep]}
    with pytest.raises(InvalidQuery, match="deeper"):
        Query(deep)
    with pytest.raises(InvalidQuery, match="more than"):
        Query({"a": {"$in": list(range(2000))}})
    with pytest.raises(InvalidQuery, match="longer"):
        Query({"a": "x" * 2000})
    with pytest.raises(InvalidQuery, match="pattern longer"):
        Query({"a": {"$regex": "a" * 300}})
    small = QueryLimits(max_depth=4, max_nodes=5, max_string=4, max_regex=4)
    Query({"a": {"$in": [1, 2]}}, small)
    with pytest.raises(InvalidQuery):
        Query({"a": {"$in": [1, 2, 3, 4, 5]}}, small)
    with pytest.raises(InvalidQuery):
        Query({"abcde": 1}, small)
    with pytest.raises(InvalidQuery):
        Query({"a": {"$regex": "abcde"}}, small)
    with pytest.raises(InvalidQuery):
        Query({"a": [[[[1]]]]}, small)


def test_regex_runs_in_linear_time_engine() -> None:
    # A catastrophic pattern for a backtracking engine is instant on re2.
    q = Query({"a": {"$regex": "^(a+)+$"}})
    assert not q.matches({"a": "a" * 5000 + "!"})
    with pytest.raises(InvalidQuery):
        Query({"a": {"$regex": "(a)\\1"}})  # backreferences are not linear: re2 refuses


@given(queries())
def test_json_round_trip(query: dict[str, Any]) -> None:
    q = Query(query)
    again = Query(q.to_json())
    assert again == q
    assert again.to_json() == q.to_json()


@given(queries(), st.lists(documents, min_size=1, max_size=8))
def test_engine_agrees_with_naive_matcher(query: dict[str, Any], docs: list[Any]) -> None:
    q = Query(query)
    for doc in docs:
        assert q.matches(doc) == naive_match(query, doc), doc


# ---------------------------------------------------------------- against mongoquery
# mongoquery applies operators other than implicit equality to an array as a whole
# and compares with Python's rules (True == 1): the shared ground is documents of
# non-boolean scalars and nested maps, plus arrays of scalars under array operators.
mq_scalars = st.one_of(st.integers(-3, 3), st.sampled_from([-1.5, 0.5, 2.0]),
                       st.sampled_from(STRINGS))
mq_docs = st.fixed_dictionaries({}, optional={
    "a": st.one_of(mq_scalars, st.none()),
    "b": st.one_of(mq_scalars, st.dictionaries(st.sampled_from(["a", "c"]), mq_scalars,
                                               max_size=2)),
    "t": st.lists(mq_scalars, max_size=4),
})
mq_paths = st.sampled_from(["a", "b", "b.a", "b.c"])


@cache
def mq_value_ops(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    ops: list[st.SearchStrategy[tuple[str, Any]]] = [
        st.tuples(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), mq_scalars),
        st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(mq_scalars, max_size=3)),
        st.tuples(st.just("$regex"), st.sampled_from(REGEXES)),
    ]
    if depth:
        ops.append(st.tuples(st.just("$not"), mq_value_ops(depth - 1)))
    return st.lists(st.one_of(ops), min_size=1, max_size=2, unique_by=lambda kv: kv[0]).map(dict)


mq_array_ops = st.one_of(
    st.fixed_dictionaries({"$size": st.integers(0, 4)}),
    st.fixed_dictionaries({"$all": st.lists(mq_scalars, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"$elemMatch": mq_value_ops(0)}),
    st.fixed_dictionaries({"$in": st.lists(mq_scalars, max_size=3)}),
    st.fixed_dictionaries({"$nin": st.lists(mq_scalars, max_size=3)}),
    mq_scalars,
)


@cache
def mq_queries(depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    items: list[st.SearchStrategy[tuple[str, Any]]] = [
        st.tuples(mq_paths, st.one_of(mq_scalars, mq_value_ops(1))),
        st.tuples(st.sampled_from(["a", "b", "t"]),  # mongoquery loops on dotted $exists
                  st.fixed_dictionaries({"$exists": st.booleans()})),
        st.tuples(st.just("t"), mq_array_ops),
    ]
    if depth:
        items.append(st.tuples(st.sampled_from(["$and", "$or", "$nor"]),
                               st.lists(mq_queries(depth - 1), min_size=1, max_size=3)))
    return st.lists(st.one_of(items), max_size=3, unique_by=lambda kv: kv[0]).map(dict)


@settings(max_examples=200)
@given(mq_queries(), st.lists(mq_docs, min_size=1, max_size=8))
def test_engine_agrees_with_mongoquery(query: dict[str, Any], docs: list[Any]) -> None:
    q = Query(query)
    reference = mongoquery.Query(query)
    for doc in docs:
        assert q.matches(doc) == reference.match(doc), doc


# ---------------------------------------------------------------- null comparisons
# MongoDB (and this engine): ``{p: {$gte: null}}`` and ``{p: {$lte: null}}`` mean
# ``{p: null}``, which matches null and a missing field; ``$gt``/``$lt`` null
# match nothing.  mongoquery differs from MongoDB's documented semantics in two
# places, so the reference is given their documented equivalents instead:
# it answers False to every range comparison with None, and its ``{p: null}``
# does not match a missing field (MongoDB's does), so ``{p: null}`` is written
# for it as ``{$or: [{p: {$exists: false}}, {p: null}]}``.
NULL_RANGES = ["$gt", "$gte", "$lt", "$lte"]
null_comparisons = st.tuples(st.sampled_from(["a", "t"]),  # undotted: see mq_queries
                             st.sampled_from(NULL_RANGES).map(lambda op: {op: None}),
                             st.booleans())


def _mongo_meaning(path: str, op: str, negate: bool) -> dict[str, Any]:
    means_null = op in ("$gte", "$lte")
    positive: dict[str, Any] = ({"$or": [{path: {"$exists": False}}, {path: None}]}
                                if means_null else {path: {"$in": []}})
    return {"$nor": [positive]} if negate else positive


@cache
def null_queries(depth: int = 2) -> st.SearchStrategy[list[tuple[Any, Any]]]:
    """Pairs (our query, the reference's query) mixing null comparisons into mq_queries."""
    leaf = st.one_of(
        null_comparisons.map(lambda t: (
            {t[0]: {"$not": t[1]} if t[2] else t[1]},
            _mongo_meaning(t[0], next(iter(t[1])), t[2]))),
        mq_queries(0).map(lambda q: (q, q)),
    )
    if not depth:
        return st.lists(leaf, min_size=1, max_size=3)
    group = st.tuples(st.sampled_from(["$and", "$or", "$nor"]),
                      st.lists(null_queries(depth - 1), min_size=1, max_size=3)).map(
        lambda kv: ({kv[0]: [{"$and": [ours for ours, _ in part]} for part in kv[1]]},
                    {kv[0]: [{"$and": [ref for _, ref in part]} for part in kv[1]]}))
    return st.lists(st.one_of(leaf, group), min_size=1, max_size=3)


@settings(max_examples=300)
@given(null_queries(), st.lists(mq_docs, min_size=1, max_size=8))
def test_null_comparisons_agree_with_mongodb(parts: list[tuple[Any, Any]],
                                             docs: list[Any]) -> None:
    ours = Query({"$and": [q for q, _ in parts]})
    reference = mongoquery.Query({"$and": [r for _, r in parts]})
    for doc in docs:
        assert ours.matches(doc) == reference.match(doc), doc
        assert ours.matches(doc) == naive_match(ours.to_json(), doc), doc
