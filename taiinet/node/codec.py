"""Published documents on the wire: a signed envelope around ``PublishedDocument``.

The only module of the node layer that touches protobuf.  A document travels
as ``Envelope(domain=DOCUMENT_DOMAIN, payload_type=DOCUMENT_PAYLOAD_TYPE,
payload=PublishedDocument{value, published_unix_ms, nonce})`` signed by its
publisher (libp2p RFC 0002 signing).  Its message id is the SHA-256 of the
envelope's bytes, cut to ``MESSAGE_ID_BYTES``, so a relay cannot reuse an id
for other content: ``open_document`` checks it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from taiinet.node.errors import InvalidDocumentEnvelope
from taiinet.pubsub.query import (
    DocumentLimits,
    InvalidDocument,
    MalformedValue,
    document_to_value,
    value_to_document,
)
from taiinet.v1 import node_pb2
from taiinet.wire.envelope import Envelope, InvalidEnvelope
from taiinet.wire.identity import Identity

#: Envelope signing domain of published documents.
DOCUMENT_DOMAIN = "taiinet-document"
#: Envelope payload type of published documents.
DOCUMENT_PAYLOAD_TYPE = b"/taiinet/document/1"
#: Length of a message id (bytes of SHA-256 of the envelope).
MESSAGE_ID_BYTES = 20
#: Largest encoded document value (the envelope must fit in one overlay payload).
MAX_DOCUMENT_BYTES = 48 * 1024
#: Largest envelope accepted from the network.
MAX_DOCUMENT_ENVELOPE_BYTES = MAX_DOCUMENT_BYTES + 1024

DOCUMENT_LIMITS = DocumentLimits(max_bytes=MAX_DOCUMENT_BYTES)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedDocument:
    """A verified published document."""

    message_id: bytes
    publisher: str
    data: Any
    published_unix_ms: int


def message_id_of(envelope: bytes) -> bytes:
    return hashlib.sha256(envelope).digest()[:MESSAGE_ID_BYTES]


def seal_document(identity: Identity, document: Any, *, published_unix_ms: int,
                  nonce: int) -> tuple[bytes, bytes]:
    """Encode and sign ``document``; return ``(message_id, envelope)``.

    Raises ``InvalidDocument`` (a ``LocalProtocolError``) for a document that
    is not JSON-like or is larger than ``MAX_DOCUMENT_BYTES``.
    """
    value = document_to_value(document, DOCUMENT_LIMITS)
    payload = node_pb2.PublishedDocument(
        value=value, published_unix_ms=published_unix_ms, nonce=nonce).SerializeToString()
    envelope = Envelope.seal(identity, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE, payload,
                             max_size=MAX_DOCUMENT_ENVELOPE_BYTES)
    return message_id_of(envelope), envelope


def open_document(message_id: bytes, envelope: bytes) -> SignedDocument:
    """Verify a document from the network; raise ``InvalidDocumentEnvelope`` if it is bad.

    Checks, in order: size, that ``message_id`` is the envelope's hash, the
    envelope's payload type and signature, and the payload's encoding.
    """
    if len(envelope) > MAX_DOCUMENT_ENVELOPE_BYTES:
        raise InvalidDocumentEnvelope(
            f"document envelope of {len(envelope)} bytes is over {MAX_DOCUMENT_ENVELOPE_BYTES}")
    if message_id_of(envelope) != message_id:
        raise InvalidDocumentEnvelope("message id is not the hash of the envelope")
    try:
        opened = Envelope.open(envelope, DOCUMENT_DOMAIN, max_size=MAX_DOCUMENT_ENVELOPE_BYTES,
                               payload_type=DOCUMENT_PAYLOAD_TYPE)
    except InvalidEnvelope as exc:
        raise InvalidDocumentEnvelope(f"document envelope: {exc}") from None
    payload = node_pb2.PublishedDocument()
    try:
        payload.ParseFromString(opened.payload)
    except DecodeError as exc:
        raise InvalidDocumentEnvelope(f"document payload does not parse: {exc}") from None
    try:
        data = value_to_document(payload.value, DOCUMENT_LIMITS)
    except (MalformedValue, InvalidDocument) as exc:
        raise InvalidDocumentEnvelope(f"document value: {exc}") from None
    return SignedDocument(message_id=message_id, publisher=opened.peer_id, data=data,
                          published_unix_ms=payload.published_unix_ms)
