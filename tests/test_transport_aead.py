"""The two ChaCha20-Poly1305 backends of ``CipherState``: same bytes, same failures."""

from __future__ import annotations

import struct
from typing import Any

import nacl.bindings
import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.transport import aead as aead_module
from taiinet.transport import noise
from taiinet.transport.aead import SODIUM, SODIUM_MAX_PLAINTEXT
from taiinet.transport.errors import DecryptionError
from taiinet.transport.noise import SMALL_FRAME_SIZE, CipherState, HandshakeResult, SecureSession
from taiinet.wire.framing import encode_uvarint
from taiinet.wire.identity import Identity
from tests.import_support import load_copy_without

PEER = Identity.from_seed(bytes(32)).peer_id
keys = st.binary(min_size=32, max_size=32)
nonces = st.integers(0, 2**64 - 2) | st.sampled_from([0, 1, 2**32 - 1, 2**32, 2**64 - 2])
#: Frame sizes on each side of libsodium's limit and of the one-byte prefix.
frame_sizes = (st.integers(0, SODIUM_MAX_PLAINTEXT + 64)
               | st.sampled_from([0, 0x7F, 0x80, SODIUM_MAX_PLAINTEXT - 2,
                                  SODIUM_MAX_PLAINTEXT - 1, SMALL_FRAME_SIZE]))


def reference_message(key: bytes, nonce: int, frame: bytes) -> bytes:
    """The prefixed Noise message of ``frame``, computed by ``cryptography`` alone."""
    ciphertext = ChaCha20Poly1305(key).encrypt(struct.pack("<4xQ", nonce),
                                              encode_uvarint(len(frame)) + frame, None)
    return len(ciphertext).to_bytes(2, "big") + ciphertext


def cipher_at(key: bytes, nonce: int) -> CipherState:
    cipher = CipherState(key)
    cipher.nonce = nonce
    return cipher


def session_pair() -> tuple[SecureSession, SecureSession]:
    """Two ends of a session whose ciphers share a key (no handshake needed here)."""
    def result() -> HandshakeResult:
        return HandshakeResult(remote_peer_id=PEER, remote_static_key=bytes(32),
                               send_cipher=CipherState(bytes(32)),
                               receive_cipher=CipherState(bytes(32)), handshake_hash=bytes(32))
    return SecureSession(result()), SecureSession(result())


def test_libsodium_is_found() -> None:
    assert SODIUM is not None  # the PyNaCl this project pins exposes it


@given(keys, nonces, frame_sizes, st.randoms(use_true_random=False))
@settings(max_examples=150, deadline=None)
def test_sealed_bytes_match_cryptography_and_libsodiums_public_binding(
        key: bytes, nonce: int, size: int, rng: Any) -> None:
    frame = rng.randbytes(size)
    expected = reference_message(key, nonce, frame)
    assert cipher_at(key, nonce).seal_frame(frame) == expected
    plaintext = encode_uvarint(size) + frame
    public = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
        plaintext, None, struct.pack("<4xQ", nonce), key)
    assert expected[2:] == public
    receiver = cipher_at(key, nonce)
    assert bytes(receiver.open(expected)) == plaintext
    assert receiver.nonce == nonce + 1


@given(keys, nonces, frame_sizes, st.data())
@settings(max_examples=150, deadline=None)
def test_any_altered_byte_fails_and_changes_nothing(key: bytes, nonce: int, size: int,
                                                    data: st.DataObject) -> None:
    message = reference_message(key, nonce, bytes(size))
    position = data.draw(st.integers(2, len(message) - 1))  # the prefix is checked upstream
    flip = data.draw(st.integers(1, 255))
    altered = bytearray(message)
    altered[position] ^= flip
    receiver = cipher_at(key, nonce)
    with pytest.raises(DecryptionError):
        receiver.open(bytes(altered))
    assert receiver.nonce == nonce
    assert bytes(receiver.open(message)) == encode_uvarint(size) + bytes(size)


