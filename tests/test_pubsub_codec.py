"""The PubsubMessage codec: round trips, limits, and fuzzing (bytes decode or raise typed)."""

from __future__ import annotations

import pytest
from hostile_cases import peer_ids
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.pubsub import codec
from taiinet.pubsub.errors import PubsubDecodeError, PubsubUsageError
from taiinet.pubsub.messages import (
    MAX_ADVERT_BYTES,
    MAX_ADVERT_FILTERS,
    MAX_ROOT_DISTANCE,
    InterestAdvert,
)
from taiinet.pubsub.query import Query
from taiinet.v1 import pubsub_pb2, query_pb2
from taiinet.wire.identity import Identity

QUERIES = [{}, {"topic": "a"}, {"price": {"$lt": 10}}, {"$or": [{"a": 1}, {"b": {"$in": [1, 2]}}]},
           {"name": {"$regex": "^bo"}}, {"tags": {"$all": ["x", "y"]}}]

adverts = st.builds(
    InterestAdvert,
    version=st.integers(0, 2**64 - 1),
    filters=st.lists(st.sampled_from(QUERIES), max_size=MAX_ADVERT_FILTERS).map(
        lambda qs: tuple(Query(q) for q in qs)),
    tree_link=st.booleans(),
    ack=st.integers(0, 2**64 - 1),
    root=st.one_of(st.just(""), peer_ids),  # "" or a peer id
    root_distance=st.integers(0, MAX_ROOT_DISTANCE),
)


@given(adverts)
@settings(max_examples=60)
def test_round_trip(advert: InterestAdvert) -> None:
    assert codec.decode(codec.encode(advert)) == advert


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_random_bytes_decode_or_raise_typed(data: bytes) -> None:
    try:
        message = codec.decode(data)
    except PubsubDecodeError:
        return
    assert isinstance(message, InterestAdvert)
    assert len(message.filters) <= MAX_ADVERT_FILTERS


@given(adverts, st.data())
@settings(max_examples=100)
def test_mutated_adverts_decode_or_raise_typed(advert: InterestAdvert, data: st.DataObject) -> None:
    encoded = bytearray(codec.encode(advert))
    for _ in range(data.draw(st.integers(1, 4))):
        if not encoded:
            break
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
    try:
        decoded = codec.decode(bytes(encoded))
    except PubsubDecodeError:
        return
    assert isinstance(decoded, InterestAdvert)


def test_limits_are_enforced() -> None:
    pb = pubsub_pb2.PubsubMessage()
    for _ in range(MAX_ADVERT_FILTERS + 1):
        pb.interest.filters.append(query_pb2.Filter.FromString(Query({"a": 1}).to_filter_bytes()))
    with pytest.raises(PubsubDecodeError, match="filters"):
        codec.decode(pb.SerializeToString())
    with pytest.raises(PubsubDecodeError, match="over"):
        codec.decode(b"\x0a" * (MAX_ADVERT_BYTES + 1))
    with pytest.raises(PubsubDecodeError, match="no known body"):
        codec.decode(b"")
    far = pubsub_pb2.PubsubMessage()
    far.interest.root_distance = MAX_ROOT_DISTANCE + 1
    with pytest.raises(PubsubDecodeError, match="root"):
        codec.decode(far.SerializeToString())
    bad_filter = pubsub_pb2.PubsubMessage()
    bad_filter.interest.filters.add().any_of.SetInParent()  # $or needs a filter
    with pytest.raises(PubsubDecodeError, match="filter"):
        codec.decode(bad_filter.SerializeToString())
    too_many = InterestAdvert(version=1, filters=tuple(Query({"a": i}) for i in range(17)))
    with pytest.raises(PubsubUsageError):
        codec.encode(too_many)


