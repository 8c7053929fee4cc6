"""RFC 6455 single-frame binary messages, parsed and built without wsproto's objects.

Nearly every WebSocket frame on a link is one whole binary message: FIN set,
opcode 2, no reserved bit, masked from a client and unmasked from a server
(section 5.2), no extension (TaiiNet negotiates none).  wsproto handles one
such frame with a buffer, a header object, a masker and a message event; this
module does it with a few slices, for ``WebSocketChannel`` to use while the
connection is open.  Any other frame (control, text, fragmented, malformed,
wrongly masked, a length not in its shortest form) is not parsed here: the
caller hands it, and every byte after it, to wsproto, which keeps the exact
RFC 6455 behaviour and errors.  Sans-I/O: bytes in, messages out.
"""

from __future__ import annotations

import os
from collections.abc import MutableSequence

#: FIN and the binary opcode, no reserved bit: the first byte of a simple frame.
_FIN_BINARY = 0x82
_MASK_BIT = 0x80
#: ``_XOR[k]`` maps each byte to itself XOR ``k`` (a ``bytes.translate`` table).
_XOR = [bytes(byte ^ k for byte in range(256)) for k in range(256)]
#: Bytes of masking keys drawn from ``os.urandom`` at once (1024 frames' keys).
MASK_KEY_BLOCK = 4096


class _MaskKeys:
    """Fresh, unpredictable 4-byte masking keys (RFC 6455 5.3), one per frame, cut
    from blocks of ``os.urandom``: a ``getrandom`` call per frame cost about
    0.7 us, a quarter of masking a 1 KiB frame."""

    __slots__ = ("_at", "_block")

    def __init__(self) -> None:
        self._block = b""
        self._at = 0

    def take(self) -> bytes:
        at = self._at
        if at >= len(self._block):
            self._block = os.urandom(MASK_KEY_BLOCK)
            at = 0
        self._at = at + 4
        return self._block[at:at + 4]


_MASK_KEYS = _MaskKeys()


def take_binary_frames(data: bytes, masked: bool, limit: int,
                       messages: MutableSequence[bytes]) -> tuple[int, bool]:
    """Append the payloads of the simple binary frames at the head of ``data``.

    ``masked``: whether frames must be masked (this side is the server).
    Returns ``(consumed, simple)``: the bytes of the frames taken, and whether
    what follows them is an incomplete simple frame (or nothing), which the
    caller keeps for the next read; when ``simple`` is False, what follows is
    a frame of another kind for wsproto.  A simple frame announcing more than
    ``limit`` bytes raises ``ValueError`` (before its payload is read).
    """
    pos = 0
    end = len(data)
    want = _MASK_BIT if masked else 0
    while end - pos >= 2:
        second = data[pos + 1]
        if data[pos] != _FIN_BINARY or second & _MASK_BIT != want:
            return pos, False
        length = second & 0x7F
        head = pos + 2
        if length == 126:
            if end - head < 2:
                return pos, True
            length = int.from_bytes(data[head:head + 2], "big")
            if length < 126:  # not the shortest form: wsproto's error
                return pos, False
            head += 2
        elif length == 127:
            if end - head < 8:
                return pos, True
            length = int.from_bytes(data[head:head + 8], "big")
            if length < 0x10000 or length >> 63:
                return pos, False
            head += 8
        if length > limit:
            raise ValueError(f"a WebSocket message of {length} bytes")
        if masked:
            stop = head + 4 + length
            if stop > end:
                return pos, True
            messages.append(unmask(data[head:head + 4], data[head + 4:stop]))
        else:
            stop = head + length
            if stop > end:
                return pos, True
            messages.append(data[head:stop])
        pos = stop
    return pos, True


def unmask(key: bytes, payload: bytes) -> bytes:
    """``payload`` XOR the repeated 4-byte masking ``key`` (RFC 6455 5.3).

    One table lookup per byte, four strides (as wsproto does, without its
    masker object): twice as fast as XOR on integers for a link's frames.
    """
    if not payload:
        return b""
    out = bytearray(payload)
    first, second, third, fourth = key
    out[::4] = out[::4].translate(_XOR[first])
    out[1::4] = out[1::4].translate(_XOR[second])
    out[2::4] = out[2::4].translate(_XOR[third])
    out[3::4] = out[3::4].translate(_XOR[fourth])
    return bytes(out)


def binary_frame(data: bytes, masked: bool) -> bytes:
    """``data`` as one simple binary frame; ``masked`` (a client) with a random key."""
    size = len(data)
    mask = _MASK_BIT if masked else 0
    if size < 126:
        header = bytes((_FIN_BINARY, mask | size))
    elif size < 0x10000:
        header = bytes((_FIN_BINARY, mask | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((_FIN_BINARY, mask | 127)) + size.to_bytes(8, "big")
    if not masked:
        return header + data
    key = _MASK_KEYS.take()
    return b"".join((header, key, unmask(key, data)))
