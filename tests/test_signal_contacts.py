"""Contacts that are alive: a signaller hands out only peers linked to it (or to
the signallers it asks), withdraws records on a clean exit, renews short-lived
records, and believes a signaller claim only once its URL proved the peer id."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import NamedTuple

import pytest
import trio
import trio.testing

from taiinet.errors import ConnectionClosed, RemoteProtocolError
from taiinet.signal.api import open_signaller
from taiinet.signal.client import SignalClient, SignalClientConfig, open_signal_client
from taiinet.signal.codec import (
    Dht,
    Hello,
    Register,
    Registered,
    Relay,
    RelayFailed,
    Role,
    decode_signal,
    encode_signal,
)
from taiinet.signal.dht import DhtConfig
from taiinet.signal.dht_types import DhtRecord, Store
from taiinet.signal.errors import PeerUnreachable
from taiinet.signal.ids import id_bytes, node_id
from taiinet.signal.records import (
    MAX_RECORD_LIFETIME_MS,
    RECORD_LIFETIME,
    PeerRecord,
    SessionDescription,
    SessionKind,
    open_peer_record,
    seal_peer_record,
    seal_session,
)
from taiinet.signal.server import Signaller, SignallerConfig
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.connection import Connection
from taiinet.transport.memory import MemoryListener, MemoryNetwork
from taiinet.wire.identity import Identity
from tests.node_support import start_cm


def ident(n: int) -> Identity:
    return Identity.from_seed(bytes([n]) * 32)


MALLORY = ident(66)


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def client(nursery: trio.Nursery, transport: MemorySignalTransport, n: int,
                 urls: list[str]) -> tuple[SignalClient, trio.CancelScope]:
    result = await start_cm(nursery, open_signal_client(
        ident(n), urls, transport=transport, rng=random.Random(n)))
    with trio.fail_after(5):
        await result[0].wait_registered()
    return result


class TwoSignallers(NamedTuple):
    network: MemoryNetwork
    transport: MemorySignalTransport
    nursery: trio.Nursery
    s1: Signaller
    s2: Signaller


@asynccontextmanager
async def two_signallers(config: SignallerConfig | None = None,
                         ) -> AsyncIterator[TwoSignallers]:
    """s1, and s2 joined through it, on one memory network; the nursery is for clients."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with trio.open_nursery() as nursery, open_signaller(
            identity=ident(100), transport=transport, config=config,
            rng=random.Random(0)) as s1, \
            open_signaller(join=[s1.url], identity=ident(101), transport=transport,
                           config=config, rng=random.Random(1)) as s2:
        yield TwoSignallers(network, transport, nursery, s1, s2)


def held(sig: Signaller, peer: Identity) -> PeerRecord | None:
    """The signaller's DHT copy of ``peer``'s record (opened), if any."""
    assert sig.dht is not None
    record = sig.dht.get_local(id_bytes(node_id(peer.peer_id)), trio.current_time())
    return None if record is None else open_peer_record(record.value, int(time.time() * 1000))


