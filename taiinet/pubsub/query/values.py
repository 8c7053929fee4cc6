# taiinet: sans-io core
"""The document model: JSON-like Python values, their equality and their order.

A document is ``None``, ``bool``, ``int`` (64-bit), ``float`` (not NaN),
``str``, ``bytes``, a ``list`` of documents or a ``dict`` with ``str`` keys.
Queries hold literals frozen (``tuple`` for lists, ``FrozenMap`` for dicts) so
the AST is immutable; ``value_key`` maps both forms to the same hashable key.

Equality is by type class, then value: ``1 == 1.0`` but ``True != 1`` and
``"1" != 1``; maps are equal when they have the same keys and values in any
order.  Order (for ``$gt`` and friends) exists only within one class:
numbers, strings (by code point, which is UTF-8 byte order), bytes, booleans.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from taiinet.pubsub.query.errors import InvalidDocument

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

# Type classes, the first element of every key.
NULL, BOOL, NUMBER, STRING, BYTES, LIST, MAP = range(7)


class FrozenMap(Mapping[str, Any]):
    """An immutable, hashable map with the insertion order of its source."""

    __slots__ = ("_hash", "_items", "_map")

    def __init__(self, items: Mapping[str, Any] | tuple[tuple[str, Any], ...] = ()) -> None:
        pairs = tuple(items.items()) if isinstance(items, Mapping) else tuple(items)
        self._items: tuple[tuple[str, Any], ...] = pairs
        self._map: dict[str, Any] = dict(pairs)
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self._map[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(value_key(self))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return bool(value_key(self) == value_key(dict(other)))

    def __repr__(self) -> str:
        return f"FrozenMap({dict(self._items)!r})"


def type_class(value: Any) -> int:
    """The type class of a document value (``NULL`` ... ``MAP``)."""
    if value is None:
        return NULL
    if value is True or value is False:
        return BOOL
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, bytes):
        return BYTES
    if isinstance(value, list | tuple):
        return LIST
    if isinstance(value, Mapping):
        return MAP
    raise InvalidDocument(f"not a document value: {type(value).__name__}")


def value_key(value: Any) -> Any:
    """A hashable key, equal for two values exactly when they are equal documents."""
    if value is None:
        return (NULL,)
    if value is True or value is False:
        return (BOOL, value)
    if isinstance(value, int | float):
        return (NUMBER, value)
    if isinstance(value, str):
        return (STRING, value)
    if isinstance(value, bytes):
        return (BYTES, value)
    if isinstance(value, list | tuple):
        return (LIST, tuple(value_key(v) for v in value))
    if isinstance(value, Mapping):
        return (MAP, tuple(sorted((k, value_key(v)) for k, v in value.items())))
    raise InvalidDocument(f"not a document value: {type(value).__name__}")


def freeze(value: Any) -> Any:
    """A deep, immutable copy of a document value (lists become tuples)."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, Mapping):
        return FrozenMap(tuple((k, freeze(v)) for k, v in value.items()))
    return value


def thaw(value: Any) -> Any:
    """The plain JSON-like form of a frozen value (tuples become lists)."""
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    return value


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes to UTF-8 (has no lone surrogates), as protobuf needs."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_value(value: Any, *, max_depth: int, max_nodes: int, max_string: int | None = None
                ) -> str | None:
    """Why ``value`` is not a document within the limits, or ``None`` when it is."""
    budget = [max_nodes]

    def walk(v: Any, depth: int) -> str | None:
        budget[0] -= 1
        if budget[0] < 0:
            return f"more than {max_nodes} values"
        if depth > max_depth:
            return f"nested deeper than {max_depth}"
        if v is None or v is True or v is False:
            return None
        if isinstance(v, int):
            if not INT64_MIN <= v <= INT64_MAX:
                return "integer out of the 64-bit range"
            return None
        if isinstance(v, float):
            return "NaN is not a document value" if math.isnan(v) else None
        if isinstance(v, str | bytes):
            if max_string is not None and len(v) > max_string:
                return f"string longer than {max_string}"
            if isinstance(v, str) and not is_utf8(v):
                return "string is not valid Unicode (lone surrogate)"
            return None
        if isinstance(v, list | tuple):
            for item in v:
                problem = walk(item, depth + 1)
                if problem:
                    return problem
            return None
        if isinstance(v, Mapping):
            for k, item in v.items():
                if not isinstance(k, str):
                    return f"map key {k!r} is not a string"
                if max_string is not None and len(k) > max_string:
                    return f"map key longer than {max_string}"
                if not is_utf8(k):
                    return "map key is not valid Unicode (lone surrogate)"
                problem = walk(item, depth + 1)
                if problem:
                    return problem
            return None
        return f"{type(v).__name__} is not a document value"

    return walk(value, 1)
