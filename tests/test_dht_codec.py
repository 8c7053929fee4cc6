"""DHT codec: round trips, and random bytes either decode or raise the remote error."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.signal.dht_codec import MAX_DHT_MESSAGE_BYTES, decode_dht, encode_dht
from taiinet.signal.dht_types import (
    Contact,
    DhtRecord,
    FindNode,
    FindValue,
    Nodes,
    Ping,
    Pong,
    Store,
    StoreResult,
    ValueFound,
)
from taiinet.signal.errors import MalformedSignalMessage
from taiinet.sim.dht import sim_peer_id
from taiinet.v1 import dht_pb2

contact_st = st.builds(lambda seed, n: Contact(peer_id=sim_peer_id(random.Random(seed)),
                                               address=f"ws://127.0.0.1:{n}"),
                       st.integers(0, 1000), st.integers(1, 65535))
record_st = st.builds(DhtRecord, key=st.binary(min_size=32, max_size=32),
                      value=st.binary(max_size=200), seq=st.integers(0, 2**64 - 1),
                      ttl=st.integers(1, 86_400_000).map(lambda ms: ms / 1000))
rid = st.integers(0, 2**64 - 1)
message_st = st.one_of(
    st.builds(Ping, request_id=rid), st.builds(Pong, request_id=rid),
    st.builds(FindNode, request_id=rid, target=st.binary(min_size=32, max_size=32)),
    st.builds(FindValue, request_id=rid, key=st.binary(min_size=32, max_size=32)),
    st.builds(Store, request_id=rid, record=record_st),
    st.builds(Nodes, request_id=rid, contacts=st.lists(contact_st, max_size=20).map(tuple)),
    st.builds(ValueFound, request_id=rid, record=record_st),
    st.builds(StoreResult, request_id=rid, stored=st.booleans()),
)


@settings(max_examples=80)
@given(message_st, st.sampled_from(["", "ws://127.0.0.1:4000"]))
def test_round_trip(message: object, address: str) -> None:
    decoded, sender = decode_dht(encode_dht(message, address))  # type: ignore[arg-type]
    assert decoded == message
    assert sender == address


@settings(max_examples=150)
@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_malformed(data: bytes) -> None:
    try:
        message, _ = decode_dht(data)
    except MalformedSignalMessage:
        return
    assert message.request_id >= 0


@settings(max_examples=80)
@given(message_st, st.integers(0, 200), st.integers(0, 255))
def test_mutated_messages_decode_or_raise_malformed(message: object, at: int, byte: int) -> None:
    data = bytearray(encode_dht(message, "ws://x"))  # type: ignore[arg-type]
    if data:
        data[at % len(data)] = byte
    with contextlib.suppress(MalformedSignalMessage):
        decode_dht(bytes(data))


def test_limits_are_enforced() -> None:
    with pytest.raises(MalformedSignalMessage):
        decode_dht(b"\x00" * (MAX_DHT_MESSAGE_BYTES + 1))
    pb = dht_pb2.DhtMessage(request_id=1)
    pb.find_node.target = b"short"
    with pytest.raises(MalformedSignalMessage):
        decode_dht(pb.SerializeToString())
    pb = dht_pb2.DhtMessage(request_id=1)
    for i in range(21):
        pb.nodes.contacts.add(peer_id=sim_peer_id(random.Random(i)), address="ws://a")
    with pytest.raises(MalformedSignalMessage):
        decode_dht(pb.SerializeToString())
    pb = dht_pb2.DhtMessage(request_id=1)
    pb.nodes.contacts.add(peer_id="not base58 0OIl", address="ws://a")
    with pytest.raises(MalformedSignalMessage):
        decode_dht(pb.SerializeToString())
    with pytest.raises(MalformedSignalMessage):
        decode_dht(dht_pb2.DhtMessage(request_id=1).SerializeToString())


def test_ttl_round_trips_to_the_millisecond() -> None:
    """65.517 s is 65516.99... ms in binary floating point: truncating lost a millisecond."""
    record = DhtRecord(key=b"k" * 32, value=b"v", seq=1, ttl=65.517)
    message = Store(request_id=1, record=record)
    decoded, _sender = decode_dht(encode_dht(message, ""))
    assert decoded == message
