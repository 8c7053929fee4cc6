"""Conversion between pubsub domain messages and the ``PubsubMessage`` protobuf.

The only module of the pubsub router that touches wire types.  Decoding
validates every field (size, filter count, each filter through the query
codec with its limits) and raises ``PubsubDecodeError``.
"""

from __future__ import annotations

import functools

from google.protobuf.message import DecodeError

from taiinet.pubsub.errors import PubsubDecodeError, PubsubUsageError
from taiinet.pubsub.messages import (
    MAX_ADVERT_BYTES,
    MAX_ADVERT_FILTERS,
    MAX_ROOT_DISTANCE,
    MAX_ROOT_LENGTH,
    TREE_SIZE_CAP,
    InterestAdvert,
    PubsubMessage,
)
from taiinet.pubsub.query import MalformedFilter, Query, QueryLimits
from taiinet.v1 import pubsub_pb2, query_pb2
from taiinet.wire.errors import InvalidPeerId
from taiinet.wire.peer_id import PeerId

#: Limits on each filter of an advert (the whole advert is also bounded).
ADVERT_QUERY_LIMITS = QueryLimits(max_bytes=MAX_ADVERT_BYTES)


def to_proto(message: PubsubMessage) -> pubsub_pb2.PubsubMessage:
    """Build the protobuf of a domain message."""
    pb = pubsub_pb2.PubsubMessage()
    advert = pb.interest
    advert.SetInParent()
    advert.version = message.version
    advert.tree_link = message.tree_link
    advert.ack = message.ack
    advert.root = message.root
    advert.root_distance = message.root_distance
    advert.root_since_ms = message.root_since_ms
    advert.tree_size = message.tree_size
    advert.tree_members.extend(message.tree_members)
    for query in message.filters:
        advert.filters.append(query_pb2.Filter.FromString(query.to_filter_bytes()))
    return pb


def encode(message: PubsubMessage) -> bytes:
    """Encode a domain message; ``PubsubUsageError`` if it exceeds the limits."""
    if len(message.filters) > MAX_ADVERT_FILTERS:
        raise PubsubUsageError(f"an advert holds at most {MAX_ADVERT_FILTERS} filters")
    data = to_proto(message).SerializeToString()
    if len(data) > MAX_ADVERT_BYTES:
        raise PubsubUsageError(f"advert of {len(data)} bytes exceeds {MAX_ADVERT_BYTES}")
    return data


@functools.lru_cache(maxsize=1024)
def _advert_filter(data: bytes) -> Query:
    """An advert's filter, decoded and compiled once: adverts repeat the same filters
    (a ``Query`` is immutable, so sharing it is safe; a malformed one raises each time)."""
    return Query.from_filter_bytes(data, ADVERT_QUERY_LIMITS)


def from_proto(pb: pubsub_pb2.PubsubMessage) -> PubsubMessage:
    """Validate a parsed protobuf into a domain message; ``PubsubDecodeError`` if invalid."""
    if pb.WhichOneof("body") != "interest":
        raise PubsubDecodeError("PubsubMessage has no known body set")
    advert = pb.interest
    if len(advert.filters) > MAX_ADVERT_FILTERS:
        raise PubsubDecodeError(
            f"advert of {len(advert.filters)} filters, over {MAX_ADVERT_FILTERS}")
    if len(advert.root) > MAX_ROOT_LENGTH or advert.root_distance > MAX_ROOT_DISTANCE:
        raise PubsubDecodeError("advert root id or distance out of range")
    try:
        root = PeerId.parse_optional(advert.root)
    except InvalidPeerId as exc:
        raise PubsubDecodeError(f"advert root is not a peer id: {exc}") from None
    if advert.tree_size > TREE_SIZE_CAP or len(advert.tree_members) > TREE_SIZE_CAP:
        raise PubsubDecodeError(f"advert tree size or members over {TREE_SIZE_CAP}")
    try:
        members = tuple(PeerId.parse(m) for m in advert.tree_members)
    except InvalidPeerId as exc:
        raise PubsubDecodeError(f"advert tree member is not a peer id: {exc}") from None
    filters = []
    for item in advert.filters:
        try:
            filters.append(_advert_filter(item.SerializeToString()))
        except MalformedFilter as exc:
            raise PubsubDecodeError(f"advert filter: {exc}") from None
    return InterestAdvert(version=advert.version, filters=tuple(filters),
                          tree_link=advert.tree_link, ack=advert.ack, root=root,
                          root_distance=advert.root_distance,
                          root_since_ms=advert.root_since_ms, tree_size=advert.tree_size,
                          tree_members=members)


def decode(data: bytes) -> PubsubMessage:
    """Decode ``PubsubMessage`` bytes from a peer; ``PubsubDecodeError`` if malformed."""
    if len(data) > MAX_ADVERT_BYTES:
        raise PubsubDecodeError(f"pubsub message of {len(data)} bytes, over {MAX_ADVERT_BYTES}")
    pb = pubsub_pb2.PubsubMessage()
    try:
        pb.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise PubsubDecodeError(f"pubsub message does not parse: {exc}") from None
    return from_proto(pb)
