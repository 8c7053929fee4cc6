"""A node checks a document's signature at most once, and never its own.

The publisher seals its document and routes the opened document it sealed;
a copy of a seen id is only decoded again.  Every copy still has its
SHA-256 checked against its id first, so a tampered copy of a document
already taken is rejected, neither delivered nor forwarded.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from taiinet.overlay.actions import Send
from taiinet.overlay.messages import Gossip
from taiinet.pubsub.actions import Deliver
from taiinet.pubsub.broadcast import BroadcastRouter
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import OpenedDocument, SignedDocuments
from taiinet.pubsub.tree.router import TreeRouter
from taiinet.wire.identity import Identity

ALICE = Identity.from_seed(b"a" * 32)
BOB = Identity.from_seed(b"b" * 32)
RECEIVER = Identity.from_seed(b"r" * 32)

Router = TreeRouter | BroadcastRouter


class CountingDocuments(SignedDocuments):
    """``SignedDocuments`` that count signature checks (``open``) and re-decodes."""

    __slots__ = ("opened", "reopened")

    def __init__(self, identity: Identity) -> None:
        super().__init__(identity)
        self.opened = 0
        self.reopened = 0

    def open(self, payload: bytes) -> OpenedDocument:
        self.opened += 1
        return super().open(payload)

    def reopen(self, payload: bytes) -> OpenedDocument:
        self.reopened += 1
        return super().reopen(payload)


def _router(kind: str, identity: Identity) -> tuple[Router, CountingDocuments]:
    documents = CountingDocuments(identity)
    if kind == "tree":
        return TreeRouter(identity.peer_id, random.Random(1), documents, PubsubConfig()), documents
    return (BroadcastRouter(identity.peer_id, random.Random(1), documents,
                            PubsubConfig(routing=False)), documents)


def _gossip(payload: bytes, hops: int = 1) -> Gossip:
    return Gossip(message_id=hashlib.sha256(payload).digest(), hops=hops, payload=payload)


def _sealed(document: object, nonce: int = 1) -> bytes:
    return SignedDocuments(BOB).seal(document, 60 * 1024, published_unix_ms=7, nonce=nonce)


def _tampered(payload: bytes) -> bytes:
    """The payload with one bit of its signature (its last bytes) flipped."""
    return payload[:-1] + bytes([payload[-1] ^ 1])


@pytest.mark.parametrize("kind", ["tree", "broadcast"])
def test_a_publisher_does_not_verify_what_it_sealed(kind: str) -> None:
    router, documents = _router(kind, ALICE)
    router.subscribe("all", {}, 0.0)
    mid, actions = router.publish({"n": (1, 2), "s": "x"}, 1.0, published_unix_ms=5, nonce=3)
    assert documents.opened == 0 and documents.reopened == 0
    delivers = [a for a in actions if isinstance(a, Deliver)]
    assert len(delivers) == 1
    # What the publisher delivers is what a peer opening the payload gets.
    payload = SignedDocuments(ALICE).seal({"n": (1, 2), "s": "x"}, 60 * 1024,
                                          published_unix_ms=5, nonce=3)
    peer_view = SignedDocuments().open(payload)
    assert (delivers[0].document, delivers[0].publisher, delivers[0].published_unix_ms) == (
        peer_view.document, peer_view.publisher, peer_view.published_unix_ms)
    assert delivers[0].message_id == mid == hashlib.sha256(payload).digest()


@pytest.mark.parametrize("kind", ["tree", "broadcast"])
def test_a_copy_on_another_link_is_not_verified_again(kind: str) -> None:
    router, documents = _router(kind, RECEIVER)
    router.subscribe("all", {}, 0.0)
    payload = _sealed({"n": 1})
    first = router.handle_message("p1", _gossip(payload), 0.1)
    assert [a for a in first if isinstance(a, Deliver)]
    again = router.handle_message("p2", _gossip(payload, hops=2), 0.2)
    assert not [a for a in again if isinstance(a, Deliver)]
    assert documents.opened == 1 and documents.reopened == 0
    assert router.stats.duplicates == 1


def test_a_copy_taken_again_is_decoded_not_verified() -> None:
    """A document first dropped as unwanted, taken again once wanted."""
    router, documents = _router("tree", RECEIVER)
    payload = _sealed({"n": 1})
    assert router.handle_message("p1", _gossip(payload), 0.1) == []
    assert router.stats.unwanted == 1
    router.subscribe("all", {}, 0.2)
    got = router.handle_message("p2", _gossip(payload, hops=2), 0.3)
    delivers = [a for a in got if isinstance(a, Deliver)]
    assert [(d.document, d.publisher) for d in delivers] == [({"n": 1}, BOB.peer_id)]
    assert documents.opened == 1 and documents.reopened == 1


# wanted_first=False: first taken unwanted (not kept), so a copy would be taken again;
# the broadcast router has no such case (it takes every document).
@pytest.mark.parametrize("kind, wanted_first", [("tree", True), ("tree", False),
                                                ("broadcast", True)])
def test_a_tampered_copy_of_a_taken_document_is_rejected(kind: str,
                                                         wanted_first: bool) -> None:
    router, documents = _router(kind, RECEIVER)
    if wanted_first:
        router.subscribe("all", {}, 0.0)
    payload = _sealed({"n": 1})
    router.handle_message("p1", _gossip(payload), 0.1)
    if not wanted_first:
        router.subscribe("all", {}, 0.15)
    # Same id, altered bytes: the id check rejects it before any duplicate test.
    forged = Gossip(message_id=hashlib.sha256(payload).digest(), hops=1,
                    payload=_tampered(payload))
    actions = router.handle_message("p2", forged, 0.2)
    assert not [a for a in actions if isinstance(a, Deliver)]
    assert not [a for a in actions if isinstance(a, Send) and isinstance(a.message, Gossip)]
    assert router.stats.rejected["id_mismatch"] == 1
    assert documents.reopened == 0
    # With its own id it is a new document, and its signature is checked.
    before = documents.opened
    actions = router.handle_message("p2", _gossip(_tampered(payload)), 0.3)
    assert not [a for a in actions if isinstance(a, Deliver)]
    assert router.stats.rejected["invalid_envelope"] == 1
    assert documents.opened == before + 1
