"""The subscription index agrees with the naive matcher, through adds and removes."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule
from query_support import documents, naive_match, queries

import taiinet
from taiinet.pubsub.query.index import IndexFull, SubscriptionIndex

# The recursive strategies have long reprs; hypothesis warns about printing them.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


# scan_limit=0: the counting index itself; 12: few enough subscriptions are scanned.
@pytest.mark.parametrize("scan_limit", [0, 12])
@given(st.lists(queries(), min_size=1, max_size=12), st.lists(documents, min_size=1, max_size=6))
def test_index_agrees_with_naive_matcher(scan_limit: int, qs: list[dict[str, Any]],
                                         docs: list[Any]) -> None:
    index = SubscriptionIndex(scan_limit=scan_limit)
    for i, q in enumerate(qs):
        index.add(i, q)
    for doc in docs:
        expected = {i for i, q in enumerate(qs) if naive_match(q, doc)}
        assert index.match(doc) == expected, doc
        assert index.candidates(doc) >= expected


# Queries the index can use (equality, $in, ranges, $or of them) meet documents of
# numbers and strings often, so the lookups, not the fallback scan, are tested.
idx_values = st.one_of(st.integers(0, 6), st.sampled_from([1.5, 4.0]),
                       st.sampled_from(["a", "b", "c"]))
idx_docs = st.fixed_dictionaries({}, optional={
    "x": st.one_of(idx_values, st.lists(idx_values, max_size=3)),
    "y": idx_values,
    "z": st.fixed_dictionaries({"w": idx_values}),
})
idx_field = st.tuples(
    st.sampled_from(["x", "y", "z.w"]),
    st.one_of(
        idx_values,
        st.fixed_dictionaries({"$in": st.lists(idx_values, max_size=3)}),
        st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), idx_values,
                        min_size=1, max_size=2),
        st.fixed_dictionaries({"$all": st.lists(idx_values, max_size=2)}),
    ))
idx_queries = st.recursive(
    st.lists(idx_field, min_size=1, max_size=3, unique_by=lambda kv: kv[0]).map(dict),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda qs: {"$or": qs}),
        st.tuples(inner, idx_field).map(lambda t: {"$and": [t[0], dict([t[1]])]}),
    ),
    max_leaves=5,
)


@settings(max_examples=120)
@given(st.lists(idx_queries, min_size=1, max_size=20), st.lists(idx_docs, min_size=1, max_size=6))
def test_index_agrees_on_indexable_queries(qs: list[dict[str, Any]], docs: list[Any]) -> None:
    index = SubscriptionIndex(scan_limit=0)
    for i, q in enumerate(qs):
        index.add(i, q)
    assert not index._always, "these queries should all be indexed"
    for doc in docs:
        assert index.match(doc) == {i for i, q in enumerate(qs) if naive_match(q, doc)}, doc


class IndexMachine(RuleBasedStateMachine):
    """Random adds, replacements and removes; the index always answers like the model."""

    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        self.index = SubscriptionIndex(scan_limit=0)
        self.model: dict[int, dict[str, Any]] = {}

    @rule(target=ids, sub_id=st.integers(0, 8), query=st.one_of(idx_queries, queries(1)))
    def add(self, sub_id: int, query: dict[str, Any]) -> int:
        self.index.add(sub_id, query)
        self.model[sub_id] = query
        return sub_id

    @rule(sub_id=ids)
    def remove(self, sub_id: int) -> None:
        self.index.remove(sub_id)
        self.model.pop(sub_id, None)

    @rule(doc=st.one_of(idx_docs, documents))
    def match(self, doc: dict[str, Any]) -> None:
        expected = {i for i, q in self.model.items() if naive_match(q, doc)}
        assert self.index.match(doc) == expected

    @invariant()
    def sizes_agree(self) -> None:
        assert len(self.index) == len(self.model)
        if not self.model:
            assert not self.index._paths and not self.index._clause_sub


TestIndexMachine = IndexMachine.TestCase
TestIndexMachine.settings = settings(max_examples=40, stateful_step_count=30)


def test_origin_example_through_the_index() -> None:
    index = taiinet.SubscriptionIndex()
    index.add("origin", {"key": "value", "age": {"$gt": 4}, "$and": [
        {"$or": [{"name": {"$contains": "b"}}, {"name": {"$contains": "a"}}]},
        {"type": {"$in": [1, 4, 5]}}]})
    index.add("other", {"age": {"$lt": 3}})
    assert index.match({"key": "value", "age": 5, "name": "aaa", "type": 4}) == {"origin"}
    assert index.match({"age": 2}) == {"other"}


def test_index_is_bounded() -> None:
    index = SubscriptionIndex(max_subscriptions=2, scan_limit=0)
    index.add(1, {"a": 1})
    index.add(2, {"a": 2})
    index.add(2, {"a": 3})  # replacing is always allowed
    with pytest.raises(IndexFull):
        index.add(3, {"a": 4})
    assert index.match({"a": 3}) == {2}


def test_candidates_come_from_the_index() -> None:
    index = SubscriptionIndex(scan_limit=0)
    for i in range(100):
        index.add(i, {"a": i, "b": {"$gte": i}})
    assert index.candidates({"a": 7, "b": 0}) == {7}
    assert index.match({"a": 7, "b": 0}) == set()
    assert index.match({"a": 7, "b": 9}) == {7}


def test_exact_clauses_answer_without_the_matcher() -> None:
    index = SubscriptionIndex(scan_limit=0)
    index.add("eq", {"a": 1, "b": "x"})
    index.add("dup-in", {"a": {"$in": [1, 1.0]}, "b": 5})
    index.add("range", {"c": {"$gte": 1, "$lt": 3}})
    index.add("mixed", {"a": 1, "c": {"$gt": 0}})  # the range is checked by the matcher
    assert sum(r is None for _, r in index._direct.values()) == 3
    assert index.match({"a": 1, "b": "x", "c": 2}) == {"eq", "range", "mixed"}
    assert index.match({"a": 1, "b": 6, "c": 3}) == {"mixed"}
    assert index.match({"a": 1.0, "b": 5, "c": 0}) == {"dup-in"}
    assert index.match({"a": [1, 2], "b": ["x"], "c": [0, 5]}) == {"eq", "range", "mixed"}


def test_regex_sets_survive_rebuilds() -> None:
    rng = random.Random(7)
    letters = "abc"
    index = SubscriptionIndex(scan_limit=0)
    model: dict[int, dict[str, Any]] = {}
    words = ["".join(rng.choice(letters) for _ in range(4)) for _ in range(50)]
    for step in range(300):
        sub_id = rng.randrange(60)
        if rng.random() < 0.3:
            index.remove(sub_id)
            model.pop(sub_id, None)
        else:
            pattern = "".join(rng.choice(letters) for _ in range(2))
            query = {"w": {"$regex": rng.choice([f"^{pattern}", f"{pattern}$", pattern])}}
            index.add(sub_id, query)
            model[sub_id] = query
        if step % 10 == 0:
            for word in words[:10]:
                doc = {"w": word}
                assert index.match(doc) == {i for i, q in model.items() if naive_match(q, doc)}