async def test_peers_gone_without_a_word_are_not_handed_out(
        autojump_clock: trio.testing.MockClock) -> None:
    """Earlier peers registered, then vanished (links cut, no withdrawal): a fresh
    peer asking the idle signaller for contacts gets none of them."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with trio.open_nursery() as nursery, open_signaller(
            identity=ident(100), transport=transport, rng=random.Random(0)) as sig:
        earlier = [await client(nursery, transport, n, [sig.url]) for n in (1, 2, 3)]
        await wait_until(lambda: all(held(sig, ident(n)) is not None for n in (1, 2, 3)))
        for n, (_, scope) in zip((1, 2, 3), earlier, strict=True):
            await network.kill(ident(n).peer_id)  # crash: no clean exit
            scope.cancel()
        await wait_until(lambda: not sig.homed_peers)
        fresh, _ = await client(nursery, transport, 4, [sig.url])
        assert await fresh.contacts(8) == []
        assert all(held(sig, ident(n)) is None for n in (1, 2, 3))
        nursery.cancel_scope.cancel()


async def test_copies_held_elsewhere_stop_being_contacts_once_renewals_stop(
        autojump_clock: trio.testing.MockClock) -> None:
    """A peer homed on s1 crashes: s1 forgets it at once; s2's DHT copy is handed
    out only while fresh (a renewal arrived within ``contact_freshness``)."""
    async with two_signallers() as (network, transport, nursery, s1, s2):
        _, crashing = await client(nursery, transport, 1, [s1.url])
        await wait_until(lambda: held(s2, ident(1)) is not None)
        await network.kill(ident(1).peer_id)
        crashing.cancel()
        await wait_until(lambda: not s1.homed_peers)
        asker, _ = await client(nursery, transport, 2, [s2.url])
        await trio.sleep(s2.config.contact_freshness + 1)
        assert held(s2, ident(1)) is not None  # the copy lives on until it expires...
        assert await asker.contacts(8) == []  # ...but is no longer a contact
        nursery.cancel_scope.cancel()


async def test_a_clean_exit_withdraws_the_record_across_the_mesh(
        autojump_clock: trio.testing.MockClock) -> None:
    async with two_signallers() as (_, transport, nursery, s1, s2):
        _, leaving = await client(nursery, transport, 1, [s1.url])
        stays, _ = await client(nursery, transport, 2, [s2.url])
        await wait_until(lambda: held(s2, ident(1)) is not None)
        assert [r.peer_id for r in await stays.contacts(8)] == [ident(1).peer_id]
        leaving.cancel()  # leaves the ``async with``: a clean exit
        await wait_until(lambda: not s1.homed_peers)
        # The tombstone (higher seq, withdrawn) replaced both DHT copies.
        await wait_until(lambda: (r := held(s2, ident(1))) is not None and r.withdrawn)
        tombstone = held(s1, ident(1))
        assert tombstone is not None and tombstone.withdrawn
        assert await stays.contacts(8) == []
        with pytest.raises(PeerUnreachable, match="not found"):
            await stays.send_offer(ident(1).peer_id, "hello?")
        nursery.cancel_scope.cancel()


async def test_records_are_short_lived_and_renewed_while_alive(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    assert RECORD_LIFETIME <= 120 and MAX_RECORD_LIFETIME_MS <= 300_000
    async with trio.open_nursery() as nursery, open_signaller(
            identity=ident(100), transport=transport, rng=random.Random(0)) as sig:
        await client(nursery, transport, 1, [sig.url])
        first = held(sig, ident(1))
        assert first is not None
        assert first.expires_unix_ms - time.time() * 1000 <= RECORD_LIFETIME * 1000
        await trio.sleep(4 * RECORD_LIFETIME)  # the DHT copy lives RECORD_LIFETIME
        renewed = held(sig, ident(1))
        assert renewed is not None and renewed.seq > first.seq
        nursery.cancel_scope.cancel()


def test_a_record_expiring_too_far_ahead_is_rejected() -> None:
    from taiinet.signal.errors import RecordRejected
    now = int(time.time() * 1000)
    raw = seal_peer_record(ident(1), PeerRecord(
        peer_id=ident(1).peer_id, signaller_peer_id=ident(100).peer_id, signaller_url="mem://x",
        addresses=(), seq=1, expires_unix_ms=now + 600_000))
    with pytest.raises(RecordRejected, match="too far"):
        open_peer_record(raw, now)


async def read_until_closed(link: Connection) -> list[object]:
    """Every signal message until the signaller closes the link (5 s at most)."""
    messages: list[object] = []
    with trio.fail_after(5):
        try:
            while True:
                message = decode_signal(await link.receive())
                if message is not None:
                    messages.append(message)
        except (ConnectionClosed, RemoteProtocolError):
            return messages


@pytest.mark.parametrize("claimed", ["nobody listens", "another signaller's URL"])
async def test_a_fake_signaller_claim_is_rejected(
        claimed: str, autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with open_signaller(identity=ident(100), transport=transport,
                              rng=random.Random(0)) as sig, \
            open_signaller(identity=ident(101), transport=transport,
                           rng=random.Random(1)) as other:
        url = f"mem://{MALLORY.peer_id}" if claimed == "nobody listens" else other.url
        link = await network.dial(MALLORY, sig.peer_id)
        await link.send(encode_signal(Hello(role=Role.SIGNALLER, listen_url=url)))
        await read_until_closed(link)
        assert sig.dht is not None
        assert MALLORY.peer_id not in [c.peer_id for c in sig.dht.table.contacts()]
        # A real signaller still joins (its URL proves its id).
        async with open_signaller(join=[sig.url], identity=ident(102), transport=transport,
                                  rng=random.Random(2)) as third:
            await wait_until(lambda: third.peer_id in [c.peer_id
                                                       for c in sig.dht.table.contacts()])


async def test_a_peer_registering_as_a_signaller_gets_a_typed_refusal(
        autojump_clock: trio.testing.MockClock) -> None:
    """A register on a link whose SIGNALLER claim is being checked (the dial-back
    is answered by nobody yet) is refused with ``registered{ok=false}``."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with open_signaller(identity=ident(100), transport=transport,
                              rng=random.Random(0)) as sig, network.listen(MALLORY):
        record = seal_peer_record(MALLORY, PeerRecord(
            peer_id=MALLORY.peer_id, signaller_peer_id=sig.peer_id, signaller_url=sig.url,
            addresses=(), seq=1, expires_unix_ms=int(time.time() * 1000) + 60_000))
        link = await network.dial(MALLORY, sig.peer_id)
        await link.send(encode_signal(Hello(role=Role.SIGNALLER,
                                            listen_url=f"mem://{MALLORY.peer_id}")))
        await link.send(encode_signal(Register(request_id=7, record=record)))
        messages = await read_until_closed(link)
        refusals = [m for m in messages if isinstance(m, Registered)]
        assert len(refusals) == 1 and refusals[0].request_id == 7 and not refusals[0].ok
        assert "SIGNALLER" in refusals[0].reason
        assert MALLORY.peer_id not in sig.homed_peers


