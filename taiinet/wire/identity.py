"""Node identities: Ed25519 key pairs named by their libp2p peer id.

A peer id is the base58btc text of the identity multihash of the
protobuf-encoded public key::

    peer id bytes = 0x00 0x24 || 08 01 12 20 || public key (32 bytes)   (38 bytes)
    peer id text  = base58btc(peer id bytes)                            ("12D3KooW...")

so the id embeds the key and any signature can be checked from the id alone.
A key file holds the protobuf ``PrivateKey`` (Ed25519, seed || public key),
written with mode 0600.  Byte layouts and vectors: docs/protocol.md.

Signatures are checked by the rule of docs/protocol.md section 2.4 (RFC 8032
with canonical encodings, no point of small order, the cofactored equation),
which every peer applies alike: conformance/signatures.json holds its edge
cases.  Byte comparisons here refuse what the rule refuses before any curve
arithmetic; ed25519-zebra (ZIP-215: the cofactored equation, S < L) checks
the rest, in about two thirds of libsodium's time (docs/measurements.md).
libsodium's cofactorless equation would refuse signatures by keys or nonces
with a torsion component that the rule accepts.  PyNaCl (libsodium) signs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os

import ed25519_zebra
import nacl.bindings
import nacl.signing

from taiinet.errors import LocalProtocolError
from taiinet.wire import codec
from taiinet.wire.base58 import b58decode
from taiinet.wire.errors import InvalidPeerId, KeyFileError
from taiinet.wire.peer_id import (
    IDENTITY_MULTIHASH_CODE,
    MAX_PEER_ID_TEXT,
    PEER_ID_BYTES_SIZE,
    PEER_ID_PREFIX,
    PeerId,
)

__all__ = ["IDENTITY_MULTIHASH_CODE", "MAX_PEER_ID_TEXT", "PEER_ID_BYTES_SIZE", "Identity",
           "PeerId", "parse_peer_id", "peer_id_from_public_key", "public_key_from_peer_id",
           "verify_signature", "verify_with_public_key"]
#: CIDv1 prefix of a peer id in CID form: version 1, multicodec libp2p-key (0x72).
_CID_PREFIX = bytes([0x01, 0x72])
#: A key file larger than this is not a key file (a canonical one has 68 bytes).
MAX_KEY_FILE_SIZE = 4096
#: The field prime p and the order L of the base point (RFC 8032 section 5.1).
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
#: y of two of the four points of order 8 (the other two have y = p - this).
_ORDER_EIGHT_Y = 2707385501144840649318225287225658788936804267575313519463743609750303402022


def _with_either_sign(y: int) -> tuple[bytes, bytes]:
    return y.to_bytes(32, "little"), (y | 1 << 255).to_bytes(32, "little")


#: Every 32-byte string the rule refuses as A or R whatever the rest: a y that is
#: not reduced (p <= y < 2^255) and the eight points of small order (y = 0, 1,
#: p - 1, +-y8), each with either sign bit (x = 0 with the sign bit set, the
#: other non-canonical form, has y = +-1, so it is among them).
_REFUSED_POINTS = frozenset(
    encoding for y in (*range(_P, 2**255), 0, 1, _P - 1, _ORDER_EIGHT_Y, _P - _ORDER_EIGHT_Y)
    for encoding in _with_either_sign(y))


def peer_id_bytes_from_public_key(raw: bytes) -> bytes:
    if len(raw) != codec.ED25519_PUBLIC_KEY_SIZE:
        raise LocalProtocolError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return PEER_ID_PREFIX + raw


def peer_id_from_public_key(raw: bytes) -> PeerId:
    """The peer id (``12D3KooW...``) of a raw 32-byte Ed25519 public key (memoised:
    every verified envelope names its signer, and base58 costs as much as a third
    of the signature check)."""
    if len(raw) != codec.ED25519_PUBLIC_KEY_SIZE:
        raise LocalProtocolError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return PeerId.from_public_key(raw)


def public_key_from_peer_id_bytes(data: bytes) -> bytes:
    if len(data) != PEER_ID_BYTES_SIZE or not data.startswith(PEER_ID_PREFIX):
        raise InvalidPeerId("not the identity multihash of an Ed25519 public key")
    return data[len(PEER_ID_PREFIX):]


def _decode_cid(text: str) -> bytes:
    """The multihash inside a CIDv1 peer id in base32 (``bafz...``); ``ValueError`` if not one."""
    body = text[1:].upper()
    if body != body.rstrip("=") or not body.isascii():
        raise ValueError("a CIDv1 peer id is unpadded base32")
    cid = base64.b32decode(body + "=" * (-len(body) % 8))
    if cid[:len(_CID_PREFIX)] != _CID_PREFIX:
        raise ValueError("not a CIDv1 with the libp2p-key codec")
    return cid[len(_CID_PREFIX):]


def public_key_from_peer_id(peer_id: str) -> bytes:
    """The raw 32-byte Ed25519 key embedded in a peer id; ``InvalidPeerId`` if malformed.

    Accepts the base58btc form (``12D3KooW...``) and, as the libp2p spec asks,
    the CIDv1 form in base32 (``bafz...``).
    """
    if not isinstance(peer_id, str) or len(peer_id) > MAX_PEER_ID_TEXT:
        raise InvalidPeerId("a peer id is a short base58btc string")
    try:
        data = _decode_cid(peer_id) if peer_id.startswith("b") else b58decode(peer_id)
    except (ValueError, binascii.Error) as exc:
        raise InvalidPeerId(f"peer id {peer_id[:60]!r}: {exc}") from None
    try:
        return public_key_from_peer_id_bytes(data)
    except InvalidPeerId:
        raise InvalidPeerId(
            f"{peer_id[:60]!r} is not the peer id of an Ed25519 key (expected 12D3KooW...)"
        ) from None


def parse_peer_id(text: str) -> PeerId:
    """Validate a peer id given by a user and return its canonical (base58btc) form.

    Accepts the CID form too; ids from the network go through ``PeerId.parse``
    (canonical form only).  ``InvalidPeerId`` if not a peer id.
    """
    return peer_id_from_public_key(public_key_from_peer_id(text))


def verify_signature(peer_id: str, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` is the Ed25519 signature of ``data`` by ``peer_id``'s key.

    A malformed peer id or signature is simply not valid (False).
    """
    try:
        raw = public_key_from_peer_id(peer_id)
    except InvalidPeerId:
        return False
    return verify_with_public_key(raw, data, signature)


