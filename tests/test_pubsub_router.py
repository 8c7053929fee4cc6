"""Unit tests of the pubsub router: delivery, interest routing, verification."""

from __future__ import annotations

import hashlib
import random

import pytest

from taiinet.overlay.messages import Gossip, IHave
from taiinet.pubsub.actions import (
    Deliver,
    InterestTimer,
    Published,
    SendInterest,
    SetInterestTimer,
)
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import (
    DOCUMENT_DOMAIN,
    DOCUMENT_PAYLOAD_TYPE,
    SignedDocuments,
    UnsignedDocuments,
)
from taiinet.pubsub.errors import PubsubUsageError
from taiinet.pubsub.messages import InterestAdvert
from taiinet.pubsub.query import Query, document_to_value
from taiinet.pubsub.router import PubsubRouter
from taiinet.v1 import pubsub_pb2
from taiinet.wire.envelope import Envelope
from taiinet.wire.identity import Identity
from tests.pubsub_harness import PubsubNet

ALICE = Identity.from_seed(b"a" * 32)
MALLORY = Identity.from_seed(b"m" * 32)


def _published(document: object, published_unix_ms: int = 1234, nonce: int = 9) -> bytes:
    """A ``PublishedDocument`` payload, built by hand (the wire format, not the codec)."""
    return pubsub_pb2.PublishedDocument(value=document_to_value(document),
                                        published_unix_ms=published_unix_ms,
                                        nonce=nonce).SerializeToString()


def signed_router(identity: Identity = ALICE, **config: object) -> PubsubRouter:
    return PubsubRouter(identity.peer_id, random.Random(1), SignedDocuments(identity),
                        PubsubConfig(**config))  # type: ignore[arg-type]


def test_publisher_own_matching_subscriptions_get_the_document_once() -> None:
    router = signed_router()
    router.subscribe("cheap", {"price": {"$lt": 10}}, 0.0)
    router.subscribe("all", {}, 0.0)
    router.subscribe("other", {"kind": "car"}, 0.0)
    actions = router.publish({"price": 5, "kind": "bike"}, 1.0)
    assert isinstance(actions[0], Published)
    delivers = [a for a in actions if isinstance(a, Deliver)]
    assert len(delivers) == 1
    assert set(delivers[0].subscription_ids) == {"cheap", "all"}
    assert delivers[0].publisher == ALICE.peer_id
    assert delivers[0].document == {"price": 5, "kind": "bike"}
    assert delivers[0].message_id == actions[0].message_id
    assert router.stats.delivered == 1


def test_no_deliver_action_without_a_matching_subscription() -> None:
    router = signed_router()
    router.subscribe("cars", {"kind": "car"}, 0.0)
    actions = router.publish({"kind": "bike"}, 0.0)
    assert not [a for a in actions if isinstance(a, Deliver)]


def test_invalid_inputs_are_usage_errors() -> None:
    with pytest.raises(PubsubUsageError):
        PubsubConfig(root_advert_interval=-1.0)
    router = signed_router(max_document_bytes=200)
    with pytest.raises(PubsubUsageError):
        router.subscribe("bad", {"$frobnicate": 1}, 0.0)
    with pytest.raises(PubsubUsageError):
        router.publish({"body": "x" * 500}, 0.0)
    anonymous = PubsubRouter("p", random.Random(0), SignedDocuments())
    with pytest.raises(PubsubUsageError):
        anonymous.publish({"a": 1}, 0.0)


def test_subscription_change_arms_one_coalesced_advert_timer() -> None:
    router = signed_router()
    first = router.subscribe("a", {"x": 1}, 0.0)
    second = router.subscribe("b", {"x": 2}, 0.01)
    assert [type(a) for a in first] == [SetInterestTimer]
    assert second == []


def _gossip(payload: bytes) -> Gossip:
    return Gossip(message_id=hashlib.sha256(payload).digest(), hops=1, payload=payload)


def _receiver() -> PubsubRouter:
    router = signed_router(Identity.from_seed(b"r" * 32), max_document_bytes=2048)
    router.subscribe("all", {}, 0.0)
    return router


