"""The history codec: round trips, limits, and random bytes that either decode or raise
``HistoryDecodeError`` (never anything else)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taiinet.core import CloseLink, Send
from taiinet.history.codec import decode_history, encode_history
from taiinet.history.errors import HistoryDecodeError, HistoryUsageError
from taiinet.history.messages import (
    MAX_PAGE_DOCUMENTS,
    HistoryPage,
    HistoryRefused,
    HistoryRequest,
)
from taiinet.history.server import HistoryServer, HistoryServerConfig, RunQuery
from taiinet.pubsub.query import Query
from taiinet.v1 import history_pb2

QUERY = Query({"age": {"$gt": 4}, "tags": {"$in": ["a", "b"]}})


def test_messages_round_trip() -> None:
    messages = [
        HistoryRequest(request_id=7, query=QUERY, since_unix_ms=5, after=(9, b"\x01" * 32),
                       limit=12),
        HistoryPage(request_id=7, documents=(b"a", b"bc"), more=True, cursor=(3, b"\x02" * 32)),
        HistoryPage(request_id=8, documents=(), more=False, cursor=(0, b"")),
        HistoryRefused(request_id=9, reason="busy"),
    ]
    for message in messages:
        assert decode_history(encode_history(message)) == message


@pytest.mark.parametrize("limit", [0, MAX_PAGE_DOCUMENTS + 1])
def test_a_request_for_too_many_or_no_documents_is_refused_both_ways(limit: int) -> None:
    with pytest.raises(HistoryUsageError):
        encode_history(HistoryRequest(request_id=1, query=QUERY, limit=limit))
    pb = history_pb2.HistoryMessage()
    pb.request.request_id = 1
    pb.request.limit = limit
    with pytest.raises(HistoryDecodeError):
        decode_history(pb.SerializeToString())


def test_a_bad_cursor_id_and_an_oversized_frame_are_refused() -> None:
    pb = history_pb2.HistoryMessage()
    pb.page.cursor_id = b"short"
    with pytest.raises(HistoryDecodeError, match="32 bytes"):
        decode_history(pb.SerializeToString())
    with pytest.raises(HistoryDecodeError, match="too large"):
        decode_history(b"\x00" * 200_000)
    with pytest.raises(HistoryDecodeError, match="empty"):
        decode_history(b"")


@given(st.binary(max_size=512))
def test_random_bytes_decode_or_raise_the_remote_error(data: bytes) -> None:
    with contextlib.suppress(HistoryDecodeError):
        decode_history(data)


# -- the seeder's admission core --------------------------------------------------

def _request(n: int) -> HistoryRequest:
    return HistoryRequest(request_id=n, query=QUERY)


def test_the_server_bounds_running_queries_per_peer_and_in_all() -> None:
    server = HistoryServer(HistoryServerConfig(max_running=3, max_running_per_peer=2))
    assert server.handle_request("a", _request(1), 0.0) == [RunQuery(peer="a", request=_request(1))]
    assert isinstance(server.handle_request("a", _request(2), 0.0)[0], RunQuery)
    busy = server.handle_request("a", _request(3), 0.0)
    assert busy == [Send(peer="a", message=HistoryRefused(request_id=3, reason="busy"))]
    assert isinstance(server.handle_request("b", _request(4), 0.0)[0], RunQuery)
    assert server.handle_request("c", _request(5), 0.0)[0] == Send(
        peer="c", message=HistoryRefused(request_id=5, reason="busy"))
    done = server.query_done("a", _request(1), (b"x",), False, (1, b"\x01" * 32))
    assert done == [Send(peer="a", message=HistoryPage(
        request_id=1, documents=(b"x",), more=False, cursor=(1, b"\x01" * 32)))]
    assert isinstance(server.handle_request("c", _request(6), 0.0)[0], RunQuery)
    assert server.running == 3 and server.served == 1 and server.documents_sent == 1


def test_the_server_refuses_a_peer_over_its_rate_then_drops_it() -> None:
    server = HistoryServer(HistoryServerConfig(requests_per_second=1, request_burst=2,
                                               offences_per_second=0.01, offence_burst=3,
                                               max_running_per_peer=100, max_running=100))
    answers = [server.handle_request("flood", _request(n), 0.0)[0] for n in range(8)]
    assert [type(a) for a in answers[:2]] == [RunQuery, RunQuery]
    assert answers[2] == Send(peer="flood", message=HistoryRefused(request_id=2,
                                                                          reason="rate"))
    assert answers[-1] == CloseLink(peer="flood", failed=True, reason="too many history requests")
    # Another peer is not affected.
    assert isinstance(server.handle_request("calm", _request(9), 0.0)[0], RunQuery)


def test_the_largest_pages_fit_one_overlay_link_frame() -> None:
    from taiinet.history.codec import PROTOCOL_ID
    from taiinet.history.messages import MAX_PAGE_BYTES, MAX_PAYLOAD_SIZE
    from taiinet.link.config import DEFAULT_LINK_FRAME_SIZE
    from taiinet.wire.framing import decode_link_frame, encode_item

    many = tuple(b"x" * (MAX_PAGE_BYTES // MAX_PAGE_DOCUMENTS) for _ in range(MAX_PAGE_DOCUMENTS))
    one = (b"y" * MAX_PAYLOAD_SIZE,)
    for documents in (many, one):
        page = HistoryPage(request_id=(1 << 64) - 1, documents=documents, more=True,
                           cursor=((1 << 64) - 1, b"\xff" * 32))
        frame = encode_item(PROTOCOL_ID, encode_history(page))
        assert len(frame) <= DEFAULT_LINK_FRAME_SIZE
        [(protocol, body)] = decode_link_frame(frame, DEFAULT_LINK_FRAME_SIZE)
        assert protocol == PROTOCOL_ID and decode_history(body) == page
    with pytest.raises(HistoryUsageError):
        encode_history(HistoryPage(request_id=1, documents=(*many, b"z"), more=False,
                                   cursor=(0, b"")))
