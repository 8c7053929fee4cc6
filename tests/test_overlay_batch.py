"""Frame batches: several frames as one link frame (``Frame.batch``).

Round trips through ``encode_batch`` / ``decode_link_frame``, the bytes
equal protobuf's own encoding, and every malformed, oversized or nested batch
raises ``OverlayDecodeError``; random bytes never raise anything else.
"""

from __future__ import annotations

import contextlib

import pytest
from hostile_cases import peer_ids
from hypothesis import given
from hypothesis import strategies as st

from taiinet.overlay import codec
from taiinet.overlay.errors import OverlayDecodeError
from taiinet.overlay.messages import (
    MAX_MESSAGE_ID_LENGTH,
    MAX_PAYLOAD_SIZE,
    Gossip,
    IHave,
    Join,
    OverlayMessage,
    Prune,
)
from taiinet.v1 import frame_pb2

mids = st.binary(min_size=1, max_size=MAX_MESSAGE_ID_LENGTH)
overlay_messages = st.one_of(
    st.just(Join()),
    st.builds(Gossip, message_id=mids, hops=st.integers(0, 255),
              payload=st.binary(max_size=300), origin=st.one_of(st.just(""), peer_ids)),
    st.builds(IHave, message_id=mids, hops=st.integers(0, 255)),
    st.builds(Prune, origin=st.one_of(st.just(""), peer_ids)),
)


def _ping(nonce: int) -> bytes:
    return frame_pb2.Frame(ping=frame_pb2.Ping(nonce=nonce)).SerializeToString()


#: An overlay message (decoded to itself) or another layer's frame (kept as bytes).
parts = st.one_of(overlay_messages, st.integers(0, 2**64 - 1).map(_ping))


def _encoded(part: OverlayMessage | bytes) -> bytes:
    return part if isinstance(part, bytes) else codec.encode_frame(part)


@given(st.lists(parts, min_size=1, max_size=40))
def test_batch_round_trip_keeps_order(items: list[OverlayMessage | bytes]) -> None:
    frames = [_encoded(item) for item in items]
    assert codec.decode_link_frame(codec.encode_batch(frames)) == items


@given(st.lists(parts, min_size=1, max_size=40))
def test_batch_bytes_are_protobufs_own(items: list[OverlayMessage | bytes]) -> None:
    frames = [_encoded(item) for item in items]
    expected = frame_pb2.Frame()
    for frame in frames:
        expected.batch.frames.add().ParseFromString(frame)
    assert codec.encode_batch(frames) == expected.SerializeToString()


@given(parts)
def test_a_single_frame_is_one_part(item: OverlayMessage | bytes) -> None:
    assert codec.decode_link_frame(_encoded(item)) == [item]


def test_batch_vector() -> None:
    # Frame{batch{frames{overlay{join{}}} frames{ping{nonce: 1}}}}
    data = codec.encode_batch([codec.encode_frame(Join()), _ping(1)])
    assert data.hex() == "1a0c" "0a04" "52020a00" "0a04" "0a020801"


def test_batch_item_size_and_limit_agree_with_the_encoding() -> None:
    frames = [codec.encode_frame(IHave(message_id=b"m" * 32, hops=3))] * 100
    total = sum(codec.batch_item_size(f) for f in frames)
    assert len(codec.encode_batch(frames)) <= total + 5
    assert codec.batch_fits(total)
    assert not codec.batch_fits(codec.MAX_FRAME_SIZE)


def _batch_of(*inner: frame_pb2.Frame) -> bytes:
    frame = frame_pb2.Frame()
    frame.batch.SetInParent()
    for item in inner:
        frame.batch.frames.add().CopyFrom(item)
    return frame.SerializeToString()


def _overlay_frame(message: OverlayMessage) -> frame_pb2.Frame:
    frame = frame_pb2.Frame()
    frame.ParseFromString(codec.encode_frame(message))
    return frame


def _nested() -> bytes:
    inner = frame_pb2.Frame()
    inner.batch.frames.add().CopyFrom(_overlay_frame(Join()))
    return _batch_of(_overlay_frame(Join()), inner)


def _bad_inner() -> bytes:
    bad = frame_pb2.Frame()
    bad.overlay.ihave.hops = 1  # no message id
    return _batch_of(_overlay_frame(Join()), bad)


def _oversized() -> bytes:
    big = Gossip(message_id=b"m", hops=1, payload=b"x" * MAX_PAYLOAD_SIZE)
    return codec.encode_batch([codec.encode_frame(big)] * 2)


@pytest.mark.parametrize("data", [
    pytest.param(_batch_of(), id="empty batch"),
    pytest.param(_nested(), id="batch inside a batch"),
    pytest.param(_bad_inner(), id="malformed overlay message inside"),
    pytest.param(_oversized(), id="over MAX_FRAME_SIZE"),
    pytest.param(codec.encode_batch([codec.encode_frame(Join())] * (codec.MAX_BATCH_FRAMES + 1)),
                 id="too many frames"),
    pytest.param(codec.encode_batch([b"\xff\xff"]), id="undecodable inner frame"),
    pytest.param(b"\x1a\x05\x0a\x09", id="truncated"),
])
def test_malformed_batches_are_rejected(data: bytes) -> None:
    with pytest.raises(OverlayDecodeError):
        codec.decode_link_frame(data)


def test_deep_nesting_is_rejected_without_recursing() -> None:
    data = codec.encode_frame(Join())
    for _ in range(300):
        data = codec.encode_batch([data])
    with pytest.raises(OverlayDecodeError):
        codec.decode_link_frame(data)


@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_the_remote_error(data: bytes) -> None:
    with contextlib.suppress(OverlayDecodeError):
        codec.decode_link_frame(data)


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=20))
def test_random_inner_frames_decode_or_raise_the_remote_error(frames: list[bytes]) -> None:
    with contextlib.suppress(OverlayDecodeError):
        result = codec.decode_link_frame(codec.encode_batch(frames))
        assert len(result) == len(frames)
