"""The WebSocket fast path (``taiinet.transport._wsframes``) against wsproto."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, Message, Ping

from taiinet.transport._wsframes import MASK_KEY_BLOCK, binary_frame, take_binary_frames, unmask

SIZES = [0, 1, 5, 125, 126, 127, 1800, 65535, 65536, 65537]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("masked", [True, False])
def test_frames_read_and_written_as_wsproto_does(size: int, masked: bool) -> None:
    """A client masks, a server does not: each side reads the other's frames."""
    data = random.Random(size).randbytes(size)
    client, server = Connection(ConnectionType.CLIENT), Connection(ConnectionType.SERVER)
    sender, receiver = (client, server) if masked else (server, client)
    receiver.receive_data(binary_frame(data, masked))
    events = list(receiver.events())
    assert len(events) == 1 and isinstance(events[0], BytesMessage)
    assert events[0].data == data and events[0].message_finished
    wire = bytes(sender.send(Message(data=data)))
    messages: list[bytes] = []
    assert take_binary_frames(wire, masked, 70000, messages) == (len(wire), True)
    assert messages == [data]
    if not masked:  # no random key: byte for byte what wsproto writes
        assert binary_frame(data, masked) == wire


def test_frames_cut_anywhere_are_taken_whole_once_complete() -> None:
    rng = random.Random(1)
    payloads = [rng.randbytes(n) for n in (3, 200, 0, 70000 - 14, 126)]
    wire = b"".join(binary_frame(p, True) for p in payloads)
    for cut in [1, 2, 5, 9, 130, 400, len(wire) - 1]:
        messages: list[bytes] = []
        taken, simple = take_binary_frames(wire[:cut], True, 70000, messages)
        assert simple
        rest = wire[taken:]
        taken2, simple2 = take_binary_frames(rest, True, 70000, messages)
        assert (taken2, simple2) == (len(rest), True)
        assert messages == payloads


@pytest.mark.parametrize("frame", [
    bytes(Connection(ConnectionType.CLIENT).send(Ping(b"hi"))),  # control
    bytes([0x81, 0x80]) + b"\0" * 4,  # text
    bytes([0x02, 0x80]) + b"\0" * 4,  # binary, not final (fragmented)
    bytes([0x00, 0x80]) + b"\0" * 4,  # continuation
    bytes([0xC2, 0x80]) + b"\0" * 4,  # a reserved bit
    bytes([0x82, 0x05]) + b"hello",  # unmasked from a client
    bytes([0x82, 0xFE, 0x00, 0x05]) + b"\0" * 9,  # length not in its shortest form
    bytes([0x82, 0xFF]) + (5).to_bytes(8, "big") + b"\0" * 9,  # same, 8 bytes
])
def test_any_other_frame_is_left_to_wsproto_with_what_follows(frame: bytes) -> None:
    before = binary_frame(b"first", True)
    messages: list[bytes] = []
    result = take_binary_frames(before + frame + before, True, 70000, messages)
    assert result == (len(before), False)
    assert messages == [b"first"]


def test_a_masked_frame_to_a_client_is_left_to_wsproto() -> None:
    assert take_binary_frames(binary_frame(b"x", True), False, 70000, []) == (0, False)


def test_a_frame_over_the_limit_is_refused_from_its_header() -> None:
    header = binary_frame(b"y" * 1001, True)[:8]
    with pytest.raises(ValueError):
        take_binary_frames(header, True, 1000, [])
    assert take_binary_frames(header, True, 1001, []) == (0, True)


def test_unmask_is_its_own_inverse_and_xors_the_repeated_key() -> None:
    data = bytes(range(256)) * 3 + b"abc"
    key = b"\x01\x80\xff\x10"
    masked = unmask(key, data)
    assert masked == bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert unmask(key, masked) == data
    assert unmask(key, b"") == b""


def _frames_and_garbage(masked: bool) -> st.SearchStrategy[bytes]:
    """Whole binary frames of either masking, and arbitrary bytes, run together."""
    piece = st.one_of(
        st.binary(max_size=200).map(lambda data: binary_frame(data, masked)),
        st.binary(max_size=200).map(lambda data: binary_frame(data, not masked)),
        st.binary(max_size=40),
    )
    return st.lists(piece, max_size=6).map(b"".join)


@given(st.data(), st.booleans(), st.integers(0, 250))
def test_any_bytes_are_taken_only_as_wsproto_reads_them(
        data: st.DataObject, masked: bool, limit: int) -> None:
    """Whatever arrives, the frames taken are what wsproto reads from the same bytes
    (whole binary messages, nothing else), and the rest is left to it untouched."""
    wire = data.draw(_frames_and_garbage(masked))
    messages: list[bytes] = []
    try:
        taken, _simple = take_binary_frames(wire, masked, limit, messages)
    except ValueError:
        return  # a simple frame announcing over ``limit``: the channel refuses it (1009)
    assert 0 <= taken <= len(wire)
    receiver = Connection(ConnectionType.SERVER if masked else ConnectionType.CLIENT)
    receiver.receive_data(wire[:taken])
    events = list(receiver.events())
    assert all(isinstance(e, BytesMessage) and e.message_finished for e in events)
    assert [e.data for e in events] == messages
    assert all(len(message) <= limit for message in messages)


def test_masking_keys_come_from_one_urandom_call_per_block(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    urandom = os.urandom

    def counting(size: int) -> bytes:
        calls.append(size)
        return urandom(size)

    monkeypatch.setattr(os, "urandom", counting)
    frames = [binary_frame(b"x" * 10, True) for _ in range(MASK_KEY_BLOCK // 4 + 1)]
    assert len(calls) <= 2  # not one per frame
    keys = [frame[2:6] for frame in frames]
    assert len(set(keys)) > len(keys) - 3  # fresh keys (a repeat is a 2**-32 chance each)
    taken: list[bytes] = []
    for frame in frames:
        assert take_binary_frames(frame, True, 100, taken) == (len(frame), True)
    assert taken == [b"x" * 10] * len(frames)
