"""Conversion between stream domain types and the ``stream.proto`` protobufs.

The only module of the stream layer that touches wire types (tree control
messages, and the payload of the signed announcement in ``announce``).  Decoding checks
every field against the limits in ``taiinet.stream.messages`` and raises
``StreamDecodeError`` (a ``RemoteProtocolError``) for anything malformed.
On a link a ``StreamMessage`` is the body of an item of protocol
``PROTOCOL_ID`` (14); ``CODEC`` is what the node registers with its link layer.

Sizes follow the link frame cap (``DEFAULT_LINK_FRAME_SIZE``, what a node
sends and accepts): ``MAX_MESSAGE_SIZE`` is the largest body whose item fits
one link frame, and ``MAX_CHUNK_PAYLOAD`` leaves room in it for a chunk's
other fields.  So any message this decoder accepts, a node's link can carry,
and ``encode`` refuses to make one it could not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from taiinet.link.config import DEFAULT_LINK_FRAME_SIZE
from taiinet.link.registry import ProtocolCodec
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
    Join,
    KeyframeRequest,
    Leave,
    Redirect,
    Reparent,
    Seal,
    StallReport,
    Status,
    StreamBody,
    StreamMessage,
)
from taiinet.v1 import stream_pb2
from taiinet.wire.errors import InvalidPeerId
from taiinet.wire.framing import encode_item
from taiinet.wire.peer_id import PeerId

PB = stream_pb2.StreamMessage
#: The stream protocol's id in a link frame (docs/protocol.md section 4.1).
PROTOCOL_ID = 14
#: Length of a stream id (SHA-256 of the announcement envelope).
STREAM_ID_SIZE = 32
#: Bytes a link item adds to a body of protocol 14 that fills a link frame
#: (item key and length, protocol key and id, body key and length: 10).
LINK_ITEM_OVERHEAD = len(encode_item(PROTOCOL_ID, bytes(DEFAULT_LINK_FRAME_SIZE))) - (
    DEFAULT_LINK_FRAME_SIZE)
#: Largest encoded ``StreamMessage`` sent or accepted: the largest body whose
#: link item fits one link frame (62,470 bytes).  A full Status or Heartbeat
#: is ~5 KB, a Seal of 256 hashes ~9 KB, a Chunk its payload + at most
#: ``CHUNK_OVERHEAD``.
MAX_MESSAGE_SIZE = DEFAULT_LINK_FRAME_SIZE - LINK_ITEM_OVERHEAD
#: Most bytes a ``Chunk`` message adds to its payload: the stream id (34), the
#: chunk's key and length (4), ``seq`` (at most 10) and the payload's key and
#: length (4); rounded up.
CHUNK_OVERHEAD = 64
#: Largest chunk payload (an encoded ``MediaPart``, whose data is at most
#: ``taiinet.media.packets.MAX_PART`` = 16 KiB): 62,406 bytes.
MAX_CHUNK_PAYLOAD = MAX_MESSAGE_SIZE - CHUNK_OVERHEAD


def encode(stream_id: bytes, message: StreamBody) -> bytes:
    """The wire bytes of ``message`` for the stream ``stream_id``; ``StreamUsageError``
    for a chunk payload over ``MAX_CHUNK_PAYLOAD`` (no link could carry it)."""
    pb = PB(stream_id=stream_id)
    match message:
        case Join(slots=slots, have=have, free_slot_only=free_slot_only):
            pb.join.slots = slots
            pb.join.have = have
            pb.join.free_slot_only = free_slot_only
        case Adopt(path=path):
            pb.adopt.path.extend(path)
        case Redirect(candidates=candidates):
            pb.redirect.SetInParent()
            pb.redirect.candidates.extend(candidates)
        case Leave(evicted=evicted):
            pb.leave.SetInParent()
            pb.leave.evicted = evicted
        case Reparent(to=to):
            pb.reparent.to = to
        case Heartbeat(seq=seq, path=path, standby=standby):
            pb.heartbeat.SetInParent()
            pb.heartbeat.seq = seq
            pb.heartbeat.path.extend(path)
            pb.heartbeat.standby.extend(standby)
        case Status(slots=slots, children=children, free=free, seq=seq, recommend=recommend):
            pb.status.SetInParent()
            pb.status.slots = slots
            pb.status.children.extend(children)
            pb.status.free = free
            pb.status.seq = seq
            pb.status.recommend.extend(recommend)
        case StallReport(parent=parent, seq=seq):
            pb.stall_report.parent = parent
            pb.stall_report.seq = seq
        case Chunk(seq=seq, payload=payload):
            if len(payload) > MAX_CHUNK_PAYLOAD:
                raise StreamUsageError(f"a chunk payload of {len(payload)} bytes exceeds "
                                       f"{MAX_CHUNK_PAYLOAD}")
            pb.chunk.seq = seq
            pb.chunk.payload = payload
        case Seal(first=first, hashes=hashes, signature=signature):
            pb.seal.first = first
            pb.seal.hashes.extend(hashes)
            pb.seal.signature = signature
        case KeyframeRequest():
            pb.keyframe_request.SetInParent()
    return pb.SerializeToString()


def encode_message(message: StreamMessage) -> bytes:
    """The ``StreamMessage`` bytes of ``message`` (the body of a protocol 14 item)."""
    return encode(message.stream_id, message.body)


def decode_message(data: bytes) -> StreamMessage:
    """The ``StreamMessage`` of a protocol 14 item's body; ``StreamDecodeError`` if bad."""
    stream_id, body = decode(data)
    return StreamMessage(stream_id, body)


