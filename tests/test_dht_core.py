"""The Kademlia core: lookups against a model, records, maintenance, hostile input."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.core import Send, SetTimer
from taiinet.signal.dht import DhtConfig, KademliaNode
from taiinet.signal.dht_types import (
    Contact,
    DhtRecord,
    FindNode,
    FindValue,
    LookupFinished,
    MaintenanceTick,
    Nodes,
    Ping,
    Pong,
    Store,
    StoreResult,
    ValueFound,
)
from taiinet.signal.errors import SignalUsageError
from taiinet.signal.ids import id_bytes, node_id
from taiinet.sim.dht import sim_peer_id
from tests.dht_harness import InstantNetwork, Timers, contact_of


@settings(max_examples=8)
@given(seed=st.integers(0, 2**32), count=st.integers(25, 90), crash=st.integers(0, 15))
def test_lookup_finds_the_k_closest_live_nodes(seed: int, count: int, crash: int) -> None:
    net = InstantNetwork(seed)
    nodes = net.join_all(count)
    for node in net.rng.sample(nodes, crash):
        net.down.add(node.local.peer_id)
    live = [n for n in nodes if n.local.peer_id not in net.down]
    source = net.rng.choice(live)
    target = net.rng.getrandbits(256)
    lookup_id, actions = source.start_lookup(id_bytes(target), net.now)
    net.apply(source, actions)
    net.run()
    [result] = [f for f in net.finished if f.lookup_id == lookup_id
                and f.target == id_bytes(target)]
    others = [n.local for n in live if n is not source]
    expected = sorted(others, key=lambda c: node_id(c.peer_id) ^ target)[: net.config.k]
    assert list(result.closest) == expected


def test_find_node_of_a_live_node_reports_found_and_hops() -> None:
    net = InstantNetwork(3)
    nodes = net.join_all(60)
    source, target = nodes[5], nodes[50]
    lookup_id, actions = source.start_lookup(id_bytes(node_id(target.local.peer_id)), net.now)
    net.apply(source, actions)
    net.run()
    [result] = [f for f in net.finished if f.lookup_id == lookup_id and f.found]
    assert target.local in result.closest
    assert 0 <= result.hops <= 3


def test_put_then_get_value_from_another_node() -> None:
    net = InstantNetwork(5)
    nodes = net.join_all(50)
    key = id_bytes(node_id(nodes[10].local.peer_id))
    record = DhtRecord(key=key, value=b"signed-record", seq=1, ttl=600.0)
    _, actions = nodes[0].put(record, net.now)
    net.apply(nodes[0], actions)
    net.run()
    holders = [n for n in nodes if n.get_local(key, net.now) is not None]
    assert len(holders) >= net.config.k
    lookup_id, actions = nodes[40].start_lookup(key, net.now, want_value=True)
    net.apply(nodes[40], actions)
    net.run()
    [result] = [f for f in net.finished if f.lookup_id == lookup_id and f.record is not None]
    assert result.record is not None and result.record.value == b"signed-record"


def make_node(seed: int = 1, **config: float) -> KademliaNode:
    rng = random.Random(seed)
    return KademliaNode(local=Contact(peer_id=sim_peer_id(rng), address="sim://me"),
                        rng=rng, now=0.0, config=DhtConfig(**config))  # type: ignore[arg-type]


def store(node: KademliaNode, record: DhtRecord, now: float) -> bool:
    sender = Contact(peer_id=sim_peer_id(random.Random(99)), address="sim://them")
    [reply] = [a for a in node.handle_message(sender, Store(request_id=1, record=record), now)
               if isinstance(a, Send) and isinstance(a.message, StoreResult)]
    assert isinstance(reply.message, StoreResult)
    return reply.message.stored


def test_higher_seq_replaces_lower_and_records_expire() -> None:
    node = make_node()
    key = bytes(32)
    assert store(node, DhtRecord(key=key, value=b"v2", seq=2, ttl=100.0), 0.0)
    assert not store(node, DhtRecord(key=key, value=b"v1", seq=1, ttl=100.0), 1.0)
    assert not store(node, DhtRecord(key=key, value=b"other", seq=2, ttl=100.0), 1.0)
    assert store(node, DhtRecord(key=key, value=b"v3", seq=3, ttl=100.0), 2.0)
    held = node.get_local(key, 3.0)
    assert held is not None and held.value == b"v3"
    assert node.get_local(key, 103.0) is None


def test_record_count_and_size_limits() -> None:
    node = make_node(max_records=3, max_record_bytes=8)
    assert not store(node, DhtRecord(key=bytes(32), value=b"x" * 9, seq=1, ttl=10.0), 0.0)
    for i in range(3):
        assert store(node, DhtRecord(key=id_bytes(i), value=b"x", seq=1, ttl=10.0), 0.0)
    assert not store(node, DhtRecord(key=id_bytes(7), value=b"x", seq=1, ttl=10.0), 0.0)
    with pytest.raises(SignalUsageError):
        node.put(DhtRecord(key=bytes(32), value=b"x" * 9, seq=1, ttl=10.0), 0.0)


def test_timed_out_contact_is_evicted_and_lookup_still_ends() -> None:
    node = make_node(request_timeout=2.0)
    peers = [Contact(peer_id=sim_peer_id(random.Random(i)), address=f"sim://{i}")
             for i in range(10)]
    for peer in peers:
        node.add_contact(peer, 0.0)
    lookup_id, actions = node.start_lookup(bytes(32), 0.0)
    assert len([a for a in actions if isinstance(a, Send)]) == 3
    timers = Timers()
    timers.collect(actions)
    assert timers.next_at == 2.0
    finished: list[LookupFinished] = []
    while not finished:
        out = timers.fire(node, timers.next_at)
        timers.collect(out)
        finished = [a for a in out if isinstance(a, LookupFinished)]
    assert finished[0].lookup_id == lookup_id and finished[0].closest == ()
    assert len(node.table) == 0


def test_stale_contacts_are_pinged_and_buckets_refreshed() -> None:
    node = make_node(maintenance_interval=10.0, refresh_interval=100.0)
    peer = Contact(peer_id=sim_peer_id(random.Random(5)), address="sim://5")
    node.add_contact(peer, 0.0)
    actions = node.handle_timer(MaintenanceTick(), 100.0)
    assert actions[0] == SetTimer(at=110.0, timer=MaintenanceTick())  # the next tick
    sent = [a.message for a in actions if isinstance(a, Send)]
    assert any(isinstance(m, Ping) for m in sent)
    assert any(isinstance(m, FindNode) for m in sent)


def test_unsolicited_or_spoofed_responses_are_ignored() -> None:
    node = make_node()
    stranger = Contact(peer_id=sim_peer_id(random.Random(8)), address="sim://8")
    friend = Contact(peer_id=sim_peer_id(random.Random(9)), address="sim://9")
    node.add_contact(friend, 0.0)
    _, actions = node.start_lookup(bytes(32), 0.0)
    [request] = [a.message for a in actions if isinstance(a, Send)]
    # the stranger answers the friend's request id: it must not count
    out = node.handle_message(stranger, Nodes(request_id=request.request_id, contacts=()), 0.1)
    assert not any(isinstance(a, LookupFinished) for a in out)
    out = node.handle_message(friend, Nodes(request_id=request.request_id, contacts=()), 0.2)
    assert any(isinstance(a, LookupFinished) for a in out)


contact_st = st.builds(lambda seed, addr: Contact(peer_id=sim_peer_id(random.Random(seed)),
                                                  address=addr),
                       st.integers(0, 40), st.sampled_from(["sim://a", "sim://b", ""]))
record_st = st.builds(DhtRecord, key=st.binary(min_size=32, max_size=32),
                      value=st.binary(max_size=64), seq=st.integers(0, 2**64 - 1),
                      ttl=st.floats(0.001, 1e6))
request_id_st = st.integers(0, 2**64 - 1)
message_st = st.one_of(
    st.builds(Ping, request_id=request_id_st), st.builds(Pong, request_id=request_id_st),
    st.builds(FindNode, request_id=request_id_st, target=st.binary(min_size=32, max_size=32)),
    st.builds(FindValue, request_id=request_id_st, key=st.binary(min_size=32, max_size=32)),
    st.builds(Store, request_id=request_id_st, record=record_st),
    st.builds(Nodes, request_id=request_id_st,
              contacts=st.lists(contact_st, max_size=25).map(tuple)),
    st.builds(ValueFound, request_id=request_id_st, record=record_st),
    st.builds(StoreResult, request_id=request_id_st, stored=st.booleans()),
)


@settings(max_examples=60)
@given(st.lists(st.tuples(contact_st, message_st, st.floats(0, 50)), max_size=40))
def test_hostile_peers_cannot_break_the_core(inputs: list[tuple[Contact, object, float]]) -> None:
    node = make_node(max_records=5, max_pending_requests=16)
    timers = Timers()
    timers.collect(node.start(0.0))
    node.add_contact(Contact(peer_id=sim_peer_id(random.Random(1000)), address="sim://x"), 0.0)
    timers.collect(node.start_lookup(bytes(32), 0.0).actions)
    now = 0.0
    for sender, message, step in inputs:
        now += step
        timers.collect(node.handle_message(sender, message, now))  # type: ignore[arg-type]
        timers.collect(timers.fire(node, now))
        assert len(node.records) <= 5
        assert len(node._pending) <= 16
        for bucket in node.table.buckets:
            assert len(bucket.entries) <= node.config.k
            assert len(bucket.replacements) <= node.config.k
        assert node.local.peer_id not in node.table


def test_a_put_reports_only_once_its_stores_are_answered_or_failed() -> None:
    node = make_node(request_timeout=2.0)
    rng = random.Random(7)
    peers = [Contact(peer_id=sim_peer_id(rng), address=f"sim://{i}") for i in range(2)]
    for peer in peers:
        node.add_contact(peer, 0.0)
    record = DhtRecord(key=bytes(32), value=b"v", seq=1, ttl=100.0)
    lookup_id, actions = node.put(record, 0.0)
    timers = Timers()
    timers.collect(actions)
    out: list[object] = []
    for action in actions:  # both answer FIND_NODE with nothing new
        if isinstance(action, SetTimer):
            continue
        assert isinstance(action, Send) and isinstance(action.message, FindNode)
        out += node.handle_message(contact_of(action), Nodes(
            request_id=action.message.request_id, contacts=()), 0.0)
    timers.collect(out)
    stores = [a for a in out if isinstance(a, Send) and isinstance(a.message, Store)]
    assert len(stores) == 2 and not any(isinstance(a, LookupFinished) for a in out)
    first, _ = stores
    assert isinstance(first.message, Store)
    out = node.handle_message(contact_of(first), StoreResult(
        request_id=first.message.request_id, stored=True), 0.5)
    assert not any(isinstance(a, LookupFinished) for a in out)
    out = timers.fire(node, 2.5)  # the other STORE times out: now the put is done
    [done] = [a for a in out if isinstance(a, LookupFinished)]
    assert done.lookup_id == lookup_id and set(done.closest) == set(peers)


def test_a_value_lookup_with_min_seq_passes_over_older_copies() -> None:
    node = make_node()
    rng = random.Random(8)
    old_holder, new_holder = (Contact(peer_id=sim_peer_id(rng), address=f"sim://{i}")
                              for i in range(2))
    key = bytes(32)
    assert store(node, DhtRecord(key=key, value=b"old", seq=1, ttl=100.0), 0.0)
    for peer in (old_holder, new_holder):
        node.add_contact(peer, 0.0)
    lookup_id, actions = node.start_lookup(key, 0.0, want_value=True, min_seq=2)
    assert not any(isinstance(a, LookupFinished) for a in actions)  # our copy is too old
    replies = {old_holder.peer_id: DhtRecord(key=key, value=b"old", seq=1, ttl=50.0),
               new_holder.peer_id: DhtRecord(key=key, value=b"new", seq=2, ttl=50.0)}
    out: list[object] = []
    asked = [a for a in actions if isinstance(a, Send)]
    for action in sorted(asked, key=lambda a: a.peer != old_holder.peer_id):
        assert isinstance(action.message, FindValue)
        request_id = action.message.request_id
        held = replies.get(action.peer)
        reply = (ValueFound(request_id=request_id, record=held) if held is not None
                 else Nodes(request_id=request_id, contacts=()))
        out += node.handle_message(contact_of(action), reply, 0.0)
    [done] = [a for a in out if isinstance(a, LookupFinished)]
    assert done.lookup_id == lookup_id and done.record is not None
    assert done.record.value == b"new"


def store_from(node: KademliaNode, source: int, record: DhtRecord, now: float) -> bool:
    sender = Contact(peer_id=sim_peer_id(random.Random(source)), address=f"sim://{source}")
    [reply] = [a for a in node.handle_message(sender, Store(request_id=1, record=record), now)
               if isinstance(a, Send) and isinstance(a.message, StoreResult)]
    assert isinstance(reply.message, StoreResult)
    return reply.message.stored


def test_a_source_flooding_stores_cannot_crowd_out_the_others() -> None:
    """A signaller STOREing records of fresh identities fills at most its share;
    a full store makes room for another source by evicting the flooder's."""
    node = make_node(max_records=10, max_records_per_source=6)
    flooded = [store_from(node, 11, DhtRecord(key=id_bytes(i), value=b"x", seq=1, ttl=99.0), 0.0)
               for i in range(20)]
    assert flooded == [True] * 6 + [False] * 14
    for i in range(4):
        assert store_from(node, 12, DhtRecord(key=id_bytes(100 + i), value=b"y", seq=1,
                                             ttl=99.0), 0.0)
    assert len(node.records) == 10
    # Full: a third source's record displaces the flooder's oldest, not source 2's.
    assert store_from(node, 13, DhtRecord(key=id_bytes(200), value=b"z", seq=1, ttl=99.0), 0.0)
    assert node.get_local(id_bytes(0), 1.0) is None
    assert all(node.get_local(id_bytes(100 + i), 1.0) is not None for i in range(4))
    assert node.get_local(id_bytes(200), 1.0) is not None
    # The flooder cannot take its slot back from a smaller source.
    assert not store_from(node, 11, DhtRecord(key=id_bytes(50), value=b"x", seq=1, ttl=99.0), 1.0)


