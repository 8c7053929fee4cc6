# taiinet: sans-io core
"""The link's keep-alive, ``Ping`` and ``Pong`` (docs/protocol.md section 4.2).

They are the body of protocol ``LINK_PROTOCOL`` (1), a ``LinkControl``, and
belong to whichever layer runs the link: the node's link layer
(``taiinet.link``) answers them on node links, and the signal layer's drivers
on signal links (the signaller pings a link it has sent nothing on for a
while; both sides answer every ``Ping`` with a ``Pong``, so a live but quiet
link keeps meeting the listener's idle deadline).
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from taiinet.v1 import frame_pb2
from taiinet.wire.errors import MalformedFrame
from taiinet.wire.framing import decode_link_frame, encode_item

#: Protocol id of the link's own control messages.
LINK_PROTOCOL = 1


def ping_item(nonce: int = 0) -> bytes:
    """An encoded item (``encode_item``) holding a ``Ping``."""
    return encode_item(LINK_PROTOCOL, frame_pb2.LinkControl(
        ping=frame_pb2.Ping(nonce=nonce)).SerializeToString())


def pong_item(nonce: int) -> bytes:
    """An encoded item holding a ``Pong``."""
    return encode_item(LINK_PROTOCOL, frame_pb2.LinkControl(
        pong=frame_pb2.Pong(nonce=nonce)).SerializeToString())


#: A one-item frame is its item: these are whole frames too.
encode_ping = ping_item
encode_pong = pong_item


def decode_control(body: bytes) -> tuple[str, int]:
    """``("ping" | "pong", nonce)`` of a ``LinkControl`` body; ``MalformedFrame`` if bad."""
    control = frame_pb2.LinkControl()
    try:
        control.ParseFromString(body)
    except DecodeError as exc:
        raise MalformedFrame(f"undecodable link control message: {exc}") from None
    kind = control.WhichOneof("body")
    if kind == "ping":
        return kind, int(control.ping.nonce)
    if kind == "pong":
        return kind, int(control.pong.nonce)
    raise MalformedFrame("a link control message of no kind this version knows")


def ping_nonce(frame: bytes) -> int | None:
    """The nonce of the last ``Ping`` in ``frame`` if it holds only link control
    messages and a ``Ping``; else ``None``.

    Raises ``MalformedFrame`` for a frame that does not parse.
    """
    nonce: int | None = None
    for protocol, body in decode_link_frame(frame):
        if protocol != LINK_PROTOCOL:
            return None
        kind, value = decode_control(body)
        if kind == "ping":
            nonce = value
    return nonce
