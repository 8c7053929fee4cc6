# taiinet: sans-io core
"""``Query``: a parsed, validated, compiled query."""

from __future__ import annotations

from typing import Any

from taiinet.pubsub.query.limits import DEFAULT_QUERY_LIMITS, QueryLimits
from taiinet.pubsub.query.matcher import Matcher, compile_filter
from taiinet.pubsub.query.nodes import Filter, node_key
from taiinet.pubsub.query.parser import parse, to_json


class Query:
    """A Mongo-like query, parsed into an AST and compiled into a matcher.

    ``Query({"age": {"$gt": 4}})`` raises ``InvalidQuery`` when the query is
    not valid.  Two queries are equal when their ASTs are, literal types included
    (``{"a": 1}`` is not ``{"a": True}``).
    """

    __slots__ = ("_hash", "_key", "ast", "matcher")

    def __init__(self, query: Any, limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> None:
        self.ast: Filter = query.ast if isinstance(query, Query) else parse(query, limits)
        #: The compiled query: ``matches`` without the method call around it, for
        #: the routers' per-document matching (the same function, the same errors).
        self.matcher: Matcher = compile_filter(self.ast)
        self._key: Any = None
        self._hash = 0

    @classmethod
    def from_ast(cls, ast: Filter) -> Query:
        """A query from an AST already validated (by the parser or the codec)."""
        self = cls.__new__(cls)
        self.ast = ast
        self.matcher = compile_filter(ast)
        self._key = None
        self._hash = 0
        return self

    @property
    def key(self) -> Any:
        """``node_key(self.ast)``, computed once: equal exactly when the queries are."""
        if self._key is None:
            self._key = node_key(self.ast)
            self._hash = hash(self._key)
        return self._key

    def matches(self, document: Any) -> bool:
        """Whether the JSON-like ``document`` matches; ``InvalidDocument`` if a part
        the query compares is not a document value (a ``set``, say)."""
        return self.matcher(document)

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON-like form; ``Query(q.to_json()) == q``."""
        return to_json(self.ast)

    def to_filter_bytes(self) -> bytes:
        """The query as an encoded protobuf ``Filter``."""
        from taiinet.pubsub.query.codec import filter_to_bytes

        return filter_to_bytes(self.ast)

    @classmethod
    def from_filter_bytes(cls, data: bytes, limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> Query:
        """Decode a protobuf ``Filter`` from a peer; raises ``MalformedFilter``."""
        from taiinet.pubsub.query.codec import filter_from_bytes

        return cls.from_ast(filter_from_bytes(data, limits))

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, Query) and other.key == self.key)

    def __hash__(self) -> int:
        self.key  # noqa: B018 (computes the hash with the key)
        return self._hash

    def __repr__(self) -> str:
        return f"Query({self.to_json()!r})"
