"""The routing table against a brute-force model."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.signal.dht_types import Contact
from taiinet.signal.ids import node_id
from taiinet.signal.routing import RoutingTable
from taiinet.sim.dht import sim_peer_id


def contacts(seed: int, count: int) -> list[Contact]:
    rng = random.Random(seed)
    return [Contact(peer_id=sim_peer_id(rng), address=f"sim://{i}") for i in range(count)]


@settings(max_examples=40)
@given(seed=st.integers(0, 2**32), count=st.integers(0, 300), k=st.integers(1, 20),
       target=st.integers(0, 2**256 - 1))
def test_closest_matches_brute_force(seed: int, count: int, k: int, target: int) -> None:
    local, *others = contacts(seed, count + 1)
    table = RoutingTable(local_id=node_id(local.peer_id), k=k)
    for contact in others:
        table.observe(contact, now=0.0)
    held = table.contacts()
    # bucket invariant: at most k per bucket, each entry in the bucket of its distance
    for index, bucket in enumerate(table.buckets):
        assert len(bucket.entries) <= k
        for entry in bucket.entries.values():
            assert (entry.id ^ table.local_id).bit_length() - 1 == index
    expected = sorted(held, key=lambda c: node_id(c.peer_id) ^ target)[:k]
    assert [e.contact for e in table.closest(target, k)] == expected


def test_full_bucket_asks_to_check_oldest_and_replacement_takes_evicted_slot() -> None:
    local, *others = contacts(7, 400)
    table = RoutingTable(local_id=node_id(local.peer_id), k=2)
    checks = []
    for t, contact in enumerate(others):
        insertion = table.observe(contact, now=float(t))
        if insertion.check is not None:
            checks.append((contact, insertion.check))
    assert checks, "with k=2 and 400 contacts some bucket must overflow"
    newcomer, oldest = checks[-1]
    assert newcomer.peer_id not in table
    assert oldest.peer_id in table
    assert table.remove(oldest.peer_id)
    assert oldest.peer_id not in table
    assert newcomer.peer_id in table