async def greet_as_signaller(listener: MemoryListener) -> None:
    """Mallory's listener: greet every dial-back as a signaller, then read on."""

    async def serve(link: Connection) -> None:
        await link.send(encode_signal(Hello(role=Role.SIGNALLER,
                                            listen_url=f"mem://{MALLORY.peer_id}")))
        with contextlib.suppress(ConnectionClosed, RemoteProtocolError):
            while True:
                await link.receive()

    async with trio.open_nursery() as nursery:
        with contextlib.suppress(ConnectionClosed):
            while True:
                nursery.start_soon(serve, await listener.accept())


async def test_cross_signaller_offers_survive_a_store_flood_of_fresh_identities(
        autojump_clock: trio.testing.MockClock) -> None:
    """A (proven) hostile signaller STOREs records of fresh identities until the
    victims' stores are full; a peer on one signaller still reaches a peer homed
    on another (whose record must be stored and found)."""
    config = SignallerConfig(dht=DhtConfig(max_records=60, max_records_per_source=20))
    async with two_signallers(config) as (network, transport, nursery, s1, s2):
        listener = network.listen(MALLORY)  # Mallory's URL proves its id
        nursery.start_soon(greet_as_signaller, listener)
        for sig in (s1, s2):
            link = await network.dial(MALLORY, sig.peer_id)
            await link.send(encode_signal(Hello(role=Role.SIGNALLER,
                                                listen_url=f"mem://{MALLORY.peer_id}")))
            now = int(time.time() * 1000)
            for n in range(80):
                fake = Identity.from_seed(n.to_bytes(2, "big") * 16)
                raw = seal_peer_record(fake, PeerRecord(
                    peer_id=fake.peer_id, signaller_peer_id=MALLORY.peer_id,
                    signaller_url=f"mem://{MALLORY.peer_id}", addresses=(), seq=1,
                    expires_unix_ms=now + 60_000))
                await link.send(encode_signal(Dht(message=Store(request_id=n, record=DhtRecord(
                    key=id_bytes(node_id(fake.peer_id)), value=raw, seq=1, ttl=60.0)),
                    sender_address=f"mem://{MALLORY.peer_id}")))
            await wait_until(lambda sig=sig: sig.dht is not None and len(sig.dht.records) >= 20)
        target, _ = await client(nursery, transport, 1, [s1.url])
        asker, _ = await client(nursery, transport, 2, [s2.url])

        async def answer() -> None:
            async for offer in target.incoming_offers():
                await offer.answer("answer:" + offer.sdp)

        nursery.start_soon(answer)
        await wait_until(lambda: held(s2, ident(1)) is not None)
        assert await asker.send_offer(ident(1).peer_id, "offer") == "answer:offer"
        await listener.aclose()
        nursery.cancel_scope.cancel()


