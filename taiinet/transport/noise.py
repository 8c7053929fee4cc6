# taiinet: sans-io core
"""Noise XX with the libp2p handshake payload, as a sans-I/O state machine.

Theory of operation
-------------------
``Noise_XX_25519_ChaChaPoly_SHA256`` (Noise spec rev. 34, section 7.5), empty
prologue::

    -> e
    <- e, ee, s, es        payload: responder's NoiseHandshakePayload
    -> s, se               payload: initiator's NoiseHandshakePayload

The first message's payload is empty.  A handshake payload (noise.proto)
carries the sender's Ed25519 identity key and its signature over
``b"noise-libp2p-static-key:" || sender's X25519 static public key``, so each
side binds its Noise static key to its peer id (libp2p Noise spec).  When the
initiator dialed an expected peer id, it checks it after message 2, before it
reveals its own identity.

``NoiseHandshake`` is the state machine: the owner calls ``write_message()``
when ``state`` is ``WRITE`` and ``read_message(bytes)`` when it is ``READ``;
at ``DONE``, ``result`` holds the two ``CipherState``\\ s and the remote peer
id.  Any failure moves it to ``FAILED`` for good: later calls raise
``LocalProtocolError``.  Messages here are bare Noise messages; on a link each
is preceded by its 2-byte big-endian length (``NoiseMessageReader`` undoes
that).  The ephemeral and static X25519 keys come from the caller, so the core
is deterministic and testable against fixed vectors.

``SecureSession`` is the transport phase: frames (uvarint-prefixed, see
``taiinet.wire.framing``) form a plaintext stream that is cut into chunks of
at most ``MAX_PLAINTEXT`` bytes, each encrypted as one Noise transport message.

Departures from the specs: none on the wire.  We never rekey (the 2**64-1
nonce limit ends the link instead), and a message with a payload we cannot
verify fails the handshake rather than being passed up.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from taiinet.errors import LocalProtocolError
from taiinet.transport.aead import SODIUM, SODIUM_MAX_PLAINTEXT
from taiinet.transport.errors import DecryptionError, HandshakeError, PeerIdMismatch
from taiinet.wire import codec
from taiinet.wire.errors import InvalidPublicKey, TruncatedFrame
from taiinet.wire.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    FrameDecoder,
    frame_with_prefix,
)
from taiinet.wire.identity import Identity, peer_id_from_public_key, verify_with_public_key
from taiinet.wire.peer_id import PeerId

PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_SHA256"
#: Noise's limit on one message, tag included.
MAX_NOISE_MESSAGE = 65535
TAG_SIZE = 16
MAX_PLAINTEXT = MAX_NOISE_MESSAGE - TAG_SIZE
DH_SIZE = 32
HASH_SIZE = 32
LENGTH_PREFIX_SIZE = 2
#: Largest frame ``SecureSession.seal_frame`` takes: a 2-byte uvarint prefix at most.
SMALL_FRAME_SIZE = 0x3FFF
STATIC_KEY_SIGNATURE_PREFIX = b"noise-libp2p-static-key:"
_MAX_NONCE = 2**64 - 1
#: The 96-bit nonce of a counter: 32 zero bits, then the counter little-endian.
_nonce_bytes = struct.Struct("<4xQ").pack
#: A Noise message's 2-byte big-endian length.
_length_prefix = struct.Struct(">H").pack
#: The uvarint of a frame length below 0x80, and two bytes, the low one first.
_ONE_BYTE = [bytes((value,)) for value in range(0x80)]
_two_bytes = struct.Struct("<H").pack
#: A message's 2-byte big-endian length and the frame's 1- or 2-byte uvarint, into a buffer.
_pack_short_head = struct.Struct(">HB").pack_into
_pack_long_head = struct.Struct(">HBB").pack_into
#: Frames (2-byte uvarint) and ciphertexts (tag included) up to these sizes go to
#: libsodium; -1 without it.
_SODIUM_FRAME = -1 if SODIUM is None else SODIUM_MAX_PLAINTEXT - 2
_SODIUM_CIPHERTEXT = -1 if SODIUM is None else SODIUM_MAX_PLAINTEXT + TAG_SIZE
#: A ``CipherState``'s libsodium buffer: one prefixed message of the largest plaintext.
_SCRATCH_SIZE = LENGTH_PREFIX_SIZE + SODIUM_MAX_PLAINTEXT + TAG_SIZE
_sodium_encrypt: Any = None if SODIUM is None else SODIUM.encrypt
_sodium_decrypt: Any = None if SODIUM is None else SODIUM.decrypt
_from_buffer: Any = None if SODIUM is None else SODIUM.from_buffer
_NULL: Any = None if SODIUM is None else SODIUM.null
#: A handshake payload larger than this is rejected (ours has about 104 bytes).
MAX_HANDSHAKE_PAYLOAD = 4096


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def hkdf2(chaining_key: bytes, input_key_material: bytes) -> tuple[bytes, bytes]:
    """Noise's HKDF with two outputs."""
    temp_key = _hmac(chaining_key, input_key_material)
    output1 = _hmac(temp_key, b"\x01")
    output2 = _hmac(temp_key, output1 + b"\x02")
    return output1, output2


