"""covers() is sound and summarize() covers every input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from query_support import documents, naive_match, queries

from taiinet.errors import LocalProtocolError
from taiinet.pubsub.query import Query, covers, summarize

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

# One path, many operator kinds and few values, so containment is often decidable.
x_values = st.one_of(st.integers(0, 4), st.sampled_from([1.0, 2.5, True, "a", "ab", "b"]))
x_ops = st.one_of(
    x_values,
    st.fixed_dictionaries({"$in": st.lists(x_values, min_size=1, max_size=3)}),
    st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
                    st.one_of(x_values, st.none()), min_size=1, max_size=2),
    st.fixed_dictionaries({"$eq": st.none()}),
    st.fixed_dictionaries({"$exists": st.booleans()}),
    st.fixed_dictionaries({"$contains": st.sampled_from(["a", "b", "ab"])}),
    st.fixed_dictionaries({"$all": st.lists(x_values, min_size=1, max_size=2)}),
    st.fixed_dictionaries({"$ne": x_values}),
    st.fixed_dictionaries({"$size": st.integers(0, 2)}),
)
x_queries = st.recursive(
    st.dictionaries(st.sampled_from(["x", "y"]), x_ops, min_size=1, max_size=2),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda qs: {"$or": qs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda qs: {"$and": qs}),
    ),
    max_leaves=4,
)
x_docs = st.fixed_dictionaries({}, optional={
    "x": st.one_of(x_values, x_values, st.none(), st.lists(
        st.one_of(x_values, st.none(), st.lists(x_values, max_size=2)), max_size=3)),
    "y": st.one_of(x_values, st.none())})
any_docs = st.lists(st.one_of(x_docs, x_docs, documents), min_size=1, max_size=12)


def check_sound(a: dict[str, Any], b: dict[str, Any], docs: list[Any]) -> bool:
    verdict = covers(Query(a), Query(b))
    if verdict:
        for doc in docs:
            if naive_match(b, doc):
                assert naive_match(a, doc), (a, b, doc)
    return verdict


@settings(max_examples=150)
@given(x_queries, x_queries, st.lists(x_docs, min_size=10, max_size=20))
def test_covers_is_sound(a: dict[str, Any], b: dict[str, Any], docs: list[Any]) -> None:
    check_sound(a, b, docs)


@given(st.one_of(queries(1), x_queries), st.one_of(queries(1), x_queries), any_docs)
def test_covers_is_sound_on_narrowed_queries(a: dict[str, Any], extra: dict[str, Any],
                                             docs: list[Any]) -> None:
    assert check_sound(a, {"$and": [a, extra]}, docs)
    assert check_sound({"$or": [extra, a]}, a, docs)


@pytest.mark.parametrize(("a", "b", "expected"), [
    ({"a": {"$gt": 1}}, {"a": {"$gt": 2}}, True),
    ({"a": {"$gt": 2}}, {"a": {"$gt": 1}}, False),
    ({"a": {"$gte": 2}}, {"a": {"$gt": 2}}, True),
    ({"a": {"$gt": 2}}, {"a": {"$gte": 2}}, False),
    ({"a": {"$in": [1, 2]}}, {"a": 1}, True),
    ({"a": {"$in": [1, 2]}}, {"a": {"$in": [2, 1]}}, True),
    ({"a": 1}, {"a": True}, False),
    ({"a": {"$gt": 0, "$lt": 10}}, {"a": {"$in": [1, 5]}}, True),
    ({"a": {"$gt": 0, "$lt": 10}}, {"a": {"$in": [1, 50]}}, False),
    ({"a": {"$exists": True}}, {"a": {"$regex": "x"}}, True),
    ({"a": {"$exists": True}}, {"a": {"$ne": 1}}, False),
    ({}, {"anything": {"$regex": "x"}}, True),
    ({"a": 1}, {"a": 1, "b": 2}, True),
    ({"a": 1, "b": 2}, {"a": 1}, False),
    ({"$or": [{"a": 1}, {"b": 2}]}, {"b": 2, "c": 3}, True),
    ({"a": 1}, {"$or": [{"a": 1, "b": 1}, {"a": 1, "c": 1}]}, True),
    ({"a": {"$contains": "b"}}, {"a": "abc"}, True),
    ({"a": {"$contains": "b"}}, {"a": {"$contains": "abc"}}, False),  # nested arrays
    ({"z": 1}, {"a": {"$in": []}}, True),  # b matches nothing
    ({"a": {"$gte": None}}, {"a": None}, True),  # $gte/$lte null mean $eq null
    ({"a": None}, {"a": {"$lte": None}}, True),
    ({"a": {"$in": [None, 1]}}, {"a": {"$gte": None}}, True),
    ({"a": {"$exists": True}}, {"a": {"$gte": None}}, False),
    ({"z": 1}, {"a": {"$lt": None}}, True),  # $gt/$lt null match nothing
    ({"a": {"$gt": None}}, {"a": 1}, False),
    ({"a": {"$gt": 1}}, {"a": {"$gt": None}}, True),
])
def test_covers_examples(a: dict[str, Any], b: dict[str, Any], expected: bool) -> None:
    assert covers(Query(a), Query(b)) is expected


@settings(max_examples=100)
@given(st.lists(st.one_of(x_queries, queries(1)), min_size=1, max_size=12),
       st.integers(1, 4), any_docs)
def test_summary_covers_every_input(qs: list[dict[str, Any]], max_filters: int,
                                    docs: list[Any]) -> None:
    summary = summarize([Query(q) for q in qs], max_filters)
    assert 1 <= len(summary) <= max_filters
    for doc in docs:
        if any(naive_match(q, doc) for q in qs):
            assert any(s.matches(doc) for s in summary), doc


def test_summary_widens_by_shape() -> None:
    qs = [Query({"kind": k}) for k in "abc"] + [Query({"price": {"$gt": p}}) for p in (5, 7)]
    summary = summarize(qs, 2)
    assert {s.to_json().__repr__() for s in summary} == {
        repr({"kind": {"$in": ["a", "b", "c"]}}), repr({"price": {"$gt": 5}})}
    assert summarize(qs, 10) == [qs[0], qs[1], qs[2], qs[3]]  # {"price" > 7} is covered
    assert summarize([Query({"a": 1}), Query({"b": 1})], 1) == [Query({})]
    with pytest.raises(LocalProtocolError):
        summarize(qs, 0)


@settings(max_examples=200)
@given(st.dictionaries(st.just("x"), x_ops, min_size=1), st.dictionaries(st.just("x"), x_ops,
       min_size=1), st.lists(x_docs, min_size=10, max_size=20))
def test_covers_is_sound_on_one_field(a: dict[str, Any], b: dict[str, Any],
                                      docs: list[Any]) -> None:
    check_sound(a, b, docs)