async def test_a_withdrawal_needs_no_reply_to_end_the_client(
        autojump_clock: trio.testing.MockClock) -> None:
    """A home that never confirms the withdrawal delays a clean exit by at most
    ``withdraw_timeout``."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    config = SignalClientConfig(withdraw_timeout=1.5)
    async with open_signaller(identity=ident(100), transport=transport,
                              rng=random.Random(0)) as sig:
        start = trio.current_time()
        async with open_signal_client(ident(1), [sig.url], transport=transport,
                                      config=config, rng=random.Random(1)) as c:
            await c.wait_registered()
            start = trio.current_time()
        assert trio.current_time() - start <= 1.5


async def test_one_peer_cannot_hold_every_relay_lookup(
        autojump_clock: trio.testing.MockClock) -> None:
    """Relays to unknown targets while lookups hang (the only other signaller
    never answers): one peer gets "busy" past its share, another still gets a
    lookup of its own."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    config = SignallerConfig(max_inflight_relays=8, max_inflight_relays_per_link=4)
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
        flooder = ident(7)
        flood = await network.dial(flooder, sig.peer_id)
        await flood.send(encode_signal(Hello(role=Role.PEER, listen_url="")))
        for n in range(10):
            target = ident(200 + n).peer_id
            session = seal_session(flooder, SessionDescription(
                from_peer=flooder.peer_id, to_peer=target, session_id=bytes([n]) * 16,
                kind=SessionKind.OFFER, sdp="v=0", created_unix_ms=0))
            await flood.send(encode_signal(Relay(target_peer=target, session=session,
                                                 hops_left=0)))
        busy: list[RelayFailed] = []
        with trio.move_on_after(0.5):
            while len(busy) < 6:
                message = decode_signal(await flood.receive())
                if isinstance(message, RelayFailed):
                    busy.append(message)
        assert [m.reason for m in busy] == ["signaller busy"] * 6
        other, _ = await client(nursery, transport, 8, [sig.url])
        with pytest.raises(PeerUnreachable, match="not found"):
            await other.send_offer(ident(250).peer_id, "offer")
        await listener.aclose()
        nursery.cancel_scope.cancel()


def test_a_client_cannot_ask_for_a_record_homes_would_refuse() -> None:
    from taiinet.signal.errors import SignalUsageError
    with pytest.raises(SignalUsageError, match="record_lifetime"):
        SignalClientConfig(record_lifetime=600.0)
    assert SignalClientConfig().record_lifetime == RECORD_LIFETIME


async def test_peers_a_linked_signaller_vouches_for_come_before_forged_records(
        autojump_clock: trio.testing.MockClock) -> None:
    """A (proven) hostile signaller STOREs fresh records of identities nobody runs,
    naming a made-up home (a tarpit); a peer asking s2 for 8 contacts is shown the
    one live peer, homed on s1, every time: shuffled in with the forged records it
    was left out of about half the answers, and a joiner backed off round after
    round (tests/hostile dht_pollution: first delivery 30+ s under load)."""
    async with two_signallers() as (network, transport, nursery, s1, s2):
        listener = await forge_records(nursery, network, [s1, s2], home=ident(67))
        await client(nursery, transport, 1, [s1.url])
        asker, _ = await client(nursery, transport, 2, [s2.url])
        for _ in range(8):
            contacts = await asker.contacts(8)
            assert len(contacts) == 8
            assert ident(1).peer_id in [c.peer_id for c in contacts]
        await listener.aclose()
        nursery.cancel_scope.cancel()


