# taiinet: sans-io core
"""Signed envelopes, byte-compatible with libp2p RFC 0002.

An envelope carries a payload, its type (a multicodec or any short tag) and
the signer's public key, signed over a *domain* string that says what the
signature is for, so a signature made for one purpose cannot be replayed for
another.  The signed bytes are::

    uvarint(len(domain)) || domain || uvarint(len(payload_type)) || payload_type
        || uvarint(len(payload)) || payload

Opening checks, in order: size, canonical encoding, key type, payload type
(if the caller names one), signature, signer (if the caller names one).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from taiinet.errors import LocalProtocolError
from taiinet.wire import codec
from taiinet.wire.errors import InvalidEnvelope, InvalidPublicKey
from taiinet.wire.framing import encode_uvarint
from taiinet.wire.identity import Identity, peer_id_from_public_key, verify_with_public_key
from taiinet.wire.peer_id import PeerId

#: Largest envelope ``open`` accepts and ``seal`` produces unless told otherwise.
DEFAULT_MAX_ENVELOPE_SIZE = 256 * 1024
#: Signers (encoded public key -> raw key and peer id) remembered by ``open``, so
#: that a busy node does not decode the same few publishers' keys over and over.
SIGNER_CACHE = 1024
#: Signed-bytes prefixes (domain, payload type) and sealed envelopes' headers (key,
#: payload type) remembered.
PREFIX_CACHE = 64

__all__ = ["DEFAULT_MAX_ENVELOPE_SIZE", "Envelope", "InvalidEnvelope", "PayloadOpener",
           "open_fields", "open_payload", "signed_bytes"]


def signed_bytes(domain: str, payload_type: bytes, payload: bytes) -> bytes:
    """The bytes an envelope's signature covers."""
    return _prefix(domain, payload_type) + encode_uvarint(len(payload)) + payload


@lru_cache(maxsize=PREFIX_CACHE)
def _prefix(domain: str, payload_type: bytes) -> bytes:
    """The signed bytes before the payload's length (the same for every envelope of a kind)."""
    encoded_domain = domain.encode("utf-8")
    return (encode_uvarint(len(encoded_domain)) + encoded_domain
            + encode_uvarint(len(payload_type)) + payload_type)


@lru_cache(maxsize=SIGNER_CACHE)
def _signer(public_key: bytes) -> tuple[bytes, PeerId]:
    """The raw key and peer id of an encoded public key; ``InvalidPublicKey`` if it is
    not a canonical Ed25519 key (errors are not cached: the same bad key fails again)."""
    raw = codec.decode_public_key(public_key)
    return raw, peer_id_from_public_key(raw)


def open_fields(data: bytes, domain: str, *, max_size: int = DEFAULT_MAX_ENVELOPE_SIZE,
                payload_type: bytes | None = None, peer_id: str | None = None
                ) -> tuple[PeerId, bytes, codec.EnvelopeFields]:
    """``Envelope.open`` without building the ``Envelope``: ``(signer, raw public
    key, fields)``, for hot paths that want only the signer and the payload."""
    signer, public_key, parts = _open_parts(data, domain, max_size, payload_type, peer_id)
    return signer, public_key, codec.EnvelopeFields(
        public_key=parts[0], payload_type=parts[1], payload=parts[2], signature=parts[3])


def open_payload(data: bytes, domain: str, *, max_size: int = DEFAULT_MAX_ENVELOPE_SIZE,
                 payload_type: bytes | None = None) -> tuple[PeerId, bytes]:
    """``(signer, payload)`` of a verified envelope: ``open_fields`` for a path that
    opens every document it receives and wants nothing else of it."""
    signer, _public_key, parts = _open_parts(data, domain, max_size, payload_type, None)
    return signer, parts[2]


class PayloadOpener:
    """``open_payload(data, domain, max_size=len(data), payload_type=payload_type)`` for
    one domain and payload type, set once: the same checks in the same order, with the
    same errors, but the domain is checked and the signed bytes' prefix made when the
    opener is, not per envelope (a node opens every document it receives this way)."""

    __slots__ = ("_prefix", "domain", "payload_type")

    def __init__(self, domain: str, payload_type: bytes) -> None:
        _check_domain(domain)
        self.domain = domain
        self.payload_type = bytes(payload_type)
        self._prefix = _prefix(domain, self.payload_type)

    def open(self, data: bytes) -> tuple[PeerId, bytes]:
        """``(signer, payload)`` of a verified envelope; ``InvalidEnvelope`` if not one."""
        (_key, kind, payload, signature), public_key, signer = _parts_and_signer(data)
        if kind != self.payload_type:
            raise InvalidEnvelope(
                f"payload type {kind[:40]!r} is not {self.payload_type[:40]!r}")
        message = self._prefix + encode_uvarint(len(payload)) + payload
        if not verify_with_public_key(public_key, message, signature):
            raise InvalidEnvelope(
                f"bad signature (or not signed for domain {self.domain!r})")
        return signer, payload


