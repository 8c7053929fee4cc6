"""The overlay codec: lossless round trips, and typed errors for anything malformed."""

from __future__ import annotations

import contextlib

import pytest
from hostile_cases import mutated, peer_ids
from hypothesis import given
from hypothesis import strategies as st

from taiinet.link.registry import ProtocolRegistry
from taiinet.overlay import codec
from taiinet.overlay.errors import OverlayDecodeError
from taiinet.overlay.messages import (
    MAX_MESSAGE_ID_LENGTH,
    MAX_SHUFFLE_PEERS,
    Disconnect,
    ForwardJoin,
    Gossip,
    Graft,
    IHave,
    Join,
    Neighbor,
    NeighborReply,
    Prune,
    Shuffle,
    ShuffleReply,
)
from taiinet.v1 import overlay_pb2
from taiinet.wire.framing import encode_item, encode_uvarint
from tests.link_support import only_body

peers = peer_ids
small = st.integers(min_value=0, max_value=255)
mids = st.binary(min_size=1, max_size=MAX_MESSAGE_ID_LENGTH)
#: An origin is a peer id or "" (none: the default tree).
origins = st.one_of(st.just(""), peers)
peer_lists = st.lists(peers, max_size=MAX_SHUFFLE_PEERS).map(tuple)

messages = st.one_of(
    st.just(Join()),
    st.builds(ForwardJoin, peer=peers, ttl=small),
    st.builds(Neighbor, high_priority=st.booleans()),
    st.builds(NeighborReply, accepted=st.booleans()),
    st.just(Disconnect()),
    st.builds(Shuffle, origin=peers, ttl=small, peers=peer_lists),
    st.builds(ShuffleReply, peers=peer_lists),
    st.builds(Gossip, message_id=mids, hops=small, payload=st.binary(max_size=300),
              origin=origins, entry=st.one_of(st.just(0), st.integers(1, (1 << 64) - 1))),
    st.builds(IHave, message_id=mids, hops=small),
    st.builds(Graft, message_id=st.one_of(st.just(b""), mids), origin=origins),
    st.builds(Prune, origin=origins),
)


@given(messages)
def test_round_trip(message: object) -> None:
    assert codec.decode(codec.encode(message)) == message  # type: ignore[arg-type]
    body = only_body(codec.encode_frame(message), codec.PROTOCOL_ID)  # type: ignore[arg-type]
    assert body is not None and codec.CODEC.decode(body) == message


@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_the_remote_error(data: bytes) -> None:
    with contextlib.suppress(OverlayDecodeError):
        codec.decode(data)


def test_the_overlay_is_protocol_10_of_a_link_frame() -> None:
    assert codec.encode_frame(Join()) == b"\x0a\x06\x08\x0a\x12\x02\x0a\x00"


def _pb(**kwargs: object) -> bytes:
    pb = overlay_pb2.OverlayMessage()
    for field, setup in kwargs.items():
        setup(getattr(pb, field))  # type: ignore[operator]
    return pb.SerializeToString()


@pytest.mark.parametrize("data", [
    b"",  # no body
    _pb(forward_join=lambda m: setattr(m, "ttl", 3)),  # empty peer id
    _pb(forward_join=lambda m: (setattr(m, "peer_id", "p"), setattr(m, "ttl", 256))),
    _pb(shuffle=lambda m: (setattr(m, "origin", "o"), m.peers.extend(["x"] * 65))),
    _pb(shuffle=lambda m: (setattr(m, "origin", "o"), m.peers.extend(["x" * 129]))),
    _pb(gossip=lambda m: setattr(m, "hops", 1)),  # empty message id
    _pb(gossip=lambda m: (setattr(m, "message_id", b"x" * 65), setattr(m, "hops", 1))),
    _pb(ihave=lambda m: setattr(m, "message_id", b"")),
    _pb(gossip=lambda m: (setattr(m, "message_id", b"m"), setattr(m, "origin", "o" * 129))),
    _pb(graft=lambda m: setattr(m, "origin", "o" * 129)),
    _pb(prune=lambda m: setattr(m, "origin", "o" * 129)),
    b"\xff\xff\xff",
])
def test_malformed_messages_are_rejected(data: bytes) -> None:
    with pytest.raises(OverlayDecodeError):
        codec.decode(data)


def test_oversized_payload_is_rejected() -> None:
    data = _pb(gossip=lambda m: (setattr(m, "message_id", b"m"),
                                 setattr(m, "payload", b"x" * (60 * 1024 + 1))))
    with pytest.raises(OverlayDecodeError):
        codec.decode(data)


