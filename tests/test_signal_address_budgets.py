"""Relay lookups and contact fan-outs budgeted per remote address, across links:
many identities from one host cannot take the signaller's global lookup slots."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from taiinet.errors import ConnectionClosed
from taiinet.signal.address_budget import AddressBudget, AddressLimits
from taiinet.signal.api import open_signaller
from taiinet.signal.codec import Hello, Relay, RelayFailed, Role, decode_signal, encode_signal
from taiinet.signal.errors import PeerUnreachable, SignalUsageError
from taiinet.signal.records import SessionDescription, SessionKind, seal_session
from taiinet.signal.server import SignallerConfig
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.connection import Connection
from taiinet.transport.memory import MemoryNetwork
from taiinet.wire.identity import Identity
from tests.test_signal_contacts import MALLORY, client, greet_as_signaller, ident, wait_until

SYBIL_HOST = "203.0.113.7"


# --- the budget alone ---------------------------------------------------------


def test_a_bucket_per_address_refills_at_its_rate() -> None:
    budget = AddressBudget(AddressLimits(rate=1.0, burst=3.0))
    assert [budget.take(SYBIL_HOST, 0.0) for _ in range(4)] == [True, True, True, False]
    assert budget.take("198.51.100.1", 0.0)  # another address has its own bucket
    assert not budget.take(SYBIL_HOST, 0.5)
    assert budget.take(SYBIL_HOST, 1.5)
    assert not budget.take(SYBIL_HOST, 1.5)


def test_lookups_in_flight_are_capped_per_address_and_released() -> None:
    budget = AddressBudget(AddressLimits(max_inflight=2, burst=100.0))
    assert budget.start_lookup(SYBIL_HOST, 0.0) and budget.start_lookup(SYBIL_HOST, 0.0)
    assert not budget.start_lookup(SYBIL_HOST, 0.0)
    assert budget.inflight(SYBIL_HOST) == 2
    assert budget.start_lookup("2001:db8::/64", 0.0)
    budget.finish_lookup(SYBIL_HOST)
    assert budget.start_lookup(SYBIL_HOST, 0.0)
    for _ in range(3):
        budget.finish_lookup(SYBIL_HOST)
    assert budget.inflight(SYBIL_HOST) == 0


def test_unknown_and_loopback_addresses_are_budgeted_per_link_only() -> None:
    budget = AddressBudget(AddressLimits(burst=1.0, max_inflight=1))
    for address in (None, "127.0.0.1", "::1"):
        assert all(budget.start_lookup(address, 0.0) for _ in range(5))
    strict = AddressBudget(AddressLimits(burst=1.0, exempt_loopback=False))
    assert strict.take("127.0.0.1", 0.0) and not strict.take("127.0.0.1", 0.0)


def test_the_bucket_table_is_bounded() -> None:
    budget = AddressBudget(AddressLimits(max_addresses=4))
    for i in range(50):
        budget.take(f"198.51.100.{i}", 0.0)
    assert len(budget._buckets) == 4


def test_bad_limits_are_usage_errors() -> None:
    for bad in ({"rate": 0.0}, {"burst": 0.5}, {"max_inflight": 0}, {"max_addresses": 0}):
        with pytest.raises(SignalUsageError):
            AddressLimits(**bad)  # type: ignore[arg-type]


# --- a signaller over memory links with fake addresses ---------------------------------


async def flood_relays(network: MemoryNetwork, sender: Identity, signaller: str,
                       count: int, first_target: int) -> Connection:
    link = await network.dial(sender, signaller)
    await link.send(encode_signal(Hello(role=Role.PEER, listen_url="")))
    for n in range(count):
        target = ident(first_target + n).peer_id
        session = seal_session(sender, SessionDescription(
            from_peer=sender.peer_id, to_peer=target, session_id=bytes([n]) * 16,
            kind=SessionKind.OFFER, sdp="v=0", created_unix_ms=0))
        await link.send(encode_signal(Relay(target_peer=target, session=session, hops_left=0)))
    return link


async def busy_answers(link: Connection, wanted: int) -> int:
    busy = 0
    with trio.move_on_after(0.5):
        while busy < wanted:
            try:
                message = decode_signal(await link.receive())
            except ConnectionClosed:
                break
            if isinstance(message, RelayFailed) and message.reason == "signaller busy":
                busy += 1
    return busy


async def test_many_identities_from_one_address_cannot_fill_the_lookup_slots(
        autojump_clock: trio.testing.MockClock) -> None:
    """Six Sybil links from one address ask 4 lookups each (their per-link share)
    while lookups hang; the address gets 8 of the 16 slots, and a peer from
    another address still has its relay looked up ("not found", not "busy")."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    config = SignallerConfig(max_inflight_relays=16, max_inflight_relays_per_link=4,
                             address_limits=AddressLimits(max_inflight=8))
    async with trio.open_nursery() as nursery, open_signaller(
            identity=ident(100), transport=transport, config=config,
            rng=random.Random(0)) as sig:
        listener = network.listen(MALLORY)
        nursery.start_soon(greet_as_signaller, listener)  # proven, silent signaller
        link = await network.dial(MALLORY, sig.peer_id)
        await link.send(encode_signal(Hello(role=Role.SIGNALLER,
                                            listen_url=f"mem://{MALLORY.peer_id}")))
        assert sig.dht is not None
        await wait_until(lambda: len(sig.dht.table.contacts()) == 1)
        sybils = [ident(10 + k) for k in range(6)]
        for sybil in sybils:
            network.addresses[sybil.peer_id] = SYBIL_HOST
        floods = [await flood_relays(network, sybil, sig.peer_id, 4, 200 + 10 * k)
                  for k, sybil in enumerate(sybils)]
        busy = [await busy_answers(flood, 4) for flood in floods]
        assert sum(busy) == 6 * 4 - 8
        assert sig.core is not None
        assert sig.core.address_budget.inflight(SYBIL_HOST) == 8
        network.addresses[ident(8).peer_id] = "198.51.100.2"
        other, _ = await client(nursery, transport, 8, [sig.url])
        with pytest.raises(PeerUnreachable, match="not found"):
            await other.send_offer(ident(250).peer_id, "offer")
        await listener.aclose()
        nursery.cancel_scope.cancel()
