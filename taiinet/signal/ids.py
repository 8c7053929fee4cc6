# taiinet: sans-io core
"""DHT node ids: where a peer id lands in the 256-bit Kademlia key space.

A peer id is the libp2p text form: base58btc of the binary multihash of the
public key (``12D3KooW...``).  Its DHT id is

    node_id = SHA-256(base58btc_decode(peer_id))

that is, the hash covers the *binary multihash* bytes (for an Ed25519 key the
38 bytes ``00 24 08 01 12 20 <32-byte key>``), never the UTF-8 text.  This is
what libp2p's Kademlia does too, so ids agree with it.  Ids are handled as
Python ints (big-endian reading of the digest) because XOR of ints is fast.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from taiinet.signal.errors import InvalidPeerId

ID_BITS = 256
MAX_PEER_ID_CHARS = 128
"""Longest peer id text accepted (an Ed25519 id is 52 characters)."""

NODE_ID_CACHE = 1 << 16
"""Peer ids whose node id is memoised (decoding base58 is the hot spot)."""

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: value for value, char in enumerate(_ALPHABET)}


def base58_decode(text: str) -> bytes:
    """Decode base58btc (Bitcoin alphabet); leading '1's are leading zero bytes."""
    if not text or len(text) > MAX_PEER_ID_CHARS:
        raise InvalidPeerId(f"peer id must be 1..{MAX_PEER_ID_CHARS} characters")
    number = 0
    for char in text:
        digit = _INDEX.get(char)
        if digit is None:
            raise InvalidPeerId(f"peer id has a character outside base58btc: {char!r}")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * zeros + body


def base58_encode(data: bytes) -> str:
    """Encode bytes as base58btc; the inverse of :func:`base58_decode`."""
    number = int.from_bytes(data, "big")
    chars: list[str] = []
    while number:
        number, digit = divmod(number, 58)
        chars.append(_ALPHABET[digit])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(chars))


@lru_cache(maxsize=NODE_ID_CACHE)
def node_id(peer_id: str) -> int:
    """The 256-bit DHT id of a peer: SHA-256 of its binary multihash (memoised)."""
    return int.from_bytes(hashlib.sha256(base58_decode(peer_id)).digest(), "big")


def key_id(key: bytes) -> int:
    """A 32-byte DHT key as an id (keys of peer records are node ids)."""
    if len(key) != ID_BITS // 8:
        raise InvalidPeerId(f"a DHT key is {ID_BITS // 8} bytes, got {len(key)}")
    return int.from_bytes(key, "big")


def id_bytes(value: int) -> bytes:
    """An id as its 32 big-endian bytes (the wire form of keys and targets)."""
    return value.to_bytes(ID_BITS // 8, "big")


def bucket_index(local: int, other: int) -> int:
    """Index of the k-bucket holding ``other``: floor(log2(local XOR other)).

    Bucket i holds ids at distance [2**i, 2**(i+1)); the local id itself has
    no bucket (-1).
    """
    return (local ^ other).bit_length() - 1
