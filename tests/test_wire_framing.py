"""Length-prefixed framing: varints, the incremental decoder, Frame decoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taiinet.errors import LocalProtocolError, RemoteProtocolError
from taiinet.v1 import frame_pb2
from taiinet.wire.errors import FrameTooLarge, MalformedFrame, OversizedFrame, TruncatedFrame
from taiinet.wire.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    FrameDecoder,
    decode_frame,
    decode_uvarint,
    encode_frame,
    encode_uvarint,
    frame_with_prefix,
)


def test_error_classes() -> None:
    for error in (FrameTooLarge, MalformedFrame, TruncatedFrame):
        assert issubclass(error, RemoteProtocolError)
    assert issubclass(OversizedFrame, LocalProtocolError)
    assert DEFAULT_MAX_FRAME_SIZE == 1 << 20


@given(st.integers(0, 2**35 - 1))
def test_uvarint_round_trip(value: int) -> None:
    encoded = encode_uvarint(value)
    assert decode_uvarint(encoded) == (value, len(encoded))


@pytest.mark.parametrize("data, error", [
    (b"", TruncatedFrame), (b"\x80", TruncatedFrame), (b"\x80\x00", MalformedFrame),
    (b"\xff\x00", MalformedFrame), (b"\xff\xff\xff\xff\xff\x01", MalformedFrame),
])
def test_bad_uvarints(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_uvarint(data)


@given(st.binary(max_size=12))
def test_uvarint_decoder_fuzz(data: bytes) -> None:
    try:
        value, end = decode_uvarint(data)
    except (TruncatedFrame, MalformedFrame):
        return
    assert encode_uvarint(value) == data[:end]


frames_lists = st.lists(st.binary(max_size=300), max_size=12)


@given(frames_lists, st.lists(st.integers(1, 400), min_size=1, max_size=30))
def test_decoder_reassembles_any_cutting(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame_with_prefix(frame) for frame in frames)
    decoder = FrameDecoder(1000)
    received: list[bytes] = []
    position, index = 0, 0
    while position < len(stream):
        step = cuts[index % len(cuts)]
        received += decoder.feed(stream[position:position + step])
        position, index = position + step, index + 1
    assert received == frames
    assert not decoder.has_partial_frame
    decoder.end_of_stream()


@given(st.binary(max_size=400))
def test_decoder_fuzz(data: bytes) -> None:
    """Any bytes: frames, or a typed remote error, or a partial frame at the end."""
    decoder = FrameDecoder(100)
    try:
        frames = decoder.feed(data)
        decoder.end_of_stream()
    except (FrameTooLarge, MalformedFrame, TruncatedFrame):
        with pytest.raises(LocalProtocolError):
            decoder.feed(b"\x00")  # a failed decoder says so on every later call
        return
    assert b"".join(frame_with_prefix(frame) for frame in frames) == data


def test_oversized_prefix_rejected_before_buffering() -> None:
    decoder = FrameDecoder(100)
    with pytest.raises(FrameTooLarge):
        decoder.feed(encode_uvarint(101))  # no frame bytes needed to reject it


def test_frame_of_exactly_the_maximum() -> None:
    decoder = FrameDecoder(100)
    assert decoder.feed(frame_with_prefix(bytes(100), 100)) == [bytes(100)]
    with pytest.raises(OversizedFrame):
        frame_with_prefix(bytes(101), 100)


def test_truncated_stream() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(frame_with_prefix(b"hello")[:-1]) == []
    with pytest.raises(TruncatedFrame):
        decoder.end_of_stream()


def test_frame_round_trip() -> None:
    frame = frame_pb2.Frame(pong=frame_pb2.Pong(nonce=7))
    assert decode_frame(encode_frame(frame)) == frame
    with pytest.raises(OversizedFrame):
        encode_frame(frame, max_frame_size=2)
    with pytest.raises(FrameTooLarge):
        decode_frame(bytes(10), max_frame_size=5)


@pytest.mark.parametrize("data", [b"", b"\xff\xff\xff", b"\x0a\x05\x08", b"\x78\x01"])
def test_undecodable_frames(data: bytes) -> None:
    with pytest.raises(MalformedFrame):
        decode_frame(data)


@given(st.binary(max_size=200))
def test_decode_frame_fuzz(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except MalformedFrame:
        return
    assert frame.WhichOneof("body") is not None
