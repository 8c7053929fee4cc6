"""Link frames for tests: build and take apart ``LinkFrame``s as a peer would."""

from __future__ import annotations

from typing import Any

from taiinet.overlay import codec as overlay_codec
from taiinet.overlay.messages import OverlayMessage
from taiinet.wire.framing import decode_link_frame, encode_item, join_items
from taiinet.wire.keepalive import encode_ping, encode_pong


def ping(nonce: int = 0) -> bytes:
    """A link frame (and item) holding a ``Ping``."""
    return encode_ping(nonce)


def pong(nonce: int) -> bytes:
    return encode_pong(nonce)


def batch(items: list[bytes]) -> bytes:
    """One link frame of the encoded ``items`` (each a one-item frame), in order."""
    return join_items(items)


def parts(data: bytes) -> list[OverlayMessage | bytes]:
    """The items of a link frame: overlay messages decoded, others as encoded items."""
    out: list[OverlayMessage | bytes] = []
    for protocol, body in decode_link_frame(data):
        if protocol == overlay_codec.PROTOCOL_ID:
            out.append(overlay_codec.decode(body))
        else:
            out.append(encode_item(protocol, body))
    return out


def item_of(protocol: int, message: Any) -> bytes:
    """A one-item link frame of ``protocol`` whose body is ``message`` (a protobuf)."""
    return encode_item(protocol, message.SerializeToString())


def signal_frame(message: Any) -> bytes:
    return item_of(11, message)


def only_body(data: bytes, protocol: int) -> bytes | None:
    """The body of a one-item frame of ``protocol``; ``None`` for another protocol's."""
    [(found, body)] = decode_link_frame(data)
    return body if found == protocol else None
