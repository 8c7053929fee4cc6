# taiinet: sans-io core
"""A document's ``Value`` bytes, written in one walk that checks and copies it too.

A publisher encodes each document once: the bytes go on the wire, and the
copy built on the way (the document as a peer decodes those bytes) is what it
routes and delivers itself, so nothing it just wrote is parsed back.  The
bytes are exactly protobuf's for ``codec._fill_value``'s message (a test
compares them, and the first error, on drawn documents).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

from taiinet.pubsub.query.errors import InvalidDocument
from taiinet.pubsub.query.limits import DEFAULT_DOCUMENT_LIMITS, DocumentLimits
from taiinet.pubsub.query.values import INT64_MAX, INT64_MIN

__all__ = ["encode_document"]


def _varint(value: int) -> bytes:
    """The minimal unsigned LEB128 encoding of ``0 <= value < 2**64``."""
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_ONE_BYTE = [bytes((n,)) for n in range(0x80)]
_pack_double = struct.Struct("<d").pack
# A ``Value``'s fields (value.proto): the tag byte of each kind (field << 3 | wire type).
_NULL = b"\x08\x00"
_TRUE = b"\x10\x01"
_FALSE = b"\x10\x00"
_INT = b"\x18"  # sint64, zigzag varint
_FLOAT = b"\x21"  # double, 8 bytes little-endian
_STRING = b"\x2a"
_BYTES = b"\x32"
_LIST = b"\x3a"
_MAP = b"\x42"
_ITEM = b"\x0a"  # ListValue.values, MapValue.entries, MapEntry.key
_ENTRY_VALUE = b"\x12"  # MapEntry.value


class ValueWriter:
    """Encode a document as ``Value`` bytes in one walk, checking it as it goes
    (``check_value``'s checks, in its order, so the first problem is the same)
    and building it as a peer decodes those bytes (``_ValueReader``: lists for
    tuples, plain ``dict``/``int``/``str`` for subclasses and mappings).

    A publisher encodes each document once: the bytes go on the wire and the
    copy is what it routes and delivers itself, without parsing what it just
    wrote.  The bytes are those protobuf serializes for ``_fill_value``'s
    message (fields in number order; a set oneof field is written even when
    it is the default; an empty ``MapEntry.key`` is not).
    """

    __slots__ = ("max_depth", "max_nodes", "nodes")

    def __init__(self, max_depth: int, max_nodes: int) -> None:
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.nodes = max_nodes

    def _invalid(self, problem: str) -> InvalidDocument:
        return InvalidDocument(f"not a valid document: {problem}")

    def write(self, value: Any, depth: int) -> tuple[bytes, Any]:
        """``value``'s ``Value`` bytes and ``value`` as a peer decodes them."""
        self.nodes -= 1
        if self.nodes < 0:
            raise self._invalid(f"more than {self.max_nodes} values")
        if depth > self.max_depth:
            raise self._invalid(f"nested deeper than {self.max_depth}")
        kind = type(value)
        if kind is str:
            try:
                data = value.encode()
            except UnicodeEncodeError:
                raise self._invalid("string is not valid Unicode (lone surrogate)") from None
            return _STRING + _varint(len(data)) + data, value
        if kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                raise self._invalid("integer out of the 64-bit range")
            return _INT + _varint((value << 1) ^ (value >> 63)), value
        if kind is dict:
            return self.write_map(value, depth)
        if kind is float:
            if math.isnan(value):
                raise self._invalid("NaN is not a document value")
            return _FLOAT + _pack_double(value), value
        if value is None:
            return _NULL, None
        if value is True:
            return _TRUE, True
        if value is False:
            return _FALSE, False
        if kind is list or kind is tuple:
            return self.write_list(value, depth)
        if kind is bytes:
            return _BYTES + _varint(len(value)) + value, value
        return self.write_other(value, depth)

    def write_other(self, value: Any, depth: int) -> tuple[bytes, Any]:
        """Subclasses of the document types, and mappings: their plain form
        (the base type's own conversion, not one a subclass overrides), written
        as that value (counted once: ``write`` counts it again)."""
        if isinstance(value, int | float | str | bytes):
            self.nodes += 1
        if isinstance(value, int):
            return self.write(int.__index__(value), depth)
        if isinstance(value, float):
            return self.write(float.__float__(value), depth)
        if isinstance(value, str):
            return self.write(str.__str__(value), depth)
        if isinstance(value, bytes):
            return self.write(bytes.__bytes__(value), depth)
        if isinstance(value, list | tuple):
            return self.write_list(value, depth)
        if isinstance(value, Mapping):
            return self.write_map(value, depth)
        raise self._invalid(f"{type(value).__name__} is not a document value")

    def write_list(self, values: Any, depth: int) -> tuple[bytes, list[Any]]:
        out: list[Any] = []
        parts: list[bytes] = []
        child = depth + 1
        for item in values:
            data, copy = self.write(item, child)
            out.append(copy)
            parts.append(_ITEM + _varint(len(data)) + data)
        inner = b"".join(parts)
        return _LIST + _varint(len(inner)) + inner, out

    def write_map(self, value: Any, depth: int) -> tuple[bytes, dict[str, Any]]:
        out: dict[str, Any] = {}
        parts: list[bytes] = []
        child = depth + 1
        for key, item in value.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise self._invalid(f"map key {key!r} is not a string")
                key = str.__str__(key)
            try:
                name = key.encode()
            except UnicodeEncodeError:
                raise self._invalid("map key is not valid Unicode (lone surrogate)") from None
            if key in out:  # only a custom mapping can (a peer would refuse it)
                raise self._invalid(f"map key {key!r} repeated")
            data, out[key] = self.write(item, child)
            entry = ((_ITEM + _varint(len(name)) + name if name else b"")
                     + _ENTRY_VALUE + _varint(len(data)) + data)
            parts.append(_ITEM + _varint(len(entry)) + entry)
        inner = b"".join(parts)
        return _MAP + _varint(len(inner)) + inner, out


def encode_document(document: Any, limits: DocumentLimits = DEFAULT_DOCUMENT_LIMITS
                    ) -> tuple[bytes, Any, int]:
    """``document_to_value``, with what ``value_to_document_counted`` returns for
    those bytes (the document as peers decode it, and its number of values),
    got while encoding instead of by parsing them; raises ``InvalidDocument``."""
    writer = ValueWriter(limits.max_depth, limits.max_nodes)
    data, copy = writer.write(document, 1)
    if len(data) > limits.max_bytes:
        raise InvalidDocument(f"document encodes to {len(data)} bytes, over {limits.max_bytes}")
    return data, copy, limits.max_nodes - writer.nodes
