# taiinet: sans-io core
"""Chunk integrity: one Ed25519 signature per group of chunks, over their hashes.

Signing every chunk would cost the broadcaster a signature and every viewer a
verification per chunk (~100 per second).  Instead the broadcaster holds the
chunks of a short group (``GROUP_SECONDS`` or ``MAX_SEAL_HASHES`` chunks),
hashes each (SHA-256 of its 8-byte big-endian ``seq`` and its payload), signs
the list once, and sends the ``Seal`` *before* the chunks.  A relay then
checks each chunk against a hash it already holds as it arrives and forwards
it at once: one signature check per group per peer, one SHA-256 per chunk,
and no delay added at any hop (the group's wait is paid once, at the root).
"""

from __future__ import annotations

import hashlib

from taiinet.stream.messages import Seal
from taiinet.wire.identity import Identity, verify_signature
from taiinet.wire.peer_id import PeerId

#: Domain prefix of the signed bytes (no other signature in TaiiNet starts with it).
SEAL_DOMAIN = b"taiinet-stream-seal/1"
#: Seconds of media the broadcaster groups under one seal.
GROUP_SECONDS = 0.1


def chunk_hash(seq: int, payload: bytes) -> bytes:
    """The hash a seal lists for chunk ``seq``."""
    return hashlib.sha256(seq.to_bytes(8, "big") + payload).digest()


def signed_bytes(stream_id: bytes, first: int, hashes: tuple[bytes, ...]) -> bytes:
    return SEAL_DOMAIN + stream_id + first.to_bytes(8, "big") + b"".join(hashes)


def make_seal(identity: Identity, stream_id: bytes, first: int,
              payloads: list[bytes]) -> Seal:
    """The broadcaster's seal over chunks ``first`` .. ``first + len(payloads) - 1``."""
    hashes = tuple(chunk_hash(first + i, p) for i, p in enumerate(payloads))
    return Seal(first=first, hashes=hashes,
                signature=identity.sign(signed_bytes(stream_id, first, hashes)))


def seal_is_valid(broadcaster: PeerId, stream_id: bytes, seal: Seal) -> bool:
    """True if the broadcaster signed ``seal`` for this stream."""
    return verify_signature(broadcaster, signed_bytes(stream_id, seal.first, seal.hashes),
                            seal.signature)
