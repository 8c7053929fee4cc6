"""Wire codec: documents as protobuf ``Value``, queries as protobuf ``Filter``.

The only module of the query layer that touches protobuf types.  Encoders take
validated domain values; decoders take bytes from peers and either return a
validated value or raise ``MalformedValue``/``MalformedFilter``.  A decoded
filter is re-validated by the parser with the same limits as a local query, so
a peer can send nothing a local caller could not write.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf.message import DecodeError

from taiinet.pubsub.query.errors import (
    InvalidQuery,
    MalformedFilter,
    MalformedValue,
)
from taiinet.pubsub.query.limits import (
    DEFAULT_DOCUMENT_LIMITS,
    DEFAULT_QUERY_LIMITS,
    DocumentLimits,
    QueryLimits,
)
from taiinet.pubsub.query.nodes import (
    All,
    And,
    Compare,
    Contains,
    ElemMatch,
    Exists,
    Field,
    Filter,
    In,
    Op,
    Or,
    Regex,
    Size,
)
from taiinet.pubsub.query.parser import parse
from taiinet.pubsub.query.value_decoder import NotCanonical, WireValueReader
from taiinet.pubsub.query.value_encoder import encode_document
from taiinet.pubsub.query.values import INT64_MAX
from taiinet.v1 import query_pb2, value_pb2


# ---------------------------------------------------------------- documents
def _fill_value(msg: value_pb2.Value, value: Any) -> None:
    if value is None:
        msg.null_value = value_pb2.NULL_VALUE
    elif value is True or value is False:
        msg.bool_value = value
    elif isinstance(value, int):
        msg.int_value = value
    elif isinstance(value, float):
        msg.float_value = value
    elif isinstance(value, str):
        msg.string_value = value
    elif isinstance(value, bytes):
        msg.bytes_value = value
    elif isinstance(value, list | tuple):
        lst = msg.list_value
        lst.SetInParent()
        for item in value:
            _fill_value(lst.values.add(), item)
    else:
        mp = msg.map_value
        mp.SetInParent()
        for key, item in value.items():
            entry = mp.entries.add()
            entry.key = key
            _fill_value(entry.value, item)


def _fill_list(msg: value_pb2.ListValue, values: Any) -> None:
    for item in values:
        _fill_value(msg.values.add(), item)


#: ``Value`` kinds whose field is the Python value itself.
_PLAIN_KINDS = frozenset(("int_value", "string_value", "bool_value", "bytes_value"))


class _ValueReader:
    """Turn a parsed ``Value`` into Python, counting nodes and depth.

    Every protobuf accessor call costs, and a document is read on every node
    it reaches: a map's scalar values are read in the map's loop (same checks,
    same order as ``read``), and an entry's ``HasField`` is asked only when its
    value has no kind (an unset value reads as an empty one).
    """

    __slots__ = ("error", "max_depth", "nodes")

    def __init__(self, max_depth: int, max_nodes: int, error: type[Exception]) -> None:
        self.max_depth = max_depth
        self.nodes = max_nodes
        self.error = error

    def read(self, msg: value_pb2.Value, depth: int = 1) -> Any:
        self.nodes -= 1
        if self.nodes < 0:
            raise self.error("value has too many nodes")
        if depth > self.max_depth:
            raise self.error("value nested too deep")
        kind = msg.WhichOneof("kind")
        if kind in _PLAIN_KINDS:  # int, string, bool, bytes: the field is the value
            return getattr(msg, kind)
        if kind == "map_value":
            out: dict[str, Any] = {}
            child = depth + 1
            for entry in msg.map_value.entries:
                key = entry.key
                if key in out:
                    raise self.error(f"map key {key!r} repeated")
                value = entry.value
                value_kind = value.WhichOneof("kind")
                if value_kind is None and not entry.HasField("value"):
                    raise self.error(f"map key {key!r} has no value")
                if value_kind in _PLAIN_KINDS and self.nodes > 0 and child <= self.max_depth:
                    self.nodes -= 1  # what ``read`` would do, and it would not raise
                    out[key] = getattr(value, value_kind)
                else:
                    out[key] = self.read(value, child)
            return out
        if kind == "float_value":
            number = msg.float_value
            if math.isnan(number):
                raise self.error("NaN is not a document value")
            return number
        if kind == "null_value":
            return None
        if kind == "list_value":
            return self.read_list(msg.list_value, depth)
        raise self.error("value has no kind set")

    def read_list(self, msg: value_pb2.ListValue, depth: int) -> list[Any]:
        return [self.read(v, depth + 1) for v in msg.values]


def value_slice_to_document_counted(data: bytes, start: int, end: int,
                                    limits: DocumentLimits = DEFAULT_DOCUMENT_LIMITS
                                    ) -> tuple[Any, int]:
    """``value_to_document_counted(data[start:end], limits)``, without copying the slice
    when it decodes without protobuf (``WireValueReader``)."""
    if end - start > limits.max_bytes:
        raise MalformedValue(f"value of {end - start} bytes is over {limits.max_bytes}")
    reader = WireValueReader(data, limits.max_depth, limits.max_nodes)
    try:
        document = reader.read(start, end, 1)
    except (NotCanonical, IndexError, UnicodeDecodeError, RecursionError):
        return _parsed_value_counted(data[start:end], limits)
    return document, limits.max_nodes - reader.nodes


def document_to_value(document: Any, limits: DocumentLimits = DEFAULT_DOCUMENT_LIMITS) -> bytes:
    """Encode a JSON-like document as ``Value`` bytes; raises ``InvalidDocument``."""
    return encode_document(document, limits)[0]


def value_to_document(data: bytes, limits: DocumentLimits = DEFAULT_DOCUMENT_LIMITS) -> Any:
    """Decode ``Value`` bytes from a peer; raises ``MalformedValue``."""
    return value_to_document_counted(data, limits)[0]


def value_to_document_counted(data: bytes, limits: DocumentLimits = DEFAULT_DOCUMENT_LIMITS
                              ) -> tuple[Any, int]:
    """``value_to_document`` and the number of values decoded (what the document costs).

    The reader counts values as it builds them and stops at
    ``limits.max_nodes``, so a rejected document never costs more objects than that.
    """
    return value_slice_to_document_counted(data, 0, len(data), limits)


def _parsed_value_counted(data: bytes, limits: DocumentLimits) -> tuple[Any, int]:
    """``value_to_document_counted`` through protobuf: what every input gets that
    ``WireValueReader`` leaves (and the reference it is tested against)."""
    msg = value_pb2.Value()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise MalformedValue(f"value does not parse: {exc}") from None
    reader = _ValueReader(limits.max_depth, limits.max_nodes, MalformedValue)
    document = reader.read(msg)
    return document, limits.max_nodes - reader.nodes


# ---------------------------------------------------------------- filters
def _fill_ops(msg: Any, ops: tuple[Op, ...]) -> None:
    for op in ops:
        _fill_op(msg.add(), op)


def _fill_op(msg: query_pb2.Operator, op: Op) -> None:
    if isinstance(op, Compare):
        _fill_value(getattr(msg, op.op), op.value)
    elif isinstance(op, In):
        target = msg.nin_list if op.negate else msg.in_list
        target.SetInParent()
        _fill_list(target, op.values)
    elif isinstance(op, All):
        msg.all_list.SetInParent()
        _fill_list(msg.all_list, op.values)
    elif isinstance(op, Exists):
        msg.exists = op.present
    elif isinstance(op, Contains):
        _fill_value(msg.contains, op.value)
    elif isinstance(op, Regex):
        msg.regex.pattern = op.pattern
        msg.regex.options = op.options
    elif isinstance(op, Size):
        msg.size = op.size
    elif isinstance(op, ElemMatch):
        msg.elem_match.SetInParent()
        if op.filter is not None:
            _fill_filter(msg.elem_match.filter, op.filter)
        else:
            msg.elem_match.ops.SetInParent()
            _fill_ops(msg.elem_match.ops.ops, op.ops or ())
    else:
        msg.not_ops.SetInParent()
        _fill_ops(msg.not_ops.ops, op.ops)


def _fill_filter(msg: query_pb2.Filter, node: Filter) -> None:
    if isinstance(node, Field):
        msg.field.path = node.path
        _fill_ops(msg.field.ops, node.ops)
        return
    target = (msg.all_of if isinstance(node, And) else
              msg.any_of if isinstance(node, Or) else msg.none_of)
    target.SetInParent()
    for child in node.children:
        _fill_filter(target.filters.add(), child)


def filter_to_bytes(node: Filter) -> bytes:
    """Encode a filter AST as ``Filter`` bytes."""
    msg = query_pb2.Filter()
    _fill_filter(msg, node)
    return msg.SerializeToString()


class _FilterReader:
    """Turn a parsed ``Filter`` into the JSON-like query it stands for."""

    def __init__(self, limits: QueryLimits) -> None:
        self.limits = limits
        # Literal values are bounded by the parser; this reader only guards its own recursion.
        self.values = _ValueReader(limits.max_depth, limits.max_nodes, MalformedFilter)

    def filter(self, msg: query_pb2.Filter, depth: int) -> dict[str, Any]:
        if depth > self.limits.max_depth:
            raise MalformedFilter("filter nested too deep")
        node = msg.WhichOneof("node")
        if node == "field":
            if not msg.field.ops:
                raise MalformedFilter(f"field {msg.field.path!r} has no operator")
            return {msg.field.path: self.ops(msg.field.ops, depth + 1)}
        if node is None:
            raise MalformedFilter("filter has no node set")
        children = [self.filter(f, depth + 1) for f in getattr(msg, node).filters]
        if node == "all_of" and not children:
            return {}
        key = {"all_of": "$and", "any_of": "$or", "none_of": "$nor"}[node]
        return {key: children}

    def ops(self, ops: Any, depth: int) -> dict[str, Any]:
        if depth > self.limits.max_depth:
            raise MalformedFilter("filter nested too deep")
        out: dict[str, Any] = {}
        for op in ops:
            kind = op.WhichOneof("op")
            if kind is None:
                raise MalformedFilter("operator has none set")
            name = {"in_list": "$in", "nin_list": "$nin", "all_list": "$all",
                    "elem_match": "$elemMatch", "not_ops": "$not"}.get(kind, f"${kind}")
            if name in out:
                raise MalformedFilter(f"operator {name} repeated in one field")
            if kind in ("eq", "ne", "gt", "gte", "lt", "lte", "contains"):
                out[name] = self.values.read(getattr(op, kind), depth)
            elif kind in ("in_list", "nin_list", "all_list"):
                out[name] = self.values.read_list(getattr(op, kind), depth)
            elif kind == "exists":
                out[name] = op.exists
            elif kind == "size":
                if op.size > INT64_MAX:
                    raise MalformedFilter("$size out of range")
                out[name] = op.size
            elif kind == "regex":
                out["$regex"] = op.regex.pattern
                if op.regex.options:
                    out["$options"] = op.regex.options
            elif kind == "elem_match":
                form = op.elem_match.WhichOneof("form")
                if form == "filter":
                    out[name] = self.filter(op.elem_match.filter, depth + 1)
                elif form == "ops":
                    out[name] = self.ops(op.elem_match.ops.ops, depth + 1)
                else:
                    raise MalformedFilter("$elemMatch has no form set")
            else:
                out[name] = self.ops(op.not_ops.ops, depth + 1)
        return out


def filter_from_bytes(data: bytes, limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> Filter:
    """Decode ``Filter`` bytes from a peer into a validated AST; raises ``MalformedFilter``."""
    if len(data) > limits.max_bytes:
        raise MalformedFilter(f"filter of {len(data)} bytes is over {limits.max_bytes}")
    msg = query_pb2.Filter()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise MalformedFilter(f"filter does not parse: {exc}") from None
    query = _FilterReader(limits).filter(msg, 1)
    try:
        return parse(query, limits)
    except InvalidQuery as exc:
        raise MalformedFilter(f"filter is not a valid query: {exc}") from None

