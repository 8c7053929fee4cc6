"""Stream announcements: what a broadcaster signs so viewers can find and trust its stream.

An announcement is a ``StreamAnnouncement`` protobuf in a signed envelope
(``taiinet.wire.envelope``, domain ``taiinet-stream``).  The signer must be
the announced broadcaster: it is the root of the relay tree, so a viewer
that checked the envelope knows whose tree it joins.  The stream id is the
SHA-256 of the envelope's bytes; every tree control message names it.
Announcements are published as pubsub documents (docs/stream.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from taiinet.stream import codec
from taiinet.stream.codec import Track
from taiinet.stream.errors import StreamDecodeError, StreamUsageError
from taiinet.wire.envelope import Envelope, InvalidEnvelope
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

DOMAIN = "taiinet-stream"
PAYLOAD_TYPE = b"/taiinet/stream-announcement/1"
#: Longest stream name, in UTF-8 bytes.
MAX_NAME_BYTES = 128
#: Most signaller URLs in an announcement, and the longest one.
MAX_SIGNALLERS = 8
MAX_URL_LENGTH = 256
#: Largest announcement envelope accepted.
MAX_ANNOUNCEMENT_SIZE = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class Announcement:
    name: str
    broadcaster: PeerId
    #: Unix milliseconds when the stream started.
    started: int
    #: Increases with every re-announcement of the same stream.
    seq: int
    signallers: tuple[str, ...] = ()
    #: The media tracks (codec parameters a viewer needs to decode or mux).
    tracks: tuple[Track, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedAnnouncement:
    announcement: Announcement
    #: The envelope's bytes, relayed unchanged.
    raw: bytes

    @property
    def stream_id(self) -> bytes:
        return hashlib.sha256(self.raw).digest()


def _check(a: Announcement) -> None:
    if not 0 < len(a.name.encode("utf-8")) <= MAX_NAME_BYTES:
        raise StreamUsageError(f"a stream name has 1..{MAX_NAME_BYTES} bytes")
    if len(a.signallers) > MAX_SIGNALLERS or any(
            not 0 < len(url) <= MAX_URL_LENGTH for url in a.signallers):
        raise StreamUsageError(f"at most {MAX_SIGNALLERS} signaller URLs of 1..{MAX_URL_LENGTH}")
    if not 0 <= a.started < 1 << 64 or not 0 <= a.seq < 1 << 64:
        raise StreamUsageError("started and seq are unsigned 64-bit numbers")


def sign(identity: Identity, announcement: Announcement) -> SignedAnnouncement:
    """Seal ``announcement``; the identity must be the broadcaster's."""
    if identity.peer_id != announcement.broadcaster:
        raise StreamUsageError("only the broadcaster signs its stream's announcement")
    _check(announcement)
    payload = codec.encode_announcement(announcement.name, announcement.broadcaster,
                                        announcement.started, announcement.seq,
                                        announcement.signallers, announcement.tracks)
    raw = Envelope.seal(identity, DOMAIN, PAYLOAD_TYPE, payload, max_size=MAX_ANNOUNCEMENT_SIZE)
    return SignedAnnouncement(announcement=announcement, raw=raw)


def verify(data: bytes) -> SignedAnnouncement:
    """Open and check an announcement envelope; ``StreamDecodeError`` if anything is off."""
    try:
        envelope = Envelope.open(data, DOMAIN, max_size=MAX_ANNOUNCEMENT_SIZE,
                                 payload_type=PAYLOAD_TYPE)
    except InvalidEnvelope as exc:
        raise StreamDecodeError(f"stream announcement: {exc}") from None
    name, broadcaster, started, seq, signallers, tracks = codec.decode_announcement(
        envelope.payload)
    if broadcaster != envelope.peer_id:
        raise StreamDecodeError("stream announcement not signed by its broadcaster")
    announcement = Announcement(name=name, broadcaster=broadcaster, started=started,
                                seq=seq, signallers=signallers, tracks=tracks)
    try:
        _check(announcement)
    except StreamUsageError as exc:
        raise StreamDecodeError(f"stream announcement: {exc}") from None
    return SignedAnnouncement(announcement=announcement, raw=envelope.raw)
