# taiinet: sans-io core
"""``PeerId``: the one type of a validated peer id.

Every peer id that comes from the network is parsed here, at the codec edge,
so the rest of the code never holds an id it cannot use (dial, hash into the
DHT, verify a signature with).  A ``PeerId`` is a ``str`` (code that prints,
compares or keys dicts by ids keeps working) that can only be built by
validation: its text is canonical base58btc of the identity multihash of a
protobuf-encoded Ed25519 public key::

    00 24 || 08 01 12 20 || 32 key bytes   ->   "12D3KooW..." (52 characters)

Anything else (empty, too long, a character outside base58btc, another
multihash or key type, a CID form) is an ``InvalidPeerId``, a
``RemoteProtocolError``: the receiver rejects the message and drops the link.
The 32 key bytes are not checked to be a point of the curve (as in libp2p):
a signature check against such an id simply fails.
"""

from __future__ import annotations

import functools

from taiinet.wire.base58 import b58decode, b58encode
from taiinet.wire.errors import InvalidPeerId

#: The identity multihash code (the digest is the data itself).
IDENTITY_MULTIHASH_CODE = 0x00
#: Size of the protobuf-encoded Ed25519 ``PublicKey`` (08 01 12 20 || key).
PUBLIC_KEY_PROTO_SIZE = 36
#: Size of a raw Ed25519 public key.
ED25519_PUBLIC_KEY_SIZE = 32
#: multihash code, multihash length, then the protobuf PublicKey header (type 1, 32 data bytes).
PEER_ID_PREFIX = bytes([IDENTITY_MULTIHASH_CODE, PUBLIC_KEY_PROTO_SIZE, 0x08, 0x01, 0x12, 0x20])
#: Bytes of a peer id's multihash.
PEER_ID_BYTES_SIZE = len(PEER_ID_PREFIX) + ED25519_PUBLIC_KEY_SIZE
#: Peer id text longer than this is rejected before decoding (a valid one has 52 characters).
MAX_PEER_ID_TEXT = 128
#: Parsed ids remembered (ids repeat: origins of broadcasts, shuffled peers, DHT contacts).
PARSE_CACHE_SIZE = 4096


class PeerId(str):
    """A peer id known to be valid; build it with :meth:`parse` or :meth:`from_public_key`."""

    __slots__ = ()

    def __new__(cls, text: object) -> PeerId:
        if type(text) is cls:
            return text
        if not isinstance(text, str) or not 0 < len(text) <= MAX_PEER_ID_TEXT:
            raise InvalidPeerId(f"a peer id is 1..{MAX_PEER_ID_TEXT} base58btc characters")
        try:
            data = b58decode(text)
        except ValueError as exc:
            raise InvalidPeerId(f"peer id {text[:60]!r}: {exc}") from None
        if len(data) != PEER_ID_BYTES_SIZE or not data.startswith(PEER_ID_PREFIX):
            raise InvalidPeerId(
                f"{text[:60]!r} is not the peer id of an Ed25519 key (expected 12D3KooW...)")
        # base58btc is a bijection on byte strings, so decodable text is canonical.
        return super().__new__(cls, text)

    @staticmethod
    def parse(text: object) -> PeerId:
        """``text`` as a ``PeerId``; ``InvalidPeerId`` (a RemoteProtocolError) if it is not one."""
        if isinstance(text, str):
            return _parse_cached(str(text))
        raise InvalidPeerId("a peer id is text")

    @staticmethod
    def parse_optional(text: str) -> str:
        """``""`` (no peer: an optional field left unset) or a valid ``PeerId``."""
        return "" if text == "" else PeerId.parse(text)

    @classmethod
    def from_public_key(cls, raw: bytes) -> PeerId:
        """The peer id of a raw 32-byte Ed25519 public key."""
        return _from_public_key_cached(bytes(raw))

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 key the id embeds."""
        return b58decode(self)[len(PEER_ID_PREFIX):]


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def plain_key(peer: str) -> str:
    """``peer`` as an exact ``str`` (equal to it, same hash; one shared copy per id).

    A ``PeerId`` is an instance of a Python class, so the cyclic garbage
    collector tracks it, and with it every dict that holds one; a dict whose
    keys and values are all exact ``str`` and ``int`` is not tracked.  Maps
    kept per document and neighbour (``Retained.holders``) key by this, so the
    collector's full passes do not walk one more dict per retained document.
    Look them up with the ``PeerId`` as usual.  (The cache is the function
    itself: called a few times per document, with no Python call around it.)
    """
    return str.__str__(peer)


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_cached(text: str) -> PeerId:
    return PeerId(text)


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _from_public_key_cached(raw: bytes) -> PeerId:
    if len(raw) != ED25519_PUBLIC_KEY_SIZE:
        raise InvalidPeerId(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return PeerId(b58encode(PEER_ID_PREFIX + raw))
