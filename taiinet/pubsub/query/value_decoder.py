# taiinet: sans-io core
"""``Value`` bytes from a peer read without protobuf objects (``WireValueReader``).

A document is decoded on every node it reaches; a parsed protobuf message
costs a wrapper object per value and a call per field.  This reader takes the
encoding protobuf writes and falls out (``NotCanonical``) on anything else,
for ``codec`` to decode with protobuf as it always did, so what is accepted,
and every error message, stays protobuf's (a test compares both readers on
encodings, mutations and random bytes).
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["NotCanonical", "WireValueReader", "read_uvarint"]


class NotCanonical(Exception):
    """Raised inside ``WireValueReader`` for anything it leaves to protobuf."""


#: ``Value`` keys (one byte each): null, bool, sint64, double, string, bytes, list, map.
_NULL, _BOOL, _INT, _FLOAT, _STRING, _BYTES, _LIST, _MAP = (
    0x08, 0x10, 0x18, 0x21, 0x2A, 0x32, 0x3A, 0x42)
#: Key of ``ListValue.values``, ``MapValue.entries`` and ``MapEntry.key`` (field 1,
#: length-delimited), and of ``MapEntry.value`` (field 2).
_FIELD_1, _FIELD_2 = 0x0A, 0x12
_UINT64_END = 1 << 64
_DOUBLE = struct.Struct("<d").unpack_from


def read_uvarint(data: bytes, at: int) -> tuple[int, int]:
    """The uvarint at ``at`` (up to 10 bytes, below 2**64) and the offset after it;
    ``NotCanonical`` if there is none such (``IndexError`` if the data ends)."""
    value = shift = 0
    while shift < 70:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >= _UINT64_END:
                break
            return value, at
        shift += 7
    raise NotCanonical


class WireValueReader:
    """Turn ``Value`` bytes into Python without protobuf objects, as ``codec._ValueReader``
    does a parsed ``Value``: same values, same count, same limits.

    It reads the encoding protobuf writes (and ``document_to_value`` makes): one
    kind per ``Value``, map entries with their value, valid UTF-8 strings, every
    field once and in order.  Anything else, and anything a limit or a check
    refuses, raises ``NotCanonical``: the caller then decodes with protobuf and
    ``codec._ValueReader``, which accept or reject it as they always did (with their
    error messages).  A parsed protobuf message costs a wrapper object per value
    read and a call per field; a document is decoded on every node it reaches.
    """

    __slots__ = ("data", "max_depth", "nodes")

    def __init__(self, data: bytes, max_depth: int, max_nodes: int) -> None:
        self.data = data
        self.max_depth = max_depth
        self.nodes = max_nodes

    def read(self, at: int, end: int, depth: int) -> Any:
        """The ``Value`` encoded in ``data[at:end]``."""
        self.nodes -= 1
        if self.nodes < 0 or depth > self.max_depth or at >= end:
            raise NotCanonical
        data = self.data
        key = data[at]
        at += 1
        if key == _MAP:
            return self._map(at, end, depth + 1)
        if key == _FLOAT:
            if at + 8 != end:
                raise NotCanonical
            number: float = _DOUBLE(data, at)[0]
            if number != number:  # NaN: ``_ValueReader`` says why it is refused
                raise NotCanonical
            return number
        size = data[at]
        if size < 0x80:
            at += 1
        elif data[at + 1] < 0x80:
            size = size & 0x7F | data[at + 1] << 7
            at += 2
        else:
            size, at = read_uvarint(data, at)
        if key == _STRING:
            if at + size != end:
                raise NotCanonical
            return data[at:end].decode()
        if key == _INT:
            if at != end or size >= _UINT64_END:
                raise NotCanonical
            return (size >> 1) ^ -(size & 1)
        if key in (_BOOL, _NULL):
            if at != end or size > (1 if key == _BOOL else 0):
                raise NotCanonical
            return size == 1 if key == _BOOL else None
        if at + size != end:
            raise NotCanonical
        if key == _BYTES:
            return data[at:end]
        if key == _LIST:
            return self._list(at, end, depth + 1)
        raise NotCanonical

    def _map(self, at: int, end: int, child: int) -> dict[str, Any]:
        data = self.data
        size = data[at]
        if size < 0x80:
            at += 1
        elif data[at + 1] < 0x80:
            size = size & 0x7F | data[at + 1] << 7
            at += 2
        else:
            size, at = read_uvarint(data, at)
        if at + size != end:
            raise NotCanonical
        out: dict[str, Any] = {}
        # Scalars (a string, int or float) are read here, ``read``'s checks inlined,
        # counted in ``nodes`` (``self.nodes`` is kept in step around ``read``).
        scalars = child <= self.max_depth
        nodes = self.nodes
        while at < end:
            if data[at] != _FIELD_1:
                raise NotCanonical
            size = data[at + 1]
            if size < 0x80:
                at += 2
            elif data[at + 2] < 0x80:
                size = size & 0x7F | data[at + 2] << 7
                at += 3
            else:
                size, at = read_uvarint(data, at + 1)
            entry_end = at + size
            if entry_end > end:
                raise NotCanonical
            key = ""
            if at < entry_end and data[at] == _FIELD_1:  # "" is not written
                size = data[at + 1]
                if size < 0x80:
                    at += 2
                else:
                    size, at = read_uvarint(data, at + 1)
                if at + size > entry_end:
                    raise NotCanonical
                key = data[at:at + size].decode()
                at += size
            if at + 2 >= entry_end or data[at] != _FIELD_2 or key in out:
                raise NotCanonical
            size = data[at + 1]
            if size < 0x80:
                at += 2
            elif data[at + 2] < 0x80:
                size = size & 0x7F | data[at + 2] << 7
                at += 3
            else:
                size, at = read_uvarint(data, at + 1)
            if at + size != entry_end:
                raise NotCanonical
            kind = data[at]
            if kind == _STRING and scalars and nodes > 0:
                nodes -= 1
                size = data[at + 1]
                if size < 0x80:
                    at += 2
                elif data[at + 2] < 0x80:
                    size = size & 0x7F | data[at + 2] << 7
                    at += 3
                else:
                    size, at = read_uvarint(data, at + 1)
                if at + size != entry_end:
                    raise NotCanonical
                out[key] = data[at:entry_end].decode()
            elif kind == _INT and scalars and nodes > 0:
                nodes -= 1
                number = data[at + 1]
                if number < 0x80:
                    at += 2
                elif at + 3 == entry_end and data[at + 2] < 0x80:
                    number = number & 0x7F | data[at + 2] << 7
                    at += 3
                else:
                    number, at = read_uvarint(data, at + 1)
                if at != entry_end:
                    raise NotCanonical
                out[key] = (number >> 1) ^ -(number & 1)
            elif kind == _FLOAT and scalars and nodes > 0:
                nodes -= 1
                number = _DOUBLE(data, at + 1)[0]
                if at + 9 != entry_end or number != number:
                    raise NotCanonical
                out[key] = number
            else:
                self.nodes = nodes
                out[key] = self.read(at, entry_end, child)
                nodes = self.nodes
            at = entry_end
        self.nodes = nodes
        return out

    def _list(self, at: int, end: int, child: int) -> list[Any]:
        data = self.data
        out = []
        read = self.read
        while at < end:
            if data[at] != _FIELD_1:
                raise NotCanonical
            size = data[at + 1]
            if size < 0x80:
                at += 2
            else:
                size, at = read_uvarint(data, at + 1)
            if at + size > end:
                raise NotCanonical
            out.append(read(at, at + size, child))
            at += size
        return out
