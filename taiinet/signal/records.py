# taiinet: sans-io core
"""Signed payloads of the signal layer: peer records and session descriptions.

Both travel as RFC 0002 envelopes (``taiinet.wire.envelope``) and are checked
wherever they are used: the envelope signature, then that the signer is the
peer the payload names, then the payload's own limits.  Protobuf stays here.

* peer record: domain ``taiinet-peer-record``, payload type
  ``/taiinet/peer-record``, payload ``taiinet.v1.PeerRecord``;
* session description: domain ``taiinet-signal-session``, payload type
  ``/taiinet/session``, payload ``taiinet.v1.SessionDescription``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from taiinet.signal.errors import RecordRejected
from taiinet.v1 import signal_pb2
from taiinet.wire.envelope import Envelope
from taiinet.wire.errors import InvalidEnvelope, InvalidPeerId
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

PEER_RECORD_DOMAIN = "taiinet-peer-record"
PEER_RECORD_TYPE = b"/taiinet/peer-record"
SESSION_DOMAIN = "taiinet-signal-session"
SESSION_TYPE = b"/taiinet/session"

MAX_RECORD_ENVELOPE_BYTES = 2048
MAX_ADDRESSES = 8
MAX_ADDRESS_CHARS = 256
#: Latest expiry a record may carry, from now (ms).  Peers ask for much less
#: (``RECORD_LIFETIME``); the slack tolerates clocks that disagree by minutes.
MAX_RECORD_LIFETIME_MS = 300 * 1000
#: Seconds a peer's record lives by default: short, so that the record of a
#: peer that vanished without withdrawing it is gone from every DHT copy
#: within this time.  Renewed every ``RECORD_LIFETIME / RECORD_RENEWALS``.
RECORD_LIFETIME = 90.0
#: Renewals per lifetime: at a third, two renewals in a row may be lost (or
#: the home be slow to answer) before the record lapses.
RECORD_RENEWALS = 3
#: Services a peer record names at most, and the characters of each.
MAX_SERVICES = 8
MAX_SERVICE_CHARS = 32
#: The service of a peer that answers history requests (a seeder, docs/seed.md).
SEEDER_SERVICE = "seeder"
MAX_SESSION_ENVELOPE_BYTES = 32 * 1024
MAX_SDP_CHARS = 24 * 1024
SESSION_ID_BYTES = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerRecord:
    """Where a peer is homed.  ``seq`` only grows; ``expires_unix_ms`` is wall clock."""

    peer_id: PeerId
    signaller_peer_id: PeerId
    signaller_url: str
    addresses: tuple[str, ...]
    seq: int
    expires_unix_ms: int
    #: A tombstone: the peer left; replaces older copies, is never a contact.
    withdrawn: bool = False
    #: Services the peer offers (``SEEDER_SERVICE``: it answers history requests).
    services: tuple[str, ...] = ()


class SessionKind(enum.IntEnum):
    OFFER = 1
    ANSWER = 2
    ICE = 3
    REJECT = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """One signalling message of a session between two peers (SDP text or a reason)."""

    from_peer: PeerId
    to_peer: PeerId
    session_id: bytes
    kind: SessionKind
    sdp: str
    created_unix_ms: int


def seal_peer_record(identity: Identity, record: PeerRecord) -> bytes:
    if record.peer_id != identity.peer_id:
        raise RecordRejected("a peer may sign only its own record")
    pb = signal_pb2.PeerRecord(
        peer_id=record.peer_id, signaller_peer_id=record.signaller_peer_id,
        signaller_url=record.signaller_url, addresses=list(record.addresses), seq=record.seq,
        expires_unix_ms=record.expires_unix_ms, withdrawn=record.withdrawn,
        services=list(record.services))
    return Envelope.seal(identity, PEER_RECORD_DOMAIN, PEER_RECORD_TYPE, pb.SerializeToString(),
                         max_size=MAX_RECORD_ENVELOPE_BYTES)


def open_peer_record(data: bytes, now_unix_ms: int) -> PeerRecord:
    """Verify a signed peer record; ``RecordRejected`` unless it is valid and unexpired.

    A withdrawn record (a tombstone) is valid: callers that want a live peer
    check ``withdrawn``.
    """
    envelope = _open(data, PEER_RECORD_DOMAIN, PEER_RECORD_TYPE, MAX_RECORD_ENVELOPE_BYTES)
    pb = signal_pb2.PeerRecord()
    _parse(pb, envelope.payload)
    if pb.peer_id != envelope.peer_id:
        raise RecordRejected("the record names another peer than its signer")
    if len(pb.addresses) > MAX_ADDRESSES or any(len(a) > MAX_ADDRESS_CHARS
                                                for a in pb.addresses):
        raise RecordRejected(f"at most {MAX_ADDRESSES} addresses of {MAX_ADDRESS_CHARS} chars")
    signaller = _peer(pb.signaller_peer_id, "the record's signaller")
    if len(pb.signaller_url) > MAX_ADDRESS_CHARS:
        raise RecordRejected("the record must name its signaller and a short URL")
    if len(pb.services) > MAX_SERVICES or any(len(s) > MAX_SERVICE_CHARS for s in pb.services):
        raise RecordRejected(f"at most {MAX_SERVICES} services of {MAX_SERVICE_CHARS} chars")
    if pb.expires_unix_ms <= now_unix_ms:
        raise RecordRejected("the record has expired")
    if pb.expires_unix_ms > now_unix_ms + MAX_RECORD_LIFETIME_MS:
        raise RecordRejected("the record's expiry is too far in the future")
    return PeerRecord(peer_id=envelope.peer_id, signaller_peer_id=signaller,
                      signaller_url=pb.signaller_url, addresses=tuple(pb.addresses),
                      seq=pb.seq, expires_unix_ms=pb.expires_unix_ms, withdrawn=pb.withdrawn,
                      services=tuple(pb.services))


def seal_session(identity: Identity, session: SessionDescription) -> bytes:
    if session.from_peer != identity.peer_id:
        raise RecordRejected("a peer may sign only its own session messages")
    pb = signal_pb2.SessionDescription(
        from_peer=session.from_peer, to_peer=session.to_peer, session_id=session.session_id,
        kind=int(session.kind), sdp=session.sdp,  # type: ignore[arg-type]
        created_unix_ms=session.created_unix_ms)
    return Envelope.seal(identity, SESSION_DOMAIN, SESSION_TYPE, pb.SerializeToString(),
                         max_size=MAX_SESSION_ENVELOPE_BYTES)


def open_session(data: bytes) -> SessionDescription:
    """Verify a signed session message; ``RecordRejected`` unless valid."""
    envelope = _open(data, SESSION_DOMAIN, SESSION_TYPE, MAX_SESSION_ENVELOPE_BYTES)
    pb = signal_pb2.SessionDescription()
    _parse(pb, envelope.payload)
    if pb.from_peer != envelope.peer_id:
        raise RecordRejected("the session message names another sender than its signer")
    if len(pb.session_id) != SESSION_ID_BYTES:
        raise RecordRejected(f"a session id has {SESSION_ID_BYTES} bytes")
    if pb.kind not in {k.value for k in SessionKind}:
        raise RecordRejected("unknown session message kind")
    to_peer = _peer(pb.to_peer, "the session's target")
    if len(pb.sdp) > MAX_SDP_CHARS:
        raise RecordRejected("session message with an oversized SDP")
    return SessionDescription(from_peer=envelope.peer_id, to_peer=to_peer,
                              session_id=pb.session_id, kind=SessionKind(pb.kind), sdp=pb.sdp,
                              created_unix_ms=pb.created_unix_ms)


def _open(data: bytes, domain: str, payload_type: bytes, max_size: int) -> Envelope:
    try:
        envelope = Envelope.open(data, domain, max_size=max_size)
    except InvalidEnvelope as exc:
        raise RecordRejected(f"bad envelope: {exc}") from None
    if envelope.payload_type != payload_type:
        raise RecordRejected(f"expected payload type {payload_type!r}")
    return envelope


def _peer(text: str, what: str) -> PeerId:
    try:
        return PeerId.parse(text)
    except InvalidPeerId as exc:
        raise RecordRejected(f"{what} is not a peer id: {exc}") from None


def _parse(pb: signal_pb2.PeerRecord | signal_pb2.SessionDescription, data: bytes) -> None:
    try:
        pb.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise RecordRejected(f"undecodable payload: {exc}") from None