def x25519_public_key(private: bytes) -> bytes:
    return nacl.bindings.crypto_scalarmult_base(private)


def x25519(private: bytes, public: bytes) -> bytes:
    """DH; a low-order remote key (all-zero shared secret) fails the handshake."""
    try:
        return nacl.bindings.crypto_scalarmult(private, public)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise HandshakeError(f"invalid X25519 public key from peer: {exc}") from None


class CipherState:
    """A ChaCha20-Poly1305 key and its 64-bit message counter.

    The 96-bit nonce is 32 zero bits, then the counter little-endian: the
    12-byte little-endian encoding of ``counter << 32``.

    Two backends compute the AEAD, chosen per message by its size (the bytes
    are the same; ``taiinet.transport.aead`` says why):

    * messages of up to ``SODIUM_MAX_PLAINTEXT`` bytes of plaintext (``seal_frame``
      and ``open``: the link's per-frame path) go to libsodium through PyNaCl's
      cffi module, sealed and opened in a ~2 KiB buffer of the cipher state's
      own (made on first use): one C call and one copy out.  1 KiB on this
      project's Xeon (AVX-512, CPython 3.11): 1.0 us a call in a tight loop
      against 1.4 with ``cryptography``; on the link's path (memory + Noise
      bench, load 3.3) 1.6-2.0 us against 3.2-3.9;
    * larger messages and the handshake's go to ``cryptography`` (OpenSSL),
      faster in bulk (16 KiB in ~5.6 us against ~10).

    Either way a message failing authentication raises ``DecryptionError``, nonce kept.
    """

    __slots__ = ("_aead", "_key", "_opened_into", "_scratch_view", "_sealed_into", "nonce")

    def __init__(self, key: bytes | None = None) -> None:
        self._aead = None if key is None else ChaCha20Poly1305(key)
        self._key = key
        #: libsodium's buffer (made on first use) and pointers to its bytes 0 and 2.
        self._scratch_view = memoryview(b"")
        self._opened_into: Any = None
        self._sealed_into: Any = None
        self.nonce = 0

    @property
    def has_key(self) -> bool:
        return self._aead is not None

    def _make_scratch(self) -> None:
        buffer = bytearray(_SCRATCH_SIZE)
        self._scratch_view = memoryview(buffer)
        self._opened_into = _from_buffer(buffer)
        self._sealed_into = self._opened_into + LENGTH_PREFIX_SIZE

    def seal_frame(self, frame: bytes) -> bytes:
        """``uvarint(len(frame)) || frame`` as one transport message with its 2-byte
        length: the link's per-frame path, in one call.

        ``frame`` is at most ``SMALL_FRAME_SIZE`` bytes (its prefix has one or two
        bytes; ``LocalProtocolError`` above); the associated data is empty.
        """
        aead = self._aead
        nonce = self.nonce
        if aead is None or nonce >= _MAX_NONCE:
            raise LocalProtocolError("no key, or the Noise nonce is exhausted")
        size = len(frame)
        if size <= _SODIUM_FRAME:
            # Length, uvarint and frame written and sealed in place (libsodium returns 0).
            view = self._scratch_view
            sealed_into = self._sealed_into
            if sealed_into is None:
                self._make_scratch()
                view, sealed_into = self._scratch_view, self._sealed_into
            if size < 0x80:
                _pack_short_head(view, 0, size + 1 + TAG_SIZE, size)
                start = 3
            else:
                _pack_long_head(view, 0, size + 2 + TAG_SIZE, size & 0x7F | 0x80, size >> 7)
                start = 4
            end = start + size
            view[start:end] = frame
            _sodium_encrypt(sealed_into, _NULL, sealed_into, end - LENGTH_PREFIX_SIZE, _NULL, 0,
                            _NULL, _nonce_bytes(nonce), self._key)
            self.nonce = nonce + 1
            return bytes(view[:end + TAG_SIZE])
        if size < 0x80:
            head = _ONE_BYTE[size]
        elif size <= SMALL_FRAME_SIZE:
            head = _two_bytes(size & 0x7F | 0x80 | (size >> 7) << 8)
        else:
            raise LocalProtocolError(f"seal_frame takes at most {SMALL_FRAME_SIZE} bytes")
        ciphertext = aead.encrypt(_nonce_bytes(nonce), head + frame, None)
        self.nonce = nonce + 1
        return _length_prefix(len(ciphertext)) + ciphertext

    def open(self, message: bytes, start: int = LENGTH_PREFIX_SIZE) -> bytes | memoryview:
        """The plaintext of the transport message ``message[start:]`` (by default
        ``seal_frame``'s output: after its 2-byte length; at least a tag long, the
        caller's check) with empty associated data; ``DecryptionError`` if it
        fails authentication.

        A small message's plaintext is a view of this cipher state's buffer,
        valid until its next ``open``: the caller copies what it keeps (the
        frame decoder does), so the plaintext is copied once, not twice.
        """
        aead = self._aead
        nonce = self.nonce
        if aead is None or nonce >= _MAX_NONCE:
            raise LocalProtocolError("no key, or the Noise nonce is exhausted")
        size = len(message) - start
        if size <= _SODIUM_CIPHERTEXT:
            opened_into = self._opened_into
            if opened_into is None:
                self._make_scratch()
                opened_into = self._opened_into
            if _sodium_decrypt(opened_into, _NULL, _NULL, _from_buffer(message) + start, size,
                               _NULL, 0, _nonce_bytes(nonce), self._key):
                raise DecryptionError("Noise message failed authentication")
            self.nonce = nonce + 1
            return self._scratch_view[:size - TAG_SIZE]
        try:
            plaintext = aead.decrypt(_nonce_bytes(nonce), memoryview(message)[start:], None)
        except InvalidTag:
            raise DecryptionError("Noise message failed authentication") from None
        self.nonce = nonce + 1
        return plaintext

    def encrypt(self, associated_data: bytes, plaintext: bytes | memoryview) -> bytes:
        if self._aead is None:
            return bytes(plaintext)
        nonce = self.nonce
        if nonce >= _MAX_NONCE:
            raise LocalProtocolError("Noise nonce exhausted; the link must be closed")
        ciphertext = self._aead.encrypt(_nonce_bytes(nonce), plaintext, associated_data)
        self.nonce = nonce + 1
        return ciphertext

    def decrypt(self, associated_data: bytes | None, ciphertext: bytes | memoryview) -> bytes:
        """Decrypt; ``DecryptionError`` when the message fails authentication."""
        if self._aead is None:
            return bytes(ciphertext)
        nonce = self.nonce
        if nonce >= _MAX_NONCE:
            raise LocalProtocolError("Noise nonce exhausted; the link must be closed")
        try:
            plaintext = self._aead.decrypt(_nonce_bytes(nonce), ciphertext, associated_data)
        except InvalidTag:
            raise DecryptionError("Noise message failed authentication") from None
        self.nonce = nonce + 1
        return plaintext


