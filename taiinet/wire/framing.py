# taiinet: sans-io core
"""Length-prefixed frames: the unit every link carries.

Theory of operation
-------------------
A link carries a byte stream of frames, each written as::

    uvarint(len(frame)) || frame

where ``uvarint`` is the unsigned LEB128 varint of protobuf and libp2p
(multiformats unsigned-varint): 7 bits per byte, least significant group
first, high bit set on every byte but the last.  A length must use the
fewest bytes possible (``0x80 0x00`` for 0 is malformed) and at most
``MAX_UVARINT_BYTES`` bytes.  A length above the receiver's maximum
(``DEFAULT_MAX_FRAME_SIZE`` unless configured) is rejected as soon as the
prefix is read, before any of the frame is buffered, so the decoder's buffer
never holds more than one maximum frame plus its prefix.

``FrameDecoder`` is the incremental, bounded decoder.

What a frame holds is a ``LinkFrame`` (docs/protocol.md section 4.1): one or
more items, each a protocol id and that protocol's message as bytes.  An
item's encoding inside a ``LinkFrame`` does not depend on the others, so a
sender encodes each item once (``encode_item``) and a frame of several is
their concatenation (``join_items``), byte for byte what protobuf writes;
``decode_link_frame`` parses a frame once into ``(protocol, body)`` pairs,
and each body is parsed once more, by its protocol's codec.
"""

from __future__ import annotations

import struct

from google.protobuf.message import DecodeError

from taiinet.errors import LocalProtocolError
from taiinet.v1 import frame_pb2
from taiinet.wire.errors import FrameTooLarge, MalformedFrame, OversizedFrame, TruncatedFrame

#: Default largest frame (the bytes after the length prefix) a link accepts.
DEFAULT_MAX_FRAME_SIZE = 1 << 20
#: A length prefix is at most this many bytes (lengths below 2**35).
MAX_UVARINT_BYTES = 5
#: Most items in one ``LinkFrame``.
MAX_FRAME_ITEMS = 512
#: Protocol ids are 1 .. this (a ``uint32``; 0 is no protocol).
MAX_PROTOCOL_ID = (1 << 32) - 1

#: Key of ``LinkFrame.items`` (field 1, length-delimited): an encoded item's first byte.
ITEM_KEY = b"\x0a"
#: Key of ``LinkItem.protocol`` (field 1, varint).
_PROTOCOL_KEY = b"\x08"
#: Key of ``LinkItem.body`` (field 2, length-delimited).
_BODY_KEY = b"\x12"
#: The encodings of 0..127, each one byte.
_ONE_BYTE = [bytes((value,)) for value in range(0x80)]
#: Two bytes, the first the low one.
_TWO_BYTES = struct.Struct("<H").pack
#: ``_PROTOCOL_KEY || uvarint(protocol)`` of the protocol ids seen (a few).
_ITEM_HEADS: dict[int, bytes] = {}


def encode_uvarint(value: int) -> bytes:
    """The minimal unsigned LEB128 encoding of ``value`` (>= 0)."""
    if value < 0x80:
        if value < 0:
            raise LocalProtocolError(f"cannot encode negative length {value}")
        return _ONE_BYTE[value]
    if value < 0x4000:  # two bytes: most frames
        return _TWO_BYTES(value & 0x7F | 0x80 | (value >> 7) << 8)
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(data: bytes | bytearray | memoryview, offset: int = 0,
                   *, max_bytes: int = MAX_UVARINT_BYTES) -> tuple[int, int]:
    """Decode a minimal uvarint at ``offset``; return ``(value, offset after it)``.

    Raises ``TruncatedFrame`` if the data ends inside it and ``MalformedFrame``
    if it is longer than ``max_bytes`` or not minimal.
    """
    value = 0
    for index in range(max_bytes):
        position = offset + index
        if position >= len(data):
            raise TruncatedFrame("input ends inside a varint")
        byte = data[position]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if byte == 0 and index > 0:
                raise MalformedFrame("varint is not minimally encoded")
            return value, position + 1
    raise MalformedFrame(f"varint longer than {max_bytes} bytes")