@pytest.mark.parametrize(("fields", "error"), [
    ({"hops": 300}, "message id must be"),  # the id is checked first
    ({"message_id": b"m", "hops": 300}, "hops 300 exceeds"),
    ({"message_id": b"m", "hops": 300, "origin": "o" * 129}, "hops 300 exceeds"),
    ({"message_id": b"m", "origin": "o" * 129}, "peer id exceeds"),
    ({"message_id": b"m", "origin": "not a peer id"}, "not a peer id"),
])
def test_a_malformed_gossip_names_its_first_bad_field(fields: dict[str, object],
                                                      error: str) -> None:
    gossip = overlay_pb2.OverlayMessage.Gossip(**fields)  # type: ignore[arg-type]
    data = overlay_pb2.OverlayMessage(gossip=gossip).SerializeToString()
    with pytest.raises(OverlayDecodeError, match=error):
        codec.decode(data)


def _decoded_or_error(decode: object, data: bytes) -> object:
    try:
        return decode(data)  # type: ignore[operator]
    except OverlayDecodeError as exc:
        return str(exc)


def assert_decoded_as_protobuf_decodes(data: bytes) -> None:
    """``decode`` (a ``Gossip`` read from its bytes where it can) gives what protobuf's
    parse and ``from_proto`` give: the same message, or the same error."""
    assert _decoded_or_error(codec.decode, data) == _decoded_or_error(codec._parsed, data)


gossips = st.builds(
    Gossip, message_id=st.binary(min_size=0, max_size=MAX_MESSAGE_ID_LENGTH + 2),
    hops=st.sampled_from([0, 1, 127, 128, 255, 256, 300, 1 << 20]) | small,
    payload=st.binary(max_size=200) | st.sampled_from([b"p" * 16383, b"p" * 16384,
                                                       b"p" * (60 * 1024 + 1)]),
    origin=st.just("") | origins, entry=st.just(0) | st.integers(1, (1 << 64) - 1))


@given(gossips, st.data())
def test_gossip_read_from_its_bytes_is_what_protobuf_reads(gossip: Gossip,
                                                             data: st.DataObject) -> None:
    """Encodings (also of ids, hops and payloads ``from_proto`` refuses), and any
    change to one (flip, cut, insert, delete a byte, or a field appended)."""
    pb = overlay_pb2.OverlayMessage()
    for name in ("message_id", "hops", "payload", "origin", "entry"):
        setattr(pb.gossip, name, getattr(gossip, name))
    encoded = mutated(pb.SerializeToString(), data)
    if data.draw(st.booleans()):  # a field appended (unknown, a second body, ...)
        encoded += data.draw(st.sampled_from([b"\x5a\x00", b"\x52\x00", b"\x08\x01",
                                              b"\x52\x03\x0a\x01m"]))
    assert_decoded_as_protobuf_decodes(encoded)


document_gossips = st.builds(
    Gossip, message_id=st.binary(min_size=31, max_size=33),
    hops=st.sampled_from([0, 1, 2, 126, 127, 128, 255, 256]),
    payload=st.binary(min_size=100, max_size=300) | st.sampled_from(
        [b"p" * 127, b"p" * 128, b"p" * 16383, b"p" * 16384]))


@given(document_gossips, st.data())
def test_document_gossip_read_from_its_bytes_is_what_protobuf_reads(
        gossip: Gossip, data: st.DataObject) -> None:
    """The gossips of documents (a 32-byte id, hops of a byte, a payload of two length
    bytes; ``_read_gossip`` reads their head in one call), ids, hops and payloads just
    outside that shape, and any change to one, with the hops' field left out or not."""
    pb = overlay_pb2.OverlayMessage()
    for name in ("message_id", "hops", "payload"):
        setattr(pb.gossip, name, getattr(gossip, name))
    inner = pb.gossip.SerializeToString()
    if gossip.hops == 0 and data.draw(st.booleans()):  # hops 0 written out, after the id
        id_end = 2 + len(gossip.message_id)
        inner = inner[:id_end] + b"\x10\x00" + inner[id_end:]
    assert_decoded_as_protobuf_decodes(mutated(b"\x52" + encode_uvarint(len(inner)) + inner,
                                               data))


def test_every_change_to_a_document_gossips_head_decodes_as_protobuf_decodes() -> None:
    """Each byte of the head ``_read_gossip`` reads in one call (and the first payload
    byte), set to each value, of a document gossip with hops 0 (no hops field), 1 and
    127, and a payload of 128 and 300 bytes."""
    for hops in (0, 1, 127):
        for size in (128, 300):
            pb = overlay_pb2.OverlayMessage()
            pb.gossip.message_id, pb.gossip.hops = b"i" * 32, hops
            pb.gossip.payload = b"p" * size
            encoded = pb.SerializeToString()
            for index in range(43):
                for value in range(256):
                    assert_decoded_as_protobuf_decodes(
                        encoded[:index] + bytes([value]) + encoded[index + 1:])


