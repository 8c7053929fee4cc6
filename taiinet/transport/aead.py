# taiinet: sans-io core
"""libsodium's ChaCha20-Poly1305 (RFC 8439), called directly, for small Noise messages.

Why a second backend
--------------------
``cryptography``'s ``ChaCha20Poly1305`` (OpenSSL) sets up a cipher context on
every call, about 1 us before the first byte, and OpenSSL's AVX-512 ChaCha20
runs cold on Xeons when a link's other work sits between two messages.  The
libsodium that PyNaCl ships (AVX2 ChaCha20, no AVX-512) starts in about
0.4 us, and its C functions write into a buffer the caller owns, so a cipher
state seals into one reusable buffer and returns one copy.  Past
``SODIUM_MAX_PLAINTEXT`` bytes OpenSSL's faster bulk cipher wins (about
0.3 us per KiB against libsodium's 0.6), so ``CipherState`` keeps
``cryptography`` for larger messages and for the handshake.  Both compute the
same function: the bytes on the wire do not depend on the backend
(``tests/test_transport_aead.py`` checks them against each other).

PyNaCl's public ``crypto_aead_chacha20poly1305_ietf_*`` wrappers check and
convert every argument in Python (about 4 us a call at 1 KiB), so this module
takes the same C functions from PyNaCl's compiled cffi module
``nacl._sodium``, the one those wrappers call.  It runs ``sodium_init``
first (as importing ``nacl.bindings`` does), which picks the CPU's
implementation.  Should a PyNaCl release move them, ``SODIUM`` is None and
``CipherState`` uses ``cryptography`` for every message.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

#: Largest plaintext of one Noise message that libsodium seals or opens
#: (a 2 KiB frame with its prefix); larger ones go to ``cryptography``
#: (measured crossover at about 2.3 KiB on the link's path).
SODIUM_MAX_PLAINTEXT = 2050


@dataclass(frozen=True, slots=True)
class Sodium:
    """The cffi handles of libsodium's IETF ChaCha20-Poly1305.

    ``encrypt(c, clen_p, m, mlen, ad, adlen, nsec, npub, k)`` and
    ``decrypt(m, mlen_p, nsec, c, clen, ad, adlen, npub, k)`` (libsodium's
    ``crypto_aead_chacha20poly1305_ietf_*``; decrypt returns non-zero and
    writes zeros when the tag does not match); ``from_buffer`` makes a
    pointer into a bytes-like object; ``null`` is NULL.
    """

    encrypt: Any
    decrypt: Any
    from_buffer: Any
    null: Any


def load_sodium() -> Sodium | None:
    """The handles, or None when this PyNaCl does not expose them."""
    try:
        sodium = importlib.import_module("nacl._sodium")
        lib, ffi = sodium.lib, sodium.ffi
        # Picks the CPU's ChaCha20 and Poly1305 (AVX2 here): before it, libsodium
        # runs its portable code, 4-5 times slower (1 when PyNaCl already ran it).
        if lib.sodium_init() < 0:
            return None
        return Sodium(encrypt=lib.crypto_aead_chacha20poly1305_ietf_encrypt,
                      decrypt=lib.crypto_aead_chacha20poly1305_ietf_decrypt,
                      from_buffer=ffi.from_buffer, null=ffi.NULL)
    except (ImportError, AttributeError):
        return None


#: libsodium's handles, or None: ``CipherState`` then uses ``cryptography`` only.
SODIUM = load_sodium()
