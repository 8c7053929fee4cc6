"""The secure-channel driver over memory channels, against honest and hostile peers.

The hostile peer is the independent ``noiseprotocol`` implementation driven by
hand over the raw channel, so it can send exactly the bytes a test wants.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from noise.connection import Keypair, NoiseConnection

from taiinet import ConnectionClosed, Identity
from taiinet.errors import RemoteProtocolError
from taiinet.transport._linklock import LinkLock
from taiinet.transport.errors import (
    DecryptionError,
    HandshakeError,
    HandshakeTimeout,
    PeerIdMismatch,
)
from taiinet.transport.memory import MemoryMessageChannel, memory_channel_pair
from taiinet.transport.noise import (
    PROTOCOL_NAME,
    NoiseMessageReader,
    make_handshake_payload,
    with_length_prefix,
    x25519_public_key,
)
from taiinet.transport.secure import secure_channel
from taiinet.wire.errors import FrameTooLarge, InvalidPeerId, TruncatedFrame
from taiinet.wire.framing import encode_uvarint, frame_with_prefix

ALICE = Identity.from_seed(bytes([0xA]) * 32)
BOB = Identity.from_seed(bytes([0xB]) * 32)
STATIC = bytes(range(100, 132))


class RawPeer:
    """A responder made of noiseprotocol and a raw channel end (no TaiiNet code on its side)."""

    def __init__(self, channel: MemoryMessageChannel, identity: Identity = BOB) -> None:
        self.channel = channel
        self.identity = identity
        self.noise = NoiseConnection.from_name(PROTOCOL_NAME)
        self.noise.set_as_responder()
        self.noise.set_keypair_from_private_bytes(Keypair.STATIC, STATIC)
        self.noise.start_handshake()
        self.reader = NoiseMessageReader()

    async def receive(self) -> bytes:
        while True:
            messages = self.reader.feed(await self.channel.receive_message())
            if messages:
                assert len(messages) == 1
                return messages[0]

    async def handshake(self, *, one_byte_at_a_time: bool = False) -> bytes:
        """Run the responder side; return the initiator's payload."""
        self.noise.read_message(await self.receive())
        message = with_length_prefix(self.noise.write_message(
            make_handshake_payload(self.identity, x25519_public_key(STATIC))))
        if one_byte_at_a_time:
            for index in range(len(message)):
                await self.channel.send_message(message[index:index + 1])
        else:
            await self.channel.send_message(message)
        payload: bytes = self.noise.read_message(await self.receive())
        return payload

    async def send_plaintext(self, plaintext: bytes) -> None:
        await self.channel.send_message(with_length_prefix(self.noise.encrypt(plaintext)))


async def dial_raw_peer(**kwargs: object) -> tuple[object, RawPeer]:
    ours, theirs = memory_channel_pair()
    peer = RawPeer(theirs)
    result: dict[str, object] = {}

    async def dial() -> None:
        result["conn"] = await secure_channel(ours, ALICE, initiator=True,
                                              expected_peer_id=BOB.peer_id, **kwargs)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(dial)
        await peer.handshake()
    return result["conn"], peer


async def test_interop_with_noiseprotocol_peer_chunked(autojump_clock: object) -> None:
    ours, theirs = memory_channel_pair()
    peer = RawPeer(theirs)
    async with trio.open_nursery() as nursery:
        conns = []

        async def dial() -> None:
            conns.append(await secure_channel(ours, ALICE, initiator=True,
                                              expected_peer_id=BOB.peer_id))

        nursery.start_soon(dial)
        payload = await peer.handshake(one_byte_at_a_time=True)
    conn = conns[0]
    assert conn.remote_peer_id == BOB.peer_id
    assert ALICE.public_key_proto in payload
    # Two frames in one Noise message, then a frame split over three.
    await peer.send_plaintext(frame_with_prefix(b"one") + frame_with_prefix(b"two"))
    big = frame_with_prefix(bytes(range(256)) * 10)
    for start in (0, 1000, 2000):
        await peer.send_plaintext(big[start:start + 1000])
    assert [await conn.receive() for _ in range(3)] == [b"one", b"two", bytes(range(256)) * 10]
    await conn.send(b"reply")
    reply = peer.noise.decrypt(await peer.receive())
    assert reply == frame_with_prefix(b"reply")
    await conn.aclose()


