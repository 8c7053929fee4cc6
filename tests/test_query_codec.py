"""The Value/Filter wire codec: lossless round trips, and decoders that reject bad bytes."""

from __future__ import annotations

import math
import tracemalloc
from typing import Any

import pytest
from hostile_cases import mutated
from hypothesis import given
from hypothesis import strategies as st
from query_support import queries

import taiinet
from taiinet.pubsub.query import (
    DocumentLimits,
    InvalidDocument,
    MalformedFilter,
    MalformedValue,
    Query,
    QueryLimits,
    document_to_value,
    value_to_document,
    value_to_document_counted,
)
from taiinet.pubsub.query.codec import filter_from_bytes, filter_to_bytes
from taiinet.pubsub.query.limits import DECODED_VALUE_BYTES, MAX_DOCUMENT_NODES
from taiinet.pubsub.query.values import value_key
from taiinet.v1 import query_pb2, value_pb2

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(1 << 63), (1 << 63) - 1),
              st.floats(allow_nan=False), st.text(max_size=8), st.binary(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=10,
)


@given(json_like)
def test_document_round_trip(document: Any) -> None:
    again = value_to_document(document_to_value(document))
    assert value_key(again) == value_key(document)
    assert type(again) is type(document)


@given(queries())
def test_filter_round_trip_is_lossless(query: dict[str, Any]) -> None:
    q = Query(query)
    data = q.to_filter_bytes()
    again = Query.from_filter_bytes(data)
    assert again.ast == q.ast
    assert again.to_json() == q.to_json()
    assert again.to_filter_bytes() == data


@given(st.binary(max_size=200))
def test_value_decoder_fuzz(data: bytes) -> None:
    try:
        value_to_document(data)
    except MalformedValue as exc:
        assert isinstance(exc, taiinet.RemoteProtocolError)


@given(json_like, st.integers(1, 12))
def test_decoded_values_are_counted_and_bounded(document: Any, max_nodes: int) -> None:
    data = document_to_value(document)
    try:
        again, values = value_to_document_counted(data, DocumentLimits(max_nodes=max_nodes))
    except MalformedValue:
        assert value_to_document_counted(data)[1] > max_nodes
        return
    assert 1 <= values <= max_nodes
    assert value_key(again) == value_key(document)


def _empty_maps(count: int) -> bytes:
    many = value_pb2.Value()
    for _ in range(count):
        many.list_value.values.add().map_value.SetInParent()
    return many.SerializeToString()


def test_a_small_document_of_many_values_is_rejected_before_it_costs_memory() -> None:
    data = _empty_maps(14_000)  # 56 KB that decode to ~1 MB of Python objects
    assert len(data) < 60 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(MalformedValue, match="too many"):
            value_to_document(data)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The reader stops at the limit: what it built is bounded by it.
    assert peak < 2 * MAX_DOCUMENT_NODES * DECODED_VALUE_BYTES
    assert value_to_document_counted(_empty_maps(MAX_DOCUMENT_NODES - 1))[1] == (
        MAX_DOCUMENT_NODES)
    with pytest.raises(InvalidDocument) as info:
        document_to_value([{}] * MAX_DOCUMENT_NODES)
    assert isinstance(info.value, taiinet.LocalProtocolError)  # the caller's fault
    assert isinstance(info.value, ValueError)


@given(st.binary(max_size=200))
def test_filter_decoder_fuzz(data: bytes) -> None:
    try:
        Query.from_filter_bytes(data)
    except MalformedFilter as exc:
        assert isinstance(exc, taiinet.RemoteProtocolError)