def test_a_valid_signed_document_from_a_peer_is_delivered() -> None:
    router = _receiver()
    payload = Envelope.seal(MALLORY, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE,
                            _published({"a": 1}))
    actions = router.handle_message("peer", _gossip(payload), 1.0)
    delivers = [a for a in actions if isinstance(a, Deliver)]
    assert [(d.publisher, d.document, d.published_unix_ms) for d in delivers] == [
        (MALLORY.peer_id, {"a": 1}, 1234)]
    assert router.stats.accepted == 1
    assert sum(router.stats.rejected.values()) == 0


@pytest.mark.parametrize("mutate, reason", [
    ("tamper", "invalid_envelope"),
    ("unsigned", "invalid_envelope"),
    ("wrong_domain", "invalid_envelope"),
    ("oversized", "oversized"),
    ("id", "id_mismatch"),
    ("not_a_value", "invalid_document"),
])
def test_bad_documents_are_dropped_and_counted(mutate: str, reason: str) -> None:
    router = _receiver()
    value = _published({"a": 1})
    payload = Envelope.seal(MALLORY, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE, value)
    message = _gossip(payload)
    if mutate == "tamper":
        index = payload.index(value) + len(value) - 1
        message = _gossip(payload[:index] + bytes([payload[index] ^ 1]) + payload[index + 1:])
    elif mutate == "unsigned":
        message = _gossip(value)
    elif mutate == "wrong_domain":
        message = _gossip(Envelope.seal(MALLORY, "other-domain", DOCUMENT_PAYLOAD_TYPE, value))
    elif mutate == "oversized":
        big = _published({"a": "x" * 3000})
        message = _gossip(Envelope.seal(MALLORY, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE, big))
    elif mutate == "id":
        message = Gossip(message_id=b"\x00" * 32, hops=1, payload=payload)
    elif mutate == "not_a_value":
        message = _gossip(Envelope.seal(MALLORY, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE,
                                        b"\xff\xff\xff"))
    actions = router.handle_message("peer", message, 1.0)
    assert actions == []
    assert router.stats.rejected[reason] == 1
    assert not router.overlay.broadcast_core.has_seen(message.message_id)
    # The genuine document still gets through afterwards.
    actions = router.handle_message("peer", _gossip(payload), 2.0)
    assert [a for a in actions if isinstance(a, Deliver)]


def test_forward_filter_follows_the_advertised_interest() -> None:
    router = PubsubRouter("me", random.Random(0), UnsignedDocuments("me"))
    for peer in ("a", "b"):
        router.overlay.broadcast_core.neighbor_up(peer, 0.0)
        router.overlay.membership.join(peer, 0.0)  # (a neighbour of both layers)
    router.handle_message("a", InterestAdvert(version=1, filters=(Query({"x": 1}),),
                                              tree_link=True), 0.0)
    actions = router.publish({"x": 2}, 1.0)
    pushed = {a.peer for a in actions if hasattr(a, "peer") and not isinstance(a, SendInterest)}
    # "a" does not want x=2; "b" has not advertised yet, so it gets everything.
    assert pushed == {"b"}
    actions = router.publish({"x": 1}, 2.0)
    pushed = {a.peer for a in actions if hasattr(a, "peer") and not isinstance(a, SendInterest)}
    assert pushed == {"a", "b"}


def test_small_network_routes_only_to_interested_nodes() -> None:
    net = PubsubNet(12, seed=3)
    net.subscribe(net.ids[5], "s", {"topic": "a"})
    net.subscribe(net.ids[9], "s", {"topic": "a"})
    net.subscribe(net.ids[2], "s", {"topic": "b"})
    net.run(20.0)
    for i in range(5):  # warm up: Plumtree prunes its tree
        net.publish(net.ids[0], {"topic": "z", "i": i})
        net.run(2.0)
    mid = net.publish(net.ids[7], {"topic": "a"})
    net.run(5.0)
    assert net.deliveries_of(mid) == {net.ids[5]: ("s",), net.ids[9]: ("s",)}
    mid = net.publish(net.ids[2], {"topic": "b"})
    net.run(5.0)
    assert net.deliveries_of(mid) == {net.ids[2]: ("s",)}


