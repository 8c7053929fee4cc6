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

A node verifies a document once: sealing returns the opened document with
the payload (the node signed it, nothing to check; the encoder builds it as
it writes the bytes, nothing to parse back), and a copy whose
SHA-256 names a document the node already verified is only decoded again
(``reopen``): equal hashes mean equal bytes, so the signature is the one
already checked.

``SignedDocuments`` is what nodes use.  ``UnsignedDocuments`` skips the
signature (publisher id + ``PublishedDocument`` bytes) so that simulations of
thousands of nodes run fast; the router treats both the same way.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, NamedTuple, Protocol

from google.protobuf.message import DecodeError

from taiinet.pubsub.errors import PubsubUsageError, RejectedDocument
from taiinet.pubsub.query import (
    DocumentLimits,
    InvalidDocument,
    MalformedValue,
)
from taiinet.pubsub.query.codec import value_slice_to_document_counted
from taiinet.pubsub.query.value_encoder import encode_document
from taiinet.v1 import pubsub_pb2
from taiinet.wire import codec
from taiinet.wire.envelope import Envelope, PayloadOpener
from taiinet.wire.errors import InvalidEnvelope, InvalidPublicKey
from taiinet.wire.framing import encode_uvarint
from taiinet.wire.identity import Identity, peer_id_from_public_key

#: Signature domain of published documents.
DOCUMENT_DOMAIN = "taiinet-pubsub-document"
#: Envelope payload type of a published document (a ``Value``).
DOCUMENT_PAYLOAD_TYPE = b"taiinet/document/v2"
#: Largest ``published_unix_ms`` and ``nonce`` (``uint64`` on the wire).
MAX_UINT64 = (1 << 64) - 1

#: Reasons a document from a peer is rejected (the keys of ``RouterStats.rejected``).
REJECT_REASONS = ("oversized", "id_mismatch", "invalid_envelope", "invalid_document")


class OpenedDocument(NamedTuple):
    """A verified publication (a named tuple, not a frozen dataclass: one is made for
    every document a node receives, and a tuple is made in one step)."""

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

    def seal_opened(self, document: Any, max_bytes: int, *, published_unix_ms: int,
                    nonce: int) -> tuple[bytes, OpenedDocument]:
        """``seal``, with the publication as a peer opening the payload would see it
        (built while encoding the ``Value``: neither parsed back nor verified, this
        node just wrote and signed it)."""
        ...

    def open(self, payload: bytes) -> OpenedDocument:
        """The verified publication of a payload; ``RejectedDocument`` if it does not verify."""
        ...

    def reopen(self, payload: bytes) -> OpenedDocument:
        """The publication of a payload this node already opened, decoded without
        checking its signature again.

        Only for a payload whose SHA-256 is the id of a document ``open`` (or
        ``seal_opened``) accepted here: equal hashes mean equal bytes.
        ``RejectedDocument`` if it does not decode (it cannot, for such a payload).
        """
        ...


def _publication(document: Any, limits: DocumentLimits, published_unix_ms: int,
                 nonce: int) -> tuple[bytes, Any, int]:
    """The ``PublishedDocument`` bytes of a local document, with the document as
    peers will decode it and its number of values (``encode_document``: one walk,
    nothing parsed back)."""
    for name, number in (("published_unix_ms", published_unix_ms), ("nonce", nonce)):
        if not 0 <= number <= MAX_UINT64:
            raise PubsubUsageError(f"{name} must be in 0..2**64-1, got {number}")
    try:
        value, decoded, values = encode_document(document, limits)
    except InvalidDocument as exc:
        raise PubsubUsageError(str(exc)) from None
    # proto3 (pubsub.proto): field 1 bytes (a Value is never empty), fields 2 and 3
    # uint64 varints, left out when 0; what protobuf serializes for these fields.
    data = _VALUE_TAG + encode_uvarint(len(value)) + value
    if published_unix_ms:
        data += _PUBLISHED_TAG + encode_uvarint(published_unix_ms)
    if nonce:
        data += _NONCE_TAG + encode_uvarint(nonce)
    return data, decoded, values


_VALUE_TAG, _PUBLISHED_TAG, _NONCE_TAG = b"\x0a", b"\x10", b"\x18"


def _opened(publisher: str, payload: bytes, limits: DocumentLimits) -> OpenedDocument:
    message = pubsub_pb2.PublishedDocument()
    try:
        message.ParseFromString(payload)
    except (DecodeError, RuntimeError) as exc:
        raise RejectedDocument("invalid_document", f"payload does not parse: {exc}") from None
    value = message.value
    try:
        # ``value_to_document_counted``, one call less (this runs for every document).
        document, values = value_slice_to_document_counted(value, 0, len(value), limits)
    except MalformedValue as exc:
        raise RejectedDocument("invalid_document", str(exc)) from None
    # Positional: a named tuple's keyword arguments cost a dict per document.
    return OpenedDocument(publisher, document, message.published_unix_ms, values)