def forged_identity(n: int) -> Identity:
    return Identity.from_seed(n.to_bytes(2, "big") * 16)


async def forge_records(nursery: trio.Nursery, network: MemoryNetwork, sigs: list[Signaller],
                        home: Identity, count: int = 40) -> MemoryListener:
    """Mallory, a proven signaller, STOREs on each of ``sigs`` ``count`` fresh records of
    identities nobody runs, naming ``home`` (which never runs) as their signaller."""
    listener = network.listen(MALLORY)
    nursery.start_soon(greet_as_signaller, listener)
    for sig in sigs:
        link = await network.dial(MALLORY, sig.peer_id)
        await link.send(encode_signal(Hello(role=Role.SIGNALLER,
                                            listen_url=f"mem://{MALLORY.peer_id}")))
        now = int(time.time() * 1000)
        for n in range(count):
            fake = forged_identity(n)
            raw = seal_peer_record(fake, PeerRecord(
                peer_id=fake.peer_id, signaller_peer_id=home.peer_id,
                signaller_url=f"mem://{home.peer_id}", addresses=(), seq=1,
                expires_unix_ms=now + 60_000))
            await link.send(encode_signal(Dht(message=Store(request_id=n, record=DhtRecord(
                key=id_bytes(node_id(fake.peer_id)), value=raw, seq=1, ttl=60.0)),
                sender_address=f"mem://{MALLORY.peer_id}")))
        await wait_until(lambda sig=sig: sig.dht is not None
                         and len(sig.dht.records) >= 3 * count // 4)
    return listener


async def hold_forever(listener: MemoryListener) -> None:
    """A tarpit: accept every link and never say a word on it."""
    held = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            held.append(await listener.accept())


async def test_relays_towards_tarpit_homes_do_not_crowd_out_a_linked_home(
        autojump_clock: trio.testing.MockClock) -> None:
    """Forged records name a home that accepts links and never answers: a relay
    towards one holds a lookup slot until ``hello_timeout``.  A peer that has
    filled its slots so still reaches a peer homed on a signaller its home is
    linked to (found in the held copy: no lookup, no dial), both ways."""
    async with two_signallers() as (network, transport, nursery, s1, s2):
        listener = await forge_records(nursery, network, [s1, s2], home=ident(67))
        tarpit = network.listen(ident(67))
        nursery.start_soon(hold_forever, tarpit)
        target, _ = await client(nursery, transport, 1, [s1.url])
        asker, _ = await client(nursery, transport, 2, [s2.url])
        await wait_until(lambda: held(s2, ident(1)) is not None)

        async def answer() -> None:
            async for offer in target.incoming_offers():
                await offer.answer("answer:" + offer.sdp)

        async def stuck(peer_id: str) -> None:
            with contextlib.suppress(PeerUnreachable):
                await asker.send_offer(peer_id, "offer")

        nursery.start_soon(answer)
        for n in range(s2.config.max_inflight_relays_per_link):
            nursery.start_soon(stuck, forged_identity(n).peer_id)
        await trio.sleep(0.1)
        assert await asker.send_offer(ident(1).peer_id, "offer") == "answer:offer"
        await listener.aclose()
        await tarpit.aclose()
        nursery.cancel_scope.cancel()


async def test_a_home_that_closes_the_link_is_named_in_the_last_failure(
        autojump_clock: trio.testing.MockClock) -> None:
    """The client's ``last_failure`` (what "no signaller reachable (last: ...)" and a
    join's timeout print) names a home that ended the link cleanly, not an empty reason."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with trio.open_nursery() as nursery:
        async with open_signaller(identity=ident(100), transport=transport,
                                  rng=random.Random(0)) as sig:
            peer, _ = await client(nursery, transport, 1, [sig.url])
            url = sig.url
        # The moment the link is down (before any redial can fail with its own reason):
        await wait_until(lambda: peer.core.failures > 0)
        assert peer.last_failure == f"{url}: the signaller closed the link"
        nursery.cancel_scope.cancel()
