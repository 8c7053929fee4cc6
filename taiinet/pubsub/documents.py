# taiinet: sans-io core
"""Published documents: how they are sealed into, and opened from, ``Gossip`` payloads.

A published document rides ``Gossip.payload`` as a signed envelope
(``taiinet.wire.envelope``, libp2p RFC 0002) with domain ``DOCUMENT_DOMAIN``
and payload type ``DOCUMENT_PAYLOAD_TYPE``; the envelope's payload is a
``PublishedDocument``: the document as ``Value`` bytes
(``taiinet.pubsub.query.codec``), the publisher's wall clock and a nonce the
publisher draws per publication, so publishing an equal document twice makes
two messages.  The broadcast message id is SHA-256 of the whole envelope, so
an id names exactly one signed publication and a relay cannot alter it
without changing the id.

``SignedDocuments`` is what nodes use.  ``UnsignedDocuments`` skips the
signature (publisher id + ``PublishedDocument`` bytes) so that simulations of
thousands of nodes run fast; the router treats both the same way.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.message import DecodeError

from taiinet.pubsub.errors import PubsubUsageError, RejectedDocument
from taiinet.pubsub.query import (
    DocumentLimits,
    InvalidDocument,
    MalformedValue,
    document_to_value,
    value_to_document_counted,
)
from taiinet.v1 import pubsub_pb2
from taiinet.wire.envelope import Envelope
from taiinet.wire.errors import InvalidEnvelope
from taiinet.wire.framing import encode_uvarint
from taiinet.wire.identity import Identity

#: Signature domain of published documents.
DOCUMENT_DOMAIN = "taiinet-pubsub-document"
#: Envelope payload type of a published document (a ``Value``).
DOCUMENT_PAYLOAD_TYPE = b"taiinet/document/v2"
#: Largest ``published_unix_ms`` and ``nonce`` (``uint64`` on the wire).
MAX_UINT64 = (1 << 64) - 1

#: Reasons a document from a peer is rejected (the keys of ``RouterStats.rejected``).
REJECT_REASONS = ("oversized", "id_mismatch", "invalid_envelope", "invalid_document")


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenedDocument:
    """A verified publication."""

    #: Peer id that signed it (for ``UnsignedDocuments``: that it claims).
    publisher: str
    document: Any
    #: The publisher's wall clock when it published (as it claims), Unix ms.
    published_unix_ms: int
    #: Values the document decoded to (``Value`` nodes): what it costs in memory.
    values: int = 1


class DocumentCodec(Protocol):
    """Seals local documents into payloads and opens (verifies) payloads from peers."""

    def seal(self, document: Any, max_bytes: int, *, published_unix_ms: int,
             nonce: int) -> bytes:
        """The payload of ``document``; ``PubsubUsageError`` if invalid or over ``max_bytes``."""
        ...

    def open(self, payload: bytes) -> OpenedDocument:
        """The verified publication of a payload; ``RejectedDocument`` if it does not verify."""
        ...


def _publication(document: Any, limits: DocumentLimits, published_unix_ms: int,
                 nonce: int) -> bytes:
    """``PublishedDocument`` bytes of a local document."""
    for name, number in (("published_unix_ms", published_unix_ms), ("nonce", nonce)):
        if not 0 <= number <= MAX_UINT64:
            raise PubsubUsageError(f"{name} must be in 0..2**64-1, got {number}")
    try:
        value = document_to_value(document, limits)
    except InvalidDocument as exc:
        raise PubsubUsageError(str(exc)) from None
    return pubsub_pb2.PublishedDocument(
        value=value, published_unix_ms=published_unix_ms, nonce=nonce).SerializeToString()


def _opened(publisher: str, payload: bytes, limits: DocumentLimits) -> OpenedDocument:
    message = pubsub_pb2.PublishedDocument()
    try:
        message.ParseFromString(payload)
    except (DecodeError, RuntimeError) as exc:
        raise RejectedDocument("invalid_document", f"payload does not parse: {exc}") from None
    try:
        document, values = value_to_document_counted(message.value, limits)
    except MalformedValue as exc:
        raise RejectedDocument("invalid_document", str(exc)) from None
    return OpenedDocument(publisher=publisher, document=document,
                          published_unix_ms=message.published_unix_ms, values=values)


def seal_publication(documents: DocumentCodec, document: Any, max_bytes: int, now: float,
                     rng: random.Random, *, published_unix_ms: int | None,
                     nonce: int | None) -> tuple[bytes, bytes]:
    """``(message_id, payload)`` of a local publication, as every router seals one.

    Without ``published_unix_ms`` the core's ``now`` stands for the wall clock;
    without ``nonce`` one is drawn from the core's seeded ``rng``.  The message
    id is the payload's SHA-256.
    """
    if published_unix_ms is None:
        published_unix_ms = max(0, int(now * 1000))
    if nonce is None:
        nonce = rng.getrandbits(64)
    payload = documents.seal(document, max_bytes, published_unix_ms=published_unix_ms,
                             nonce=nonce)
    return hashlib.sha256(payload).digest(), payload


class SignedDocuments:
    """Documents as signed envelopes; ``identity`` is needed only to publish."""

    __slots__ = ("identity", "limits")

    def __init__(self, identity: Identity | None = None,
                 limits: DocumentLimits | None = None) -> None:
        self.identity = identity
        self.limits = limits or DocumentLimits()

    def seal(self, document: Any, max_bytes: int, *, published_unix_ms: int,
             nonce: int) -> bytes:
        if self.identity is None:
            raise PubsubUsageError("publishing needs an identity to sign with")
        payload = _publication(document, self.limits, published_unix_ms, nonce)
        try:
            return Envelope.seal(self.identity, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE, payload,
                                 max_size=max_bytes)
        except PubsubUsageError:
            raise
        except Exception as exc:  # LocalProtocolError: over max_bytes
            raise PubsubUsageError(f"document too large to publish: {exc}") from None

    def open(self, payload: bytes) -> OpenedDocument:
        try:
            envelope = Envelope.open(payload, DOCUMENT_DOMAIN, max_size=len(payload),
                                     payload_type=DOCUMENT_PAYLOAD_TYPE)
        except InvalidEnvelope as exc:
            raise RejectedDocument("invalid_envelope", str(exc)) from None
        return _opened(envelope.peer_id, envelope.payload, self.limits)


class UnsignedDocuments:
    """``uvarint(len(publisher)) || publisher || PublishedDocument``, unsigned (simulations)."""

    __slots__ = ("limits", "publisher")

    def __init__(self, publisher: str, limits: DocumentLimits | None = None) -> None:
        self.publisher = publisher
        self.limits = limits or DocumentLimits()

    def seal(self, document: Any, max_bytes: int, *, published_unix_ms: int,
             nonce: int) -> bytes:
        name = self.publisher.encode()
        data = encode_uvarint(len(name)) + name + _publication(
            document, self.limits, published_unix_ms, nonce)
        if len(data) > max_bytes:
            raise PubsubUsageError(f"document of {len(data)} bytes exceeds {max_bytes}")
        return data

    def open(self, payload: bytes) -> OpenedDocument:
        size = payload[0] if payload else 0
        if not payload or size >= 0x80 or len(payload) < 1 + size:
            raise RejectedDocument("invalid_envelope", "no publisher prefix")
        try:
            publisher = payload[1:1 + size].decode()
        except UnicodeDecodeError:
            raise RejectedDocument("invalid_envelope", "publisher is not UTF-8") from None
        return _opened(publisher, payload[1 + size:], self.limits)