#: Opens the envelope of every document a node receives (``SignedDocuments.open``).
_DOCUMENT_OPENER = PayloadOpener(DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE)


def seal_publication(documents: DocumentCodec, document: Any, max_bytes: int, now: float,
                     rng: random.Random, *, published_unix_ms: int | None,
                     nonce: int | None) -> tuple[bytes, bytes, OpenedDocument]:
    """``(message_id, payload, opened)`` of a local publication, as every router seals one.

    Without ``published_unix_ms`` the core's ``now`` stands for the wall clock;
    without ``nonce`` one is drawn from the core's seeded ``rng``.  The message
    id is the payload's SHA-256; ``opened`` is what peers will open, got
    without verifying the signature this node just made.
    """
    if published_unix_ms is None:
        published_unix_ms = max(0, int(now * 1000))
    if nonce is None:
        nonce = rng.getrandbits(64)
    payload, opened = documents.seal_opened(document, max_bytes,
                                            published_unix_ms=published_unix_ms, nonce=nonce)
    return hashlib.sha256(payload).digest(), payload, opened


class SignedDocuments:
    """Documents as signed envelopes; ``identity`` is needed only to publish."""

    __slots__ = ("identity", "limits")

    def __init__(self, identity: Identity | None = None,
                 limits: DocumentLimits | None = None) -> None:
        self.identity = identity
        self.limits = limits or DocumentLimits()

    def seal(self, document: Any, max_bytes: int, *, published_unix_ms: int,
             nonce: int) -> bytes:
        return self.seal_opened(document, max_bytes, published_unix_ms=published_unix_ms,
                                nonce=nonce)[0]

    def seal_opened(self, document: Any, max_bytes: int, *, published_unix_ms: int,
                    nonce: int) -> tuple[bytes, OpenedDocument]:
        if self.identity is None:
            raise PubsubUsageError("publishing needs an identity to sign with")
        message, decoded, values = _publication(document, self.limits, published_unix_ms,
                                                nonce)
        try:
            payload = Envelope.seal(self.identity, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE,
                                    message, max_size=max_bytes)
        except PubsubUsageError:
            raise
        except Exception as exc:  # LocalProtocolError: over max_bytes
            raise PubsubUsageError(f"document too large to publish: {exc}") from None
        return payload, OpenedDocument(publisher=self.identity.peer_id, document=decoded,
                                       published_unix_ms=published_unix_ms, values=values)

    def open(self, payload: bytes) -> OpenedDocument:
        try:
            signer, document = _DOCUMENT_OPENER.open(payload)
        except InvalidEnvelope as exc:
            raise RejectedDocument("invalid_envelope", str(exc)) from None
        return _opened(signer, document, self.limits)

    def reopen(self, payload: bytes) -> OpenedDocument:
        parts = codec.envelope_parts(payload)
        if parts is None:
            raise RejectedDocument("invalid_envelope", "not a canonically encoded Envelope")
        try:
            signer = peer_id_from_public_key(codec.decode_public_key(parts[0]))
        except InvalidPublicKey as exc:
            raise RejectedDocument("invalid_envelope", f"envelope key: {exc}") from None
        return _opened(signer, parts[2], self.limits)


class UnsignedDocuments:
    """``uvarint(len(publisher)) || publisher || PublishedDocument``, unsigned (simulations)."""

    __slots__ = ("limits", "publisher")

    def __init__(self, publisher: str, limits: DocumentLimits | None = None) -> None:
        self.publisher = publisher
        self.limits = limits or DocumentLimits()

    def seal(self, document: Any, max_bytes: int, *, published_unix_ms: int,
             nonce: int) -> bytes:
        return self.seal_opened(document, max_bytes, published_unix_ms=published_unix_ms,
                                nonce=nonce)[0]

    def seal_opened(self, document: Any, max_bytes: int, *, published_unix_ms: int,
                    nonce: int) -> tuple[bytes, OpenedDocument]:
        name = self.publisher.encode()
        message, decoded, values = _publication(document, self.limits, published_unix_ms,
                                                nonce)
        data = encode_uvarint(len(name)) + name + message
        if len(data) > max_bytes:
            raise PubsubUsageError(f"document of {len(data)} bytes exceeds {max_bytes}")
        return data, OpenedDocument(publisher=self.publisher, document=decoded,
                                    published_unix_ms=published_unix_ms, values=values)

    def open(self, payload: bytes) -> OpenedDocument:
        size = payload[0] if payload else 0
        if not payload or size >= 0x80 or len(payload) < 1 + size:
            raise RejectedDocument("invalid_envelope", "no publisher prefix")
        try:
            publisher = payload[1:1 + size].decode()
        except UnicodeDecodeError:
            raise RejectedDocument("invalid_envelope", "publisher is not UTF-8") from None
        return _opened(publisher, payload[1 + size:], self.limits)

    def reopen(self, payload: bytes) -> OpenedDocument:
        return self.open(payload)  # nothing to verify