class SymmetricState:
    """Noise's chaining key and handshake hash."""

    def __init__(self) -> None:
        name = PROTOCOL_NAME
        self.h = name if len(name) == HASH_SIZE else hashlib.sha256(name).digest()
        self.ck = self.h
        self.cipher = CipherState()

    def mix_hash(self, data: bytes) -> None:
        self.h = hashlib.sha256(self.h + data).digest()

    def mix_key(self, input_key_material: bytes) -> None:
        self.ck, temp_key = hkdf2(self.ck, input_key_material)
        self.cipher = CipherState(temp_key)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        try:
            plaintext = self.cipher.decrypt(self.h, ciphertext)
        except DecryptionError:
            raise HandshakeError("handshake message failed authentication") from None
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        key1, key2 = hkdf2(self.ck, b"")
        return CipherState(key1), CipherState(key2)


class HandshakeState(enum.Enum):
    WRITE = "write"
    READ = "read"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeResult:
    remote_peer_id: PeerId
    remote_static_key: bytes
    send_cipher: CipherState
    receive_cipher: CipherState
    handshake_hash: bytes


def sign_static_key(identity: Identity, static_public_key: bytes) -> bytes:
    return identity.sign(STATIC_KEY_SIGNATURE_PREFIX + static_public_key)


def make_handshake_payload(identity: Identity, static_public_key: bytes) -> bytes:
    return codec.encode_handshake_payload(codec.HandshakePayloadFields(
        identity_key=identity.public_key_proto,
        identity_sig=sign_static_key(identity, static_public_key)))


