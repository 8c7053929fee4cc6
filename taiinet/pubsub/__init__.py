"""Pubsub layer: the query language, the subscription index and content-based routing.

``TreeRouter`` (``taiinet.pubsub.tree``, the stable tree of docs/pubsub.md)
is the sans-I/O core a driver feeds; it owns the node's ``Overlay``.
``BroadcastRouter`` (``taiinet.pubsub.broadcast``) is plain Plumtree
broadcast, the baseline it is measured against (``routing=False``).
``taiinet.pubsub.actions`` lists their outputs (the core contract's, and
``Deliver``), ``taiinet.pubsub.messages``
the interest advert, ``taiinet.pubsub.codec`` the ``PubsubMessage`` protobuf
conversion, ``taiinet.pubsub.documents`` how documents are signed into
``Gossip`` payloads.
"""

from taiinet.pubsub.actions import ComponentTimer, Deliver, InterestTimer, RestoreTimer
from taiinet.pubsub.broadcast import BroadcastRouter
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
from taiinet.pubsub.stats import RouterStats
from taiinet.pubsub.tree import TreeRouter

__all__ = [
    "DOCUMENT_DOMAIN",
    "DOCUMENT_PAYLOAD_TYPE",
    "BroadcastRouter",
    "ComponentTimer",
    "Deliver",
    "DocumentCodec",
    "InterestAdvert",
    "InterestTimer",
    "OpenedDocument",
    "PeerBudgetConfig",
    "PubsubConfig",
    "PubsubDecodeError",
    "PubsubUsageError",
    "RejectedDocument",
    "RestoreTimer",
    "RouterStats",
    "SignedDocuments",
    "TreeRouter",
    "UnsignedDocuments",
]
