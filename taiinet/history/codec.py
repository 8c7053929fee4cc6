"""History messages <-> the ``HistoryMessage`` protobuf, protocol 13 of a link frame.

The only module of the history layer that touches wire types.  On a link a
``HistoryMessage`` is the body of an item of protocol ``PROTOCOL_ID`` (13)
(docs/protocol.md section 4.1); the link layer parses the frame and hands
the body to ``CODEC``.  Decoding checks every field against its limit and
raises ``HistoryDecodeError``.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from taiinet.history.errors import HistoryDecodeError, HistoryUsageError
from taiinet.history.messages import (
    ID_BYTES,
    MAX_HISTORY_MESSAGE_BYTES,
    MAX_PAGE_BYTES,
    MAX_PAGE_DOCUMENTS,
    MAX_PAYLOAD_SIZE,
    MAX_REASON_CHARS,
    HistoryMessage,
    HistoryPage,
    HistoryRefused,
    HistoryRequest,
    Key,
)
from taiinet.link.registry import ProtocolCodec
from taiinet.pubsub.query import MalformedFilter, Query, QueryLimits
from taiinet.v1 import history_pb2, query_pb2

#: Limits on a request's filter (as on an interest advert's).
HISTORY_QUERY_LIMITS = QueryLimits(max_bytes=32 * 1024)
#: History's protocol id in a link frame (docs/protocol.md section 4.1).
PROTOCOL_ID = 13


def encode_history(message: HistoryMessage) -> bytes:
    """The ``HistoryMessage`` bytes of ``message``; ``HistoryUsageError`` past a limit."""
    pb = history_pb2.HistoryMessage()
    if isinstance(message, HistoryRequest):
        if not 1 <= message.limit <= MAX_PAGE_DOCUMENTS:
            raise HistoryUsageError(f"a page holds 1..{MAX_PAGE_DOCUMENTS} documents")
        request = pb.request
        request.request_id = message.request_id
        request.filter.CopyFrom(query_pb2.Filter.FromString(message.query.to_filter_bytes()))
        request.since_unix_ms = message.since_unix_ms
        request.after_unix_ms, request.after_id = message.after
        request.limit = message.limit
    elif isinstance(message, HistoryPage):
        if len(message.documents) > MAX_PAGE_DOCUMENTS or (
                len(message.documents) > 1
                and sum(map(len, message.documents)) > MAX_PAGE_BYTES):
            raise HistoryUsageError(
                f"a page holds at most {MAX_PAGE_DOCUMENTS} documents and {MAX_PAGE_BYTES} bytes")
        page = pb.page
        page.request_id = message.request_id
        page.documents.extend(message.documents)
        page.more = message.more
        page.cursor_unix_ms, page.cursor_id = message.cursor
    else:
        refused = pb.refused
        refused.request_id = message.request_id
        refused.reason = message.reason[:MAX_REASON_CHARS]
    return pb.SerializeToString()


def decode_history(data: bytes) -> HistoryMessage:
    """The history message of ``HistoryMessage`` bytes; ``HistoryDecodeError`` if bad."""
    if len(data) > MAX_HISTORY_MESSAGE_BYTES:
        raise HistoryDecodeError(f"history message of {len(data)} bytes is too large")
    pb = history_pb2.HistoryMessage()
    try:
        pb.ParseFromString(data)
    except (DecodeError, RuntimeError) as exc:
        raise HistoryDecodeError(f"malformed history message: {exc}") from None
    return from_proto(pb)


def from_proto(pb: history_pb2.HistoryMessage) -> HistoryMessage:
    kind = pb.WhichOneof("body")
    if kind == "request":
        request = pb.request
        if not 1 <= request.limit <= MAX_PAGE_DOCUMENTS:
            raise HistoryDecodeError(f"a request asks for 1..{MAX_PAGE_DOCUMENTS} documents")
        try:
            query = Query.from_filter_bytes(request.filter.SerializeToString(),
                                            HISTORY_QUERY_LIMITS)
        except MalformedFilter as exc:
            raise HistoryDecodeError(f"bad filter: {exc}") from None
        return HistoryRequest(request_id=request.request_id, query=query,
                              since_unix_ms=request.since_unix_ms,
                              after=_key(request.after_unix_ms, request.after_id),
                              limit=request.limit)
    if kind == "page":
        page = pb.page
        documents = tuple(page.documents)
        if len(documents) > MAX_PAGE_DOCUMENTS:
            raise HistoryDecodeError(f"a page holds at most {MAX_PAGE_DOCUMENTS} documents")
        if any(len(d) > MAX_PAYLOAD_SIZE for d in documents):
            raise HistoryDecodeError("a stored document exceeds the largest publication")
        return HistoryPage(request_id=page.request_id, documents=documents, more=page.more,
                           cursor=_key(page.cursor_unix_ms, page.cursor_id))
    if kind == "refused":
        return HistoryRefused(request_id=pb.refused.request_id,
                              reason=pb.refused.reason[:MAX_REASON_CHARS])
    raise HistoryDecodeError("empty history message")


CODEC = ProtocolCodec(protocol_id=PROTOCOL_ID, name="history",
                      message_types=(HistoryRequest, HistoryPage, HistoryRefused),
                      encode=encode_history, decode=decode_history)


def _key(unix_ms: int, message_id: bytes) -> Key:
    if message_id and len(message_id) != ID_BYTES:
        raise HistoryDecodeError(f"a message id is {ID_BYTES} bytes")
    return (unix_ms, bytes(message_id))


def stored_document(envelope: bytes) -> object:
    """The document inside a stored envelope, not verified again (the store holds only
    envelopes verified before they were stored); ``HistoryDecodeError`` if unreadable."""
    from taiinet.pubsub.query import MalformedValue, value_to_document
    from taiinet.v1 import envelope_pb2, pubsub_pb2

    try:
        outer = envelope_pb2.Envelope.FromString(envelope)
        inner = pubsub_pb2.PublishedDocument.FromString(outer.payload)
        return value_to_document(inner.value)
    except (DecodeError, RuntimeError, MalformedValue) as exc:
        raise HistoryDecodeError(f"stored document does not decode: {exc}") from None
