"""Conversion between overlay domain messages and the ``OverlayMessage`` protobuf.

The only module of the overlay that touches wire types.  Decoding validates
every field against the limits in ``taiinet.overlay.messages`` and raises
``OverlayDecodeError`` (a ``RemoteProtocolError``) for anything malformed.

On a link, an ``OverlayMessage`` is the body of an item of protocol
``PROTOCOL_ID`` (10) in a ``LinkFrame`` (docs/protocol.md section 4); the
link layer (``taiinet.link``) parses the frame and hands the body to
``CODEC``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from google.protobuf.message import DecodeError

from taiinet.core.frozen import quick_new
from taiinet.link.registry import ProtocolCodec
from taiinet.overlay.errors import OverlayDecodeError
from taiinet.overlay.messages import (
    MAX_HOPS,
    MAX_MESSAGE_ID_LENGTH,
    MAX_PAYLOAD_SIZE,
    MAX_PEER_ID_LENGTH,
    MAX_SHUFFLE_PEERS,
    Disconnect,
    ForwardJoin,
    Gossip,
    Graft,
    IHave,
    Join,
    Neighbor,
    NeighborReply,
    OverlayMessage,
    Prune,
    Shuffle,
    ShuffleReply,
)
from taiinet.v1 import overlay_pb2
from taiinet.wire.errors import InvalidPeerId
from taiinet.wire.framing import ITEM_KEY, encode_item, encode_uvarint, item_body_head
from taiinet.wire.peer_id import PeerId

PB = overlay_pb2.OverlayMessage

#: The overlay's protocol id in a link frame (docs/protocol.md section 4.1).
PROTOCOL_ID = 10
#: Largest encoded overlay message accepted.
MAX_FRAME_SIZE = MAX_PAYLOAD_SIZE + 1024


def to_proto(message: OverlayMessage) -> overlay_pb2.OverlayMessage:
    """Build the protobuf of a domain message."""
    pb = PB()
    if type(message) is Gossip:  # first: nearly every message is one
        gossip = pb.gossip
        gossip.message_id = message.message_id
        gossip.hops = message.hops
        gossip.payload = message.payload
        # Defaults ("" and 0) are not on the wire anyway: skip setting them.
        if message.origin:
            gossip.origin = message.origin
        if message.entry:
            gossip.entry = message.entry
        return pb
    match message:
        case Join():
            pb.join.SetInParent()
        case ForwardJoin(peer=peer, ttl=ttl):
            pb.forward_join.peer_id = peer
            pb.forward_join.ttl = ttl
        case Neighbor(high_priority=high):
            pb.neighbor.high_priority = high
        case NeighborReply(accepted=accepted):
            pb.neighbor_reply.accepted = accepted
        case Disconnect():
            pb.disconnect.SetInParent()
        case Shuffle(origin=origin, ttl=ttl, peers=peers):
            pb.shuffle.origin = origin
            pb.shuffle.ttl = ttl
            pb.shuffle.peers.extend(peers)
        case ShuffleReply(peers=peers):
            pb.shuffle_reply.SetInParent()
            pb.shuffle_reply.peers.extend(peers)
        case Gossip(message_id=mid, hops=hops, payload=payload, origin=origin, entry=entry):
            pb.gossip.message_id = mid
            pb.gossip.hops = hops
            pb.gossip.payload = payload
            pb.gossip.origin = origin
            pb.gossip.entry = entry
        case IHave(message_id=mid, hops=hops):
            pb.ihave.message_id = mid
            pb.ihave.hops = hops
        case Graft(message_id=mid, origin=origin):
            pb.graft.SetInParent()
            pb.graft.message_id = mid
            pb.graft.origin = origin
        case Prune(origin=origin):
            pb.prune.SetInParent()
            pb.prune.origin = origin
    return pb


def from_proto(pb: overlay_pb2.OverlayMessage) -> OverlayMessage:
    """Validate a received protobuf and return its domain message."""
    kind = pb.WhichOneof("body")
    if kind == "gossip":  # first: nearly every message is one
        # ``_mid``, ``_small`` and ``_origin`` inlined (same checks, same order): this
        # runs for every document a node receives.
        gossip = pb.gossip
        payload = gossip.payload
        if len(payload) > MAX_PAYLOAD_SIZE:
            raise OverlayDecodeError(f"gossip payload exceeds {MAX_PAYLOAD_SIZE} bytes")
        mid = gossip.message_id
        if not 0 < len(mid) <= MAX_MESSAGE_ID_LENGTH:
            raise OverlayDecodeError(f"message id must be 1..{MAX_MESSAGE_ID_LENGTH} bytes")
        hops = gossip.hops
        if hops > MAX_HOPS:
            raise OverlayDecodeError(f"hops {hops} exceeds {MAX_HOPS}")
        origin = gossip.origin
        return Gossip(message_id=mid, hops=hops, payload=payload,
                      origin=_peer(origin) if origin else "", entry=gossip.entry)
    if kind == "join":
        return Join()
    if kind == "forward_join":
        return ForwardJoin(peer=_peer(pb.forward_join.peer_id),
                           ttl=_small(pb.forward_join.ttl, "ttl"))
    if kind == "neighbor":
        return Neighbor(high_priority=pb.neighbor.high_priority)
    if kind == "neighbor_reply":
        return NeighborReply(accepted=pb.neighbor_reply.accepted)
    if kind == "disconnect":
        return Disconnect()
    if kind == "shuffle":
        return Shuffle(origin=_peer(pb.shuffle.origin), ttl=_small(pb.shuffle.ttl, "ttl"),
                       peers=_peers(pb.shuffle.peers))
    if kind == "shuffle_reply":
        return ShuffleReply(peers=_peers(pb.shuffle_reply.peers))
    if kind == "ihave":
        return IHave(message_id=_mid(pb.ihave.message_id), hops=_small(pb.ihave.hops, "hops"))
    if kind == "graft":
        # An empty id asks for no message (the tree optimisation's graft).
        mid = pb.graft.message_id
        return Graft(message_id=_mid(mid) if mid else b"", origin=_origin(pb.graft.origin))
    if kind == "prune":
        return Prune(origin=_origin(pb.prune.origin))
    raise OverlayDecodeError("overlay message has no body")


def encode(message: OverlayMessage) -> bytes:
    """Serialize a domain message as an ``OverlayMessage``."""
    return to_proto(message).SerializeToString()


def decode(data: bytes) -> OverlayMessage:
    """Parse and validate a serialized ``OverlayMessage``."""
    if len(data) > MAX_FRAME_SIZE:
        raise OverlayDecodeError(f"overlay message exceeds {MAX_FRAME_SIZE} bytes")
    if data[:1] == _GOSSIP_KEY:
        gossip = _read_gossip(data)
        if gossip is not None:
            return gossip
    return _parsed(data)


#: Key of ``OverlayMessage.gossip`` (field 10, length-delimited) and of the
#: ``Gossip`` fields ``message_id`` (1), ``hops`` (2, varint) and ``payload`` (3).
_GOSSIP_KEY, _MID_KEY, _HOPS_KEY, _PAYLOAD_KEY = b"\x52", 0x0A, 0x10, 0x1A


def _read_gossip(data: bytes) -> Gossip | None:
    """The ``Gossip`` of an ``OverlayMessage`` laid out as the router writes one
    (``message_id``, ``hops`` if not 0, ``payload``; no ``origin`` nor ``entry``),
    read without protobuf messages; ``None`` for anything else, and for anything
    ``from_proto`` would refuse, so that ``_parsed`` reads it as it always did,
    errors included (a test compares both on encodings, mutations and random
    bytes).  Every document a node receives comes as one: the parse and the
    message objects cost more than these few slices.
    """
    end = len(data)
    if type(data) is not bytes or end < 6:
        return None
    if end > _DOCUMENT_HEAD_SIZE:
        # A document's gossip: a SHA-256 id, hops of one byte and a payload of 128 to
        # 16383 bytes, so both lengths of two bytes.  Its head is read in one call,
        # then checked as the general reading below would check it (same result);
        # anything else takes that reading.
        (key, size, size_high, mid_key, mid_size, mid, hops_key, hops, payload_key,
         payload_size, payload_high) = _DOCUMENT_HEAD(data)
        if (key == _GOSSIP_KEY[0] and size >= 0x80 and size_high < 0x80
                and mid_key == _MID_KEY and mid_size == 32
                and hops_key == _HOPS_KEY and hops < 0x80 and payload_key == _PAYLOAD_KEY
                and payload_size >= 0x80 and payload_high < 0x80
                and 3 + (size & 0x7F | size_high << 7) == end
                and _DOCUMENT_HEAD_SIZE + (payload_size & 0x7F | payload_high << 7) == end):
            return _new_gossip(message_id=mid, hops=hops, payload=data[_DOCUMENT_HEAD_SIZE:])
    # Lengths of one or two bytes, and hops of one, read inline (``_uvarint``: longer).
    size, at = data[1], 2
    if size >= 0x80:
        if data[2] < 0x80:
            size, at = size & 0x7F | data[2] << 7, 3
        else:
            size, at = _uvarint(data, 1)
    if at + size != end or size < 2 or data[at] != _MID_KEY:
        return None
    size = data[at + 1]
    at += 2
    if not 0 < size <= MAX_MESSAGE_ID_LENGTH:
        return None
    mid = data[at:at + size]
    at += size
    hops = 0
    if at + 1 < end and data[at] == _HOPS_KEY:
        hops = data[at + 1]
        at += 2
        if hops >= 0x80:
            hops, at = _uvarint(data, at - 1)
        if hops > MAX_HOPS:
            return None
    if at + 2 >= end or data[at] != _PAYLOAD_KEY:
        return None
    size = data[at + 1]
    at += 2
    if size >= 0x80:
        if data[at] < 0x80:
            size, at = size & 0x7F | data[at] << 7, at + 1
        else:
            size, at = _uvarint(data, at - 1)
    if at + size != end or size > MAX_PAYLOAD_SIZE:
        return None
    return _new_gossip(message_id=mid, hops=hops, payload=data[at:end])


_new_gossip = quick_new(Gossip)
#: ``_read_gossip``'s document head: the body's key and two-byte length, the id's key,
#: length (one byte) and 32 bytes, the hops' key and byte, the payload's key and
#: two-byte length.
_DOCUMENT_HEAD_LAYOUT = struct.Struct("5B32s5B")
_DOCUMENT_HEAD, _DOCUMENT_HEAD_SIZE = _DOCUMENT_HEAD_LAYOUT.unpack_from, _DOCUMENT_HEAD_LAYOUT.size


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    """The uvarint of one to three bytes at ``at`` (under 2**21: every length and
    count ``_read_gossip`` takes) and the offset after it; ``(-1, len(data))``
    when there is none such, which no caller accepts."""
    end = len(data)
    if at < end:
        value = data[at]
        if value < 0x80:
            return value, at + 1
        if at + 1 < end:
            second = data[at + 1]
            if second < 0x80:
                return value & 0x7F | second << 7, at + 2
            if at + 2 < end and data[at + 2] < 0x80:
                return value & 0x7F | (second & 0x7F) << 7 | data[at + 2] << 14, at + 3
    return -1, end


def _parsed(data: bytes) -> OverlayMessage:
    """``decode`` through protobuf's parse: every message ``_read_gossip`` leaves."""
    pb = PB()
    try:
        pb.ParseFromString(data)
    except DecodeError as exc:
        raise OverlayDecodeError(f"malformed overlay message: {exc}") from None
    return from_proto(pb)