@given(adverts, st.binary(max_size=40), st.data())
@settings(max_examples=150)
def test_link_frames_of_pubsub_adverts_decode_or_raise_typed(
        advert: InterestAdvert, junk: bytes, data: st.DataObject) -> None:
    """The node reads adverts out of link frames: a round trip, and bad frames raise typed."""
    from taiinet.node.codec import PUBSUB_CODEC
    from taiinet.wire.errors import MalformedFrame
    from taiinet.wire.framing import decode_link_frame, encode_item

    def decode_pubsub_frame(data: bytes) -> InterestAdvert | None:
        try:
            [(protocol, body)] = decode_link_frame(data)
        except (MalformedFrame, ValueError):
            raise PubsubDecodeError("not a one-item link frame") from None
        return PUBSUB_CODEC.decode(body) if protocol == 12 else None

    frame = encode_item(12, PUBSUB_CODEC.encode(advert))
    assert decode_pubsub_frame(frame) == advert
    mutated = bytearray(frame)
    for _ in range(data.draw(st.integers(0, 3))):
        index = data.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    for candidate in (bytes(mutated), junk, frame + junk):
        try:
            decoded = decode_pubsub_frame(candidate)
        except PubsubDecodeError:
            continue
        assert decoded is None or isinstance(decoded, InterestAdvert)


def test_a_repeated_advert_filter_is_decoded_once_and_shared() -> None:
    data = codec.encode(InterestAdvert(version=1, filters=(Query({"topic": "a"}),),
                                       tree_link=True))
    first, again = codec.decode(data), codec.decode(data)
    assert isinstance(first, InterestAdvert) and isinstance(again, InterestAdvert)
    assert first.filters[0] is again.filters[0]
    # A malformed filter is not cached as anything: it fails every time.
    pb = pubsub_pb2.PubsubMessage()
    pb.interest.version = 1
    pb.interest.filters.add().ParseFromString(b"\x0a\x00")
    for _ in range(2):
        with pytest.raises(PubsubDecodeError):
            codec.decode(pb.SerializeToString())


def test_advert_tree_members_are_parsed_once_and_shared() -> None:
    """Adverts repeat the same members: each id is parsed (base58-decoded) once and
    the same ``PeerId`` object comes back, and a bad one fails every time."""
    members = tuple(sorted(Identity.from_seed(bytes([n]) * 32).peer_id for n in (1, 2, 3)))
    data = codec.encode(InterestAdvert(version=1, filters=(), tree_link=True,
                                       tree_size=3, tree_members=members))
    first, again = codec.decode(data), codec.decode(data)
    assert isinstance(first, InterestAdvert) and isinstance(again, InterestAdvert)
    assert first.tree_members == members
    assert all(a is b for a, b in zip(first.tree_members, again.tree_members, strict=True))
    pb = pubsub_pb2.PubsubMessage()
    pb.ParseFromString(data)
    pb.interest.tree_members[0] = "12D3KooWnot-a-peer-id"
    for _ in range(2):
        with pytest.raises(PubsubDecodeError, match="tree member"):
            codec.decode(pb.SerializeToString())


def test_the_advert_example_of_docs_pubsub_md_is_what_the_codec_encodes() -> None:
    import re
    from pathlib import Path

    from taiinet.pubsub import codec as pubsub_codec
    from taiinet.pubsub.messages import InterestAdvert
    from taiinet.pubsub.query import Query
    from taiinet.wire.framing import encode_item

    text = (Path(__file__).resolve().parent.parent / "docs" / "pubsub.md").read_text()
    block = text.split("PubsubMessage: ", 1)[1].split("LinkFrame:", 1)[0]
    printed = bytes.fromhex("".join(re.findall(r"[0-9a-f]+", block)))
    root = "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB"
    advert = InterestAdvert(version=3, filters=(Query({"topic": "a"}),), root=root,
                            root_since_ms=1767225600000, tree_size=1, tree_members=(root,))
    assert pubsub_codec.encode(advert) == printed
    assert pubsub_codec.decode(printed) == advert
    # The link frame of that one item (protocol 12, protocol.md section 4.1).
    head = text.split("LinkFrame:", 1)[1].split("<", 1)[0]
    assert encode_item(12, printed) == bytes.fromhex("".join(head.split())) + printed