@given(queries(), st.data())
def test_filter_decoder_on_mutated_filters(query: dict[str, Any], data: st.DataObject) -> None:
    raw = bytearray(filter_to_bytes(Query(query).ast))
    if raw:
        for _ in range(data.draw(st.integers(1, 3))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    try:
        q = Query.from_filter_bytes(bytes(raw))
    except MalformedFilter:
        return
    assert Query(q.to_json()) == q  # whatever decodes is a valid query


@given(json_like, st.data())
def test_value_decoder_on_mutated_values(document: Any, data: st.DataObject) -> None:
    raw = bytearray(document_to_value(document))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    try:
        decoded = value_to_document(bytes(raw))
    except MalformedValue:
        return
    document_to_value(decoded)  # whatever decodes is a valid document


def _nested_value(depth: int) -> bytes:
    msg = value_pb2.Value(int_value=1)
    for _ in range(depth):
        outer = value_pb2.Value()
        outer.list_value.values.add().CopyFrom(msg)
        msg = outer
    return msg.SerializeToString()


def test_value_decoder_rejects_bad_input() -> None:
    with pytest.raises(MalformedValue, match="no kind"):
        value_to_document(b"")
    with pytest.raises(MalformedValue, match="too deep"):
        value_to_document(_nested_value(30))
    with pytest.raises(MalformedValue):
        value_to_document(_nested_value(5000))  # beyond protobuf's own recursion limit
    with pytest.raises(MalformedValue, match="over"):
        value_to_document(b"\x00" * 100, DocumentLimits(max_bytes=10))
    nan = value_pb2.Value(float_value=float("nan")).SerializeToString()
    with pytest.raises(MalformedValue, match="NaN"):
        value_to_document(nan)
    dup = value_pb2.Value()
    for _ in range(2):
        entry = dup.map_value.entries.add()
        entry.key = "k"
        entry.value.null_value = value_pb2.NULL_VALUE
    with pytest.raises(MalformedValue, match="repeated"):
        value_to_document(dup.SerializeToString())
    many = value_pb2.Value()
    for i in range(20):
        many.list_value.values.add().int_value = i
    with pytest.raises(MalformedValue, match="too many"):
        value_to_document(many.SerializeToString(), DocumentLimits(max_nodes=10))


def test_document_encoder_rejects_bad_documents() -> None:
    for bad in ({1: "x"}, {"a": float("nan")}, {"a": 1 << 64}, {"a": {1, 2}}, {"a": "\ud800"},
                {"\udfff": 1}):
        with pytest.raises(InvalidDocument):
            document_to_value(bad)
    with pytest.raises(InvalidDocument):
        document_to_value("x" * 100, DocumentLimits(max_bytes=50))
    with pytest.raises(InvalidDocument):
        document_to_value([[[1]]], DocumentLimits(max_depth=2))


def test_filter_decoder_rejects_bad_input() -> None:
    with pytest.raises(MalformedFilter, match="no node"):
        filter_from_bytes(b"")
    empty_field = query_pb2.Filter()
    empty_field.field.path = "a"
    with pytest.raises(MalformedFilter, match="no operator"):
        filter_from_bytes(empty_field.SerializeToString())
    twice = query_pb2.Filter()
    twice.field.path = "a"
    for v in (1, 2):
        twice.field.ops.add().gt.int_value = v
    with pytest.raises(MalformedFilter, match="repeated"):
        filter_from_bytes(twice.SerializeToString())
    bad_regex = query_pb2.Filter()
    bad_regex.field.path = "a"
    bad_regex.field.ops.add().regex.pattern = "("
    with pytest.raises(MalformedFilter, match="regular expression"):
        filter_from_bytes(bad_regex.SerializeToString())
    deep = Query({"a": 1}).ast
    data = filter_to_bytes(deep)
    for _ in range(40):
        wrapper = query_pb2.Filter()
        wrapper.any_of.filters.add().ParseFromString(data)
        data = wrapper.SerializeToString()
    with pytest.raises(MalformedFilter, match="deep"):
        filter_from_bytes(data)
    with pytest.raises(MalformedFilter, match="over"):
        filter_from_bytes(b"\x00" * 100, QueryLimits(max_bytes=10))
    big_in = Query({"a": {"$in": list(range(500))}}).to_filter_bytes()
    with pytest.raises(MalformedFilter, match=r"too many nodes|more than"):
        filter_from_bytes(big_in, QueryLimits(max_nodes=100))


def test_origin_example_on_the_wire() -> None:
    q = Query({"key": "value", "age": {"$gt": 4}, "$and": [
        {"$or": [{"name": {"$contains": "b"}}, {"name": {"$contains": "a"}}]},
        {"type": {"$in": [1, 4, 5]}}]})
    doc = value_to_document(document_to_value({"key": "value", "age": 5, "name": "aaa",
                                               "type": 4}))
    assert Query.from_filter_bytes(q.to_filter_bytes()).matches(doc)


class _ReferenceReader:
    """The plain recursive ``Value`` reader the codec's reader must agree with (its
    earlier form: one ``read`` per value, ``HasField`` on every map entry)."""

    def __init__(self, max_depth: int, max_nodes: int) -> None:
        self.max_depth = max_depth
        self.nodes = max_nodes

    def read(self, msg: value_pb2.Value, depth: int = 1) -> Any:
        self.nodes -= 1
        if self.nodes < 0:
            raise MalformedValue("value has too many nodes")
        if depth > self.max_depth:
            raise MalformedValue("value nested too deep")
        kind = msg.WhichOneof("kind")
        if kind in ("int_value", "string_value", "bool_value", "bytes_value"):
            return getattr(msg, kind)
        if kind == "map_value":
            out: dict[str, Any] = {}
            for entry in msg.map_value.entries:
                if entry.key in out:
                    raise MalformedValue(f"map key {entry.key!r} repeated")
                if not entry.HasField("value"):
                    raise MalformedValue(f"map key {entry.key!r} has no value")
                out[entry.key] = self.read(entry.value, depth + 1)
            return out
        if kind == "float_value":
            if math.isnan(msg.float_value):
                raise MalformedValue("NaN is not a document value")
            return msg.float_value
        if kind == "null_value":
            return None
        if kind == "list_value":
            return [self.read(v, depth + 1) for v in msg.list_value.values]
        raise MalformedValue("value has no kind set")


def _both(data: bytes, limits: DocumentLimits) -> tuple[object, object]:
    """What the codec and the reference reader make of ``data``: ``(document,
    values)`` or the error message."""
    try:
        got: object = value_to_document_counted(data, limits)
    except MalformedValue as exc:
        got = str(exc)
    msg = value_pb2.Value()
    msg.ParseFromString(data)
    reader = _ReferenceReader(limits.max_depth, limits.max_nodes)
    try:
        want: object = (reader.read(msg), limits.max_nodes - reader.nodes)
    except MalformedValue as exc:
        want = str(exc)
    return got, want


documents_with_gaps = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(), st.text(max_size=3),
              st.sampled_from([b"", b"?"])),  # a value with no kind (b"" in a map: none)
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.lists(st.tuples(st.sampled_from(["", "a", "b"]), inner),
                                     max_size=4)),
    max_leaves=12,
)