def decode(data: bytes) -> tuple[bytes, StreamBody]:
    """The stream id and domain message in ``data``; ``StreamDecodeError`` if malformed."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise StreamDecodeError(f"stream message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
    pb = PB()
    try:
        pb.ParseFromString(bytes(data))
    except DecodeError:
        raise StreamDecodeError("undecodable StreamMessage") from None
    if len(pb.stream_id) != STREAM_ID_SIZE:
        raise StreamDecodeError(f"a stream id has {STREAM_ID_SIZE} bytes")
    kind = pb.WhichOneof("body")
    message: StreamBody
    if kind == "chunk":
        if len(pb.chunk.payload) > MAX_CHUNK_PAYLOAD:
            raise StreamDecodeError(f"chunk payload above {MAX_CHUNK_PAYLOAD} bytes")
        message = Chunk(seq=_seq(pb.chunk.seq), payload=pb.chunk.payload)
    elif kind == "seal":
        hashes = tuple(pb.seal.hashes)
        if not 1 <= len(hashes) <= MAX_SEAL_HASHES or any(len(h) != HASH_SIZE for h in hashes):
            raise StreamDecodeError(
                f"a seal covers 1..{MAX_SEAL_HASHES} hashes of {HASH_SIZE} bytes")
        if len(pb.seal.signature) != 64 or pb.seal.first + len(hashes) > MAX_SEQ:
            raise StreamDecodeError("seal: bad signature length or range")
        message = Seal(first=pb.seal.first, hashes=hashes, signature=pb.seal.signature)
    elif kind == "keyframe_request":
        message = KeyframeRequest()
    elif kind == "join":
        message = Join(slots=_slots(pb.join.slots), have=_seq(pb.join.have),
                       free_slot_only=pb.join.free_slot_only)
    elif kind == "adopt":
        message = Adopt(path=_peers(pb.adopt.path, MAX_DEPTH, "path", minimum=1))
    elif kind == "redirect":
        message = Redirect(candidates=_peers(pb.redirect.candidates, MAX_CANDIDATES, "candidates"))
    elif kind == "leave":
        message = Leave(evicted=pb.leave.evicted)
    elif kind == "reparent":
        message = Reparent(to=_peer(pb.reparent.to))
    elif kind == "heartbeat":
        hb = pb.heartbeat
        message = Heartbeat(seq=_seq(hb.seq), path=_peers(hb.path, MAX_DEPTH, "path"),
                            standby=_peers(hb.standby, MAX_CANDIDATES, "standby"))
    elif kind == "status":
        st = pb.status
        if st.free > MAX_FREE:
            raise StreamDecodeError(f"free slots above {MAX_FREE}")
        message = Status(slots=_slots(st.slots),
                         children=_peers(st.children, MAX_SLOTS, "children"),
                         free=st.free, seq=_seq(st.seq),
                         recommend=_peers(st.recommend, MAX_CANDIDATES, "recommend"))
    elif kind == "stall_report":
        message = StallReport(parent=_peer(pb.stall_report.parent), seq=_seq(pb.stall_report.seq))
    else:
        raise StreamDecodeError("StreamMessage without a body")
    return pb.stream_id, message


def _slots(value: int) -> int:
    if value > MAX_SLOTS:
        raise StreamDecodeError(f"more than {MAX_SLOTS} slots")
    return value


def _seq(value: int) -> int:
    if not -1 <= value <= MAX_SEQ:
        raise StreamDecodeError("chunk sequence number out of range")
    return value


def _peer(value: str) -> PeerId:
    try:
        return PeerId.parse(value)
    except InvalidPeerId as exc:
        raise StreamDecodeError(f"bad peer id: {exc}") from None


def _peers(values: Iterable[str], limit: int, what: str, minimum: int = 0) -> tuple[PeerId, ...]:
    items = list(values)
    if not minimum <= len(items) <= limit:
        raise StreamDecodeError(f"{what}: {len(items)} peers, expected {minimum}..{limit}")
    peers = tuple(_peer(v) for v in items)
    if len(set(peers)) != len(peers):
        raise StreamDecodeError(f"{what}: a peer listed twice")
    return peers


#: Most media tracks in an announcement, and the largest codec extradata.
MAX_TRACKS = 4
MAX_EXTRADATA = 1024
#: Codecs a track may name.
CODECS = frozenset({"vp8", "h264", "opus"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Track:
    """One media track of a stream (stream.proto ``Track``)."""

    codec: str
    width: int = 0
    height: int = 0
    #: Frames per second (video) or samples per second (audio): the pts unit is 1/rate.
    rate: int = 0
    channels: int = 0
    extradata: bytes = b""

    @property
    def is_video(self) -> bool:
        return self.codec != "opus"


def encode_announcement(name: str, broadcaster: str, started: int, seq: int,
                        signallers: Iterable[str], tracks: Iterable[Track] = ()) -> bytes:
    """The ``StreamAnnouncement`` payload bytes (checked by the caller)."""
    return stream_pb2.StreamAnnouncement(
        name=name, broadcaster=broadcaster, started=started, seq=seq,
        signallers=list(signallers),
        tracks=[stream_pb2.Track(codec=t.codec, width=t.width, height=t.height, rate=t.rate,
                                 channels=t.channels, extradata=t.extradata)
                for t in tracks]).SerializeToString()


def decode_tracks(pb: stream_pb2.StreamAnnouncement) -> tuple[Track, ...]:
    """The checked tracks of an announcement."""
    if len(pb.tracks) > MAX_TRACKS:
        raise StreamDecodeError(f"more than {MAX_TRACKS} tracks")
    tracks = []
    for t in pb.tracks:
        if t.codec not in CODECS or len(t.extradata) > MAX_EXTRADATA or not 0 < t.rate <= 1 << 20:
            raise StreamDecodeError("track: unknown codec, rate or too much extradata")
        if max(t.width, t.height) > 8192 or t.channels > 8:
            raise StreamDecodeError("track: size or channels out of range")
        tracks.append(Track(codec=t.codec, width=t.width, height=t.height, rate=t.rate,
                            channels=t.channels, extradata=t.extradata))
    return tuple(tracks)


def decode_announcement(
        payload: bytes) -> tuple[str, PeerId, int, int, tuple[str, ...], tuple[Track, ...]]:
    """Name, broadcaster, started, seq, signallers and tracks of an announcement payload."""
    pb = stream_pb2.StreamAnnouncement()
    try:
        pb.ParseFromString(payload)
    except DecodeError:
        raise StreamDecodeError("undecodable StreamAnnouncement") from None
    return (pb.name, _peer(pb.broadcaster), pb.started, pb.seq, tuple(pb.signallers),
            decode_tracks(pb))


#: The stream protocol as the link layer runs it: a ``StreamMessage`` is the body
#: of an item of protocol ``PROTOCOL_ID`` (registered by the node).
CODEC = ProtocolCodec(protocol_id=PROTOCOL_ID, name="stream", message_types=(StreamMessage,),
                      encode=encode_message, decode=decode_message)
