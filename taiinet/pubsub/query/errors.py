"""Errors of the query layer.

``InvalidQuery`` and ``InvalidDocument`` blame the caller (a query or a
document this program built): they are ``LocalProtocolError`` errors, and
``ValueError`` errors too, as they always were, so ``except ValueError`` around
``Query(...)`` keeps working.  The two ``Malformed*`` errors blame a peer
(bytes that came off the network).
"""

from __future__ import annotations

from taiinet.errors import LocalProtocolError, RemoteProtocolError


class InvalidQuery(LocalProtocolError, ValueError):
    """A query is not valid: unknown operator, wrong operand, over a limit, bad regex.

    ``path`` names where in the query the problem is (``"$and.1.age.$gt"``).
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path or "<root>"
        self.reason = reason
        super().__init__(f"invalid query at {self.path}: {reason}")


class InvalidDocument(LocalProtocolError, ValueError):
    """A document is not a JSON-like tree within the limits (local misuse)."""


class MalformedValue(RemoteProtocolError, ValueError):
    """Bytes from a peer are not a well-formed, in-limit ``Value`` (a document)."""


class MalformedFilter(RemoteProtocolError, ValueError):
    """Bytes from a peer are not a well-formed, in-limit ``Filter`` (a query)."""
