"""Pubsub layer: the query language, the subscription index and content-based routing.

``PubsubRouter`` (``taiinet.pubsub.router``) is the sans-I/O core a driver
feeds; it owns the node's ``Overlay``.  ``taiinet.pubsub.actions`` lists its
outputs, ``taiinet.pubsub.messages`` the interest advert, ``taiinet.pubsub.codec``
the ``PubsubMessage`` protobuf conversion, ``taiinet.pubsub.documents`` how
documents are signed into Plumtree payloads.
"""

from taiinet.pubsub.actions import (
    Deliver,
    InterestTimer,
    Published,
    SendInterest,
    SetInterestTimer,
)
from taiinet.pubsub.budget import PeerBudgetConfig
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import (
    DOCUMENT_DOMAIN,
    DOCUMENT_PAYLOAD_TYPE,
    DocumentCodec,
    OpenedDocument,
    SignedDocuments,
    UnsignedDocuments,
)
from taiinet.pubsub.errors import PubsubDecodeError, PubsubUsageError, RejectedDocument
from taiinet.pubsub.messages import InterestAdvert
from taiinet.pubsub.router import PubsubRouter, RouterStats

__all__ = [
    "DOCUMENT_DOMAIN",
    "DOCUMENT_PAYLOAD_TYPE",
    "Deliver",
    "DocumentCodec",
    "InterestAdvert",
    "InterestTimer",
    "OpenedDocument",
    "PeerBudgetConfig",
    "Published",
    "PubsubConfig",
    "PubsubDecodeError",
    "PubsubRouter",
    "PubsubUsageError",
    "RejectedDocument",
    "RouterStats",
    "SendInterest",
    "SetInterestTimer",
    "SignedDocuments",
    "UnsignedDocuments",
]
