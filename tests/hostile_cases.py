"""Hostile inputs generated from the protobuf definitions.

``extreme_cases`` walks a message type's fields (recursively) and yields, for
every variant of every ``oneof`` and every field under it, a message with that
field at each invalid extreme of its type; ``pb_messages`` is the hypothesis
strategy of arbitrary messages of a type.  Both read the descriptors, so a
field or message variant added to ``proto/`` is covered without touching the
tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from taiinet.wire.base58 import b58encode
from taiinet.wire.peer_id import PeerId

#: Any 32 bytes make a syntactically valid peer id.
peer_ids = st.binary(min_size=32, max_size=32).map(PeerId.from_public_key)

#: A valid peer id, of a key nobody here holds.
STRANGER = PeerId.from_public_key(bytes(range(32)))

#: Texts that are not peer ids, each for its own reason.
BAD_PEER_IDS: tuple[str, ...] = (
    "",
    "0",
    "0OIl-not-a-peer",
    STRANGER[:-1] + "0",                                   # one non-base58 character
    STRANGER[:-1],                                         # one character short
    STRANGER + "1",                                        # one character long
    "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",      # SHA-256 multihash (RSA-style id)
    b58encode(bytes([0x00, 0x25, 0x08, 0x02, 0x12, 0x21]) + bytes(33)),  # secp256k1 key
    "bafzaajaiaejcbzdibmxyzdjbgq7jfq3yjpbfmrhhm5tozdr6bajxixnx6dmxtzbsa",  # CID form
    "1" * 129,
    "\u0661" * 52,                                         # non-ASCII digits
    "x" * 4096,
)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(1 << 31), (1 << 31) - 1),
    FieldDescriptor.TYPE_SINT32: (-(1 << 31), (1 << 31) - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(1 << 31), (1 << 31) - 1),
    FieldDescriptor.TYPE_INT64: (-(1 << 63), (1 << 63) - 1),
    FieldDescriptor.TYPE_SINT64: (-(1 << 63), (1 << 63) - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(1 << 63), (1 << 63) - 1),
    FieldDescriptor.TYPE_UINT32: (0, (1 << 32) - 1),
    FieldDescriptor.TYPE_FIXED32: (0, (1 << 32) - 1),
    FieldDescriptor.TYPE_UINT64: (0, (1 << 64) - 1),
    FieldDescriptor.TYPE_FIXED64: (0, (1 << 64) - 1),
    FieldDescriptor.TYPE_ENUM: (-(1 << 31), (1 << 31) - 1),
}


def _scalar_extremes(field: FieldDescriptor, big_bytes: int) -> list[Any]:
    kind = field.type
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return sorted({low, -1 if low < 0 else 0, 1, 255, 256, high})
    if kind == FieldDescriptor.TYPE_BOOL:
        return [True]
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return [float("nan"), float("inf"), -1.0]
    if kind == FieldDescriptor.TYPE_STRING:
        return [*BAD_PEER_IDS, STRANGER, "ws://" + "h" * 300]
    if kind == FieldDescriptor.TYPE_BYTES:
        return [b"", b"\x00", b"\xff" * 33, bytes(big_bytes)]
    raise AssertionError(f"no extremes for field type {kind} of {field.full_name}")


def _set(message: Message, field: FieldDescriptor, value: Any) -> None:
    if field.is_repeated:
        getattr(message, field.name).append(value)
    else:
        setattr(message, field.name, value)


def extreme_cases(cls: type[Message], *, big_bytes: int = 40_000,
                  depth: int = 4) -> Iterator[tuple[str, Message]]:
    """(label, message) for every field path of every variant at every extreme."""
    yield f"{cls.DESCRIPTOR.name}()", cls()
    yield from _extremes_in(cls, cls.DESCRIPTOR.name, big_bytes, depth)


def _extremes_in(cls: type[Message], label: str, big_bytes: int,
                 depth: int) -> Iterator[tuple[str, Message]]:
    descriptor = cls.DESCRIPTOR
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth == 0:
                continue
            sample = getattr(cls(), field.name)
            inner_cls = type(sample.add()) if field.is_repeated else type(sample)
            empty = cls()
            _touch(empty, field)
            yield f"{label}.{field.name}={{}}", empty
            for inner_label, inner in _extremes_in(inner_cls, f"{label}.{field.name}",
                                                   big_bytes, depth - 1):
                message = cls()
                if field.is_repeated:
                    getattr(message, field.name).add().CopyFrom(inner)
                    many = cls()
                    for _ in range(100):
                        getattr(many, field.name).add().CopyFrom(inner)
                    yield inner_label + " x1", message
                    yield inner_label + " x100", many
                else:
                    getattr(message, field.name).CopyFrom(inner)
                    yield inner_label, message
            continue
        for value in _scalar_extremes(field, big_bytes):
            message = cls()
            _set(message, field, value)
            yield f"{label}.{field.name}={_short(value)}", message
            if field.is_repeated:
                many = cls()
                for _ in range(100):
                    _set(many, field, value)
                yield f"{label}.{field.name}={_short(value)} x100", many


def _touch(message: Message, field: FieldDescriptor) -> None:
    if field.is_repeated:
        getattr(message, field.name).add()
    else:
        getattr(message, field.name).SetInParent()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}...<{len(text)}>"


def pb_messages(cls: type[Message], depth: int = 3) -> st.SearchStrategy[Message]:
    """Arbitrary messages of ``cls``: every field drawn from valid and hostile values."""
    return _strategy(cls, depth)


def _field_values(field: FieldDescriptor, container: type[Message],
                  depth: int) -> st.SearchStrategy[Any] | None:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        if depth == 0:
            return None
        sample = getattr(container(), field.name)
        inner = type(sample.add()) if field.is_repeated else type(sample)
        return _strategy(inner, depth - 1)
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return st.integers(min_value=low, max_value=high)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=32 if kind == FieldDescriptor.TYPE_FLOAT else 64)
    if kind == FieldDescriptor.TYPE_STRING:
        return st.one_of(peer_ids, st.sampled_from(BAD_PEER_IDS), st.text(max_size=80))
    return st.binary(max_size=200)


def _strategy(cls: type[Message], depth: int) -> st.SearchStrategy[Message]:
    descriptor = cls.DESCRIPTOR
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        values = _field_values(field, cls, depth)
        if values is None:
            continue
        if field.is_repeated:
            parts[field.name] = st.lists(values, max_size=3)
        else:
            parts[field.name] = st.one_of(st.none(), values)
    oneof_fields = {f.name: o.name for o in descriptor.oneofs for f in o.fields}

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = cls()
        chosen: dict[str, str] = {}
        for oneof in descriptor.oneofs:
            names = [f.name for f in oneof.fields if f.name in parts]
            if names:
                chosen[oneof.name] = draw(st.sampled_from(names))
        for name, strategy in parts.items():
            if name in oneof_fields and chosen.get(oneof_fields[name]) != name:
                continue
            value = draw(strategy)
            if value is None:
                continue
            field = descriptor.fields_by_name[name]
            if field.is_repeated:
                target = getattr(message, name)
                for item in value:
                    if field.type == FieldDescriptor.TYPE_MESSAGE:
                        target.add().CopyFrom(item)
                    else:
                        target.append(item)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(message, name).CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    return build()


def mutated(encoded: bytes, data: st.DataObject) -> bytes:
    """``encoded`` as it is, or with one byte flipped, inserted or deleted, or cut
    short at a drawn index: the changes a reader compared with protobuf's must
    take the way protobuf takes them."""
    index = data.draw(st.integers(0, len(encoded)))
    kind = data.draw(st.sampled_from(["same", "flip", "cut", "insert", "delete"]))
    if kind == "flip" and index < len(encoded):
        return (encoded[:index] + bytes([encoded[index] ^ data.draw(st.integers(1, 255))])
                + encoded[index + 1:])
    if kind == "cut":
        return encoded[:index]
    if kind == "insert":
        return encoded[:index] + bytes([data.draw(st.integers(0, 255))]) + encoded[index:]
    if kind == "delete":
        return encoded[:index] + encoded[index + 1:]
    return encoded
