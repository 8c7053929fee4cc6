# taiinet: sans-io core
"""The link keep-alive frames, ``Ping`` and ``Pong`` (docs/protocol.md section 4.2).

For links whose layer does not run its own keep-alive (signal links): the
signaller pings a link it has sent nothing on for a while, and both sides
answer every ``Ping`` with a ``Pong``, so a live but quiet link keeps meeting
the listener's idle deadline.
"""

from __future__ import annotations

from taiinet.v1 import frame_pb2
from taiinet.wire.framing import decode_frame

#: First byte of a ``Frame`` whose body is a ``Ping`` (field 1, length-delimited).
_PING_TAG = 0x0A


def encode_ping(nonce: int = 0) -> bytes:
    return frame_pb2.Frame(ping=frame_pb2.Ping(nonce=nonce)).SerializeToString()


def encode_pong(nonce: int) -> bytes:
    return frame_pb2.Frame(pong=frame_pb2.Pong(nonce=nonce)).SerializeToString()


def ping_nonce(frame: bytes) -> int | None:
    """The nonce if ``frame`` is a ``Ping``, else ``None`` (cheap for other frames).

    Raises ``MalformedFrame`` for a frame that starts like a ``Ping`` but does
    not parse.
    """
    if not frame or frame[0] != _PING_TAG:
        return None
    parsed = decode_frame(frame)
    return int(parsed.ping.nonce) if parsed.WhichOneof("body") == "ping" else None
