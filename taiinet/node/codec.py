"""Pubsub messages inside link frames: the node layer's only protobuf code.

The overlay driver reads ``Frame``s; frames whose body is ``pubsub`` (an
``InterestAdvert`` of the router) are handed to the node, which decodes them
here with the pubsub layer's codec.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from taiinet.pubsub import codec as pubsub_codec
from taiinet.pubsub.errors import PubsubDecodeError
from taiinet.pubsub.messages import MAX_ADVERT_BYTES, PubsubMessage
from taiinet.v1 import frame_pb2

#: Largest pubsub frame accepted from a peer.
MAX_PUBSUB_FRAME_BYTES = MAX_ADVERT_BYTES + 64


def encode_pubsub_frame(message: PubsubMessage) -> bytes:
    frame = frame_pb2.Frame()
    frame.pubsub.CopyFrom(pubsub_codec.to_proto(message))
    return frame.SerializeToString()


def decode_pubsub_frame(data: bytes) -> PubsubMessage | None:
    """The pubsub message of a ``Frame``; ``None`` for another layer's frame."""
    if len(data) > MAX_PUBSUB_FRAME_BYTES:
        raise PubsubDecodeError(f"pubsub frame of {len(data)} bytes is too large")
    frame = frame_pb2.Frame()
    try:
        frame.ParseFromString(data)
    except DecodeError as exc:
        raise PubsubDecodeError(f"malformed frame: {exc}") from None
    if frame.WhichOneof("body") != "pubsub":
        return None
    return pubsub_codec.from_proto(frame.pubsub)
