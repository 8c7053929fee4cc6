# taiinet: sans-io core
"""The one place where the wire layer's protobuf types meet validated values.

Every decoder here accepts only the canonical encoding: it parses, rebuilds
the message from the parsed fields and compares the bytes, so unknown fields,
repeated fields, non-minimal varints or trailing bytes are all rejected.  That
makes "any altered byte is detected" hold for signed data without relying on
the protobuf library's tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message

from taiinet.v1 import envelope_pb2, keys_pb2, noise_pb2
from taiinet.wire.errors import InvalidPublicKey, KeyFileError

ED25519_PUBLIC_KEY_SIZE = 32
ED25519_SEED_SIZE = 32
ED25519_SIGNATURE_SIZE = 64


def _parse(message: Message, data: bytes) -> bool:
    try:
        message.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError):
        return False
    return True


# --- keys ---------------------------------------------------------------------------------

def encode_public_key(raw: bytes) -> bytes:
    """The protobuf ``PublicKey`` of a raw Ed25519 key (36 bytes: 08 01 12 20 || key)."""
    return keys_pb2.PublicKey(type=keys_pb2.KEY_TYPE_ED25519, data=raw).SerializeToString()


def decode_public_key(data: bytes) -> bytes:
    """The raw 32-byte key of a canonical Ed25519 ``PublicKey``; else ``InvalidPublicKey``."""
    message = keys_pb2.PublicKey()
    if not _parse(message, data):
        raise InvalidPublicKey("public key is not a protobuf PublicKey")
    if message.type != keys_pb2.KEY_TYPE_ED25519:
        raise InvalidPublicKey(f"public key type {message.type} is not Ed25519 (1)")
    if len(message.data) != ED25519_PUBLIC_KEY_SIZE:
        raise InvalidPublicKey(f"Ed25519 public key has {len(message.data)} bytes, not 32")
    if encode_public_key(message.data) != data:
        raise InvalidPublicKey("public key is not canonically encoded")
    return message.data


def encode_private_key(seed: bytes, public_key: bytes) -> bytes:
    """The protobuf ``PrivateKey`` of a key file: Ed25519, data = seed || public key."""
    return keys_pb2.PrivateKey(type=keys_pb2.KEY_TYPE_ED25519,
                               data=seed + public_key).SerializeToString()


def decode_private_key(data: bytes) -> tuple[bytes, bytes]:
    """``(seed, public key)`` of a canonical Ed25519 ``PrivateKey``; else ``KeyFileError``."""
    message = keys_pb2.PrivateKey()
    if not _parse(message, data):
        raise KeyFileError("not a protobuf PrivateKey")
    if message.type != keys_pb2.KEY_TYPE_ED25519:
        raise KeyFileError(f"key type {message.type} is not Ed25519 (1)")
    size = ED25519_SEED_SIZE + ED25519_PUBLIC_KEY_SIZE
    if len(message.data) != size:
        raise KeyFileError(f"Ed25519 private key has {len(message.data)} bytes, not {size}")
    seed, public_key = message.data[:ED25519_SEED_SIZE], message.data[ED25519_SEED_SIZE:]
    if encode_private_key(seed, public_key) != data:
        raise KeyFileError("private key is not canonically encoded")
    return seed, public_key


# --- envelopes ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeFields:
    """The fields of a decoded ``Envelope``; the public key is still protobuf-encoded."""

    public_key: bytes
    payload_type: bytes
    payload: bytes
    signature: bytes


def encode_envelope(fields: EnvelopeFields) -> bytes:
    message = envelope_pb2.Envelope(payload_type=fields.payload_type, payload=fields.payload,
                                    signature=fields.signature)
    message.public_key.ParseFromString(fields.public_key)
    return message.SerializeToString()


def decode_envelope(data: bytes) -> EnvelopeFields | None:
    """The fields of a canonically encoded ``Envelope``, or ``None`` if it is not one."""
    parts = envelope_parts(data)
    if parts is None:
        return None
    public_key, payload_type, payload, signature = parts
    return EnvelopeFields(public_key=public_key, payload_type=payload_type, payload=payload,
                          signature=signature)


#: An Ed25519 ``PublicKey`` as protobuf writes it: type 1, then 32 bytes of data.
_ED25519_KEY_HEAD = b"\x08\x01\x12\x20"
_KEY_SIZE = len(_ED25519_KEY_HEAD) + ED25519_PUBLIC_KEY_SIZE
#: An envelope's first bytes when its key is Ed25519's: field 1's key and length, then
#: the key's head.
_ENVELOPE_KEY_HEAD = b"\x0a\x24" + _ED25519_KEY_HEAD


def envelope_parts(data: bytes) -> tuple[bytes, bytes, bytes, bytes] | None:
    """``(public key, payload type, payload, signature)`` of a canonically encoded
    ``Envelope`` (the key still protobuf-encoded), or ``None`` if it is not one:
    ``decode_envelope`` without the ``EnvelopeFields``.

    An envelope as every signer writes one (an Ed25519 key; every field set, in
    order, with minimal lengths) is sliced without protobuf: that layout is the
    canonical encoding of those fields, so the check below is the one protobuf's
    round trip makes.  Any other input goes through that round trip.
    """
    if (type(data) is bytes and len(data) > 42 and data.startswith(_ENVELOPE_KEY_HEAD)
            and data[38] == 0x12):
        type_size = data[39]
        at = 40 + type_size
        if 0 < type_size < 0x80 and at + 2 < len(data) and data[at] == 0x1a:
            size, second = data[at + 1], data[at + 2]
            if size < 0x80:
                at += 2
            elif 0 < second < 0x80:  # two bytes, minimal
                size = size & 0x7F | second << 7
                at += 3
            else:
                size = 0  # longer: the round trip below
            end = at + size
            if (size and data[end:end + 2] == b"\x2a\x40"
                    and len(data) == end + 2 + ED25519_SIGNATURE_SIZE):
                return (data[2:2 + _KEY_SIZE], data[40:40 + type_size], data[at:end],
                        data[end + 2:])
    return _parsed_envelope_parts(data)


def _parsed_envelope_parts(data: bytes) -> tuple[bytes, bytes, bytes, bytes] | None:
    """``envelope_parts`` through protobuf's parse and re-encoding."""
    message = envelope_pb2.Envelope()
    if not _parse(message, data) or not message.HasField("public_key"):
        return None
    # Without its unknown fields (in the key too), the parsed message encodes back to
    # exactly ``data`` only if ``data`` was canonical (no unknown, repeated or
    # misordered field, no non-minimal varint, no default value written out).
    message.DiscardUnknownFields()
    if message.SerializeToString() != data:
        return None
    # Canonical, so the key (field 1) comes first, as tag 0x0a, its length, its bytes:
    # a slice, not a second serialization (a key of 128 bytes or more is not Ed25519's
    # 36, but encode it the long way all the same).
    size = data[1]
    public_key = (data[2:2 + size] if size < 0x80
                  else message.public_key.SerializeToString())
    return public_key, message.payload_type, message.payload, message.signature


# --- Noise handshake payload --------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakePayloadFields:
    identity_key: bytes
    identity_sig: bytes


def encode_handshake_payload(fields: HandshakePayloadFields) -> bytes:
    return noise_pb2.NoiseHandshakePayload(identity_key=fields.identity_key,
                                           identity_sig=fields.identity_sig).SerializeToString()


def decode_handshake_payload(data: bytes) -> HandshakePayloadFields | None:
    """The identity fields of a ``NoiseHandshakePayload``, or ``None`` if undecodable.

    Extensions (field 4) and unknown fields are accepted and ignored, as libp2p
    peers may send them; the identity fields are checked by the caller.
    """
    message = noise_pb2.NoiseHandshakePayload()
    if not _parse(message, data):
        return None
    return HandshakePayloadFields(identity_key=message.identity_key,
                                  identity_sig=message.identity_sig)