def _parts_and_signer(data: bytes) -> tuple[tuple[bytes, bytes, bytes, bytes], bytes, PeerId]:
    """``codec.envelope_parts`` of ``data``, the raw public key and the signer;
    ``InvalidEnvelope`` if it is not a canonical envelope with an Ed25519 key."""
    parts = codec.envelope_parts(data)
    if parts is None:
        raise InvalidEnvelope("not a canonically encoded Envelope")
    try:
        public_key, signer = _signer(parts[0])
    except InvalidPublicKey as exc:
        raise InvalidEnvelope(f"envelope key: {exc}") from None
    return parts, public_key, signer


def _open_parts(data: bytes, domain: str, max_size: int, payload_type: bytes | None,
                peer_id: str | None) -> tuple[PeerId, bytes, tuple[bytes, bytes, bytes, bytes]]:
    """The checks of ``Envelope.open``, in its order: ``(signer, raw public key,
    codec.envelope_parts)``; ``InvalidEnvelope`` if one fails."""
    _check_domain(domain)
    if len(data) > max_size:
        raise InvalidEnvelope(
            f"envelope of {len(data)} bytes exceeds the maximum of {max_size}")
    parts, public_key, signer = _parts_and_signer(data)
    _key, kind, payload, signature = parts
    if payload_type is not None and kind != payload_type:
        raise InvalidEnvelope(
            f"payload type {kind[:40]!r} is not {payload_type[:40]!r}")
    message = signed_bytes(domain, kind, payload)
    if not verify_with_public_key(public_key, message, signature):
        raise InvalidEnvelope(f"bad signature (or not signed for domain {domain!r})")
    if peer_id is not None and signer != peer_id:
        raise InvalidEnvelope(f"envelope signed by {signer}, expected {peer_id}")
    return signer, public_key, parts


def _encode_envelope(public_key: bytes, payload_type: bytes, payload: bytes,
                     signature: bytes) -> bytes:
    """``codec.encode_envelope`` of a key that is already canonically encoded (an
    ``Identity``'s), written out instead of built as a protobuf message: field 1
    (the key, a message: always written), then the bytes fields 2, 3 and 5, each
    left out when empty, as protobuf serializes them."""
    data = _header(public_key, payload_type)
    if payload:
        data += _PAYLOAD_TAG + encode_uvarint(len(payload)) + payload
    if signature:
        data += _SIGNATURE_TAG + encode_uvarint(len(signature)) + signature
    return data


@lru_cache(maxsize=PREFIX_CACHE)
def _header(public_key: bytes, payload_type: bytes) -> bytes:
    """Fields 1 and 2 of an envelope: the same for every envelope a node seals of a kind."""
    data = _KEY_TAG + encode_uvarint(len(public_key)) + public_key
    if payload_type:
        data += _PAYLOAD_TYPE_TAG + encode_uvarint(len(payload_type)) + payload_type
    return data


_KEY_TAG, _PAYLOAD_TYPE_TAG, _PAYLOAD_TAG, _SIGNATURE_TAG = b"\x0a", b"\x12", b"\x1a", b"\x2a"


def _check_domain(domain: str) -> None:
    if not isinstance(domain, str) or not domain:
        raise LocalProtocolError("an envelope domain is a non-empty string")


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """A verified envelope: only ``open`` and ``seal`` make them."""

    peer_id: PeerId
    public_key: bytes
    payload_type: bytes
    payload: bytes
    signature: bytes
    #: The exact bytes that were opened or sealed (to relay unchanged).
    raw: bytes

    @staticmethod
    def seal(identity: Identity, domain: str, payload_type: bytes, payload: bytes,
             *, max_size: int = DEFAULT_MAX_ENVELOPE_SIZE) -> bytes:
        """Sign and encode an envelope; ``LocalProtocolError`` if it would exceed ``max_size``."""
        _check_domain(domain)
        payload_type, payload = bytes(payload_type), bytes(payload)
        signature = identity.sign(signed_bytes(domain, payload_type, payload))
        data = _encode_envelope(identity.public_key_proto, payload_type, payload, signature)
        if len(data) > max_size:
            raise LocalProtocolError(
                f"envelope of {len(data)} bytes exceeds the maximum of {max_size}")
        return data

    @staticmethod
    def open(data: bytes, domain: str, *, max_size: int = DEFAULT_MAX_ENVELOPE_SIZE,
             payload_type: bytes | None = None, peer_id: str | None = None) -> Envelope:
        """Decode and verify an envelope signed for ``domain``; ``InvalidEnvelope`` if not.

        With ``payload_type`` or ``peer_id``, also require that payload type
        (checked before the signature, as RFC 0002 suggests) or that signer.
        """
        if len(data) > max_size:
            raise InvalidEnvelope(
                f"envelope of {len(data)} bytes exceeds the maximum of {max_size}")
        data = bytes(data)
        signer, public_key, fields = open_fields(data, domain, max_size=max_size,
                                                 payload_type=payload_type, peer_id=peer_id)
        return Envelope(peer_id=signer, public_key=public_key,
                        payload_type=fields.payload_type, payload=fields.payload,
                        signature=fields.signature, raw=data)
