"""Unit tests of the pubsub routers: delivery, interest routing, verification."""

from __future__ import annotations

import hashlib
import random

import pytest

from taiinet.core.actions import SetTimer
from taiinet.overlay.messages import Gossip
from taiinet.pubsub.actions import Deliver, InterestTimer
from taiinet.pubsub.broadcast import BroadcastRouter
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import (
    DOCUMENT_DOMAIN,
    DOCUMENT_PAYLOAD_TYPE,
    SignedDocuments,
)
from taiinet.pubsub.errors import PubsubUsageError
from taiinet.pubsub.messages import InterestAdvert
from taiinet.pubsub.query import Query, document_to_value
from taiinet.pubsub.tree.router import TreeRouter
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


def signed_router(identity: Identity = ALICE, **config: object) -> TreeRouter:
    return TreeRouter(identity.peer_id, random.Random(1), SignedDocuments(identity),
                        PubsubConfig(**config))  # type: ignore[arg-type]


def test_publisher_own_matching_subscriptions_get_the_document_once() -> None:
    router = signed_router()
    router.subscribe("cheap", {"price": {"$lt": 10}}, 0.0)
    router.subscribe("all", {}, 0.0)
    router.subscribe("other", {"kind": "car"}, 0.0)
    message_id, actions = router.publish({"price": 5, "kind": "bike"}, 1.0)
    delivers = [a for a in actions if isinstance(a, Deliver)]
    assert len(delivers) == 1
    assert set(delivers[0].subscription_ids) == {"cheap", "all"}
    assert delivers[0].publisher == ALICE.peer_id
    assert delivers[0].document == {"price": 5, "kind": "bike"}
    assert delivers[0].message_id == message_id
    assert router.stats.delivered == 1


def test_no_deliver_action_without_a_matching_subscription() -> None:
    router = signed_router()
    router.subscribe("cars", {"kind": "car"}, 0.0)
    _mid, actions = router.publish({"kind": "bike"}, 0.0)
    assert not [a for a in actions if isinstance(a, Deliver)]


def test_invalid_inputs_are_usage_errors() -> None:
    with pytest.raises(PubsubUsageError):
        PubsubConfig(advert_delay=0.0)
    router = signed_router(max_document_bytes=200)
    with pytest.raises(PubsubUsageError):
        router.subscribe("bad", {"$frobnicate": 1}, 0.0)
    with pytest.raises(PubsubUsageError):
        router.publish({"body": "x" * 500}, 0.0)
    anonymous = TreeRouter("p", random.Random(0), SignedDocuments())
    with pytest.raises(PubsubUsageError):
        anonymous.publish({"a": 1}, 0.0)


def test_subscription_change_arms_one_coalesced_advert_timer() -> None:
    router = signed_router()
    first = router.subscribe("a", {"x": 1}, 0.0)
    second = router.subscribe("b", {"x": 2}, 0.01)
    assert first == [SetTimer(at=0.0 + router.config.advert_delay, timer=InterestTimer())]
    assert second == []


def _gossip(payload: bytes) -> Gossip:
    return Gossip(message_id=hashlib.sha256(payload).digest(), hops=1, payload=payload)


def _receiver() -> TreeRouter:
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
    assert not router.retention.seen(message.message_id)
    # The genuine document still gets through afterwards.
    actions = router.handle_message("peer", _gossip(payload), 2.0)
    assert [a for a in actions if isinstance(a, Deliver)]


def test_small_network_routes_only_to_interested_nodes() -> None:
    net = PubsubNet(12, seed=3)
    net.subscribe(net.ids[5], "s", {"topic": "a"})
    net.subscribe(net.ids[9], "s", {"topic": "a"})
    net.subscribe(net.ids[2], "s", {"topic": "b"})
    net.run(20.0)
    mid = net.publish(net.ids[7], {"topic": "a"})
    net.run(5.0)
    assert net.deliveries_of(mid) == {net.ids[5]: ("s",), net.ids[9]: ("s",)}
    mid = net.publish(net.ids[2], {"topic": "b"})
    net.run(5.0)
    assert net.deliveries_of(mid) == {net.ids[2]: ("s",)}


def test_each_publication_of_an_equal_document_is_its_own_message() -> None:
    router = signed_router()
    router.subscribe("all", {}, 0.0)
    first = router.publish({"a": 1}, 0.0, published_unix_ms=7, nonce=1)
    again = router.publish({"a": 1}, 1.0, published_unix_ms=7, nonce=2)
    assert first.id != again.id
    for _mid, actions in (first, again):
        delivers = [a for a in actions if isinstance(a, Deliver)]
        assert [(d.document, d.published_unix_ms, d.hops) for d in delivers] == [({"a": 1}, 7, 0)]
    # The same nonce and time make the same envelope (Ed25519 is deterministic).
    assert router.publish({"a": 1}, 2.0, published_unix_ms=7, nonce=1).id == first.id


def test_plain_broadcast_reaches_every_node_and_only_matching_subscriptions() -> None:
    net = PubsubNet(10, seed=2, config=PubsubConfig(routing=False))
    assert all(isinstance(r, BroadcastRouter) for r in net.routers.values())
    net.subscribe(net.ids[4], "s", {"topic": "a"})
    net.subscribe(net.ids[6], "s", {"topic": "b"})
    net.run(10.0)
    mid = net.publish(net.ids[1], {"topic": "a"})
    net.run(5.0)
    assert net.deliveries_of(mid) == {net.ids[4]: ("s",)}
    # Every node got the payload (no interest routing), and adverts are ignored.
    assert all(r.overlay.broadcast_core.has_seen(mid) for r in net.routers.values())
    router = net.routers[net.ids[1]]
    assert router.handed_to(mid)  # ``pub`` waits for this
    advert = InterestAdvert(version=1, filters=(Query({"x": 1}),))
    assert router.handle_message(net.ids[2], advert, 20.0) == []
