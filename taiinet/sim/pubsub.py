"""Simulation of content-based routing (the stable tree) at thousands of nodes.

Scenario: every node subscribes, for each of ``topics`` topics, with
probability ``interest`` to ``{"topic": t}``; nodes join one by one through a
random live contact; the overlay and the interest adverts settle; ``warmup``
publications (not measured) let the trees settle; then ``messages``
documents ``{"topic": t, "seq": i, "body": ...}`` with a random topic are
published from random live nodes, ``message_interval`` apart.  Optionally a
share ``fail`` of the nodes crashes halfway through the measured
publications, and a share ``late`` of the nodes joins only during the
measured phase, each publishing one document as soon as it has joined
(``late_publish_after`` seconds later: a one-shot publisher, as ``taiinet
pub``), counted like the others.  Every node runs the real router
(``make_router``: the stable tree, or plain Plumtree broadcast for
``routing=False``, with the real ``Overlay``); documents use
``UnsignedDocuments`` (no signature: the routing is the same, the crypto is
measured elsewhere) unless ``signed`` is set.

Per publication it counts: deliveries to the application at nodes that
subscribed to its topic (the expected ones: live subscribers when it was
sent), false deliveries (a ``Deliver`` at a node without a matching
subscription - must be 0), payload messages (``Gossip`` received), ``IHave``,
and the other control messages (Graft, Prune, membership, interest adverts)
during the measured phase; membership (HyParView) traffic is counted apart,
it is the same with or without routing.  Same config, same seed: same result.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from taiinet.errors import LocalProtocolError
from taiinet.overlay import codec as overlay_codec
from taiinet.overlay.core import OverlayConfig
from taiinet.overlay.messages import Gossip, Graft, IHave, Prune
from taiinet.pubsub import codec as pubsub_codec
from taiinet.pubsub.actions import Action, Deliver
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import DocumentCodec, SignedDocuments, UnsignedDocuments
from taiinet.pubsub.factory import Router, make_router
from taiinet.pubsub.messages import InterestAdvert
from taiinet.sim.events import EventLoop
from taiinet.sim.harness import Harness, Progress
from taiinet.sim.network import LinkModel, sim_peer_ids
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

__all__ = ["Progress", "PubsubSimConfig", "PubsubSimResult", "simulate", "simulate_pubsub"]


def wire_encode(message: Any) -> tuple[bool, bytes]:
    """(is pubsub, bytes): a frame says which layer its body belongs to."""
    if isinstance(message, InterestAdvert):
        return True, pubsub_codec.encode(message)
    return False, overlay_codec.encode(message)


def wire_decode(data: tuple[bool, bytes]) -> Any:
    is_pubsub, body = data
    return pubsub_codec.decode(body) if is_pubsub else overlay_codec.decode(body)


@dataclass(frozen=True, slots=True, kw_only=True)
class PubsubSimConfig:
    nodes: int = 1000
    #: Probability that a node subscribes to a given topic (so the expected
    #: share of nodes interested in each publication).
    interest: float = 0.1
    topics: int = 10
    messages: int = 20
    warmup: int = 10
    seed: int = 0
    #: Share of the nodes that crash halfway through the measured publications.
    fail: float = 0.0
    #: Share of the nodes that join during the measured phase and publish at once.
    late: float = 0.0
    late_publish_after: float = 0.2
    join_interval: float = 0.01
    stabilize: float = 30.0
    message_interval: float = 1.0
    body_size: int = 200
    link: LinkModel = field(default_factory=LinkModel)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    pubsub: PubsubConfig = field(default_factory=PubsubConfig)
    #: Sign and verify every document with Ed25519 (slower).
    signed: bool = False
    #: Encode and decode every message through protobuf (slower).
    wire_codec: bool = False

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise LocalProtocolError("a simulation needs at least 2 nodes")
        if not 0.0 <= self.interest <= 1.0:
            raise LocalProtocolError("--interest must be in [0, 1]")
        if not 0.0 <= self.fail < 1.0:
            raise LocalProtocolError("--fail must be in [0, 1)")
        if not 0.0 <= self.late < 1.0 or self.late_publish_after < 0:
            raise LocalProtocolError("--late must be in [0, 1)")
        if self.topics < 1 or self.messages < 0 or self.warmup < 0 or self.body_size < 0:
            raise LocalProtocolError("topics >= 1, messages, warmup and body size >= 0")


@dataclass(slots=True)
class PublicationResult:
    index: int
    topic: int
    expected: int
    delivered: int = 0
    false_deliveries: int = 0
    duplicate_deliveries: int = 0
    payloads: int = 0
    ihaves: int = 0
    #: Nodes that received the payload without wanting it (relays).
    relays: int = 0
    #: When it was published; deliveries to nodes that joined later are not
    #: counted as expected ones (``late_subscriber_deliveries``).
    sent_at: float = 0.0
    late_subscriber_deliveries: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PubsubSimResult:
    config: PubsubSimConfig
    publications: list[PublicationResult]
    #: Membership (HyParView) messages received during the measured phase.
    control_messages: int
    #: Graft and Prune messages received during the measured phase.
    tree_control_messages: int
    #: Interest adverts received during the measured phase, and in the whole run.
    adverts_measured: int
    adverts_total: int
    rejected: int
    events: int
    simulated_seconds: float

    def summary(self) -> dict[str, Any]:
        pubs = self.publications
        expected = sum(p.expected for p in pubs)
        delivered = sum(p.delivered for p in pubs)
        payloads = sum(p.payloads for p in pubs)
        ihaves = sum(p.ihaves for p in pubs)
        per = max(delivered, 1)
        count = max(len(pubs), 1)
        return {
            "nodes": self.config.nodes,
            "interest": self.config.interest,
            "routing": "interest" if self.config.pubsub.routing else "broadcast",
            "messages": len(pubs),
            "seed": self.config.seed,
            "expected_deliveries": expected,
            "delivered": delivered,
            "delivery_ratio": round(delivered / expected, 6) if expected else 1.0,
            "false_deliveries": sum(p.false_deliveries for p in pubs),
            "duplicate_deliveries": sum(p.duplicate_deliveries for p in pubs),
            "late_subscriber_deliveries": sum(p.late_subscriber_deliveries for p in pubs),
            "payloads_per_publication": round(payloads / count, 2),
            "ihaves_per_publication": round(ihaves / count, 2),
            "adverts_per_publication": round(self.adverts_measured / count, 2),
            "tree_control_per_publication": round(self.tree_control_messages / count, 2),
            "membership_per_publication": round(self.control_messages / count, 2),
            "payloads_per_delivery": round(payloads / per, 3),
            "routing_control_per_delivery": round(
                (ihaves + self.tree_control_messages + self.adverts_measured) / per, 3),
            "relays_per_publication": round(sum(p.relays for p in pubs) / count, 2),
            "adverts_total": self.adverts_total,
            "rejected": self.rejected,
            "events": self.events,
            "simulated_seconds": round(self.simulated_seconds, 3),
        }


class PubsubSimulation:
    """A scenario on the harness: one content router (with its ``Overlay``) per node."""

    def __init__(self, config: PubsubSimConfig) -> None:
        self.config = config
        master = random.Random(config.seed)
        self.rng = random.Random(master.getrandbits(64))
        self.loop = EventLoop()
        coded = config.wire_codec
        self.harness: Harness[Router] = Harness(
            self.loop, random.Random(master.getrandbits(64)), config.link,
            on_event=self._on_event, on_message=self._count,
            encode=wire_encode if coded else None, decode=wire_decode if coded else None)
        self.network = self.harness.network
        self.ids = sim_peer_ids(config.nodes)
        interest_rng = random.Random(master.getrandbits(64))
        #: Ground truth: the topics each node subscribes to.
        self.topics_of: dict[PeerId, frozenset[int]] = {
            peer: frozenset(t for t in range(config.topics)
                            if interest_rng.random() < config.interest)
            for peer in self.ids
        }
        self.routers = self.harness.cores
        for peer in self.ids:
            documents: DocumentCodec
            if config.signed:
                identity = Identity.from_seed(hashlib.sha256(peer.encode()).digest())
                documents = SignedDocuments(identity)
            else:
                documents = UnsignedDocuments(peer)
            self.routers[peer] = make_router(peer, random.Random(master.getrandbits(64)),
                                             documents, config.pubsub, config.overlay)
        self.joined: list[PeerId] = []
        self._joined_at: dict[PeerId, float] = {}
        late = round(config.late * config.nodes)
        #: Nodes that join during the measured phase (the last ones).
        self.late_ids = self.ids[config.nodes - late:] if late else []
        self.live: list[PeerId] = self.ids[:config.nodes - late]
        self._by_id: dict[bytes, PublicationResult] = {}
        self._received: dict[bytes, set[PeerId]] = {}
        self._delivered_at: dict[bytes, set[PeerId]] = {}
        self.publications: list[PublicationResult] = []
        self._measuring = False
        self._control = 0
        self._tree_control = 0
        self._adverts_measured = 0
        self._adverts_total = 0
        self._next_index = 0

    # --- driving the cores ------------------------------------------------------

    def _apply(self, node: PeerId, actions: list[Action]) -> None:
        self.harness.apply(node, actions)

    def _on_event(self, node: PeerId, action: Any) -> None:
        if type(action) is Deliver:
            self._on_deliver(node, action)

    def _on_deliver(self, node: PeerId, action: Deliver) -> None:
        pub = self._by_id.get(action.message_id)
        if pub is None:
            return
        seen = self._delivered_at.setdefault(action.message_id, set())
        if node in seen:
            pub.duplicate_deliveries += 1
            return
        seen.add(node)
        if self._joined_at.get(node, 0.0) > pub.sent_at:
            pub.late_subscriber_deliveries += 1
        elif pub.topic in self.topics_of[node]:
            pub.delivered += 1
        else:
            pub.false_deliveries += 1

    def _count(self, src: PeerId, dst: PeerId, message: Any) -> None:
        kind = type(message)
        if kind is Gossip:
            pub = self._by_id.get(message.message_id)
            if pub is not None:
                pub.payloads += 1
                got = self._received.setdefault(message.message_id, set())
                if dst not in got:
                    got.add(dst)
                    if pub.topic not in self.topics_of[dst]:
                        pub.relays += 1
        elif kind is IHave:
            pub = self._by_id.get(message.message_id)
            if pub is not None:
                pub.ihaves += 1
        elif kind is InterestAdvert:
            self._adverts_total += 1
            if self._measuring:
                self._adverts_measured += 1
        elif self._measuring:
            if kind is Graft or kind is Prune:
                self._tree_control += 1
            else:
                self._control += 1

    def _join(self, node: PeerId) -> None:
        now = self.loop.now
        self._joined_at[node] = now
        router = self.routers[node]
        for topic in sorted(self.topics_of[node]):
            self._apply(node, router.subscribe(f"t{topic}", {"topic": topic}, now))
        self._apply(node, router.start(now))
        if self.joined:
            contact = self.joined[self.rng.randrange(len(self.joined))]
            self._apply(node, router.join(contact, now))
        self.joined.append(node)

    def _join_late(self, node: PeerId) -> None:
        self._join(node)
        self.live.append(node)
        self.loop.schedule(self.loop.now + self.config.late_publish_after, self._publish, True,
                           node)

    def _publish(self, measured: bool, origin: PeerId | None = None) -> None:
        cfg = self.config
        index = self._next_index
        self._next_index += 1
        if origin is None:
            origin = self.live[self.rng.randrange(len(self.live))]
        topic = self.rng.randrange(cfg.topics)
        document = {"topic": topic, "seq": index, "body": "x" * cfg.body_size}
        if measured:
            self._measuring = True
        router = self.routers[origin]
        expected = sum(1 for n in self.live if topic in self.topics_of[n])
        pub = PublicationResult(index=index, topic=topic, expected=expected,
                                sent_at=self.loop.now)
        # The nonce is the publication's index: the routers' seeded rngs stay
        # the overlay's alone, so a seed gives the same run as before.
        message_id, actions = router.publish(document, self.loop.now, nonce=index)
        self._by_id[message_id] = pub
        if measured:
            self.publications.append(pub)
        self._apply(origin, actions)

    def _crash(self) -> None:
        count = round(self.config.fail * len(self.ids))
        victims = self.rng.sample(self.live, count)
        for node in victims:
            self.network.crash(node)
        dead = set(victims)
        self.live = [n for n in self.live if n not in dead]

    # --- the scenario ------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> PubsubSimResult:
        cfg = self.config
        loop = self.loop
        early = len(self.ids) - len(self.late_ids)
        for i, node in enumerate(self.ids[:early]):
            loop.schedule(i * cfg.join_interval, self._join, node)
        at = early * cfg.join_interval + cfg.stabilize
        for _ in range(cfg.warmup):
            loop.schedule(at, self._publish, False)
            at += cfg.message_interval
        # Let the adverts that follow the tree's formation settle.
        at += 5.0
        half = cfg.messages // 2
        measured_from = at
        for i, node in enumerate(self.late_ids):
            spread = cfg.messages * cfg.message_interval / max(len(self.late_ids), 1)
            loop.schedule(measured_from + (i + 0.5) * spread, self._join_late, node)
        for index in range(cfg.messages):
            if index == half and cfg.fail > 0:
                loop.schedule(at, self._crash)
                at += cfg.message_interval
            loop.schedule(at, self._publish, True)
            at += cfg.message_interval
        end = at + 5.0
        self.harness.run(end, progress)
        rejected = sum(sum(r.stats.rejected.values()) for r in self.routers.values())
        return PubsubSimResult(
            config=cfg, publications=self.publications, control_messages=self._control,
            tree_control_messages=self._tree_control,
            adverts_measured=self._adverts_measured, adverts_total=self._adverts_total,
            rejected=rejected, events=loop.events_run, simulated_seconds=end)


def simulate(config: PubsubSimConfig, progress: Progress | None = None) -> PubsubSimResult:
    """Run one pubsub simulation scenario."""
    return PubsubSimulation(config).run(progress)


#: The name ``taiinet.sim`` exports.
simulate_pubsub = simulate
