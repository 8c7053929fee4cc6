"""Errors of the query layer.

``InvalidQuery`` blames the caller (a query this program built); the two
``Malformed*`` errors blame a peer (bytes that came off the network).
"""

from __future__ import annotations

from taiinet.errors import RemoteProtocolError, TaiiNetError


class InvalidQuery(TaiiNetError, ValueError):
    """A query is not valid: unknown operator, wrong operand, over a limit, bad regex.

    ``path`` names where in the query the problem is (``"$and.1.age.$gt"``).
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path or "<root>"
        self.reason = reason
        super().__init__(f"invalid query at {self.path}: {reason}")


class InvalidDocument(TaiiNetError, ValueError):
    """A document is not a JSON-like tree within the limits (local misuse)."""


class MalformedValue(RemoteProtocolError, ValueError):
    """Bytes from a peer are not a well-formed, in-limit ``Value`` (a document)."""


class MalformedFilter(RemoteProtocolError, ValueError):
    """Bytes from a peer are not a well-formed, in-limit ``Filter`` (a query)."""
