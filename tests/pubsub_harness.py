"""A small in-memory network of pubsub router cores for tests (seeded, simulated time),
on the simulator's one harness (``taiinet.sim.harness``)."""

from __future__ import annotations

import random
from collections.abc import Hashable
from typing import Any

from taiinet.overlay.config import HyParViewConfig
from taiinet.overlay.core import OverlayConfig
from taiinet.pubsub.actions import Action, Deliver
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import DocumentCodec, SignedDocuments, UnsignedDocuments
from taiinet.pubsub.factory import Router, make_router
from taiinet.sim.events import EventLoop
from taiinet.sim.harness import Harness
from taiinet.sim.network import LinkModel, sim_peer_ids
from taiinet.sim.pubsub import wire_decode, wire_encode
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import plain_key


class PubsubNet:
    """``n`` routers joined in a chain of contacts; every message goes through the codecs."""

    def __init__(self, n: int, seed: int = 0, *, signed: bool = False,
                 config: PubsubConfig | None = None, active_size: int = 3,
                 wire: bool = True, link: LinkModel | None = None, late: int = 0) -> None:
        self.rng = random.Random(seed)
        self.loop = EventLoop()
        self.wire = wire
        self.publications = 0
        self.harness: Harness[Router] = Harness(
            self.loop, random.Random(seed + 1), link or LinkModel(median_delay=0.02),
            on_event=self._on_event, encode=wire_encode if wire else None,
            decode=wire_decode if wire else None)
        self.network = self.harness.network
        self.ids = sim_peer_ids(n)
        overlay = OverlayConfig(membership=HyParViewConfig(active_size=active_size,
                                                           passive_size=8))
        self.routers: dict[str, Router] = self.harness.cores
        self.identities: dict[str, Identity] = {}
        for i, peer in enumerate(self.ids):
            documents: DocumentCodec
            if signed:
                identity = Identity.from_seed(bytes([i + 1]) * 32)
                self.identities[peer] = identity
                documents = SignedDocuments(identity)
            else:
                documents = UnsignedDocuments(peer)
            self.routers[peer] = make_router(peer, random.Random(seed * 1000 + i), documents,
                                              config, overlay)
        #: (node, message id, subscription ids) delivered, in order, and the
        #: documents apart (``deliveries`` zips them): the garbage collector
        #: untracks a tuple of atoms, never one holding a dict (a document) or a
        #: ``PeerId`` (the node is its plain ``str``), and benches on this
        #: harness (bench/hotpath.py) count its full collections in their CPU.
        self._delivered: list[tuple[str, bytes, tuple[Hashable, ...]]] = []
        self._documents: list[Any] = []
        #: Nodes started (the last ``late`` wait for ``start_late``).
        self.started = n - late
        for i, peer in enumerate(self.ids[:self.started]):
            self.apply(peer, self.routers[peer].start(0.0))
            if i:
                self.apply(peer, self.routers[peer].join(self.ids[self.rng.randrange(i)], 0.0))

    def start_late(self) -> str:
        """Start the next late node and join it through a random started one."""
        peer = self.ids[self.started]
        contact = self.ids[self.rng.randrange(self.started)]
        while contact in self.network.crashed:
            contact = self.ids[self.rng.randrange(self.started)]
        self.started += 1
        now = self.loop.now
        self.apply(peer, self.routers[peer].start(now))
        self.apply(peer, self.routers[peer].join(contact, now))
        return peer

    def apply(self, node: str, actions: list[Action]) -> list[Action]:
        self.harness.apply(node, actions)
        return actions

    def _on_event(self, node: str, action: Any) -> None:
        if isinstance(action, Deliver):
            self._delivered.append((plain_key(node), action.message_id,
                                    action.subscription_ids))
            self._documents.append(action.document)

    @property
    def deliveries(self) -> list[tuple[str, bytes, tuple[Hashable, ...], Any]]:
        """(node, message id, subscription ids, document) delivered, in order."""
        return [(node, mid, subs, doc)
                for (node, mid, subs), doc in zip(self._delivered, self._documents,
                                                          strict=True)]

    @property
    def delivered(self) -> int:
        """Deliveries so far (``len(deliveries)`` without building the list)."""
        return len(self._delivered)

    # --- test inputs ----------------------------------------------------------

    def run(self, seconds: float) -> None:
        self.loop.run(until=self.loop.now + seconds)

    def subscribe(self, node: str, sub_id: Hashable, query: Any) -> None:
        self.apply(node, self.routers[node].subscribe(sub_id, query, self.loop.now))

    def unsubscribe(self, node: str, sub_id: Hashable) -> None:
        self.apply(node, self.routers[node].unsubscribe(sub_id, self.loop.now))

    def publish(self, node: str, document: Any) -> bytes:
        # The nonce is a counter: the routers' seeded rngs stay the overlay's alone.
        self.publications += 1
        message_id, actions = self.routers[node].publish(document, self.loop.now,
                                                         nonce=self.publications)
        self.apply(node, actions)
        return message_id

    def deliveries_of(self, message_id: bytes) -> dict[str, tuple[Hashable, ...]]:
        out: dict[str, tuple[Hashable, ...]] = {}
        for node, mid, subs in self._delivered:
            if mid == message_id:
                assert node not in out, f"{node} got {message_id.hex()} twice"
                out[node] = subs
        return out