def _raw_value(msg: value_pb2.Value, value: Any) -> None:
    """Like the encoder, but writing whatever it is given (NaN, repeated keys, gaps)."""
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        msg.map_value.SetInParent()
        for key, item in value:
            entry = msg.map_value.entries.add()
            entry.key = key
            if item != b"":
                entry.value.SetInParent()
                _raw_value(entry.value, item)
    elif isinstance(value, list):
        msg.list_value.SetInParent()
        for item in value:
            _raw_value(msg.list_value.values.add(), item)
    elif isinstance(value, bytes):
        pass  # no kind set
    elif value is None:
        msg.null_value = value_pb2.NULL_VALUE
    elif isinstance(value, bool):
        msg.bool_value = value
    elif isinstance(value, int):
        msg.int_value = value
    elif isinstance(value, float):
        msg.float_value = value
    else:
        msg.string_value = value


@given(documents_with_gaps, st.integers(1, 14), st.integers(1, 4))
def test_value_reader_agrees_with_the_reference_reader(document: Any, max_nodes: int,
                                                       max_depth: int) -> None:
    msg = value_pb2.Value()
    _raw_value(msg, document)
    got, want = _both(msg.SerializeToString(),
                      DocumentLimits(max_nodes=max_nodes, max_depth=max_depth))
    assert got == want or (isinstance(got, tuple) and isinstance(want, tuple)
                           and value_key(got[0]) == value_key(want[0]) and got[1] == want[1])


