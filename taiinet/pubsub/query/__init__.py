"""The query language: parse, validate, compile, index and summarise Mongo-like queries.

Public names: ``Query``, ``SubscriptionIndex``, ``InvalidQuery``, ``covers``,
``summarize``, and the document codec ``document_to_value``/``value_to_document``
(``value_to_document_counted`` also says how many values it decoded).
"""

from taiinet.pubsub.query.codec import (
    document_to_value,
    value_to_document,
    value_to_document_counted,
)
from taiinet.pubsub.query.cover import covers, summarize
from taiinet.pubsub.query.errors import (
    InvalidDocument,
    InvalidQuery,
    MalformedFilter,
    MalformedValue,
)
from taiinet.pubsub.query.index import IndexFull, SubscriptionIndex
from taiinet.pubsub.query.limits import DocumentLimits, QueryLimits
from taiinet.pubsub.query.query import Query

__all__ = [
    "DocumentLimits",
    "IndexFull",
    "InvalidDocument",
    "InvalidQuery",
    "MalformedFilter",
    "MalformedValue",
    "Query",
    "QueryLimits",
    "SubscriptionIndex",
    "covers",
    "document_to_value",
    "summarize",
    "value_to_document",
    "value_to_document_counted",
]