def test_a_message_under_the_wrong_nonce_fails() -> None:
    message = reference_message(bytes(32), 5, b"frame")
    receiver = cipher_at(bytes(32), 4)
    with pytest.raises(DecryptionError):
        receiver.open(message)
    assert receiver.nonce == 4


class CountingAead:
    """``ChaCha20Poly1305`` that counts its calls."""

    calls = 0

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)

    def encrypt(self, *args: Any) -> bytes:
        CountingAead.calls += 1
        return self._aead.encrypt(*args)

    def decrypt(self, *args: Any) -> bytes:
        CountingAead.calls += 1
        return self._aead.decrypt(*args)


def test_small_messages_skip_cryptography(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 KiB frame is sealed and opened without a ``cryptography`` call (the link's
    per-frame path); a frame past libsodium's limit still takes it."""
    monkeypatch.setattr(noise, "ChaCha20Poly1305", CountingAead)
    monkeypatch.setattr(CountingAead, "calls", 0)
    sender, receiver = CipherState(bytes(32)), CipherState(bytes(32))
    for size in (0, 100, 1024, SODIUM_MAX_PLAINTEXT - 2):
        frame = bytes([size & 0xFF]) * size
        assert bytes(receiver.open(sender.seal_frame(frame))) == encode_uvarint(size) + frame
    assert CountingAead.calls == 0
    receiver.open(sender.seal_frame(bytes(SODIUM_MAX_PLAINTEXT)))
    assert CountingAead.calls == 2


def test_messages_joined_in_one_read_skip_cryptography(monkeypatch: pytest.MonkeyPatch) -> None:
    """Noise messages that arrive together (a WebSocket or data channel message holding
    several) are opened by libsodium too, each under its own nonce."""
    monkeypatch.setattr(noise, "ChaCha20Poly1305", CountingAead)
    monkeypatch.setattr(CountingAead, "calls", 0)
    sender, receiver = session_pair()
    frames = [bytes([n]) * size for n, size in enumerate((0, 5, 1024, SODIUM_MAX_PLAINTEXT - 2))]
    joined = b"".join(sender.seal_frame(frame) for frame in frames)
    assert receiver.receive_data(joined[:7]) == []  # the reader's path, a partial message
    assert receiver.receive_data(joined[7:]) == frames
    assert CountingAead.calls == 0
    altered = bytearray(sender.seal_frame(b"x") + sender.seal_frame(b"y"))
    altered[-1] ^= 1
    with pytest.raises(DecryptionError):
        receiver.receive_data(bytes(altered))


def test_opened_plaintext_is_copied_by_the_frame_decoder() -> None:
    """``open`` returns a view of a buffer it reuses: frames already returned must
    not change when the next message is opened."""
    sender, receiver = session_pair()
    first = receiver.receive_data(sender.seal_frame(b"a" * 1000))
    second = receiver.receive_data(sender.seal_frame(b"b" * 1000))
    assert first == [b"a" * 1000] and second == [b"b" * 1000]
    partial = sender.seal_frame(b"c" * 300)
    assert receiver.receive_data(partial[:100]) == []  # the general path: reader, decrypt
    assert receiver.receive_data(partial[100:]) == [b"c" * 300]


@given(keys, nonces, frame_sizes, st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None)
def test_without_libsodium_every_message_takes_cryptography(
        key: bytes, nonce: int, size: int, rng: Any) -> None:
    frame = rng.randbytes(size)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(noise, "_SODIUM_FRAME", -1)
        patch.setattr(noise, "_SODIUM_CIPHERTEXT", -1)
        message = cipher_at(key, nonce).seal_frame(frame)
        assert message == reference_message(key, nonce, frame)
        assert cipher_at(key, nonce).open(message) == encode_uvarint(size) + frame


def test_a_pynacl_without_its_cffi_module_leaves_cryptography(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # ``nacl._sodium`` is PyNaCl's private module: without it the backend is
    # off instead of the import failing the transport.
    module = load_copy_without(monkeypatch, aead_module, "nacl._sodium", "aead_without_sodium")
    assert module.SODIUM is None