async def test_peer_id_mismatch(autojump_clock: object) -> None:
    ours, theirs = memory_channel_pair()
    carol = Identity.from_seed(bytes([0xC]) * 32)
    outcomes: list[type[BaseException]] = []

    async def respond() -> None:
        try:
            await secure_channel(theirs, BOB, initiator=False)
        except (HandshakeError, ConnectionClosed) as exc:
            outcomes.append(type(exc))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(respond)
        with pytest.raises(PeerIdMismatch):
            await secure_channel(ours, ALICE, initiator=True, expected_peer_id=carol.peer_id)
    assert outcomes == [ConnectionClosed]  # the responder never learns more than a close


async def test_malformed_expected_peer_id(autojump_clock: object) -> None:
    ours, _ = memory_channel_pair()
    with pytest.raises(InvalidPeerId):
        await secure_channel(ours, ALICE, initiator=True, expected_peer_id="nonsense")


async def test_garbage_handshake_closes_the_channel(autojump_clock: object) -> None:
    ours, theirs = memory_channel_pair()
    await theirs.send_message(with_length_prefix(b"short"))
    with pytest.raises(HandshakeError):
        await secure_channel(ours, BOB, initiator=False)
    with pytest.raises(ConnectionClosed):
        await theirs.send_message(b"x")


async def test_close_during_handshake(autojump_clock: object) -> None:
    ours, theirs = memory_channel_pair()
    await theirs.aclose()
    with pytest.raises(ConnectionClosed):
        await secure_channel(ours, ALICE, initiator=True)


async def test_frames_sent_with_the_last_handshake_message_are_kept(autojump_clock: object) -> None:
    """An initiator may send its first transport message right after message 3."""
    ours, theirs = memory_channel_pair()
    noise = NoiseConnection.from_name(PROTOCOL_NAME)
    noise.set_as_initiator()
    noise.set_keypair_from_private_bytes(Keypair.STATIC, STATIC)
    noise.start_handshake()
    reader = NoiseMessageReader()
    result = []

    async def respond() -> None:
        result.append(await secure_channel(theirs, BOB, initiator=False))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(respond)
        await ours.send_message(with_length_prefix(noise.write_message(b"")))
        noise.read_message(reader.feed(await ours.receive_message())[0])
        message_3 = noise.write_message(make_handshake_payload(ALICE, x25519_public_key(STATIC)))
        early = noise.encrypt(frame_with_prefix(b"early"))
        await ours.send_message(with_length_prefix(message_3) + with_length_prefix(early))
    assert await result[0].receive() == b"early"
    assert result[0].remote_peer_id == ALICE.peer_id


@pytest.mark.parametrize("attack", ["garbage", "oversized", "truncated", "replay"])
async def test_hostile_transport_data_closes_only_that_link(attack: str,
        autojump_clock: object) -> None:
    conn, peer = await dial_raw_peer(max_frame_size=1000)
    # Another, healthy link lives on in the same process.
    ok_a, ok_b = await _healthy_pair()
    expected: type[RemoteProtocolError]
    if attack == "garbage":
        await peer.channel.send_message(with_length_prefix(bytes(40)))
        expected = DecryptionError
    elif attack == "oversized":
        await peer.send_plaintext(encode_uvarint(1001))
        expected = FrameTooLarge
    elif attack == "truncated":
        await peer.send_plaintext(frame_with_prefix(bytes(100))[:50])
        await peer.channel.aclose()
        expected = TruncatedFrame
    else:
        message = with_length_prefix(peer.noise.encrypt(frame_with_prefix(b"pay")))
        await peer.channel.send_message(message)
        await peer.channel.send_message(message)
        assert await conn.receive() == b"pay"  # type: ignore[attr-defined]
        expected = DecryptionError
    with pytest.raises(expected):
        await conn.receive()  # type: ignore[attr-defined]
    with pytest.raises(ConnectionClosed):
        await conn.receive()  # type: ignore[attr-defined]
    with pytest.raises(ConnectionClosed):
        await conn.send(b"x")  # type: ignore[attr-defined]
    if attack != "truncated":  # the hostile peer sees the link closed
        with pytest.raises(ConnectionClosed):
            for _ in range(100):
                await peer.channel.send_message(b"more")
    await ok_a.send(b"still fine")
    assert await ok_b.receive() == b"still fine"


async def _healthy_pair():  # type: ignore[no-untyped-def]
    from taiinet.transport.memory import memory_connection_pair

    return await memory_connection_pair(ALICE, BOB)


async def test_cancelled_send_closes_the_link(autojump_clock: object) -> None:
    """A frame cut short by cancellation would desynchronise the stream: close instead."""
    from taiinet.transport.memory import memory_connection_pair

    a, b = await memory_connection_pair(ALICE, BOB, capacity=1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.send, bytes(300_000))  # 5 Noise messages; the buffer holds 1
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    with pytest.raises(ConnectionClosed):
        await a.send(b"x")
    with pytest.raises(TruncatedFrame):  # what got through is no whole frame
        await b.receive()


