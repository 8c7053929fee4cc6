"""The publisher's encoders: the same bytes (and the same errors) as protobuf's, one
encode per document, and the opened publication got without parsing the payload back."""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taiinet.pubsub.documents import (
    DOCUMENT_DOMAIN,
    DOCUMENT_PAYLOAD_TYPE,
    SignedDocuments,
    UnsignedDocuments,
)
from taiinet.pubsub.errors import PubsubUsageError
from taiinet.pubsub.query import DocumentLimits, InvalidDocument, value_to_document_counted
from taiinet.pubsub.query.codec import _fill_value, document_to_value
from taiinet.pubsub.query.value_encoder import encode_document
from taiinet.pubsub.query.values import check_value
from taiinet.v1 import pubsub_pb2, value_pb2
from taiinet.wire import codec
from taiinet.wire.envelope import Envelope, open_fields
from taiinet.wire.identity import Identity

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

IDENTITY = Identity.from_seed(bytes(range(32)))
LIMITS = DocumentLimits()


class Colour(enum.IntEnum):
    RED = 7


class Name(str):
    def __str__(self) -> str:  # the encoder must not use it
        return "overridden"


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(1 << 63), (1 << 63) - 1),
    st.sampled_from([0, -1, 1, 63, 64, -64, -65, 127, 128, 300, 1 << 62]),
    st.floats(allow_nan=False), st.sampled_from([0.0, -0.0, math.inf, -math.inf]),
    st.text(max_size=8), st.binary(max_size=8), st.text(min_size=120, max_size=200),
    st.just(Colour.RED), st.just(Name("sub")))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=4) | st.just(""), inner,
                                            max_size=4)),
    max_leaves=12)
# Anything a caller might pass, valid or not, to compare the errors too.
bad_leaves = st.sampled_from([math.nan, 1 << 63, -(1 << 63) - 1, "\ud800", {1: 2},
                              {"\udfff": 1}, {3}, object(), 1j, bytearray(b"x")])
anything = st.recursive(
    st.one_of(scalars, bad_leaves),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=3), inner, max_size=4)),
    max_leaves=12)


def protobuf_value(document: Any, limits: DocumentLimits = LIMITS) -> bytes:
    """The encoder before the hand-written one: checked, filled in, serialized."""
    problem = check_value(document, max_depth=limits.max_depth, max_nodes=limits.max_nodes)
    if problem:
        raise InvalidDocument(f"not a valid document: {problem}")
    message = value_pb2.Value()
    _fill_value(message, document)
    return message.SerializeToString()


@given(documents)
def test_the_bytes_are_protobufs_and_the_copy_is_what_a_peer_decodes(document: Any) -> None:
    data, decoded, values = encode_document(document)
    assert data == protobuf_value(document) == document_to_value(document)
    peer_document, peer_values = value_to_document_counted(data)
    assert (decoded, values) == (peer_document, peer_values)
    assert repr(decoded) == repr(peer_document)  # same types: lists, plain int and str


@given(anything, st.integers(1, 6), st.integers(1, 20))
def test_an_invalid_document_fails_with_the_checkers_first_problem(
        document: Any, max_depth: int, max_nodes: int) -> None:
    limits = DocumentLimits(max_depth=max_depth, max_nodes=max_nodes)
    try:
        expected: bytes | str = protobuf_value(document, limits)
    except InvalidDocument as exc:
        expected = str(exc)
    try:
        got: bytes | str = encode_document(document, limits)[0]
    except InvalidDocument as exc:
        got = str(exc)
    assert got == expected


def test_subclasses_are_encoded_and_copied_as_their_plain_values() -> None:
    data, decoded, values = encode_document({Name("k"): [Colour.RED, Name("v")]})
    assert decoded == {"k": [7, "v"]} and values == 4
    assert [type(x) for x in decoded["k"]] == [int, str] and type(next(iter(decoded))) is str
    assert data == protobuf_value({"k": [7, "v"]})


@given(st.binary(max_size=300), st.binary(max_size=40))
def test_a_sealed_envelope_is_the_codecs_encoding(payload: bytes, payload_type: bytes) -> None:
    data = Envelope.seal(IDENTITY, "domain", payload_type, payload)
    fields = codec.decode_envelope(data)
    assert fields is not None
    assert data == codec.encode_envelope(codec.EnvelopeFields(
        public_key=IDENTITY.public_key_proto, payload_type=payload_type, payload=payload,
        signature=fields.signature))
    opened = Envelope.open(data, "domain")
    assert (opened.payload, opened.payload_type, opened.peer_id) == (
        payload, payload_type, IDENTITY.peer_id)


@given(documents, st.integers(0, 2**64 - 1) | st.just(0), st.integers(0, 2**64 - 1) | st.just(0))
def test_a_publication_is_protobufs_and_opens_as_sealed(document: Any, published_unix_ms: int,
                                                         nonce: int) -> None:
    payload, opened = SignedDocuments(IDENTITY).seal_opened(
        document, 1 << 20, published_unix_ms=published_unix_ms, nonce=nonce)
    _signer, _key, fields = open_fields(payload, DOCUMENT_DOMAIN,
                                        payload_type=DOCUMENT_PAYLOAD_TYPE)
    assert fields.payload == pubsub_pb2.PublishedDocument(
        value=protobuf_value(document), published_unix_ms=published_unix_ms,
        nonce=nonce).SerializeToString()
    assert opened == SignedDocuments().open(payload)
    assert repr(opened.document) == repr(SignedDocuments().open(payload).document)


def test_sealing_parses_nothing_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The publisher routes the copy its encoder made, not a decode of its own bytes."""
    import taiinet.pubsub.documents as documents

    def no_parsing(*_args: Any) -> Any:
        raise AssertionError("the publisher parsed its own document back")

    monkeypatch.setattr(documents, "value_slice_to_document_counted", no_parsing)
    monkeypatch.setattr(value_pb2.Value, "ParseFromString", no_parsing)
    monkeypatch.setattr(pubsub_pb2.PublishedDocument, "ParseFromString", no_parsing)
    document = {"seq": 3, "tags": ("a", "b"), "pad": "x" * 50}
    for codec_ in (SignedDocuments(IDENTITY), UnsignedDocuments("me")):
        _payload, opened = codec_.seal_opened(document, 4096, published_unix_ms=5, nonce=9)
        assert (opened.document, opened.values, opened.published_unix_ms) == (
            {"seq": 3, "tags": ["a", "b"], "pad": "x" * 50}, 6, 5)


def test_sealing_refuses_what_it_refused_before() -> None:
    for document in ({"a": math.nan}, {1: "x"}, "\ud800", [1 << 64]):
        with pytest.raises(PubsubUsageError, match="not a valid document"):
            SignedDocuments(IDENTITY).seal(document, 4096, published_unix_ms=1, nonce=1)
    with pytest.raises(PubsubUsageError, match="too large"):
        SignedDocuments(IDENTITY).seal("x" * 5000, 4096, published_unix_ms=1, nonce=1)