def encode_frame(message: OverlayMessage) -> bytes:
    """A link frame (one item; also the item itself) holding ``message``:
    ``encode_item(PROTOCOL_ID, encode(message))``, byte for byte.

    A ``Gossip`` of the tree router's kind (no ``origin``, no ``entry``, a
    payload, 1..``MAX_HOPS`` hops), which every node sends for nearly every
    document it forwards, is written here straight into the item, in one
    join: no protobuf object, and its payload copied once.
    """
    if type(message) is Gossip and not message.origin and not message.entry:
        mid, hops, payload = message.message_id, message.hops, message.payload
        if payload and 0 < len(mid) <= MAX_MESSAGE_ID_LENGTH and 0 < hops <= MAX_HOPS:
            shape = (len(mid), hops, len(payload))
            heads = _GOSSIP_HEADS.get(shape)
            if heads is None:
                heads = _gossip_heads(*shape)
            return b"".join((heads[0], mid, heads[1], payload))
    return encode_item(PROTOCOL_ID, encode(message))


def _gossip_heads(mid_size: int, hops: int, payload_size: int) -> tuple[bytes, bytes]:
    """The bytes of ``encode_frame``'s item before the id and between the id and the
    payload, which depend only on their sizes and the hops (kept: documents of a
    stream are often of one size, and every push of one document has its shape)."""
    # proto3 (overlay.proto): Gossip's fields 1 (bytes), 2 (uint32, left out when 0)
    # and 3 (bytes), in field order, as protobuf serializes them.
    hops_field, payload_head = _HOPS_FIELDS[hops], encode_uvarint(payload_size)
    # Keys of fields 1 and 3 and the id's one-byte length, then the rest.
    gossip_size = 3 + mid_size + len(hops_field) + len(payload_head) + payload_size
    gossip_head = encode_uvarint(gossip_size)
    body_size = 1 + len(gossip_head) + gossip_size  # the OverlayMessage
    body_head = encode_uvarint(body_size)
    heads = (b"".join((ITEM_KEY, encode_uvarint(len(_BODY_HEAD) + len(body_head) + body_size),
                       _BODY_HEAD, body_head, _GOSSIP_KEY, gossip_head,
                       _MESSAGE_ID_HEADS[mid_size])),
             hops_field + _PAYLOAD_KEY_BYTE + payload_head)
    if len(_GOSSIP_HEADS) >= GOSSIP_HEADS_KEPT:
        _GOSSIP_HEADS.clear()
    _GOSSIP_HEADS[mid_size, hops, payload_size] = heads
    return heads