async def test_a_sender_waiting_for_the_lock_fails_once_the_link_closed(
        autojump_clock: object) -> None:
    """A sender that waited for the send lock while the link closed raises
    ``ConnectionClosed`` without sealing its frame (no nonce spent on a dead link),
    and hands the lock on."""
    from taiinet.transport.memory import memory_connection_pair

    a, b = await memory_connection_pair(ALICE, BOB, capacity=1)
    outcomes: list[str] = []

    async def send(frame: bytes) -> None:
        try:
            await a.send(frame)
        except ConnectionClosed:
            outcomes.append("closed")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send, bytes(300_000))  # holds the lock; the buffer holds 1 message
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(2):
            nursery.start_soon(send, b"queued")  # waits for the lock
            await trio.testing.wait_all_tasks_blocked()
        nonce = a._session._send.nonce  # type: ignore[attr-defined]
        await a.aclose()
    assert outcomes == ["closed"] * 3
    assert a._session._send.nonce == nonce  # type: ignore[attr-defined]
    await b.aclose()


async def test_silent_peer_times_out(autojump_clock: trio.testing.MockClock) -> None:
    ours, theirs = memory_channel_pair()
    start = trio.current_time()
    with pytest.raises(HandshakeTimeout):
        await secure_channel(ours, ALICE, initiator=True, handshake_timeout=3.0)
    assert trio.current_time() - start == pytest.approx(3.0)
    with pytest.raises(ConnectionClosed):  # the channel was closed
        await theirs.receive_message()
        await theirs.receive_message()


@settings(max_examples=40)
@given(st.booleans(), st.lists(st.binary(max_size=120), max_size=6), st.booleans())
def test_handshake_driver_fuzz(initiator: bool, chunks: list[bytes], close: bool) -> None:
    """Whatever a peer sends during the handshake, the driver ends with a typed error (or,
    never in practice, a link) and closes the channel; it never hangs or crashes."""
    async def main() -> None:
        ours, theirs = memory_channel_pair(capacity=64)
        for chunk in chunks:
            await theirs.send_message(chunk)
        if close:
            await theirs.aclose()
        with pytest.raises((HandshakeError, ConnectionClosed)):
            await secure_channel(ours, ALICE, initiator=initiator, handshake_timeout=5)
        with pytest.raises(ConnectionClosed):  # the driver closed its end
            for _ in range(100):
                await theirs.send_message(b"x")

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_transport_errors_close_the_link(autojump_clock: object) -> None:
    """A RemoteProtocolError raised by the channel itself closes the secure link too."""
    from taiinet.transport.memory import memory_connection_pair

    a, b = await memory_connection_pair(ALICE, BOB)
    channel = a._channel  # type: ignore[attr-defined]
    original = channel.receive_message

    async def broken() -> bytes:
        raise DecryptionError("the transport saw garbage")

    channel.receive_message = broken
    with pytest.raises(DecryptionError):
        await a.receive()
    channel.receive_message = original
    with pytest.raises(ConnectionClosed):
        await a.send(b"x")
    with pytest.raises(ConnectionClosed):
        await b.receive()


async def test_local_close_drops_buffered_frames(autojump_clock: object) -> None:
    from taiinet.transport.memory import memory_connection_pair

    a, b = await memory_connection_pair(ALICE, BOB)
    await b.send(b"one")
    await b.send(b"two")
    assert await a.receive() == b"one"
    await a.aclose()
    with pytest.raises(ConnectionClosed):
        await a.receive()


async def test_receive_decoded_closes_the_link_on_undecodable_frames(
        autojump_clock: object) -> None:
    from taiinet.transport.memory import memory_connection_pair
    from taiinet.wire.errors import MalformedFrame
    from taiinet.wire.framing import decode_link_frame
    from taiinet.wire.keepalive import LINK_PROTOCOL, encode_ping

    a, b = await memory_connection_pair(ALICE, BOB)
    await a.send(encode_ping(5))
    await a.send(b"\xff\xff not a frame")
    [(protocol, _body)] = await b.receive_decoded(decode_link_frame)
    assert protocol == LINK_PROTOCOL
    with pytest.raises(MalformedFrame):
        await b.receive_decoded(decode_link_frame)
    with pytest.raises(ConnectionClosed):
        await a.receive()
    with pytest.raises(ConnectionClosed):
        await b.send(b"x")


