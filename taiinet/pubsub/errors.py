"""Errors of the pubsub routing layer (the query language has its own in ``query.errors``)."""

from __future__ import annotations

from taiinet.errors import LocalProtocolError, RemoteProtocolError


class PubsubDecodeError(RemoteProtocolError):
    """A peer sent a pubsub message that is malformed or exceeds a limit."""


class PubsubUsageError(LocalProtocolError):
    """The router was called wrongly (an invalid or oversized document, a bad query)."""


class RejectedDocument(RemoteProtocolError):
    """A published document from a peer failed verification; it is dropped, never delivered.

    ``reason`` is one of ``REJECT_REASONS`` and names the counter it is
    counted under in ``RouterStats.rejected``.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