#: Shapes (id size, hops, payload size) whose item heads ``encode_frame`` keeps.
GOSSIP_HEADS_KEPT = 1024
_GOSSIP_HEADS: dict[tuple[int, int, int], tuple[bytes, bytes]] = {}


#: An overlay item's bytes between its length and its body's (``encode_frame``).
_BODY_HEAD = item_body_head(PROTOCOL_ID)
#: Key and length of ``Gossip.message_id`` (field 1), by length (all below 128).
_MESSAGE_ID_HEADS = [bytes((_MID_KEY,)) + encode_uvarint(size)
                     for size in range(MAX_MESSAGE_ID_LENGTH + 1)]
#: ``Gossip.hops`` (field 2, varint), key and value, by value.
_HOPS_FIELDS = [bytes((_HOPS_KEY,)) + encode_uvarint(hops) for hops in range(MAX_HOPS + 1)]
#: Key of ``Gossip.payload`` (field 3, length-delimited), as a byte string.
_PAYLOAD_KEY_BYTE = bytes((_PAYLOAD_KEY,))


CODEC = ProtocolCodec(
    protocol_id=PROTOCOL_ID, name="overlay",
    message_types=(Join, ForwardJoin, Neighbor, NeighborReply, Disconnect, Shuffle,
                   ShuffleReply, Gossip, IHave, Graft, Prune),
    encode=encode, decode=decode, encode_item=encode_frame)