async def test_several_noise_messages_in_one_channel_message(autojump_clock: object) -> None:
    conn, peer = await dial_raw_peer()
    split = frame_with_prefix(bytes(range(200)))
    batch = b"".join(with_length_prefix(peer.noise.encrypt(p)) for p in (
        frame_with_prefix(b"one"), frame_with_prefix(b"two"), split[:50]))
    await peer.channel.send_message(batch)
    await peer.send_plaintext(split[50:])  # the rest of the split frame, then a lone one
    await peer.send_plaintext(frame_with_prefix(b"three"))
    assert [await conn.receive() for _ in range(4)] == [  # type: ignore[attr-defined]
        b"one", b"two", bytes(range(200)), b"three"]
    await conn.aclose()  # type: ignore[attr-defined]


async def test_bad_tag_in_the_middle_of_a_batch_closes_the_link(autojump_clock: object) -> None:
    conn, peer = await dial_raw_peer()
    good = with_length_prefix(peer.noise.encrypt(frame_with_prefix(b"good")))
    bad = bytearray(with_length_prefix(peer.noise.encrypt(frame_with_prefix(b"bad"))))
    bad[-1] ^= 1
    later = with_length_prefix(peer.noise.encrypt(frame_with_prefix(b"later")))
    await peer.channel.send_message(good + bytes(bad) + later)
    with pytest.raises(DecryptionError):
        await conn.receive()  # type: ignore[attr-defined]
    assert conn.closed  # type: ignore[attr-defined]
    with pytest.raises(ConnectionClosed):
        await conn.send(b"x")  # type: ignore[attr-defined]
    with pytest.raises(ConnectionClosed):
        for _ in range(100):
            await peer.channel.send_message(b"more")


async def test_concurrent_senders_and_receivers_take_turns(autojump_clock: object) -> None:
    """Frames of several Noise messages from concurrent senders never interleave and
    go in turn; a sender cancelled while it waits for the lock leaves the link
    usable; concurrent receivers each get a whole frame."""
    from taiinet.transport.memory import memory_connection_pair

    a, b = await memory_connection_pair(ALICE, BOB, capacity=1)
    big = [bytes([n]) * 200_000 for n in range(3)]  # 4 Noise messages each
    got: list[bytes] = []

    async def receive_into() -> None:
        got.append(await b.receive())

    scopes: list[trio.CancelScope] = []

    async def send_until_cancelled() -> None:
        with trio.CancelScope() as scope:
            scopes.append(scope)
            await a.send(b"never sent")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.send, big[0])
        await trio.testing.wait_all_tasks_blocked()  # holds the lock; the channel is full
        nursery.start_soon(send_until_cancelled)  # waits for the lock
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(a.send, big[1])
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(a.send, big[2])
        await trio.testing.wait_all_tasks_blocked()
        scopes[0].cancel()
        for _ in range(3):
            nursery.start_soon(receive_into)
    assert got == big  # in the order the senders queued for the lock
    assert not a.closed
    await a.send(b"after")
    assert await b.receive() == b"after"


async def test_frames_already_received_need_no_timeout_each(
        autojump_clock: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """A link with an idle deadline opens no cancel scope for a message that is already here."""
    from taiinet.transport.limits import LISTENER_DEADLINES
    from taiinet.transport.memory import memory_connection_pair

    # (64 messages each way: the 20 frames fit, no reader needed.)
    a, b = await memory_connection_pair(ALICE, BOB, capacity=64, deadlines=LISTENER_DEADLINES)
    for i in range(20):
        await a.send(bytes([i]) * 100)
    await trio.testing.wait_all_tasks_blocked()
    scopes = 0
    move_on_at = trio.move_on_at

    def counting(deadline: float) -> trio.CancelScope:
        nonlocal scopes
        scopes += 1
        return move_on_at(deadline)

    monkeypatch.setattr(trio, "move_on_at", counting)
    assert [await b.receive() for _ in range(20)] == [bytes([i]) * 100 for i in range(20)]
    assert scopes == 0
    with trio.move_on_after(1):  # nothing here: now it waits under its idle deadline
        await b.receive()
    assert scopes == 1


async def test_a_lock_released_as_its_only_waiter_is_cancelled_is_free() -> None:
    """The waiter left the parking lot when its cancellation came, before it ran:
    the release finds nobody to hand the lock to, so the lock is free, not held
    for ever by nobody (every later send or read would wait for good)."""
    lock = LinkLock()
    lock.held = True
    outcome: list[str] = []

    async def waiter(scope: trio.CancelScope) -> None:
        with scope:
            await lock.wait()
            outcome.append("got the lock")
        outcome.append("cancelled" if scope.cancelled_caught else "")

    scope = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter, scope)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()  # in the same step as the release: the waiter has not run yet
        lock.release()
    assert outcome == ["cancelled"]
    assert not lock.held
