"""Pubsub messages on node links: protocol 12 of a link frame.

An ``InterestAdvert`` of the router is the body of an item of protocol
``PUBSUB_PROTOCOL_ID`` (docs/protocol.md section 4.1), read and written by
the pubsub layer's codec; the link layer parses the frame once and hands
the body to ``PUBSUB_CODEC``.
"""

from __future__ import annotations

from taiinet.link.registry import ProtocolCodec
from taiinet.pubsub import codec as pubsub_codec
from taiinet.pubsub.messages import InterestAdvert

#: Pubsub's protocol id in a link frame.
PUBSUB_PROTOCOL_ID = 12

PUBSUB_CODEC = ProtocolCodec(protocol_id=PUBSUB_PROTOCOL_ID, name="pubsub",
                             message_types=(InterestAdvert,), encode=pubsub_codec.encode,
                             decode=pubsub_codec.decode)
