"""The stream codec's bounds fit the node's link frame cap.

Before, the decoder took stream messages up to 80 KiB and chunk payloads up
to 64 KiB while a node's link carries frames of at most 62,480 bytes: a
message the stream layer accepted could not be sent on any link (the
receiving link would drop the frame as oversized).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taiinet.link.config import DEFAULT_LINK_FRAME_SIZE, LinkConfig
from taiinet.media.packets import MAX_PART, MAX_PARTS, MediaPacket, cut
from taiinet.sim.network import sim_peer_ids
from taiinet.stream import codec
from taiinet.stream.errors import StreamDecodeError, StreamUsageError
from taiinet.stream.messages import (
    HASH_SIZE,
    MAX_CANDIDATES,
    MAX_DEPTH,
    MAX_FREE,
    MAX_SEAL_HASHES,
    MAX_SEQ,
    MAX_SLOTS,
    Adopt,
    Chunk,
    Heartbeat,
    Redirect,
    Seal,
    Status,
    StreamBody,
)
from taiinet.wire.framing import decode_link_frame, encode_item, link_frame

PEERS = sim_peer_ids(MAX_DEPTH)
SID = bytes(range(32))

LARGEST: list[StreamBody] = [
    Chunk(seq=MAX_SEQ, payload=b"\xff" * codec.MAX_CHUNK_PAYLOAD),
    Seal(first=MAX_SEQ - MAX_SEAL_HASHES, hashes=(b"\xff" * HASH_SIZE,) * MAX_SEAL_HASHES,
         signature=b"\xff" * 64),
    Heartbeat(seq=MAX_SEQ, path=tuple(PEERS), standby=tuple(PEERS[:MAX_CANDIDATES])),
    Status(slots=MAX_SLOTS, children=tuple(PEERS[:MAX_SLOTS]), free=MAX_FREE, seq=MAX_SEQ,
           recommend=tuple(PEERS[:MAX_CANDIDATES])),
    Adopt(path=tuple(PEERS)),
    Redirect(candidates=tuple(PEERS[:MAX_CANDIDATES])),
]


@pytest.mark.parametrize("message", LARGEST, ids=lambda m: type(m).__name__)
def test_the_largest_message_of_each_kind_fits_one_link_frame(message: StreamBody) -> None:
    body = codec.encode(SID, message)
    assert len(body) <= codec.MAX_MESSAGE_SIZE
    frame = link_frame(codec.PROTOCOL_ID, body, DEFAULT_LINK_FRAME_SIZE)
    config = LinkConfig()
    assert decode_link_frame(frame, config.max_frame_size, config.max_items) == [
        (codec.PROTOCOL_ID, body)]
    assert codec.decode(body) == (SID, message)


def test_the_message_bound_is_the_link_frame_cap_less_the_item_header() -> None:
    assert len(encode_item(codec.PROTOCOL_ID, bytes(codec.MAX_MESSAGE_SIZE))) == (
        DEFAULT_LINK_FRAME_SIZE)
    assert len(encode_item(codec.PROTOCOL_ID, bytes(codec.MAX_MESSAGE_SIZE + 1))) > (
        DEFAULT_LINK_FRAME_SIZE)
    with pytest.raises(StreamDecodeError):
        codec.decode(bytes(codec.MAX_MESSAGE_SIZE + 1))


@given(size=st.integers(0, codec.MAX_CHUNK_PAYLOAD), seq=st.integers(0, MAX_SEQ))
def test_every_chunk_the_codec_makes_fits_one_link_frame(size: int, seq: int) -> None:
    body = codec.encode(SID, Chunk(seq=seq, payload=bytes(size)))
    assert len(encode_item(codec.PROTOCOL_ID, body)) <= DEFAULT_LINK_FRAME_SIZE


def test_a_chunk_payload_over_the_bound_is_refused_when_encoding() -> None:
    with pytest.raises(StreamUsageError):
        codec.encode(SID, Chunk(seq=0, payload=bytes(codec.MAX_CHUNK_PAYLOAD + 1)))


def test_the_largest_media_part_fits_a_chunk() -> None:
    packet = MediaPacket(track=3, pts=(1 << 63) - 1, keyframe=True,
                         data=b"\xff" * (MAX_PART * MAX_PARTS))
    parts = cut(packet)
    assert len(parts) == MAX_PARTS
    assert max(len(part) for part in parts) <= codec.MAX_CHUNK_PAYLOAD
