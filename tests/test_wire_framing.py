"""Length-prefixed framing: varints, the incremental decoder, LinkFrame items."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taiinet.errors import LocalProtocolError, RemoteProtocolError
from taiinet.v1 import frame_pb2
from taiinet.wire.errors import FrameTooLarge, MalformedFrame, OversizedFrame, TruncatedFrame
from taiinet.wire.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    MAX_PROTOCOL_ID,
    FrameDecoder,
    decode_link_frame,
    decode_uvarint,
    encode_item,
    encode_uvarint,
    frame_with_prefix,
    join_items,
    link_frame,
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


@pytest.mark.parametrize("value, encoded", [
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02"),
    (16383, b"\xff\x7f"), (16384, b"\x80\x80\x01")])
def test_uvarint_known_encodings(value: int, encoded: bytes) -> None:
    assert encode_uvarint(value) == encoded


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


items = st.lists(st.tuples(st.integers(1, MAX_PROTOCOL_ID), st.binary(max_size=40)),
                 min_size=1, max_size=8)


@given(items)
def test_items_joined_are_what_protobuf_writes_and_read_back(pairs: list[tuple[int, bytes]],
                                                             ) -> None:
    data = join_items([encode_item(protocol, body) for protocol, body in pairs])
    expected = frame_pb2.LinkFrame(items=[frame_pb2.LinkItem(protocol=p, body=b)
                                          for p, b in pairs]).SerializeToString()
    assert data == expected
    assert decode_link_frame(data) == pairs


def test_link_frame_limits() -> None:
    with pytest.raises(OversizedFrame):
        link_frame(12, bytes(10), max_frame_size=5)
    with pytest.raises(FrameTooLarge):
        decode_link_frame(bytes(10), max_frame_size=5)
    with pytest.raises(LocalProtocolError):
        encode_item(0, b"")
    many = join_items([encode_item(1, b"")] * 3)
    assert len(decode_link_frame(many, max_items=3)) == 3
    with pytest.raises(MalformedFrame):
        decode_link_frame(many, max_items=2)


@pytest.mark.parametrize("data", [
    pytest.param(b"", id="no item"),
    pytest.param(b"\xff\xff\xff", id="not protobuf"),
    pytest.param(b"\x0a\x05\x08", id="truncated item"),
    pytest.param(b"\x0a\x02\x08\x00", id="protocol 0"),
    pytest.param(b"\x0a\x00", id="an item with no protocol"),
    pytest.param(b"\x78\x01", id="unknown field only"),
])
def test_undecodable_frames(data: bytes) -> None:
    with pytest.raises(MalformedFrame):
        decode_link_frame(data)


@given(st.binary(max_size=200))
def test_decode_link_frame_fuzz(data: bytes) -> None:
    try:
        decoded = decode_link_frame(data)
    except MalformedFrame:
        return
    assert decoded and all(0 < protocol <= MAX_PROTOCOL_ID for protocol, _ in decoded)


@given(st.binary(max_size=300), st.integers(0, 400))
def test_whole_frame_fast_path_matches_byte_at_a_time(data: bytes, max_frame_size: int) -> None:
    """One ``feed`` of any bytes (the one-whole-frame shortcut included) agrees with
    feeding the same bytes one at a time: same frames, or the same error."""
    def run(chunks: list[bytes]) -> list[bytes] | type[Exception]:
        decoder = FrameDecoder(max_frame_size)
        frames: list[bytes] = []
        try:
            for chunk in chunks:
                frames += decoder.feed(chunk)
        except (FrameTooLarge, MalformedFrame) as exc:
            return type(exc)
        return frames

    assert run([data]) == run([data[i:i + 1] for i in range(len(data))])


@pytest.mark.parametrize("size", [0, 1, 126, 127, 128, 129, 1024, 16383, 16384, 70000])
def test_one_whole_frame_per_feed(size: int) -> None:
    decoder = FrameDecoder(1 << 20)
    frame = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert decoder.feed(frame_with_prefix(frame, 1 << 20)) == [frame]
    assert not decoder.has_partial_frame


def test_non_minimal_two_byte_prefix_of_a_whole_frame_is_rejected() -> None:
    with pytest.raises(MalformedFrame):
        FrameDecoder(100).feed(b"\x81\x00" + bytes(1))  # 1 written as 2 bytes


def test_whole_frame_over_the_maximum_is_rejected() -> None:
    decoder = FrameDecoder(100)
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"\x65" + bytes(101))
    with pytest.raises(LocalProtocolError):
        decoder.feed(b"\x00")