@given(st.binary(max_size=80))
def test_random_bytes_after_the_gossip_key_decode_as_protobuf_decodes(tail: bytes) -> None:
    assert_decoded_as_protobuf_decodes(b"\x52" + tail)
    assert_decoded_as_protobuf_decodes(b"\x52" + bytes([len(tail)]) + tail)


def test_edge_gossips_decode_as_protobuf_decodes() -> None:
    mid = b"\x0a\x01m"
    for inner in (mid + b"\x10\x80\x01\x1a\x01p",  # hops 128, two bytes
                  mid + b"\x10\xff\x01\x1a\x01p",  # hops 255
                  mid + b"\x10\x80\x02\x1a\x01p",  # hops 256: refused
                  mid + b"\x10\x81\x80\x00\x1a\x01p",  # hops 1, not minimal
                  mid + b"\x10\x00\x1a\x01p",  # hops 0 written out
                  mid + b"\x1a\x00",  # empty payload written out
                  mid + b"\x1a\x81\x00p",  # payload length not minimal
                  mid + b"\x1a\x01p\x10\x02",  # hops after the payload
                  mid + b"\x1a\x01p\x1a\x01q",  # payload twice: the last counts
                  b"\x0a\x00\x1a\x01p",  # empty id
                  b"\x0a\x41" + b"m" * 65 + b"\x1a\x01p",  # id too long
                  mid, mid + b"\x10", mid + b"\x10\x01", mid + b"\x1a", mid + b"\x1a\x02p"):
        assert_decoded_as_protobuf_decodes(b"\x52" + bytes([len(inner)]) + inner)
        assert_decoded_as_protobuf_decodes(b"\x52" + bytes([len(inner) | 0x80, 0]) + inner)
    long_payload = mid + b"\x1a\x80\x80\x01" + b"p" * 16384  # a three-byte length
    assert_decoded_as_protobuf_decodes(b"\x52\x89\x80\x01" + long_payload)


def test_a_document_gossip_is_read_without_protobuf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every document a node receives: no ``OverlayMessage`` parsed."""
    gossips = [Gossip(message_id=b"i" * 32, hops=3, payload=b"p" * 400),
               Gossip(message_id=b"i", hops=255, payload=b"p")]
    encoded = [codec.encode(gossip) for gossip in gossips]

    def refused() -> None:
        raise AssertionError("an OverlayMessage was parsed")

    monkeypatch.setattr(codec, "PB", refused)
    assert [codec.decode(data) for data in encoded] == gossips


#: Gossip of every shape, the tree router's (no origin, no entry) most often;
#: payloads long enough for 1- to 3-byte lengths.
gossips = st.builds(
    Gossip, message_id=mids, hops=small,
    payload=st.one_of(st.binary(max_size=200), st.integers(0, 20000).map(bytes)),
    origin=st.one_of(st.just(""), st.just(""), origins),
    entry=st.one_of(st.just(0), st.just(0), st.integers(1, (1 << 64) - 1)))


@given(gossips)
def test_a_gossip_item_is_what_protobuf_writes(message: Gossip) -> None:
    expected = encode_item(codec.PROTOCOL_ID, codec.to_proto(message).SerializeToString())
    assert codec.encode_frame(message) == expected
    assert _registry().encode(message) == expected


def test_gossips_of_one_shape_are_each_written_as_protobuf_writes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``encode_frame`` keeps the item heads of a shape (id size, hops, payload size):
    items of that shape keep their own id and payload, and the kept heads are
    bounded."""
    monkeypatch.setattr(codec, "GOSSIP_HEADS_KEPT", 3)
    monkeypatch.setattr(codec, "_GOSSIP_HEADS", {})
    for index in range(8):
        for payload_size in (1, 127, 128, 400):
            message = Gossip(message_id=bytes([index]) * 32, hops=1 + index % 2,
                             payload=bytes([index]) * payload_size)
            expected = encode_item(codec.PROTOCOL_ID,
                                   codec.to_proto(message).SerializeToString())
            assert codec.encode_frame(message) == expected
            assert len(codec._GOSSIP_HEADS) <= 3


def test_a_forwarded_gossip_is_written_without_a_protobuf(monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    """The item of a tree router's push is written straight into its bytes."""
    message = Gossip(message_id=bytes(32), hops=2, payload=b"p" * 300)
    expected = codec.encode_frame(message)

    def no_protobuf(*_args: object) -> overlay_pb2.OverlayMessage:
        raise AssertionError("the gossip went through a protobuf object")

    monkeypatch.setattr(codec, "to_proto", no_protobuf)
    assert _registry().encode(message) == expected
    with pytest.raises(AssertionError):  # the other messages still do
        codec.encode_frame(Join())


def _registry() -> ProtocolRegistry:
    registry = ProtocolRegistry()
    registry.register(codec.CODEC, lambda _peer, _message, _now: None)
    return registry
