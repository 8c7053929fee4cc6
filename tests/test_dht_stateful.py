"""Stateful model of one Kademlia core driven by arbitrary peers and timers.

The model tracks what the core must guarantee whatever the order of inputs:
bounded tables, answered requests, record versions that never go backwards,
and lookups that always end.
"""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from taiinet.core import Send
from taiinet.signal.dht import DhtConfig, KademliaNode
from taiinet.signal.dht_types import (
    Contact,
    DhtMessage,
    DhtRecord,
    FindNode,
    FindValue,
    LookupFinished,
    Nodes,
    Ping,
    Pong,
    Store,
    StoreResult,
)
from taiinet.signal.ids import id_bytes
from taiinet.sim.dht import sim_peer_id
from tests.dht_harness import Timers, contact_of

PEERS = [Contact(peer_id=sim_peer_id(random.Random(i)), address=f"sim://{i}") for i in range(30)]
KEYS = [id_bytes(i * 7919) for i in range(4)]


class KademliaMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.config = DhtConfig(k=4, alpha=2, max_records=3, max_lookups=4,
                                max_pending_requests=20, request_timeout=1.0,
                                maintenance_interval=5.0, refresh_interval=20.0)
        self.node = KademliaNode(local=Contact(peer_id=sim_peer_id(random.Random(-1)),
                                               address="sim://me"),
                                 rng=random.Random(0), now=0.0, config=self.config)
        self.now = 0.0
        self.timers = Timers()
        self.outbox: list[Send[DhtMessage]] = []
        self.open_lookups: set[int] = set()
        self.best_seq: dict[bytes, int] = {}
        self.feed(self.node.start(0.0))

    def feed(self, actions: list[object]) -> None:
        self.timers.collect(actions)
        for action in actions:
            if isinstance(action, Send):
                self.outbox.append(action)
            elif isinstance(action, LookupFinished):
                assert action.lookup_id in self.open_lookups
                self.open_lookups.discard(action.lookup_id)
                assert len(action.closest) <= self.config.k

    @rule(peer=st.sampled_from(PEERS))
    def learn(self, peer: Contact) -> None:
        self.feed(self.node.add_contact(peer, self.now))

    @precondition(lambda self: self.node.active_lookups < 4)  # max_lookups
    @rule(goal=st.integers(0, 2**256 - 1), want_value=st.booleans())
    def lookup(self, goal: int, want_value: bool) -> None:
        lookup_id, actions = self.node.start_lookup(id_bytes(goal), self.now,
                                                    want_value=want_value)
        self.open_lookups.add(lookup_id)
        self.feed(actions)

    @precondition(lambda self: bool(self.outbox))
    @rule(index=st.integers(0, 100), peers=st.lists(st.sampled_from(PEERS), max_size=6))
    def answer(self, index: int, peers: list[Contact]) -> None:
        send = self.outbox.pop(index % len(self.outbox))
        message = send.message
        if isinstance(message, FindNode | FindValue):
            reply: object = Nodes(request_id=message.request_id, contacts=tuple(peers))
        elif isinstance(message, Store):
            reply = StoreResult(request_id=message.request_id, stored=True)
        elif isinstance(message, Ping):
            reply = Pong(request_id=message.request_id)
        else:
            return
        self.feed(self.node.handle_message(contact_of(send), reply,  # type: ignore[arg-type]
                                           self.now))

    @rule(peer=st.sampled_from(PEERS), key=st.sampled_from(KEYS), seq=st.integers(0, 5))
    def store(self, peer: Contact, key: bytes, seq: int) -> None:
        record = DhtRecord(key=key, value=b"v%d" % seq, seq=seq, ttl=30.0)
        actions = self.node.handle_message(peer, Store(request_id=1, record=record), self.now)
        [reply] = [a.message for a in actions
                   if isinstance(a, Send) and isinstance(a.message, StoreResult)]
        held = self.node.get_local(key, self.now)
        if reply.stored:  # type: ignore[union-attr]
            assert held is not None and held.seq == seq
        if held is not None:
            self.best_seq[key] = max(self.best_seq.get(key, 0), held.seq)
        self.feed([a for a in actions
                   if not (isinstance(a, Send) and isinstance(a.message, StoreResult))])

    @rule(peer=st.sampled_from(PEERS))
    def unreachable(self, peer: Contact) -> None:
        self.outbox = [s for s in self.outbox if s.peer != peer.peer_id]
        self.feed(self.node.handle_unreachable(peer.peer_id, self.now))
        assert peer.peer_id not in self.node.table

    @rule(step=st.floats(0.1, 30.0))
    def time_passes(self, step: float) -> None:
        self.now += step
        while self.timers.next_at <= self.now:  # each timer at its own time
            self.feed(self.timers.fire(self.node, self.timers.next_at))

    @invariant()
    def bounded(self) -> None:
        assert len(self.node.records) <= self.config.max_records
        assert len(self.node._pending) <= self.config.max_pending_requests
        assert self.node.active_lookups <= self.config.max_lookups
        for bucket in self.node.table.buckets:
            assert len(bucket.entries) <= self.config.k

    @invariant()
    def lookups_are_tracked(self) -> None:
        assert self.node.active_lookups >= len(self.open_lookups)

    @invariant()
    def the_maintenance_tick_is_always_armed(self) -> None:
        assert self.timers.next_at < float("inf")


TestKademliaMachine = KademliaMachine.TestCase
TestKademliaMachine.settings = settings(max_examples=40, stateful_step_count=40)
