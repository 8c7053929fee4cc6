"""Conversion between stream domain types and the ``stream.proto`` protobufs.

The only module of the stream layer that touches wire types (tree control
messages, and the payload of the signed announcement in ``announce``).  Decoding checks
every field against the limits in ``taiinet.stream.messages`` and raises
``StreamDecodeError`` (a ``RemoteProtocolError``) for anything malformed.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.message import DecodeError

from taiinet.stream.errors import StreamDecodeError
from taiinet.stream.messages import (
    MAX_CANDIDATES,
    MAX_DEPTH,
    MAX_FREE,
    MAX_SEQ,
    MAX_SLOTS,
    Adopt,
    Heartbeat,
    Join,
    Leave,
    Redirect,
    Reparent,
    StallReport,
    Status,
    TreeMessage,
)
from taiinet.v1 import stream_pb2
from taiinet.wire.errors import InvalidPeerId
from taiinet.wire.peer_id import PeerId

PB = stream_pb2.StreamMessage
#: Length of a stream id (SHA-256 of the announcement envelope).
STREAM_ID_SIZE = 32
#: Largest encoded ``StreamMessage`` accepted (a full Status or Heartbeat is ~5 KB).
MAX_MESSAGE_SIZE = 16 * 1024


def encode(stream_id: bytes, message: TreeMessage) -> bytes:
    """The wire bytes of ``message`` for the stream ``stream_id``."""
    pb = PB(stream_id=stream_id)
    match message:
        case Join(slots=slots):
            pb.join.slots = slots
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
    return pb.SerializeToString()


def decode(data: bytes) -> tuple[bytes, TreeMessage]:
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
    message: TreeMessage
    if kind == "join":
        message = Join(slots=_slots(pb.join.slots))
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


def encode_announcement(name: str, broadcaster: str, started: int, seq: int,
                        signallers: Iterable[str]) -> bytes:
    """The ``StreamAnnouncement`` payload bytes (checked by the caller)."""
    return stream_pb2.StreamAnnouncement(
        name=name, broadcaster=broadcaster, started=started, seq=seq,
        signallers=list(signallers)).SerializeToString()


def decode_announcement(payload: bytes) -> tuple[str, PeerId, int, int, tuple[str, ...]]:
    """Name, broadcaster, started, seq and signallers of an announcement payload."""
    pb = stream_pb2.StreamAnnouncement()
    try:
        pb.ParseFromString(payload)
    except DecodeError:
        raise StreamDecodeError("undecodable StreamAnnouncement") from None
    return pb.name, _peer(pb.broadcaster), pb.started, pb.seq, tuple(pb.signallers)