def verify_handshake_payload(payload: bytes, remote_static_key: bytes) -> PeerId:
    """The peer id a handshake payload proves for ``remote_static_key``; else ``HandshakeError``."""
    if len(payload) > MAX_HANDSHAKE_PAYLOAD:
        raise HandshakeError(f"handshake payload of {len(payload)} bytes is too large")
    fields = codec.decode_handshake_payload(payload)
    if fields is None:
        raise HandshakeError("handshake payload is not a NoiseHandshakePayload")
    try:
        identity_key = codec.decode_public_key(fields.identity_key)
    except InvalidPublicKey as exc:
        raise HandshakeError(f"handshake identity key: {exc}") from None
    if not verify_with_public_key(identity_key, STATIC_KEY_SIGNATURE_PREFIX + remote_static_key,
                                  fields.identity_sig):
        raise HandshakeError("handshake payload signature does not match the static key")
    return peer_id_from_public_key(identity_key)


# Message patterns of XX, by message index: the tokens, in order.
_XX_PATTERNS: tuple[tuple[str, ...], ...] = (("e",), ("e", "ee", "s", "es"), ("s", "se"))


class NoiseHandshake:
    """The XX handshake of one side; see the module docstring."""

    def __init__(self, *, initiator: bool, identity: Identity, static_private_key: bytes,
                 ephemeral_private_key: bytes, expected_peer_id: str | None = None) -> None:
        if len(static_private_key) != DH_SIZE or len(ephemeral_private_key) != DH_SIZE:
            raise LocalProtocolError("X25519 private keys have 32 bytes")
        self.initiator = initiator
        self._identity = identity
        self._s = static_private_key
        self._s_pub = x25519_public_key(static_private_key)
        self._e = ephemeral_private_key
        self._e_pub = x25519_public_key(ephemeral_private_key)
        self._re: bytes | None = None
        self._rs: bytes | None = None
        self._expected_peer_id = expected_peer_id
        self._remote_peer_id: PeerId | None = None
        self._symmetric = SymmetricState()
        self._symmetric.mix_hash(b"")  # the empty prologue
        self._message_index = 0
        self.state = HandshakeState.WRITE if initiator else HandshakeState.READ
        self.result: HandshakeResult | None = None

    @property
    def static_public_key(self) -> bytes:
        return self._s_pub

    def _our_payload(self) -> bytes:
        # Message 1 carries nothing; messages 2 and 3 carry the sender's identity.
        if self._message_index == 0:
            return b""
        return make_handshake_payload(self._identity, self._s_pub)

    def _dh_for(self, token: str) -> bytes:
        """The DH of a token: "es" is the initiator's e with the responder's s, and so on."""
        if self._re is None:
            raise HandshakeError("no remote ephemeral key")
        if token == "ee":
            return x25519(self._e, self._re)
        ours_is_ephemeral = (token == "es") == self.initiator
        if ours_is_ephemeral:
            if self._rs is None:
                raise HandshakeError("no remote static key")
            return x25519(self._e, self._rs)
        return x25519(self._s, self._re)

    def write_message(self) -> bytes:
        """The next handshake message to send (without its length prefix)."""
        if self.state is not HandshakeState.WRITE:
            raise LocalProtocolError(f"cannot write a handshake message in state {self.state.name}")
        try:
            message = self._write()
        except HandshakeError:  # a DH with the peer's low-order key
            self.state = HandshakeState.FAILED
            raise
        self._advance()
        return message

    def _write(self) -> bytes:
        symmetric = self._symmetric
        out = bytearray()
        for token in _XX_PATTERNS[self._message_index]:
            if token == "e":
                out += self._e_pub
                symmetric.mix_hash(self._e_pub)
            elif token == "s":
                out += symmetric.encrypt_and_hash(self._s_pub)
            else:
                symmetric.mix_key(self._dh_for(token))
        out += symmetric.encrypt_and_hash(self._our_payload())
        return bytes(out)

    def read_message(self, message: bytes) -> None:
        """Process the peer's next handshake message; ``HandshakeError`` if it is bad."""
        if self.state is not HandshakeState.READ:
            raise LocalProtocolError(f"cannot read a handshake message in state {self.state.name}")
        try:
            self._read(bytes(message))
        except HandshakeError:
            self.state = HandshakeState.FAILED
            raise
        self._advance()

    def _read(self, message: bytes) -> None:
        if len(message) > MAX_NOISE_MESSAGE:
            raise HandshakeError(f"handshake message of {len(message)} bytes exceeds 65535")
        symmetric = self._symmetric
        view = message
        for token in _XX_PATTERNS[self._message_index]:
            if token == "e":
                if len(view) < DH_SIZE:
                    raise HandshakeError("handshake message too short for an ephemeral key")
                self._re, view = view[:DH_SIZE], view[DH_SIZE:]
                symmetric.mix_hash(self._re)
            elif token == "s":
                size = DH_SIZE + TAG_SIZE
                if len(view) < size:
                    raise HandshakeError("handshake message too short for a static key")
                self._rs = symmetric.decrypt_and_hash(view[:size])
                view = view[size:]
            else:
                symmetric.mix_key(self._dh_for(token))
        payload = symmetric.decrypt_and_hash(view)
        if self._message_index == 0:
            if payload:
                raise HandshakeError("the first handshake message must have an empty payload")
            return
        assert self._rs is not None
        remote_peer_id = verify_handshake_payload(payload, self._rs)
        if self._expected_peer_id is not None and remote_peer_id != self._expected_peer_id:
            raise PeerIdMismatch(
                f"dialed {self._expected_peer_id} but the peer proved {remote_peer_id}")
        self._remote_peer_id = remote_peer_id

    def _advance(self) -> None:
        self._message_index += 1
        if self._message_index == len(_XX_PATTERNS):
            self._finish()
            return
        ours_next = (self._message_index % 2 == 0) == self.initiator
        self.state = HandshakeState.WRITE if ours_next else HandshakeState.READ

    def _finish(self) -> None:
        assert self._remote_peer_id is not None and self._rs is not None
        first, second = self._symmetric.split()
        send, receive = (first, second) if self.initiator else (second, first)
        self.result = HandshakeResult(remote_peer_id=self._remote_peer_id,
                                      remote_static_key=self._rs, send_cipher=send,
                                      receive_cipher=receive, handshake_hash=self._symmetric.h)
        self.state = HandshakeState.DONE