def _peer(value: str) -> PeerId:
    if len(value) > MAX_PEER_ID_LENGTH:
        raise OverlayDecodeError(f"peer id exceeds {MAX_PEER_ID_LENGTH} characters")
    try:
        return PeerId.parse(value)
    except InvalidPeerId as exc:
        raise OverlayDecodeError(f"not a peer id: {exc}") from None


def _peers(values: Iterable[str]) -> tuple[PeerId, ...]:
    peers = tuple(values)
    if len(peers) > MAX_SHUFFLE_PEERS:
        raise OverlayDecodeError(f"more than {MAX_SHUFFLE_PEERS} peers in a shuffle")
    return tuple(_peer(p) for p in peers)


def _origin(value: str) -> str:
    """An origin peer id (a ``PeerId``), or "" (none: the default tree)."""
    return "" if value == "" else _peer(value)


def _mid(value: bytes) -> bytes:
    if not 0 < len(value) <= MAX_MESSAGE_ID_LENGTH:
        raise OverlayDecodeError(f"message id must be 1..{MAX_MESSAGE_ID_LENGTH} bytes")
    return value


def _small(value: int, name: str) -> int:
    if value > MAX_HOPS:
        raise OverlayDecodeError(f"{name} {value} exceeds {MAX_HOPS}")
    return value
