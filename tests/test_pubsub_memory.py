"""A stranger pushing valid documents cannot make the router hold unbounded memory.

Documents wanted by no one are not kept (only their id); retained ones are
bounded in bytes; each neighbour has a budget of
documents and bytes, and one that keeps exceeding it, or sends invalid
documents, is disconnected.
"""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taiinet.overlay.actions import CloseLink, NeighborDown
from taiinet.overlay.messages import Gossip, Join
from taiinet.pubsub.actions import Deliver
from taiinet.pubsub.budget import PeerBudgetConfig, PeerBudgets, TokenBucket, Verdict
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE, SignedDocuments
from taiinet.pubsub.errors import PubsubUsageError
from taiinet.pubsub.messages import InterestAdvert
from taiinet.pubsub.query import Query
from taiinet.pubsub.tree.router import TreeRouter
from taiinet.v1 import pubsub_pb2, value_pb2
from taiinet.wire.envelope import Envelope
from taiinet.wire.identity import Identity

ME = Identity.from_seed(b"r" * 32)
MALLORY = Identity.from_seed(b"m" * 32)
ALICE = Identity.from_seed(b"a" * 32)
#: A large document that matches no one's interest (~50 KB signed).
JUNK = "j" * 50_000


def _seal(identity: Identity, document: Any, nonce: int) -> Gossip:
    payload = SignedDocuments(identity).seal(document, 60 * 1024, published_unix_ms=1,
                                             nonce=nonce)
    return Gossip(message_id=hashlib.sha256(payload).digest(), hops=1, payload=payload)


def _router(**config: Any) -> TreeRouter:
    """A node with neighbours "mallory", "alice" and "bob"; alice and bob are its
    children (tree links) and want topic=news."""
    router = TreeRouter(ME.peer_id, random.Random(0), SignedDocuments(ME),
                        PubsubConfig(**config))
    for peer in ("mallory", "alice", "bob"):
        router.handle_message(peer, Join(), 0.0)
    assert sorted(router.active_view) == ["alice", "bob", "mallory"]
    for peer in ("alice", "bob"):
        router.handle_message(peer, InterestAdvert(
            version=1, filters=(Query({"topic": "news"}),), tree_link=True), 0.0)
    return router


def _pushed_to(actions: list[Any]) -> set[str]:
    return {a.peer for a in actions if type(getattr(a, "message", None)) is Gossip}


def test_documents_wanted_by_no_one_are_not_kept() -> None:
    router = _router()
    tracemalloc.start()
    try:
        before, _peak = tracemalloc.get_traced_memory()
        for i in range(200):  # ~10 MB of valid documents, 10 per second
            actions = router.handle_message("mallory", _seal(MALLORY, {"junk": JUNK}, i),
                                            i / 10)
            assert _pushed_to(actions) == set()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert router.stats.accepted == router.stats.unwanted == 200
    assert router.document_bytes == 0 and len(router.retention) == 0  # ids only
    assert held < 1024 * 1024, f"{held} bytes held after 10 MB of unwanted documents"
    # A wanted document is retained and forwarded to the other child that wants it.
    news = _seal(ALICE, {"topic": "news", "body": JUNK}, 1)
    actions = router.handle_message("alice", news, 21.0)
    assert _pushed_to(actions) == {"bob"}  # mallory advertised nothing: wants nothing
    assert router.retention.get(news.message_id) is not None


def test_a_local_subscription_or_a_new_child_keeps_a_document() -> None:
    router = _router()
    router.subscribe("mine", {"kind": "rare"}, 0.0)
    actions = router.handle_message("mallory", _seal(MALLORY, {"kind": "rare"}, 1), 1.0)
    assert [a for a in actions if isinstance(a, Deliver)]
    # A retained document goes at once to a child whose interest widens to it.
    mid = _seal(MALLORY, {"kind": "rare"}, 1).message_id
    actions = router.handle_message("alice", InterestAdvert(
        version=2, filters=(Query({"kind": "rare"}),), tree_link=True), 1.5)
    assert [a.message.message_id for a in actions
            if type(getattr(a, "message", None)) is Gossip] == [mid]
    assert router.stats.unwanted == 0


def test_kept_documents_are_bounded_in_bytes() -> None:
    budget = 1024 * 1024
    router = _router(retention_bytes=budget)
    for i in range(100):  # ~5 MB that alice and bob want
        router.handle_message("mallory", _seal(MALLORY, {"topic": "news", "b": JUNK}, i),
                              i / 10)
        assert router.document_bytes <= budget
    assert router.document_bytes > budget // 2
    with pytest.raises(PubsubUsageError):
        PubsubConfig(retention_bytes=1000)


