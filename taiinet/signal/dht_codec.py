"""DHT messages: protobuf bytes <-> validated domain types.

The only module that touches ``taiinet.v1.dht_pb2``.  Decoding enforces every
size limit before the core sees anything, and raises
:class:`MalformedSignalMessage` for whatever is not a well-formed message.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from taiinet.signal.dht_types import (
    Contact,
    DhtMessage,
    DhtRecord,
    FindNode,
    FindValue,
    Nodes,
    Ping,
    Pong,
    Store,
    StoreResult,
    ValueFound,
)
from taiinet.signal.errors import InvalidPeerId, MalformedSignalMessage
from taiinet.v1 import dht_pb2
from taiinet.wire.peer_id import PeerId

MAX_DHT_MESSAGE_BYTES = 16 * 1024
MAX_ADDRESS_CHARS = 256
MAX_CONTACTS_PER_MESSAGE = 20
MAX_RECORD_VALUE_BYTES = 4096
MAX_TTL_MS = 7 * 86_400_000
KEY_BYTES = 32


def _contact_to_pb(contact: Contact, out: dht_pb2.DhtContact) -> None:
    out.peer_id = contact.peer_id
    out.address = contact.address


def _record_to_pb(record: DhtRecord, out: dht_pb2.DhtRecord) -> None:
    out.key = record.key
    out.value = record.value
    out.seq = record.seq
    out.ttl_ms = max(0, min(MAX_TTL_MS, round(record.ttl * 1000)))


def encode_dht_pb(message: DhtMessage, sender_address: str) -> dht_pb2.DhtMessage:
    """The protobuf form of ``message`` (for embedding in a SignalMessage)."""
    pb = dht_pb2.DhtMessage(request_id=message.request_id, sender_address=sender_address)
    if isinstance(message, Ping):
        pb.ping.SetInParent()
    elif isinstance(message, FindNode):
        pb.find_node.target = message.target
    elif isinstance(message, FindValue):
        pb.find_value.key = message.key
    elif isinstance(message, Store):
        _record_to_pb(message.record, pb.store.record)
    elif isinstance(message, Pong):
        pb.pong.SetInParent()
    elif isinstance(message, Nodes):
        pb.nodes.SetInParent()
        for contact in message.contacts:
            _contact_to_pb(contact, pb.nodes.contacts.add())
    elif isinstance(message, ValueFound):
        _record_to_pb(message.record, pb.value.record)
    else:
        pb.store_result.stored = message.stored
    return pb


def encode_dht(message: DhtMessage, sender_address: str) -> bytes:
    return encode_dht_pb(message, sender_address).SerializeToString()


def _check_key(key: bytes, what: str) -> bytes:
    if len(key) != KEY_BYTES:
        raise MalformedSignalMessage(f"{what} must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def _check_address(address: str) -> str:
    if len(address) > MAX_ADDRESS_CHARS:
        raise MalformedSignalMessage(f"address longer than {MAX_ADDRESS_CHARS} characters")
    return address


def _contact_from_pb(pb: dht_pb2.DhtContact) -> Contact:
    try:
        peer_id = PeerId.parse(pb.peer_id)
    except InvalidPeerId as exc:
        raise MalformedSignalMessage(f"contact has a bad peer id: {exc}") from None
    if not pb.address:
        raise MalformedSignalMessage("contact without an address")
    return Contact(peer_id=peer_id, address=_check_address(pb.address))


def _record_from_pb(pb: dht_pb2.DhtRecord) -> DhtRecord:
    if len(pb.value) > MAX_RECORD_VALUE_BYTES:
        raise MalformedSignalMessage(f"record value over {MAX_RECORD_VALUE_BYTES} bytes")
    if pb.ttl_ms == 0 or pb.ttl_ms > MAX_TTL_MS:
        raise MalformedSignalMessage(f"record ttl must be 1..{MAX_TTL_MS} ms")
    return DhtRecord(key=_check_key(pb.key, "record key"), value=pb.value, seq=pb.seq,
                     ttl=pb.ttl_ms / 1000)


def decode_dht_pb(pb: dht_pb2.DhtMessage) -> tuple[DhtMessage, str]:
    """Validate a protobuf DHT message; return it and the sender's address."""
    address = _check_address(pb.sender_address)
    request_id = pb.request_id
    body = pb.WhichOneof("body")
    message: DhtMessage
    if body == "ping":
        message = Ping(request_id=request_id)
    elif body == "find_node":
        message = FindNode(request_id=request_id,
                           target=_check_key(pb.find_node.target, "target"))
    elif body == "find_value":
        message = FindValue(request_id=request_id, key=_check_key(pb.find_value.key, "key"))
    elif body == "store":
        if not pb.store.HasField("record"):
            raise MalformedSignalMessage("STORE without a record")
        message = Store(request_id=request_id, record=_record_from_pb(pb.store.record))
    elif body == "pong":
        message = Pong(request_id=request_id)
    elif body == "nodes":
        if len(pb.nodes.contacts) > MAX_CONTACTS_PER_MESSAGE:
            raise MalformedSignalMessage(f"more than {MAX_CONTACTS_PER_MESSAGE} contacts")
        message = Nodes(request_id=request_id,
                        contacts=tuple(_contact_from_pb(c) for c in pb.nodes.contacts))
    elif body == "value":
        if not pb.value.HasField("record"):
            raise MalformedSignalMessage("VALUE without a record")
        message = ValueFound(request_id=request_id, record=_record_from_pb(pb.value.record))
    elif body == "store_result":
        message = StoreResult(request_id=request_id, stored=pb.store_result.stored)
    else:
        raise MalformedSignalMessage("DHT message without a body")
    return message, address


def decode_dht(data: bytes) -> tuple[DhtMessage, str]:
    """Decode bytes from a signaller; raise MalformedSignalMessage if malformed."""
    if len(data) > MAX_DHT_MESSAGE_BYTES:
        raise MalformedSignalMessage(f"DHT message over {MAX_DHT_MESSAGE_BYTES} bytes")
    pb = dht_pb2.DhtMessage()
    try:
        pb.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise MalformedSignalMessage(f"undecodable DHT message: {exc}") from exc
    return decode_dht_pb(pb)
