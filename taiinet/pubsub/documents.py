# taiinet: sans-io core
"""Published documents: how they are sealed into, and opened from, Plumtree payloads.

A published document rides ``Gossip.payload`` as a signed envelope
(``taiinet.wire.envelope``, libp2p RFC 0002) with domain ``DOCUMENT_DOMAIN``
and payload type ``DOCUMENT_PAYLOAD_TYPE``; the envelope's payload is the
document as ``Value`` bytes (``taiinet.pubsub.query.codec``).  The broadcast
message id is SHA-256 of the whole envelope, so an id names exactly one
signed document and a relay cannot alter it without changing the id.

``SignedDocuments`` is what nodes use.  ``UnsignedDocuments`` skips the
signature (publisher id + ``Value`` bytes) so that simulations of thousands
of nodes run fast; the router treats both the same way.
"""

from __future__ import annotations

from typing import Any, Protocol

from taiinet.pubsub.errors import PubsubUsageError, RejectedDocument
from taiinet.pubsub.query import (
    DocumentLimits,
    InvalidDocument,
    MalformedValue,
    document_to_value,
    value_to_document,
)
from taiinet.wire.envelope import Envelope
from taiinet.wire.errors import InvalidEnvelope
from taiinet.wire.framing import encode_uvarint
from taiinet.wire.identity import Identity

#: Signature domain of published documents.
DOCUMENT_DOMAIN = "taiinet-pubsub-document"
#: Envelope payload type of a published document (a ``Value``).
DOCUMENT_PAYLOAD_TYPE = b"taiinet/document/v1"

#: Reasons a document from a peer is rejected (the keys of ``RouterStats.rejected``).
REJECT_REASONS = ("oversized", "id_mismatch", "invalid_envelope", "invalid_document")


class DocumentCodec(Protocol):
    """Seals local documents into payloads and opens (verifies) payloads from peers."""

    def seal(self, document: Any, max_bytes: int) -> bytes:
        """The payload of ``document``; ``PubsubUsageError`` if invalid or over ``max_bytes``."""
        ...

    def open(self, payload: bytes) -> tuple[str, Any]:
        """``(publisher, document)`` of a payload; ``RejectedDocument`` if it does not verify."""
        ...


def _value_bytes(document: Any, limits: DocumentLimits) -> bytes:
    try:
        return document_to_value(document, limits)
    except InvalidDocument as exc:
        raise PubsubUsageError(str(exc)) from None


def _document(value: bytes, limits: DocumentLimits) -> Any:
    try:
        return value_to_document(value, limits)
    except MalformedValue as exc:
        raise RejectedDocument("invalid_document", str(exc)) from None


class SignedDocuments:
    """Documents as signed envelopes; ``identity`` is needed only to publish."""

    __slots__ = ("identity", "limits")

    def __init__(self, identity: Identity | None = None,
                 limits: DocumentLimits | None = None) -> None:
        self.identity = identity
        self.limits = limits or DocumentLimits()

    def seal(self, document: Any, max_bytes: int) -> bytes:
        if self.identity is None:
            raise PubsubUsageError("publishing needs an identity to sign with")
        value = _value_bytes(document, self.limits)
        try:
            return Envelope.seal(self.identity, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE, value,
                                 max_size=max_bytes)
        except PubsubUsageError:
            raise
        except Exception as exc:  # LocalProtocolError: over max_bytes
            raise PubsubUsageError(f"document too large to publish: {exc}") from None

    def open(self, payload: bytes) -> tuple[str, Any]:
        try:
            envelope = Envelope.open(payload, DOCUMENT_DOMAIN, max_size=len(payload),
                                     payload_type=DOCUMENT_PAYLOAD_TYPE)
        except InvalidEnvelope as exc:
            raise RejectedDocument("invalid_envelope", str(exc)) from None
        return envelope.peer_id, _document(envelope.payload, self.limits)


class UnsignedDocuments:
    """``uvarint(len(publisher)) || publisher || Value``: no signature, for simulations."""

    __slots__ = ("limits", "publisher")

    def __init__(self, publisher: str, limits: DocumentLimits | None = None) -> None:
        self.publisher = publisher
        self.limits = limits or DocumentLimits()

    def seal(self, document: Any, max_bytes: int) -> bytes:
        name = self.publisher.encode()
        data = encode_uvarint(len(name)) + name + _value_bytes(document, self.limits)
        if len(data) > max_bytes:
            raise PubsubUsageError(f"document of {len(data)} bytes exceeds {max_bytes}")
        return data

    def open(self, payload: bytes) -> tuple[str, Any]:
        size = payload[0] if payload else 0
        if not payload or size >= 0x80 or len(payload) < 1 + size:
            raise RejectedDocument("invalid_envelope", "no publisher prefix")
        try:
            publisher = payload[1:1 + size].decode()
        except UnicodeDecodeError:
            raise RejectedDocument("invalid_envelope", "publisher is not UTF-8") from None
        return publisher, _document(payload[1 + size:], self.limits)
