"""The Noise XX core: interop with noiseprotocol, tampering, fuzzing, a stateful model."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from noise.connection import Keypair, NoiseConnection

from taiinet import Identity
from taiinet.errors import LocalProtocolError, RemoteProtocolError
from taiinet.transport.errors import DecryptionError, HandshakeError, PeerIdMismatch
from taiinet.transport.noise import (
    MAX_PLAINTEXT,
    PROTOCOL_NAME,
    SMALL_FRAME_SIZE,
    CipherState,
    HandshakeState,
    NoiseHandshake,
    NoiseMessageReader,
    SecureSession,
    make_handshake_payload,
    with_length_prefix,
    x25519_public_key,
)
from taiinet.v1 import noise_pb2
from taiinet.wire import codec
from taiinet.wire.errors import FrameTooLarge, TruncatedFrame
from taiinet.wire.framing import encode_uvarint

ALICE = Identity.from_seed(bytes([0xA]) * 32)
BOB = Identity.from_seed(bytes([0xB]) * 32)
keys = st.binary(min_size=32, max_size=32)


def handshake(role: str, identity: Identity, rng: random.Random,
              expected: str | None = None) -> NoiseHandshake:
    return NoiseHandshake(initiator=role == "initiator", identity=identity,
                          static_private_key=rng.randbytes(32),
                          ephemeral_private_key=rng.randbytes(32), expected_peer_id=expected)


def reference(role: str, static: bytes) -> NoiseConnection:
    connection = NoiseConnection.from_name(PROTOCOL_NAME)
    if role == "initiator":
        connection.set_as_initiator()
    else:
        connection.set_as_responder()
    connection.set_keypair_from_private_bytes(Keypair.STATIC, static)
    connection.start_handshake()
    return connection


def complete(initiator: NoiseHandshake, responder: NoiseHandshake) -> None:
    responder.read_message(initiator.write_message())
    initiator.read_message(responder.write_message())
    responder.read_message(initiator.write_message())


@settings(max_examples=25)
@given(st.integers(0, 2**32), st.lists(st.binary(max_size=2000), max_size=5))
def test_initiator_against_noiseprotocol(seed: int, messages: list[bytes]) -> None:
    rng = random.Random(seed)
    ours = handshake("initiator", ALICE, rng, expected=BOB.peer_id)
    static = rng.randbytes(32)
    theirs = reference("responder", static)
    assert theirs.read_message(ours.write_message()) == b""
    ours.read_message(theirs.write_message(make_handshake_payload(BOB, x25519_public_key(static))))
    payload = theirs.read_message(ours.write_message())
    fields = codec.decode_handshake_payload(payload)
    assert fields is not None and fields.identity_key == ALICE.public_key_proto
    assert ours.state is HandshakeState.DONE and ours.result is not None
    assert ours.result.remote_peer_id == BOB.peer_id
    assert ours.result.handshake_hash == theirs.get_handshake_hash()
    for message in messages:
        assert theirs.decrypt(ours.result.send_cipher.encrypt(b"", message)) == message
        assert ours.result.receive_cipher.decrypt(b"", theirs.encrypt(message)) == message


@settings(max_examples=25)
@given(st.integers(0, 2**32), st.lists(st.binary(max_size=2000), max_size=5))
def test_responder_against_noiseprotocol(seed: int, messages: list[bytes]) -> None:
    rng = random.Random(seed)
    ours = handshake("responder", BOB, rng)
    static = rng.randbytes(32)
    theirs = reference("initiator", static)
    ours.read_message(theirs.write_message(b""))
    theirs.read_message(ours.write_message())
    ours.read_message(theirs.write_message(make_handshake_payload(ALICE,
                                                                  x25519_public_key(static))))
    assert ours.result is not None and ours.result.remote_peer_id == ALICE.peer_id
    assert ours.result.handshake_hash == theirs.get_handshake_hash()
    for message in messages:
        assert theirs.decrypt(ours.result.send_cipher.encrypt(b"", message)) == message
        assert ours.result.receive_cipher.decrypt(b"", theirs.encrypt(message)) == message


def test_peer_id_mismatch_is_detected_before_revealing_ourselves() -> None:
    rng = random.Random(1)
    carol = Identity.from_seed(bytes([0xC]) * 32)
    initiator = handshake("initiator", ALICE, rng, expected=carol.peer_id)
    responder = handshake("responder", BOB, rng)
    responder.read_message(initiator.write_message())
    with pytest.raises(PeerIdMismatch):
        initiator.read_message(responder.write_message())
    assert initiator.state is HandshakeState.FAILED
    with pytest.raises(LocalProtocolError):
        initiator.write_message()


def _bad_payload_responder(payload: bytes, rng: random.Random) -> tuple[NoiseHandshake, bytes]:
    initiator = handshake("initiator", ALICE, rng)
    theirs = reference("responder", rng.randbytes(32))
    theirs.read_message(initiator.write_message())
    return initiator, theirs.write_message(payload)


def _payload(identity_key: bytes, signature: bytes) -> bytes:
    return noise_pb2.NoiseHandshakePayload(identity_key=identity_key,
                                           identity_sig=signature).SerializeToString()


@pytest.mark.parametrize("case", ["signed-other-static-key", "garbage", "empty", "rsa-key",
                                  "short-signature", "huge"])
def test_bad_handshake_payloads(case: str) -> None:
    rng = random.Random(case)
    other_static = x25519_public_key(bytes(range(32)))
    payload = {
        "signed-other-static-key": make_handshake_payload(BOB, other_static),
        "garbage": b"\xff\xfe\xfd",
        "empty": b"",
        "rsa-key": _payload(b"\x08\x00\x12\x20" + BOB.public_key, bytes(64)),
        "short-signature": _payload(BOB.public_key_proto, bytes(10)),
        "huge": _payload(BOB.public_key_proto, bytes(64)) + b"\x1a\x00" * 3000,
    }[case]
    initiator, message = _bad_payload_responder(payload, rng)
    with pytest.raises(HandshakeError):
        initiator.read_message(message)
    assert initiator.state is HandshakeState.FAILED


def test_extensions_in_a_payload_are_accepted() -> None:
    rng = random.Random(5)
    static = rng.randbytes(32)
    message = noise_pb2.NoiseHandshakePayload()
    message.ParseFromString(make_handshake_payload(BOB, x25519_public_key(static)))
    message.extensions.stream_muxers.append("/yamux/1.0.0")
    initiator = handshake("initiator", ALICE, rng)
    theirs = reference("responder", static)
    theirs.read_message(initiator.write_message())
    initiator.read_message(theirs.write_message(message.SerializeToString()))
    assert initiator.state is HandshakeState.WRITE


def test_nonempty_first_payload_rejected() -> None:
    responder = handshake("responder", BOB, random.Random(2))
    theirs = reference("initiator", bytes(range(32)))
    with pytest.raises(HandshakeError):
        responder.read_message(theirs.write_message(b"hello"))


def test_low_order_ephemeral_key_rejected() -> None:
    responder = handshake("responder", BOB, random.Random(3))
    responder.read_message(bytes(32))  # message 1 is only mixed into the hash
    with pytest.raises(HandshakeError, match="X25519"):
        responder.write_message()
    assert responder.state is HandshakeState.FAILED


@pytest.mark.parametrize("which", [1, 2, 3])
def test_any_altered_handshake_byte_fails(which: int) -> None:
    """A flipped byte in any message fails the handshake.  Message 1 is not encrypted, but
    it is bound into the handshake hash, so the failure shows when message 2 is read."""
    for index in range(0, 200, 7):
        rng = random.Random(index)
        initiator, responder = handshake("initiator", ALICE, rng), handshake("responder", BOB, rng)
        messages = [initiator.write_message()]
        if which >= 2:
            responder.read_message(messages[0])
            messages.append(responder.write_message())
        if which == 3:
            initiator.read_message(messages[1])
            messages.append(initiator.write_message())
        altered = bytearray(messages[-1])
        altered[index % len(altered)] ^= 1
        reader = responder if which in (1, 3) else initiator
        with pytest.raises(HandshakeError):
            reader.read_message(bytes(altered))
            if which == 1:
                initiator.read_message(responder.write_message())


@settings(max_examples=60)
@given(st.sampled_from(["initiator", "responder"]), st.integers(0, 2), st.binary(max_size=300))
def test_read_message_fuzz(role: str, step: int, data: bytes) -> None:
    """Random bytes at any handshake step: a HandshakeError, never anything else."""
    rng = random.Random(step)
    ours = handshake(role, ALICE, rng)
    peer = handshake("responder" if role == "initiator" else "initiator", BOB, rng)
    # Play the honest exchange up to the step where we read garbage.
    first, second = (ours, peer) if role == "initiator" else (peer, ours)
    sequence = [(first, second), (second, first), (first, second)]
    for writer, reader in sequence:
        if reader is ours and step == 0:
            break
        if reader is ours:
            step -= 1
        message = writer.write_message()
        reader.read_message(message)
        if ours.state is HandshakeState.DONE:
            return
    assert ours.state is HandshakeState.READ
    try:
        ours.read_message(data)
    except HandshakeError:
        assert ours.state is HandshakeState.FAILED
        return
    # Only message 1 may be accepted blindly (it is 32 bytes of key + empty payload).
    assert len(data) == 32


class HandshakeMachine(RuleBasedStateMachine):
    """Drive both sides with honest, altered, random or out-of-turn calls; every outcome is
    a valid state or a typed error, and a failed side stays failed."""

    def __init__(self) -> None:
        super().__init__()
        rng = random.Random(0)
        self.sides = {"i": handshake("initiator", ALICE, rng, expected=BOB.peer_id),
                      "r": handshake("responder", BOB, rng)}
        self.in_flight: dict[str, list[bytes]] = {"i": [], "r": []}  # to be read by key
        self.tampered = False

    def other(self, name: str) -> str:
        return "r" if name == "i" else "i"

    @rule(name=st.sampled_from(["i", "r"]))
    def write(self, name: str) -> None:
        side = self.sides[name]
        if side.state is not HandshakeState.WRITE:
            with pytest.raises(LocalProtocolError):
                side.write_message()
            return
        try:
            self.in_flight[self.other(name)].append(side.write_message())
        except HandshakeError:
            assert side.state is HandshakeState.FAILED

    @rule(name=st.sampled_from(["i", "r"]), garbage=st.none() | st.binary(max_size=120),
          flip=st.none() | st.integers(0, 400))
    def read(self, name: str, garbage: bytes | None, flip: int | None) -> None:
        side = self.sides[name]
        queue = self.in_flight[name]
        if garbage is not None:
            message = garbage
            self.tampered = True
        elif queue:
            message = queue.pop(0)
            if flip is not None and message:
                altered = bytearray(message)
                altered[flip % len(altered)] ^= 0x40
                message = bytes(altered)
                self.tampered = True
        else:
            return
        if side.state is not HandshakeState.READ:
            with pytest.raises(LocalProtocolError):
                side.read_message(message)
            return
        try:
            side.read_message(message)
        except HandshakeError:
            assert side.state is HandshakeState.FAILED

    @invariant()
    def states_are_consistent(self) -> None:
        for side in self.sides.values():
            assert side.state in HandshakeState
            assert (side.result is not None) == (side.state is HandshakeState.DONE)

    @precondition(lambda self: all(s.state is HandshakeState.DONE for s in self.sides.values()))
    @rule()
    def both_done_means_same_keys(self) -> None:
        initiator, responder = self.sides["i"].result, self.sides["r"].result
        assert initiator is not None and responder is not None
        assert initiator.handshake_hash == responder.handshake_hash
        assert initiator.remote_peer_id == BOB.peer_id
        assert responder.remote_peer_id == ALICE.peer_id


TestHandshakeMachine = HandshakeMachine.TestCase
TestHandshakeMachine.settings = settings(max_examples=40, stateful_step_count=12)


def completed_sessions(max_frame_size: int = 1 << 20) -> tuple[SecureSession, SecureSession]:
    rng = random.Random(9)
    initiator, responder = handshake("initiator", ALICE, rng), handshake("responder", BOB, rng)
    complete(initiator, responder)
    assert initiator.result is not None and responder.result is not None
    return (SecureSession(initiator.result, max_frame_size=max_frame_size),
            SecureSession(responder.result, max_frame_size=max_frame_size))


def test_large_frame_is_split_into_noise_messages() -> None:
    a, b = completed_sessions()
    frame = random.Random(1).randbytes(1 << 20)
    messages = a.encrypt_frame(frame)
    assert len(messages) == 17
    assert all(len(m) <= 65537 for m in messages)
    assert b.receive_data(b"".join(messages)) == [frame]


@given(st.lists(st.binary(max_size=3000), max_size=6), st.integers(1, 5000))
def test_session_reassembles_any_cutting(frames: list[bytes], cut: int) -> None:
    a, b = completed_sessions()
    stream = b"".join(m for frame in frames for m in a.encrypt_frame(frame))
    received: list[bytes] = []
    for start in range(0, len(stream), cut):
        received += b.receive_data(stream[start:start + cut])
    assert received == frames
    b.end_of_stream()


def test_several_frames_in_one_noise_message_are_accepted() -> None:
    a, b = completed_sessions()
    plaintext = b"".join(encode_uvarint(len(f)) + f for f in (b"one", b"", b"three"))
    message = with_length_prefix(a._send.encrypt(b"", plaintext))
    assert b.receive_data(message) == [b"one", b"", b"three"]


def test_replayed_reordered_and_altered_transport_messages() -> None:
    a, b = completed_sessions()
    first, second = a.encrypt_frame(b"first")[0], a.encrypt_frame(b"second")[0]
    with pytest.raises(DecryptionError):  # reordered
        b.receive_data(second)
    a, b = completed_sessions()
    first = a.encrypt_frame(b"first")[0]
    assert b.receive_data(first) == [b"first"]
    with pytest.raises(DecryptionError):  # replayed
        b.receive_data(first)
    a, b = completed_sessions()
    altered = bytearray(a.encrypt_frame(b"first")[0])
    altered[5] ^= 1
    with pytest.raises(DecryptionError):
        b.receive_data(bytes(altered))


def test_transport_message_shorter_than_a_tag() -> None:
    _, b = completed_sessions()
    with pytest.raises(DecryptionError):
        b.receive_data(with_length_prefix(bytes(5)))


def test_oversized_frame_from_peer() -> None:
    a, _ = completed_sessions(max_frame_size=1000)
    _, b = completed_sessions(max_frame_size=100)
    # Same keys (same seed): a's messages decrypt at b.
    with pytest.raises(FrameTooLarge):
        b.receive_data(b"".join(a.encrypt_frame(bytes(101))))


def test_truncated_noise_message_at_end_of_stream() -> None:
    a, b = completed_sessions()
    message = a.encrypt_frame(b"hello")[0]
    assert b.receive_data(message[:-3]) == []
    with pytest.raises(TruncatedFrame):
        b.end_of_stream()


def test_frame_cut_at_a_noise_boundary_is_truncated() -> None:
    a, b = completed_sessions()
    messages = a.encrypt_frame(bytes(MAX_PLAINTEXT + 10))
    assert b.receive_data(messages[0]) == []
    with pytest.raises(TruncatedFrame):
        b.end_of_stream()


@settings(max_examples=60)
@given(st.binary(max_size=500))
def test_session_receive_fuzz(data: bytes) -> None:
    _, b = completed_sessions()
    try:
        b.receive_data(data)
        b.end_of_stream()
    except RemoteProtocolError:
        pass


@given(st.lists(st.binary(max_size=70), max_size=10))
def test_message_reader_reassembles(messages: list[bytes]) -> None:
    reader = NoiseMessageReader()
    stream = b"".join(with_length_prefix(m) for m in messages)
    received = []
    for byte in range(len(stream)):
        received += reader.feed(stream[byte:byte + 1])
    assert received == messages and not reader.has_partial_message


def test_nonce_exhaustion_ends_the_link() -> None:
    cipher = CipherState(bytes(32))
    cipher.nonce = 2**64 - 1
    with pytest.raises(LocalProtocolError):
        cipher.encrypt(b"", b"x")
    with pytest.raises(LocalProtocolError):
        cipher.seal_frame(b"x")
    with pytest.raises(LocalProtocolError):
        cipher.open(bytes(2 + 17))
    assert cipher.nonce == 2**64 - 1


@given(st.lists(st.sampled_from([0, 1, 127, 128, 1024, 16383]) | st.integers(0, SMALL_FRAME_SIZE),
                max_size=4))
@settings(max_examples=60)
def test_seal_frame_writes_what_encrypt_frame_writes(sizes: list[int]) -> None:
    """The one-message fast path writes the general one's message: same length, same
    nonce sequence, read back by the general receiver, interleaved with it."""
    sender, receiver = completed_sessions()
    for size in sizes:
        frame = random.Random(size).randbytes(size)
        sealed = sender.seal_frame(frame)
        [general] = sender.encrypt_frame(frame)
        assert len(sealed) == len(general) and sealed[:2] == general[:2]
        assert receiver.receive_data(sealed + general) == [frame, frame]
    assert sender._send.nonce == receiver._receive.nonce == 2 * len(sizes)


def test_seal_frame_refuses_a_frame_its_short_prefix_cannot_carry() -> None:
    """``seal_frame`` writes a one- or two-byte uvarint inline: past ``SMALL_FRAME_SIZE``
    it must refuse (a two-byte shortcut would silently write the wrong length), and
    spend no nonce."""
    sender, receiver = completed_sessions()
    with pytest.raises(LocalProtocolError):
        sender.seal_frame(bytes(SMALL_FRAME_SIZE + 1))
    assert sender._send.nonce == 0
    for size in (0, 0x7F, 0x80, SMALL_FRAME_SIZE):  # each side of each prefix length
        frame = bytes([size & 0xFF]) * size
        message = sender.seal_frame(frame)
        assert receiver.receive_data(message) == [frame]


def test_lone_messages_of_a_split_frame_take_the_general_path() -> None:
    """A whole Noise message that arrives while a frame is partly held continues that
    frame (the one-message shortcut must not take it for a frame of its own)."""
    a, b = completed_sessions()
    frame = bytes(range(256)) * 300  # 76,800 bytes: two Noise messages
    first, second = a.encrypt_frame(frame)
    assert b.receive_data(first) == [] and b.has_partial_frame
    assert b.receive_data(second) == [frame] and not b.has_partial_frame
    assert b.receive_data(a.seal_frame(b"next")) == [b"next"]


def test_small_frame_size_follows_the_maximum() -> None:
    assert completed_sessions()[0].small_frame_size == SMALL_FRAME_SIZE
    assert completed_sessions(max_frame_size=100)[0].small_frame_size == 100


@given(st.binary(max_size=300), st.binary(min_size=32, max_size=32))
def test_handshake_payload_decoder_fuzz(payload: bytes, static_key: bytes) -> None:
    from taiinet.transport.noise import verify_handshake_payload

    with pytest.raises(HandshakeError):
        verify_handshake_payload(payload, static_key)


class SessionMachine(RuleBasedStateMachine):
    """A sender and a receiver session with a byte pipe between them: whatever cutting,
    the receiver delivers exactly a prefix of what was sent, and tampering or garbage
    always ends in a typed error."""

    def __init__(self) -> None:
        super().__init__()
        self.sender, self.receiver = completed_sessions(max_frame_size=5000)
        self.sent: list[bytes] = []
        self.received: list[bytes] = []
        self.pipe = bytearray()
        self.failed = False

    @rule(frame=st.binary(max_size=300) | st.builds(bytes, st.integers(4000, 5000)))
    def send(self, frame: bytes) -> None:
        self.pipe += b"".join(self.sender.encrypt_frame(frame))
        self.sent.append(frame)

    @rule(count=st.integers(1, 6000))
    def deliver(self, count: int) -> None:
        if self.failed:
            return
        chunk, self.pipe = bytes(self.pipe[:count]), self.pipe[count:]
        self.received += self.receiver.receive_data(chunk)

    @rule(garbage=st.binary(min_size=1, max_size=40))
    def inject(self, garbage: bytes) -> None:
        if self.failed:
            return
        # Garbage at a message boundary: it must not be accepted as a frame.
        self.pipe.clear()
        try:
            self.received += self.receiver.receive_data(garbage)
        except RemoteProtocolError:
            self.failed = True
            return
        # It can only sit there as an incomplete message (prefix says more is coming).
        assert self.receiver._reader.has_partial_message
        self.failed = True  # the stream is desynchronised; stop feeding it

    @invariant()
    def received_is_a_prefix_of_sent(self) -> None:
        assert self.received == self.sent[:len(self.received)]


TestSessionMachine = SessionMachine.TestCase
TestSessionMachine.settings = settings(max_examples=30, stateful_step_count=15)


@given(st.lists(st.binary(max_size=2000), max_size=8), st.lists(st.integers(0, 3), max_size=8))
def test_session_takes_whole_noise_messages_in_any_grouping(frames: list[bytes],
                                                           groups: list[int]) -> None:
    """Channel messages of whole Noise messages (one each: the shortcut; several, or
    none) and, once, a message cut in two: every frame arrives, in order."""
    a, b = completed_sessions()
    messages = [m for frame in frames for m in a.encrypt_frame(frame)]
    chunks: list[bytes] = []
    for size in groups:
        chunks.append(b"".join(messages[:size]))
        del messages[:size]
    if messages:  # the rest: the first one cut in two, then one message per chunk
        first = messages.pop(0)
        chunks += [first[:7], first[7:], *messages]
    received = [frame for chunk in chunks for frame in b.receive_data(chunk)]
    assert received == frames
    b.end_of_stream()


def test_whole_message_after_a_partial_one() -> None:
    """A whole Noise message right after a cut one goes through the reader, in order."""
    a, b = completed_sessions()
    first, second, third = (a.encrypt_frame(f)[0] for f in (b"first", b"second", b"third"))
    assert b.receive_data(first[:10]) == []
    assert b.receive_data(first[10:] + second) == [b"first", b"second"]
    assert b.receive_data(third) == [b"third"]  # the one-message shortcut again
    assert not b.has_partial_frame


def test_bad_tag_in_the_middle_of_a_batch() -> None:
    a, b = completed_sessions()
    good, bad, later = (bytearray(a.encrypt_frame(f)[0]) for f in (b"a", b"b", b"c"))
    bad[-1] ^= 1
    with pytest.raises(DecryptionError):
        b.receive_data(bytes(good + bad + later))


def test_altered_length_prefix_of_a_lone_message() -> None:
    """A prefix that does not match the channel message's size is no whole message:
    the reader holds the bytes (longer) or reads a short, failing message."""
    a, b = completed_sessions()
    message = bytearray(a.encrypt_frame(b"hello")[0])
    message[1] += 1  # one byte longer than what follows
    assert b.receive_data(bytes(message)) == []
    assert b.has_partial_frame
    a, b = completed_sessions()
    message = bytearray(a.encrypt_frame(b"hello")[0])
    message[1] -= 1
    with pytest.raises(DecryptionError):
        b.receive_data(bytes(message))
