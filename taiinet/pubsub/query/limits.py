"""Size limits on queries and documents.

Queries and documents come from untrusted peers, so every dimension that costs
memory or time is bounded.  The defaults suit interactive pubsub; a node may
pass its own ``QueryLimits``/``DocumentLimits``.
"""

from __future__ import annotations

from dataclasses import dataclass

# protobuf's decoder refuses messages nested more than 100 deep; one level of a
# document map costs 3 (Value, MapValue, MapEntry), so depths stay well below 33.

#: Default bound on the nesting depth of a query (operators and literal values).
MAX_QUERY_DEPTH = 20
#: Default bound on the number of nodes of a query (operators, paths, literal values).
MAX_QUERY_NODES = 1_000
#: Default bound on any string in a query (field names, operands), in characters.
MAX_QUERY_STRING = 1_024
#: Default bound on a ``$regex`` pattern, in characters (re2 also caps its memory).
MAX_REGEX_LENGTH = 256
#: Memory re2 may use to compile one pattern, in bytes.
REGEX_MAX_MEM = 1 << 20
#: Default bound on the encoded size of a ``Filter``, in bytes.
MAX_FILTER_BYTES = 64 * 1024

#: Default bound on the nesting depth of a document.
MAX_DOCUMENT_DEPTH = 24
#: Default bound on the number of values in a document (every ``Value``:
#: scalars, lists and maps, nested ones included).  Decoding makes one Python
#: object per value, so this bounds the memory and CPU a document from a peer
#: can cost whatever its byte size: 14,000 empty maps fit in 56 KB and would
#: decode to ~1 MB of objects; the decoder stops at the 4,097th value.
MAX_DOCUMENT_NODES = 4_096
#: Estimated memory of one decoded value, in bytes (an empty dict with its
#: slot in the parent: 72 bytes measured with tracemalloc, CPython 3.12).
#: Caches of decoded documents count ``encoded size + nodes x this``.
DECODED_VALUE_BYTES = 72
#: Default bound on the encoded size of a document, in bytes.
MAX_DOCUMENT_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryLimits:
    max_depth: int = MAX_QUERY_DEPTH
    max_nodes: int = MAX_QUERY_NODES
    max_string: int = MAX_QUERY_STRING
    max_regex: int = MAX_REGEX_LENGTH
    max_bytes: int = MAX_FILTER_BYTES


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentLimits:
    max_depth: int = MAX_DOCUMENT_DEPTH
    max_nodes: int = MAX_DOCUMENT_NODES
    max_bytes: int = MAX_DOCUMENT_BYTES


DEFAULT_QUERY_LIMITS = QueryLimits()
DEFAULT_DOCUMENT_LIMITS = DocumentLimits()