def test_value_reader_checks_in_the_reference_order() -> None:
    gap = value_pb2.Value()
    gap.map_value.entries.add().key = "k"  # an entry without a value
    assert _both(gap.SerializeToString(), DocumentLimits()) == (
        "map key 'k' has no value", "map key 'k' has no value")
    # The entry's missing value is reported before the node budget runs out.
    assert _both(gap.SerializeToString(), DocumentLimits(max_nodes=1))[0] == (
        "map key 'k' has no value")
    flat = document_to_value({"a": 1, "b": "x", "c": True, "d": 2.5})
    assert _both(flat, DocumentLimits(max_nodes=3)) == ("value has too many nodes",) * 2
    assert _both(flat, DocumentLimits(max_depth=1)) == ("value nested too deep",) * 2
    assert _both(flat, DocumentLimits(max_nodes=5))[0] == (
        {"a": 1, "b": "x", "c": True, "d": 2.5}, 5)
    plain = document_to_value({"a": 1, "b": "x"})
    assert _both(plain, DocumentLimits(max_nodes=2)) == ("value has too many nodes",) * 2
    assert _both(plain, DocumentLimits(max_depth=1)) == ("value nested too deep",) * 2
    empty = value_pb2.Value()
    entry = empty.map_value.entries.add()
    entry.key = "k"
    entry.value.SetInParent()  # a value, of no kind
    assert _both(empty.SerializeToString(), DocumentLimits()) == (
        "value has no kind set", "value has no kind set")


def _decoded_or_error(decode: Any, data: bytes, limits: DocumentLimits) -> object:
    try:
        return decode(data, limits)
    except MalformedValue as exc:
        return str(exc)


@given(json_like, st.data(), st.integers(1, 12), st.integers(1, 40))
def test_values_read_without_protobuf_match_protobufs_reading(
        document: Any, data: st.DataObject, max_depth: int, max_nodes: int) -> None:
    """The codec reads canonical ``Value`` bytes itself (``value_decoder.WireValueReader``): for
    encoded documents and any change to them (flip, cut, insert, delete a byte) it
    gives what protobuf's parse and ``_ValueReader`` give, value, count or error."""
    encoded = mutated(document_to_value(document), data)
    limits = data.draw(st.sampled_from([DocumentLimits(),
                                        DocumentLimits(max_depth=max_depth, max_nodes=max_nodes)]))
    assert_read_as_protobuf_reads(encoded, limits)


@given(st.binary(max_size=120))
def test_random_bytes_read_without_protobuf_match_protobufs_reading(data: bytes) -> None:
    assert_read_as_protobuf_reads(data, DocumentLimits())


def assert_read_as_protobuf_reads(data: bytes, limits: DocumentLimits) -> None:
    """The codec's reading of ``data`` (without protobuf where it can) is protobuf's:
    the same document and count, or the same error."""
    from taiinet.pubsub.query.codec import _parsed_value_counted

    got = _decoded_or_error(value_to_document_counted, data, limits)
    want = _decoded_or_error(_parsed_value_counted, data, limits)
    if isinstance(want, tuple) and isinstance(got, tuple):
        assert value_key(got[0]) == value_key(want[0]) and got[1] == want[1]
    else:
        assert got == want


def test_an_encoded_document_is_read_without_a_protobuf_message(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A document every node receives is read from its bytes, no ``Value`` built."""
    from taiinet.pubsub.query import codec

    document = {"seq": 7, "t": 1234567.25, "pad": "x" * 200, "tags": ["a", None, True],
                "inner": {"n": -3, "b": b"\x00"}}
    data = document_to_value(document)
    want = codec._parsed_value_counted(data, DocumentLimits())

    class Refused:
        def __init__(self) -> None:
            raise AssertionError("a protobuf Value was built")

    monkeypatch.setattr(codec.value_pb2, "Value", Refused)
    assert value_to_document_counted(data) == want == (document, 11)