def verify_with_public_key(raw: bytes, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` is valid for ``data`` and the raw 32-byte key ``raw``
    by the rule of docs/protocol.md section 2.4; anything malformed is not valid."""
    if len(signature) != codec.ED25519_SIGNATURE_SIZE or len(raw) != codec.ED25519_PUBLIC_KEY_SIZE:
        return False
    if type(raw) is not bytes or type(data) is not bytes or type(signature) is not bytes:
        raw, data, signature = bytes(raw), bytes(data), bytes(signature)  # the binding takes bytes
    # S < L: certain when its top byte is below 0x10 (S < 2**252 < L), else compared.
    if (raw in _REFUSED_POINTS or signature[:32] in _REFUSED_POINTS
            or (signature[63] >= 0x10 and int.from_bytes(signature[32:], "little") >= _L)):
        return False
    # What is left to check is the cofactored equation, with A and R decoding to points.
    return ed25519_zebra.ed_verify(signature, data, raw) is True


class Identity:
    """An Ed25519 key pair and its peer id."""

    __slots__ = ("_peer_id", "_public_key", "_public_key_proto", "_secret_key", "_signing_key")

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        self._signing_key = signing_key
        self._public_key = bytes(signing_key.verify_key)
        self._peer_id = peer_id_from_public_key(self._public_key)
        # Encoded once: every signed envelope (each publication) carries it.
        self._public_key_proto = codec.encode_public_key(self._public_key)
        #: libsodium's 64-byte secret key (seed and public key), for ``sign`` to call
        #: ``crypto_sign`` without ``SigningKey.sign``'s ``SignedMessage`` around it.
        self._secret_key = nacl.bindings.crypto_sign_seed_keypair(bytes(signing_key))[1]

    @classmethod
    def generate(cls) -> Identity:
        """A fresh key pair from the operating system's random source."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """The key pair of a 32-byte seed (deterministic: for tests and the simulator)."""
        if len(seed) != codec.ED25519_SEED_SIZE:
            raise LocalProtocolError(f"an Ed25519 seed has 32 bytes, not {len(seed)}")
        return cls(nacl.signing.SigningKey(bytes(seed)))

    @classmethod
    def from_private_key_bytes(cls, data: bytes) -> Identity:
        """Parse the protobuf ``PrivateKey`` of a key file; ``KeyFileError`` if invalid."""
        seed, public_key = codec.decode_private_key(data)
        identity = cls.from_seed(seed)
        if identity.public_key != public_key:
            raise KeyFileError("the public key in the key file does not match its seed")
        return identity

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Identity:
        """Read a key file written by ``save`` (or by libp2p); ``KeyFileError`` if unusable."""
        name = os.fspath(path)
        try:
            with open(path, "rb") as file:
                data = file.read(MAX_KEY_FILE_SIZE + 1)
        except OSError as exc:
            raise KeyFileError(f"cannot read key file {name!r}: {exc.strerror}") from None
        if len(data) > MAX_KEY_FILE_SIZE:
            raise KeyFileError(f"{name!r} is too large to be a key file")
        try:
            return cls.from_private_key_bytes(data)
        except KeyFileError as exc:
            raise KeyFileError(f"{name!r} is not a TaiiNet key file: {exc}") from None

    def private_key_bytes(self) -> bytes:
        """The protobuf ``PrivateKey`` (the key file's content). Keep it secret."""
        return codec.encode_private_key(bytes(self._signing_key), self._public_key)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key file with mode 0600; refuse to overwrite an existing file."""
        name = os.fspath(path)
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyFileError(f"{name!r} exists; refusing to overwrite it") from None
        except OSError as exc:
            raise KeyFileError(f"cannot create key file {name!r}: {exc.strerror}") from None
        try:
            os.fchmod(fd, 0o600)  # the umask may have removed bits, never added; be exact
            with os.fdopen(fd, "wb") as file:
                file.write(self.private_key_bytes())
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(name)  # never leave a half-written key behind
            raise KeyFileError(f"cannot write key file {name!r}: {exc.strerror}") from None

    @property
    def peer_id(self) -> PeerId:
        return self._peer_id

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._public_key

    @property
    def public_key_proto(self) -> bytes:
        """The protobuf-encoded ``PublicKey`` (as in envelopes and handshake payloads)."""
        return self._public_key_proto

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data``."""
        return nacl.bindings.crypto_sign(data, self._secret_key)[:codec.ED25519_SIGNATURE_SIZE]

    def __repr__(self) -> str:
        return f"Identity({self._peer_id})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other._public_key == self._public_key

    def __hash__(self) -> int:
        return hash(self._public_key)
