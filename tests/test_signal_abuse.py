"""A hostile peer against a signaller on the memory network: it is cut off, the
signaller goes on serving others."""

from __future__ import annotations

import random
import time

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.errors import ConnectionClosed, RemoteProtocolError
from taiinet.signal.api import open_signaller
from taiinet.signal.client import open_signal_client
from taiinet.signal.codec import (
    Hello,
    Register,
    Registered,
    Relay,
    Role,
    decode_signal,
    encode_signal,
)
from taiinet.signal.pace import ProtocolViolation
from taiinet.signal.records import (
    PeerRecord,
    SessionDescription,
    SessionKind,
    seal_peer_record,
    seal_session,
)
from taiinet.signal.server import SignallerConfig
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.connection import Connection
from taiinet.transport.memory import MemoryNetwork
from taiinet.wire.identity import Identity

MALLORY = Identity.from_seed(b"m" * 32)
ALICE = Identity.from_seed(b"a" * 32)


async def closed_by_signaller(link: Connection) -> bool:
    """Read until the signaller closes the link (True) or 5 s pass (False)."""
    with trio.move_on_after(5):
        try:
            while True:
                await link.receive()
        except (ConnectionClosed, RemoteProtocolError):
            return True
    return False


def record(identity: Identity, home: str, seq: int = 1, url: str | None = None) -> bytes:
    return seal_peer_record(identity, PeerRecord(
        peer_id=identity.peer_id, signaller_peer_id=home,
        signaller_url=f"mem://{home}" if url is None else url,
        addresses=(), seq=seq, expires_unix_ms=int(time.time() * 1000) + 60_000))


async def still_serves(transport: MemorySignalTransport, url: str) -> None:
    async with open_signal_client(ALICE, [url], transport=transport,
                                  rng=random.Random(1)) as client:
        with trio.fail_after(5):
            await client.wait_registered()


async def hostile_session(frames: list[bytes], config: SignallerConfig | None = None) -> bool:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with open_signaller(identity=Identity.from_seed(b"s" * 32), transport=transport,
                              config=config, rng=random.Random(0)) as sig:
        link = await network.dial(MALLORY, sig.peer_id)
        for frame in frames:
            try:
                await link.send(frame)
            except ConnectionClosed:
                break
        closed = await closed_by_signaller(link)
        await link.aclose()
        await still_serves(transport, sig.url)
        return closed


async def test_registering_a_record_homed_elsewhere_is_cut_off(
        autojump_clock: trio.testing.MockClock) -> None:
    frames = [encode_signal(Hello(role=Role.PEER, listen_url="")),
              encode_signal(Register(request_id=1, record=record(MALLORY, ALICE.peer_id)))]
    assert await hostile_session(frames)


async def test_registering_someone_elses_record_is_cut_off(
        autojump_clock: trio.testing.MockClock) -> None:
    signaller = Identity.from_seed(b"s" * 32).peer_id
    frames = [encode_signal(Hello(role=Role.PEER, listen_url="")),
              encode_signal(Register(request_id=1, record=record(ALICE, signaller)))]
    assert await hostile_session(frames)


@pytest.mark.parametrize("url", ["", "mem://somewhere-else"])
async def test_registering_a_record_with_another_signaller_url_is_cut_off(
        url: str, autojump_clock: trio.testing.MockClock) -> None:
    signaller = Identity.from_seed(b"s" * 32).peer_id
    frames = [encode_signal(Hello(role=Role.PEER, listen_url="")),
              encode_signal(Register(request_id=1, record=record(MALLORY, signaller, url=url)))]
    assert await hostile_session(frames)


async def test_forged_session_sender_is_cut_off(autojump_clock: trio.testing.MockClock) -> None:
    forged = seal_session(ALICE, SessionDescription(
        from_peer=ALICE.peer_id, to_peer=MALLORY.peer_id, session_id=bytes(16),
        kind=SessionKind.OFFER, sdp="v=0", created_unix_ms=0))
    frames = [encode_signal(Hello(role=Role.PEER, listen_url="")),
              encode_signal(Relay(target_peer=MALLORY.peer_id, session=forged, hops_left=0))]
    assert await hostile_session(frames)


async def test_a_flood_is_read_at_the_rate_limit(autojump_clock: trio.testing.MockClock) -> None:
    signaller = Identity.from_seed(b"s" * 32).peer_id
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    config = SignallerConfig(peer_rate=2.0, peer_burst=5.0)
    async with open_signaller(identity=Identity.from_seed(b"s" * 32), transport=transport,
                              config=config, rng=random.Random(0)) as sig:
        link = await network.dial(MALLORY, sig.peer_id)
        await link.send(encode_signal(Hello(role=Role.PEER, listen_url="")))
        started = trio.current_time()
        count = 25

        async def flood() -> None:
            for i in range(1, count + 1):
                await link.send(encode_signal(Register(
                    request_id=i, record=record(MALLORY, signaller, seq=i))))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            answered = 0
            while answered < count:
                if isinstance(decode_signal(await link.receive()), Registered):
                    answered += 1
        # the burst is free, the rest is read at 2 messages per (virtual) second
        assert trio.current_time() - started >= (count + 1 - config.peer_burst) / 2.0 - 0.5
        await link.aclose()


async def test_a_well_behaved_peer_is_not_cut_off(autojump_clock: trio.testing.MockClock) -> None:
    signaller = Identity.from_seed(b"s" * 32).peer_id
    frames = [encode_signal(Hello(role=Role.PEER, listen_url="")),
              encode_signal(Register(request_id=1, record=record(MALLORY, signaller)))]
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with open_signaller(identity=Identity.from_seed(b"s" * 32), transport=transport,
                              rng=random.Random(0)) as sig:
        link = await network.dial(MALLORY, sig.peer_id)
        for frame in frames:
            await link.send(frame)
        replies = [decode_signal(await link.receive()) for _ in range(2)]
        assert any(getattr(r, "ok", False) for r in replies)
        await link.aclose()


@settings(max_examples=25)
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=5), st.booleans())
def test_fuzzed_frames_never_break_the_signaller(garbage: list[bytes], hello: bool) -> None:
    frames = ([encode_signal(Hello(role=Role.PEER, listen_url=""))] if hello else []) + garbage
    trio.run(hostile_session, frames, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_a_violation_found_while_relaying_drops_its_link_not_the_signaller(
        monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock) -> None:
    """A relay whose handling finds the peer's input bad closes that link only."""
    from taiinet.signal.signaller_core import SignallerCore

    def rejects(self: SignallerCore, peer_id: str, min_seq: int, done: object) -> None:
        raise ProtocolViolation(f"cannot look up {peer_id}")

    monkeypatch.setattr(SignallerCore, "_find_record", rejects)
    session = seal_session(MALLORY, SessionDescription(
        from_peer=MALLORY.peer_id, to_peer=ALICE.peer_id, session_id=bytes(16),
        kind=SessionKind.OFFER, sdp="v=0", created_unix_ms=0))
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with open_signaller(identity=Identity.from_seed(b"s" * 32), transport=transport,
                              rng=random.Random(0)) as sig:
        link = await network.dial(MALLORY, sig.peer_id)
        await link.send(encode_signal(Hello(role=Role.PEER, listen_url="")))
        await link.send(encode_signal(Relay(target_peer=ALICE.peer_id, session=session,
                                            hops_left=0)))
        assert await closed_by_signaller(link)
        assert sig.links_dropped == 1
        await still_serves(transport, sig.url)