def _eager_components(net: PubsubNet) -> list[set[str]]:
    adjacency: dict[str, set[str]] = {p: set() for p in net.ids}
    for node, router in net.routers.items():
        for peer in router.overlay.broadcast_core.eager:
            adjacency[node].add(peer)
            adjacency[peer].add(node)
    seen: set[str] = set()
    parts = []
    for start in net.ids:
        if start in seen:
            continue
        part, stack = {start}, [start]
        while stack:
            for peer in adjacency[stack.pop()]:
                if peer not in part:
                    part.add(peer)
                    stack.append(peer)
        seen |= part
        parts.append(part)
    return parts


def test_a_split_tree_heals_and_documents_cross_it() -> None:
    net = PubsubNet(16, seed=5)
    for node in net.ids:
        net.subscribe(node, "s", {"topic": "t"})
    net.run(10.0)
    for i in range(6):  # Plumtree prunes its tree down
        net.publish(net.ids[i], {"topic": "t", "i": i})
        net.run(2.0)
    assert len(_eager_components(net)) == 1
    # Cut every eager link of p3 (as crossing Prunes could), without telling anyone.
    victim = net.routers[net.ids[3]].overlay.broadcast_core
    for peer in list(victim.eager):
        other = net.routers[peer].overlay.broadcast_core
        del victim.eager[peer]
        victim.lazy[peer] = None
        other.eager.pop(net.ids[3], None)
        other.lazy[net.ids[3]] = None
    assert len(_eager_components(net)) > 1
    net.run(15.0)  # keep-alive ticks notice the change; roots differ; a lazy link is grafted
    assert len(_eager_components(net)) == 1
    assert sum(r.stats.heals for r in net.routers.values()) >= 1
    mid = net.publish(net.ids[9], {"topic": "t", "i": 99})
    net.run(5.0)
    assert set(net.deliveries_of(mid)) == set(net.ids)


def test_each_publication_of_an_equal_document_is_its_own_message() -> None:
    router = signed_router()
    router.subscribe("all", {}, 0.0)
    first = router.publish({"a": 1}, 0.0, published_unix_ms=7, nonce=1)
    again = router.publish({"a": 1}, 1.0, published_unix_ms=7, nonce=2)
    assert first[0] != again[0]
    for actions in (first, again):
        delivers = [a for a in actions if isinstance(a, Deliver)]
        assert [(d.document, d.published_unix_ms, d.hops) for d in delivers] == [({"a": 1}, 7, 0)]
    # The same nonce and time make the same envelope (Ed25519 is deterministic).
    assert router.publish({"a": 1}, 2.0, published_unix_ms=7, nonce=1)[0] == first[0]


def test_the_router_keeps_one_shared_tree_for_interest_to_follow() -> None:
    """Per-origin trees would carry documents off the links interest was advertised on."""
    from taiinet.overlay.config import PlumtreeConfig
    from taiinet.overlay.core import OverlayConfig
    from taiinet.pubsub.documents import UnsignedDocuments

    config = OverlayConfig(broadcast=PlumtreeConfig(origin_trees=64, flood_prefix=2))
    router = PubsubRouter("a", random.Random(1), UnsignedDocuments("a"), overlay_config=config)
    assert router.overlay.broadcast_core.config.origin_trees == 0
    assert router.overlay.broadcast_core.config.flood_prefix == 0


def _two_neighbour_router(**config: object) -> PubsubRouter:
    router = PubsubRouter("me", random.Random(0), UnsignedDocuments("me"),
                          PubsubConfig(first_advert_grace=0.0, **config))  # type: ignore[arg-type]
    for peer in ("a", "b"):
        router.overlay.broadcast_core.neighbor_up(peer, 0.0)
        router.overlay.membership.join(peer, 0.0)  # (a neighbour of both layers)
        router.handle_message(peer, InterestAdvert(version=1, filters=(), tree_link=True), 0.0)
    return router


def _advert(router: PubsubRouter, peer: str, version: int, now: float, *queries: object) -> list:
    return router.handle_message(peer, InterestAdvert(
        version=version, filters=tuple(Query(q) for q in queries), tree_link=True), now)