def frame_with_prefix(frame: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """``uvarint(len(frame)) || frame``; ``OversizedFrame`` if over the maximum."""
    if len(frame) > max_frame_size:
        raise OversizedFrame(f"frame of {len(frame)} bytes exceeds the maximum of {max_frame_size}")
    return encode_uvarint(len(frame)) + frame


class FrameDecoder:
    """Split a byte stream into frames, holding at most one frame in memory.

    Feed it bytes as they arrive; it returns the frames completed by them.
    After it raised, it is broken and raises ``LocalProtocolError`` on use.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < 0:
            raise LocalProtocolError("max_frame_size must be >= 0")
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._expected: int | None = None
        self._broken = False
        #: True when the bytes fed so far end inside a prefix or a frame.
        self.has_partial_frame = False

    @property
    def held_bytes(self) -> int:
        """Bytes of the incomplete frame (or prefix) held so far."""
        return len(self._buffer)

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        """The frames ``data`` completes.  Every frame returned and every byte held
        is a copy: ``data`` may be a buffer the caller reuses."""
        if self._broken:
            raise LocalProtocolError("FrameDecoder already failed; the link must be closed")
        if not self.has_partial_frame and len(data) > 1:
            # Fastest path: ``data`` is exactly one whole frame with a 1- or 2-byte
            # prefix (one frame per Noise message): one copy, no memoryview.
            first, second = data[0], data[1]
            if first < 0x80:
                length, start = first, 1
            elif 0 < second < 0x80:  # a minimal 2-byte uvarint
                length, start = (first & 0x7F) | second << 7, 2
            else:
                length, start = -1, 0
            if start + length == len(data) and length <= self.max_frame_size:
                # A slice of bytes is already a copy of its own.
                return [data[start:] if type(data) is bytes else bytes(data[start:])]
        frames: list[bytes] = []
        view = memoryview(data)
        try:
            # Fast path: whole frames at the start of ``data`` are sliced out directly.
            while self._expected is None and not self._buffer and view:
                try:
                    length, start = decode_uvarint(view)
                except TruncatedFrame:
                    break  # a prefix cut short: the slow path buffers it
                self._check_length(length)
                if start + length > len(view):
                    self._expected, view = length, view[start:]
                    break
                frames.append(bytes(view[start:start + length]))
                view = view[start + length:]
            while view:
                if self._expected is None:
                    view = self._read_prefix(view)
                    if self._expected is None:
                        break
                assert self._expected is not None
                wanted = self._expected - len(self._buffer)
                self._buffer += view[:wanted]
                view = view[wanted:]
                if len(self._buffer) == self._expected:
                    frames.append(bytes(self._buffer))
                    self._buffer.clear()
                    self._expected = None
        except Exception:
            self._broken = True
            raise
        finally:
            self.has_partial_frame = bool(self._buffer) or self._expected is not None
        return frames

    def _read_prefix(self, view: memoryview) -> memoryview:
        """Move prefix bytes from ``view`` to the buffer; set ``_expected`` when complete."""
        while view:
            self._buffer.append(view[0])
            view = view[1:]
            if not self._buffer[-1] & 0x80 or len(self._buffer) >= MAX_UVARINT_BYTES:
                length, _ = decode_uvarint(self._buffer)
                self._buffer.clear()
                self._check_length(length)
                self._expected = length
                return view
        return view

    def _check_length(self, length: int) -> None:
        if length > self.max_frame_size:
            raise FrameTooLarge(f"peer announced a frame of {length} bytes; the maximum is "
                                f"{self.max_frame_size}")

    def end_of_stream(self) -> None:
        """Call at the end of the stream: ``TruncatedFrame`` if it ended inside a frame."""
        if self.has_partial_frame:
            self._broken = True
            raise TruncatedFrame("the link ended inside a frame")


def encode_item(protocol: int, body: bytes) -> bytes:
    """One ``LinkItem`` as it sits in a ``LinkFrame`` (key, length, item).

    Byte for byte what protobuf writes (an empty body is left out, as proto3
    leaves out an empty field), so ``join_items`` of encoded items is the
    ``LinkFrame`` holding them.
    """
    head = _protocol_head(protocol)
    if not body:
        return ITEM_KEY + encode_uvarint(len(head)) + head
    length = encode_uvarint(len(body))
    return b"".join((ITEM_KEY, encode_uvarint(len(head) + 1 + len(length) + len(body)), head,
                     _BODY_KEY, length, body))


def item_body_head(protocol: int) -> bytes:
    """What a ``LinkItem`` of ``protocol`` holds between its length and its body's
    length: the protocol field and the body's key.

    ``ITEM_KEY || uvarint(len(head) + len(size) + len(body)) || head || size || body``,
    where ``size`` is ``uvarint(len(body))``, is ``encode_item(protocol, body)`` (body
    not empty): a codec that writes a frequent message's item itself joins its
    body's parts into it at once, instead of joining the body and ``encode_item``
    copying it again.
    """
    return _protocol_head(protocol) + _BODY_KEY


def _protocol_head(protocol: int) -> bytes:
    """``_PROTOCOL_KEY || uvarint(protocol)``; ``LocalProtocolError`` out of range."""
    head = _ITEM_HEADS.get(protocol)
    if head is None:
        if not 0 < protocol <= MAX_PROTOCOL_ID:
            raise LocalProtocolError(f"protocol id {protocol} is not in 1..{MAX_PROTOCOL_ID}")
        head = _PROTOCOL_KEY + encode_uvarint(protocol)
        if len(_ITEM_HEADS) < 256:
            _ITEM_HEADS[protocol] = head
    return head


def join_items(items: list[bytes]) -> bytes:
    """The ``LinkFrame`` holding the encoded ``items`` (from ``encode_item``), in order."""
    return items[0] if len(items) == 1 else b"".join(items)


def link_frame(protocol: int, body: bytes,
               max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """A ``LinkFrame`` of one item; ``OversizedFrame`` if over the maximum."""
    data = encode_item(protocol, body)
    if len(data) > max_frame_size:
        raise OversizedFrame(f"frame of {len(data)} bytes exceeds the maximum of {max_frame_size}")
    return data


def decode_link_frame(data: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                      max_items: int = MAX_FRAME_ITEMS) -> list[tuple[int, bytes]]:
    """Parse frame bytes into their ``(protocol, body)`` items, in order.

    ``FrameTooLarge`` over ``max_frame_size``; ``MalformedFrame`` when the
    bytes are not a ``LinkFrame``, hold no item or more than ``max_items``, or
    an item of protocol 0.  Nothing of a bad frame is returned.  Which
    protocols the receiver knows is not decided here (the link layer's).
    """
    if len(data) > max_frame_size:
        raise FrameTooLarge(f"frame of {len(data)} bytes exceeds the maximum of {max_frame_size}")
    frame = frame_pb2.LinkFrame()
    try:
        frame.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise MalformedFrame(f"undecodable frame: {exc}") from None
    items = frame.items
    if not items:
        raise MalformedFrame("a frame holds no item")
    if len(items) > max_items:
        raise MalformedFrame(f"a frame holds more than {max_items} items")
    out = [(item.protocol, item.body) for item in items]
    for protocol, _body in out:
        if protocol == 0:
            raise MalformedFrame("an item of protocol 0")
    return out