def test_drop_local_forgets_a_departed_peers_copy_but_not_a_newer_one() -> None:
    node = make_node()
    key = id_bytes(5)
    assert store(node, DhtRecord(key=key, value=b"v2", seq=2, ttl=99.0), 0.0)
    node.drop_local(key, 1)
    assert node.get_local(key, 1.0) is not None
    node.drop_local(key, 2)
    assert node.get_local(key, 1.0) is None


def test_a_put_keeps_the_local_copy_at_once_when_we_are_among_the_closest() -> None:
    """A silent contact delays the put's lookup by ``request_timeout``; the
    record is findable here meanwhile (FIND_VALUE from another signaller)."""
    node = make_node(request_timeout=2.0)
    silent = Contact(peer_id=sim_peer_id(random.Random(5)), address="sim://silent")
    node.add_contact(silent, 0.0)
    key = id_bytes(7)
    node.put(DhtRecord(key=key, value=b"v", seq=1, ttl=60.0), 0.0)
    asker = Contact(peer_id=sim_peer_id(random.Random(6)), address="sim://asker")
    replies = [a.message for a in node.handle_message(asker, FindValue(request_id=3, key=key),
                                                       0.5) if isinstance(a, Send)]
    assert any(isinstance(r, ValueFound) and r.record.value == b"v" for r in replies)