def test_a_peer_over_its_budget_is_dropped_then_disconnected() -> None:
    budget = PeerBudgetConfig(documents_per_second=10.0, document_burst=20.0,
                              offences_per_second=1.0, offence_burst=5.0)
    router = _router(budget=budget)
    documents = [_seal(MALLORY, {"topic": "news", "n": i}, i) for i in range(40)]
    results = [router.handle_message("mallory", d, 1.0) for d in documents[:25]]
    # The burst of 20 is admitted, the next 5 are dropped (one offence each)...
    assert all(_pushed_to(r) == {"alice", "bob"} for r in results[:20])
    assert results[20:] == [[]] * 5
    assert router.stats.over_budget == 5 and router.stats.disconnected == 0
    # ...and the sixth offence disconnects the peer.
    last = router.handle_message("mallory", documents[25], 1.0)
    assert CloseLink(peer="mallory", failed=True) in last
    assert NeighborDown(peer="mallory") in last
    assert "mallory" not in router.active_view
    assert router.stats.disconnected == 1
    # A well-behaved neighbour is not affected.
    fine = router.handle_message("alice", _seal(ALICE, {"topic": "news"}, 99), 1.0)
    assert _pushed_to(fine) == {"bob"}


def test_a_peer_sending_invalid_documents_is_disconnected() -> None:
    router = _router()
    bad = _empty_maps(MALLORY, 14_000)  # 56 KB, over the value limit
    verdicts = [router.handle_message("mallory", bad, 1.0 + i / 100) for i in range(6)]
    assert router.stats.rejected["invalid_document"] == 6
    assert CloseLink(peer="mallory", failed=True) in verdicts[-1]
    assert all(CloseLink(peer="mallory", failed=True) not in v for v in verdicts[:-1])


def _empty_maps(identity: Identity, count: int) -> Gossip:
    """A signed list of ``count`` empty maps (a stranger's own encoder)."""
    value = value_pb2.Value()
    for _ in range(count):
        value.list_value.values.add().map_value.SetInParent()
    published = pubsub_pb2.PublishedDocument(value=value.SerializeToString(),
                                             published_unix_ms=1, nonce=1)
    payload = Envelope.seal(identity, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE,
                            published.SerializeToString())
    return Gossip(message_id=hashlib.sha256(payload).digest(), hops=1, payload=payload)


def test_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=4.0, now=0.0)
    assert [bucket.take(1, 0.0) for _ in range(5)] == [True] * 4 + [False]
    assert bucket.take(1, 0.5) and not bucket.take(1, 0.5)
    assert bucket.take(4, 100.0) and not bucket.take(1, 100.0)


def test_budgets_count_bytes_and_forget_the_least_recent_peer() -> None:
    budgets = PeerBudgets(PeerBudgetConfig(byte_burst=1000.0, bytes_per_second=100.0))
    assert budgets.admit("p", 800, 0.0) is Verdict.ADMIT
    assert budgets.admit("p", 800, 0.0) is Verdict.DROP
    assert budgets.admit("p", 800, 6.0) is Verdict.ADMIT
    for i in range(2000):
        budgets.admit(f"q{i}", 1, 0.0)
    assert len(budgets) <= 1024
    with pytest.raises(PubsubUsageError):
        PubsubConfig(budget=PeerBudgetConfig(byte_burst=1000.0))


def test_a_document_over_one_budget_is_charged_to_neither() -> None:
    budgets = PeerBudgets(PeerBudgetConfig(document_burst=2.0, documents_per_second=1.0,
                                           byte_burst=1000.0, bytes_per_second=100.0))
    assert budgets.admit("p", 800, 0.0) is Verdict.ADMIT  # 1 document, 200 bytes left
    assert budgets.admit("p", 800, 0.0) is Verdict.DROP  # over the bytes: no document taken
    assert budgets.admit("p", 100, 0.0) is Verdict.ADMIT  # the last document
    assert budgets.admit("p", 1, 0.0) is Verdict.DROP  # over the documents: no byte taken
    assert budgets.admit("p", 100, 1.0) is Verdict.ADMIT  # 1 document back, 100 + 100 bytes
    assert budgets.admit("p", 200, 1.0) is Verdict.DROP  # only 100 + 100 - 100 = 100 left


@given(st.lists(st.tuples(st.floats(0.0, 0.5), st.integers(0, 70_000)), max_size=300))
def test_a_budget_never_admits_more_than_its_burst_plus_its_rate(
        arrivals: list[tuple[float, int]]) -> None:
    config = PeerBudgetConfig(documents_per_second=20.0, document_burst=40.0,
                              bytes_per_second=100_000.0, byte_burst=200_000.0)
    budgets = PeerBudgets(config)
    now, documents, size_sum = 0.0, 0, 0
    for gap, size in arrivals:
        now += gap
        if budgets.admit("p", size, now) is Verdict.ADMIT:
            documents += 1
            size_sum += size
    assert documents <= config.document_burst + config.documents_per_second * now + 1e-6
    assert size_sum <= config.byte_burst + config.bytes_per_second * now + 1e-6