def _ihaves(actions: list) -> list[tuple[str, bytes, int]]:
    return [(a.peer, a.message.message_id, a.message.hops) for a in actions
            if type(getattr(a, "message", None)) is IHave]


def _sent_to(actions: list) -> set[str]:
    return {a.peer for a in actions if type(getattr(a, "message", None)) is Gossip}


def test_a_document_published_in_an_interest_gap_is_caught_up_when_interest_widens() -> None:
    router = _two_neighbour_router(catch_up_recent=0.0)
    _advert(router, "a", 2, 10.0, {"x": 1})
    before = router.publish({"x": 1, "n": 0}, 11.0)  # steady: goes to "a"
    assert _sent_to(before) == {"a"}
    # "a" drops {"x": 1} and no other link carries it: a gap opens.
    _advert(router, "a", 3, 12.0)
    stopped = router.publish({"x": 1, "n": 1}, 12.1)
    assert _sent_to(stopped) == set()
    other = router.publish({"x": 2}, 12.2)
    # The interest reappears behind "b": the stopped document is announced, with
    # its hop count; the steady one (it went to "a") and the non-matching one are not.
    actions = _advert(router, "b", 2, 12.4, {"x": 1})
    assert _ihaves(actions) == [("b", stopped[0].message_id, 1)]
    assert router.stats.caught_up == 1
    # Announced once: a later widening does not repeat it; x=2 matched no
    # dropped interest (it went nowhere because nobody wanted it), so it is
    # not announced either.
    assert other[0].message_id != stopped[0].message_id
    assert _ihaves(_advert(router, "b", 3, 12.5, {"x": 1}, {"x": 2})) == []


def test_without_a_gap_a_widening_announces_only_recent_documents() -> None:
    router = _two_neighbour_router(catch_up_recent=0.5)
    _advert(router, "a", 2, 10.0, {"x": 1})
    old = router.publish({"x": 1, "n": 0}, 11.0)
    young = router.publish({"y": 1}, 11.8)
    assert _sent_to(old) == {"a"} and _sent_to(young) == set()
    # "b" widens at 12.0: the young document (0.2 s) may have met interest in
    # transit and is announced; "a" still carries x=1, so nothing else is.
    actions = _advert(router, "b", 2, 12.0, {"y": 1}, {"x": 1})
    assert _ihaves(actions) == [("b", young[0].message_id, 1)]
    # Off: no announcement at all.
    router = _two_neighbour_router(catch_up_limit=0)
    young = router.publish({"y": 1}, 11.8)
    assert _ihaves(_advert(router, "b", 2, 12.0, {"y": 1})) == []


def _interest_sent(actions: list) -> dict[str, SendInterest]:
    return {a.peer: a for a in actions if type(a) is SendInterest}


def test_adverts_that_only_move_the_healing_root_are_paced_and_lazy() -> None:
    router = _two_neighbour_router(root_advert_interval=0.5)
    router.handle_message("a", InterestAdvert(version=2, filters=(), tree_link=True,
                                              root="0", root_distance=0), 10.0)
    first = _interest_sent(router.handle_timer(InterestTimer(), 10.05))["b"]
    assert (first.advert.root, first.advert.root_distance, first.lazy) == ("0", 1, False)
    # Only the root's distance moves: the advert to "b" waits for the interval.
    router.handle_message("a", InterestAdvert(version=3, filters=(), tree_link=True,
                                              root="0", root_distance=2), 10.1)
    held = router.handle_timer(InterestTimer(), 10.15)
    assert "b" not in _interest_sent(held)
    timers = [a for a in held if type(a) is SetInterestTimer and a.timer.root_only]
    assert [t.at for t in timers] == [pytest.approx(10.55)]
    late = _interest_sent(router.handle_timer(timers[0].timer, 10.55))["b"]
    assert (late.advert.root_distance, late.lazy) == (3, True)
    # A change of interest is neither held nor lazy.
    _advert(router, "a", 4, 10.6, {"x": 1})
    changed = _interest_sent(router.handle_timer(InterestTimer(), 10.65))["b"]
    assert changed.lazy is False and changed.advert.filters == (Query({"x": 1}),)
