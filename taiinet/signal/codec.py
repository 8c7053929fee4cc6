"""Signal-layer frames: link frames of protocol 11 <-> validated domain messages.

A signal link carries one item per ``LinkFrame`` (docs/protocol.md section
4.1): a ``SignalMessage`` (protocol ``PROTOCOL_ID``) or the link's own
``Ping``/``Pong``, read by the signal layer's own drivers.

The only module (with :mod:`dht_codec` and :mod:`records`) that touches the
protobuf types.  Signed payloads stay as envelope bytes here; they are
verified by :mod:`records` where they are used.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from taiinet.errors import RemoteProtocolError
from taiinet.signal.dht_codec import decode_dht_pb, encode_dht_pb
from taiinet.signal.dht_types import DhtMessage
from taiinet.signal.errors import MalformedSignalMessage
from taiinet.signal.records import (
    MAX_ADDRESS_CHARS,
    MAX_RECORD_ENVELOPE_BYTES,
    MAX_SERVICE_CHARS,
    MAX_SESSION_ENVELOPE_BYTES,
    SESSION_ID_BYTES,
)
from taiinet.v1 import signal_pb2
from taiinet.wire.errors import InvalidPeerId
from taiinet.wire.framing import decode_link_frame, link_frame
from taiinet.wire.peer_id import MAX_PEER_ID_TEXT, PeerId

MAX_CONTACTS = 32
MAX_REASON_CHARS = 200
MAX_PEER_ID_CHARS = MAX_PEER_ID_TEXT
MAX_RELAY_HOPS = 2
#: Signalling's protocol id in a link frame.
PROTOCOL_ID = 11


class Role(enum.IntEnum):
    PEER = 1
    SIGNALLER = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    role: Role
    listen_url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Register:
    request_id: int
    record: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered:
    request_id: int
    ok: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetContacts:
    request_id: int
    count: int
    local_only: bool
    #: Only peers whose record names this service; empty: any peer.
    service: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Contacts:
    request_id: int
    records: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Relay:
    target_peer: PeerId
    session: bytes
    hops_left: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayFailed:
    target_peer: PeerId
    session_id: bytes
    reason: str
    origin_peer: PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class Dht:
    message: DhtMessage
    sender_address: str


SignalMessage = Hello | Register | Registered | GetContacts | Contacts | Relay | RelayFailed | Dht


def encode_signal(message: SignalMessage) -> bytes:
    """A whole ``Frame`` carrying ``message`` (what goes on the link)."""
    pb = signal_pb2.SignalMessage()
    if isinstance(message, Hello):
        pb.hello.role = int(message.role)  # type: ignore[assignment]
        pb.hello.listen_url = message.listen_url
    elif isinstance(message, Register):
        pb.register.request_id = message.request_id
        pb.register.record = message.record
    elif isinstance(message, Registered):
        pb.registered.request_id = message.request_id
        pb.registered.ok = message.ok
        pb.registered.reason = message.reason[:MAX_REASON_CHARS]
    elif isinstance(message, GetContacts):
        pb.get_contacts.request_id = message.request_id
        pb.get_contacts.count = message.count
        pb.get_contacts.local_only = message.local_only
        pb.get_contacts.service = message.service
    elif isinstance(message, Contacts):
        pb.contacts.request_id = message.request_id
        pb.contacts.records.extend(message.records)
    elif isinstance(message, Relay):
        pb.relay.target_peer = message.target_peer
        pb.relay.session = message.session
        pb.relay.hops_left = message.hops_left
    elif isinstance(message, RelayFailed):
        pb.relay_failed.target_peer = message.target_peer
        pb.relay_failed.session_id = message.session_id
        pb.relay_failed.reason = message.reason[:MAX_REASON_CHARS]
        pb.relay_failed.origin_peer = message.origin_peer
    else:
        pb.dht.CopyFrom(encode_dht_pb(message.message, message.sender_address))
    return link_frame(PROTOCOL_ID, pb.SerializeToString())


def _text(value: str, limit: int, what: str) -> str:
    if len(value) > limit:
        raise MalformedSignalMessage(f"{what} longer than {limit} characters")
    return value


def _peer(value: str, what: str) -> PeerId:
    try:
        return PeerId.parse(value)
    except InvalidPeerId as exc:
        raise MalformedSignalMessage(f"{what} is not a peer id: {exc}") from None


def _blob(value: bytes, limit: int, what: str) -> bytes:
    if len(value) > limit:
        raise MalformedSignalMessage(f"{what} larger than {limit} bytes")
    return value


def decode_signal(data: bytes) -> SignalMessage | None:
    """Decode one frame; None when it is not a signal frame (another layer's).

    Raises ``MalformedSignalMessage`` (a RemoteProtocolError) when malformed.
    """
    try:
        items = decode_link_frame(data)
    except RemoteProtocolError as exc:
        raise MalformedSignalMessage(f"bad frame: {exc}") from None
    if len(items) != 1:
        raise MalformedSignalMessage("a signal link frame holds one item")
    protocol, body = items[0]
    if protocol != PROTOCOL_ID:
        return None
    pb = signal_pb2.SignalMessage()
    try:
        pb.ParseFromString(body)
    except (DecodeError, RuntimeError) as exc:
        raise MalformedSignalMessage(f"undecodable signal message: {exc}") from None
    body = pb.WhichOneof("body")
    if body == "hello":
        if int(pb.hello.role) not in (Role.PEER.value, Role.SIGNALLER.value):
            raise MalformedSignalMessage("hello with an unknown role")
        return Hello(role=Role(pb.hello.role),
                     listen_url=_text(pb.hello.listen_url, MAX_ADDRESS_CHARS, "listen url"))
    if body == "register":
        return Register(request_id=pb.register.request_id, record=_blob(
            pb.register.record, MAX_RECORD_ENVELOPE_BYTES, "record"))
    if body == "registered":
        return Registered(request_id=pb.registered.request_id, ok=pb.registered.ok,
                          reason=_text(pb.registered.reason, MAX_REASON_CHARS, "reason"))
    if body == "get_contacts":
        return GetContacts(request_id=pb.get_contacts.request_id,
                           count=min(pb.get_contacts.count, MAX_CONTACTS),
                           local_only=pb.get_contacts.local_only,
                           service=_text(pb.get_contacts.service, MAX_SERVICE_CHARS, "service"))
    if body == "contacts":
        if len(pb.contacts.records) > MAX_CONTACTS:
            raise MalformedSignalMessage(f"more than {MAX_CONTACTS} contacts")
        return Contacts(request_id=pb.contacts.request_id, records=tuple(
            _blob(r, MAX_RECORD_ENVELOPE_BYTES, "record") for r in pb.contacts.records))
    if body == "relay":
        if pb.relay.hops_left > MAX_RELAY_HOPS:
            raise MalformedSignalMessage(f"relay with more than {MAX_RELAY_HOPS} hops left")
        return Relay(target_peer=_peer(pb.relay.target_peer, "relay target"),
                     session=_blob(pb.relay.session, MAX_SESSION_ENVELOPE_BYTES, "session"),
                     hops_left=pb.relay.hops_left)
    if body == "relay_failed":
        failed = pb.relay_failed
        if len(failed.session_id) != SESSION_ID_BYTES:
            raise MalformedSignalMessage(f"a session id has {SESSION_ID_BYTES} bytes")
        return RelayFailed(target_peer=_peer(failed.target_peer, "relay target"),
                           session_id=failed.session_id,
                           reason=_text(failed.reason, MAX_REASON_CHARS, "reason"),
                           origin_peer=_peer(failed.origin_peer, "relay origin"))
    if body == "dht":
        message, address = decode_dht_pb(pb.dht)
        return Dht(message=message, sender_address=address)
    raise MalformedSignalMessage("signal message without a body")