class NoiseMessageReader:
    """Reassemble 2-byte-length-prefixed Noise messages from a byte stream.

    Holds at most one incomplete message (``MAX_NOISE_MESSAGE + 2`` bytes).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def has_partial_message(self) -> bool:
        return bool(self._buffer)

    @property
    def held_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        messages: list[bytes] = []
        view = memoryview(data)
        # Fast path: whole messages at the start of ``data`` are sliced out directly.
        while not self._buffer and len(view) >= LENGTH_PREFIX_SIZE:
            end = LENGTH_PREFIX_SIZE + int.from_bytes(view[:LENGTH_PREFIX_SIZE], "big")
            if end > len(view):
                break
            messages.append(bytes(view[LENGTH_PREFIX_SIZE:end]))
            view = view[end:]
        while view:
            if len(self._buffer) < LENGTH_PREFIX_SIZE:
                take = LENGTH_PREFIX_SIZE - len(self._buffer)
                self._buffer += view[:take]
                view = view[take:]
                if len(self._buffer) < LENGTH_PREFIX_SIZE:
                    break
            length = int.from_bytes(self._buffer[:LENGTH_PREFIX_SIZE], "big")
            wanted = LENGTH_PREFIX_SIZE + length - len(self._buffer)
            self._buffer += view[:wanted]
            view = view[wanted:]
            if len(self._buffer) == LENGTH_PREFIX_SIZE + length:
                messages.append(bytes(self._buffer[LENGTH_PREFIX_SIZE:]))
                self._buffer.clear()
        return messages


def with_length_prefix(message: bytes) -> bytes:
    if len(message) > MAX_NOISE_MESSAGE:
        raise LocalProtocolError(f"Noise message of {len(message)} bytes exceeds 65535")
    return len(message).to_bytes(LENGTH_PREFIX_SIZE, "big") + message


class SecureSession:
    """The transport phase: frames in, length-prefixed Noise messages out, and back.

    After a ``RemoteProtocolError`` the session is broken; the link must close.
    """

    def __init__(self, result: HandshakeResult, *,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 reader: NoiseMessageReader | None = None) -> None:
        """``reader`` carries over bytes that arrived with the last handshake message."""
        self.remote_peer_id = result.remote_peer_id
        self.max_frame_size = max_frame_size
        self._send = result.send_cipher
        self._receive = result.receive_cipher
        self._reader = reader if reader is not None else NoiseMessageReader()
        self._frames = FrameDecoder(max_frame_size)
        #: Frames up to this size may take ``seal_frame`` (one message, a short prefix).
        self.small_frame_size = min(SMALL_FRAME_SIZE, max_frame_size)
        #: True while bytes of an incomplete Noise message or frame are held.
        self.has_partial_frame = self._reader.has_partial_message
        #: The one prefixed Noise message carrying a frame of at most
        #: ``small_frame_size`` bytes (the caller's check; larger take
        #: ``encrypt_frame``): the send cipher's own method, one call per frame.
        self.seal_frame: Callable[[bytes], bytes] = self._send.seal_frame

    def encrypt_frame(self, frame: bytes) -> list[bytes]:
        """The prefixed Noise messages that carry one frame (``OversizedFrame`` if too big)."""
        plaintext = frame_with_prefix(frame, self.max_frame_size)
        if len(plaintext) <= MAX_PLAINTEXT:  # one message: no slice, no list comprehension
            ciphertext = self._send.encrypt(b"", plaintext)
            return [len(ciphertext).to_bytes(LENGTH_PREFIX_SIZE, "big") + ciphertext]
        view = memoryview(plaintext)
        return [with_length_prefix(self._send.encrypt(b"", view[start:start + MAX_PLAINTEXT]))
                for start in range(0, len(plaintext), MAX_PLAINTEXT)]

    def receive_data(self, data: bytes) -> list[bytes]:
        """Frames completed by ``data``; raises a ``RemoteProtocolError`` on bad input."""
        size = len(data)
        # Fast path: nothing is held and ``data`` is exactly one whole Noise message
        # (as a memory channel message is): decrypt it where it lies, without the
        # reader's copy.
        if (not self.has_partial_frame and size >= LENGTH_PREFIX_SIZE + TAG_SIZE
                and data[0] << 8 | data[1] == size - LENGTH_PREFIX_SIZE):
            frames = self._frames.feed(self._receive.open(data))
            self.has_partial_frame = self._frames.has_partial_frame
            return frames
        return self.receive_messages(self._reader.feed(data))

    def receive_messages(self, messages: list[bytes]) -> list[bytes]:
        """Frames completed by whole (unprefixed) Noise transport messages."""
        frames: list[bytes] = []
        for message in messages:
            if len(message) < TAG_SIZE:
                raise DecryptionError("Noise transport message shorter than its tag")
            frames += self._frames.feed(self._receive.open(message, 0))
        self.has_partial_frame = self._reader.has_partial_message or self._frames.has_partial_frame
        return frames

    @property
    def held_bytes(self) -> int:
        """Bytes held for the incomplete Noise message and frame (memory a peer pins)."""
        return self._reader.held_bytes + self._frames.held_bytes

    def end_of_stream(self) -> None:
        """``TruncatedFrame`` if the stream ended inside a Noise message or a frame."""
        if self._reader.has_partial_message:
            raise TruncatedFrame("the link ended inside a Noise message")
        self._frames.end_of_stream()
