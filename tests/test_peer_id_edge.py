"""Every peer id from the network is a ``PeerId`` by the time a codec returns it.

Each decoder, given a message whose id field is not a full valid peer id,
raises its own typed decode error; given anything at all, it returns
validated types or raises that error, nothing else.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import fields, is_dataclass
from typing import Any

import pytest
from hostile_cases import BAD_PEER_IDS, STRANGER, pb_messages, peer_ids
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taiinet.errors import RemoteProtocolError
from taiinet.overlay import codec as overlay_codec
from taiinet.overlay.errors import OverlayDecodeError
from taiinet.pubsub import codec as pubsub_codec
from taiinet.pubsub.errors import PubsubDecodeError
from taiinet.signal import errors as signal_errors
from taiinet.signal.codec import MalformedSignalMessage, decode_signal
from taiinet.signal.dht_codec import decode_dht, decode_dht_pb
from taiinet.signal.records import (
    RecordRejected,
    open_peer_record,
    open_session,
)
from taiinet.v1 import dht_pb2, overlay_pb2, pubsub_pb2, signal_pb2
from taiinet.wire import errors as wire_errors
from taiinet.wire.envelope import Envelope
from taiinet.wire.errors import MalformedFrame
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId
from tests.link_support import item_of, signal_frame
from tests.link_support import parts as link_parts

ALICE = Identity.from_seed(b"a" * 32)
#: Names of domain fields that hold peer ids (or "" where the field is optional).
ID_FIELDS = {"peer", "peers", "origin", "target_peer", "origin_peer", "peer_id",
             "signaller_peer_id", "from_peer", "to_peer", "root"}
OPTIONAL_ID_FIELDS = {"origin", "root"}


def assert_ids_validated(value: Any) -> None:
    """Every peer id field in a decoded value (recursively) holds a ``PeerId``."""
    if isinstance(value, tuple | list):
        for item in value:
            assert_ids_validated(item)
        return
    if not is_dataclass(value):
        return
    for field in fields(value):
        item = getattr(value, field.name)
        if field.name in ID_FIELDS:
            items = item if isinstance(item, tuple) else (item,)
            for one in items:
                if field.name in OPTIONAL_ID_FIELDS and one == "":
                    continue
                assert type(one) is PeerId, f"{type(value).__name__}.{field.name}={one!r}"
        else:
            assert_ids_validated(item)


# --- the type -----------------------------------------------------------------------

def test_one_invalid_peer_id_error() -> None:
    assert signal_errors.InvalidPeerId is wire_errors.InvalidPeerId
    assert issubclass(wire_errors.InvalidPeerId, RemoteProtocolError)


@pytest.mark.parametrize("text", BAD_PEER_IDS)
def test_bad_ids_do_not_parse(text: str) -> None:
    with pytest.raises(wire_errors.InvalidPeerId):
        PeerId.parse(text)
    with pytest.raises(wire_errors.InvalidPeerId):
        PeerId(text)


@given(peer_ids)
def test_valid_ids_parse_to_themselves(peer_id: PeerId) -> None:
    assert PeerId.parse(str(peer_id)) == peer_id
    assert type(PeerId.parse(str(peer_id))) is PeerId
    assert PeerId.from_public_key(peer_id.public_key) == peer_id


@given(st.one_of(st.text(max_size=140), st.binary(max_size=60), st.integers(), st.none()))
def test_any_value_is_a_peer_id_or_invalid(value: object) -> None:
    try:
        parsed = PeerId.parse(value)
    except wire_errors.InvalidPeerId:
        return
    assert parsed == value and len(parsed) == 52


def test_identities_and_envelopes_name_validated_ids() -> None:
    assert type(ALICE.peer_id) is PeerId
    sealed = Envelope.seal(ALICE, "d", b"t", b"p")
    assert type(Envelope.open(sealed, "d").peer_id) is PeerId


# --- each id field, at the codec edge ----------------------------------------------

def _signal(**body: Any) -> bytes:
    pb = signal_pb2.SignalMessage(**body)
    return signal_frame(pb)


SESSION_ID = bytes(16)


@pytest.mark.parametrize("bad", BAD_PEER_IDS)
@pytest.mark.parametrize("build", [
    lambda bad: _signal(relay=signal_pb2.Relay(target_peer=bad, session=b"s", hops_left=1)),
    lambda bad: _signal(relay_failed=signal_pb2.RelayFailed(
        target_peer=bad, session_id=SESSION_ID, origin_peer=STRANGER)),
    lambda bad: _signal(relay_failed=signal_pb2.RelayFailed(
        target_peer=STRANGER, session_id=SESSION_ID, origin_peer=bad)),
    lambda bad: _signal(dht=dht_pb2.DhtMessage(nodes=dht_pb2.DhtNodes(contacts=[
        dht_pb2.DhtContact(peer_id=bad, address="ws://h:1")]))),
], ids=["relay.target_peer", "relay_failed.target_peer", "relay_failed.origin_peer",
        "dht.nodes.contacts.peer_id"])
def test_signal_codec_rejects_bad_ids(build: Any, bad: str) -> None:
    with pytest.raises(MalformedSignalMessage):
        decode_signal(build(bad))


def _overlay(kind: str, **values: Any) -> bytes:
    pb = overlay_pb2.OverlayMessage()
    body = getattr(pb, kind)
    body.SetInParent()
    for name, value in values.items():
        if isinstance(value, list):
            getattr(body, name).extend(value)
        else:
            setattr(body, name, value)
    return pb.SerializeToString()


@pytest.mark.parametrize("bad", BAD_PEER_IDS)
@pytest.mark.parametrize("build", [
    lambda bad: _overlay("forward_join", peer_id=bad, ttl=0),
    lambda bad: _overlay("shuffle", origin=bad, ttl=1, peers=[STRANGER]),
    lambda bad: _overlay("shuffle", origin=STRANGER, ttl=1, peers=[bad]),
    lambda bad: _overlay("shuffle_reply", peers=[STRANGER, bad]),
    lambda bad: _overlay("gossip", message_id=b"m", hops=1, origin=bad),
    lambda bad: _overlay("graft", message_id=b"m", origin=bad),
    lambda bad: _overlay("prune", origin=bad),
], ids=["forward_join.peer_id", "shuffle.origin", "shuffle.peers", "shuffle_reply.peers",
        "gossip.origin", "graft.origin", "prune.origin"])
def test_overlay_codec_rejects_bad_ids(build: Any, bad: str) -> None:
    data = build(bad)
    if bad == "" and _origin_only(data):
        overlay_codec.decode(data)  # an empty origin is "none" (the default tree)
        return
    with pytest.raises(OverlayDecodeError):
        overlay_codec.decode(data)


def _origin_only(data: bytes) -> bool:
    """Whether the only id field of ``data`` is an optional ``origin``."""
    kind = overlay_pb2.OverlayMessage.FromString(data).WhichOneof("body")
    return kind in ("gossip", "graft", "prune")


@pytest.mark.parametrize("bad", [b for b in BAD_PEER_IDS if b and len(b) <= 128])
def test_pubsub_codec_rejects_a_bad_root(bad: str) -> None:
    pb = pubsub_pb2.PubsubMessage(interest=pubsub_pb2.InterestAdvert(root=bad))
    with pytest.raises(PubsubDecodeError):
        pubsub_codec.decode(pb.SerializeToString())


def _session_envelope(to_peer: str) -> bytes:
    payload = signal_pb2.SessionDescription(
        from_peer=ALICE.peer_id, to_peer=to_peer, session_id=SESSION_ID, kind=1, sdp="v=0",
        created_unix_ms=1).SerializeToString()
    return Envelope.seal(ALICE, "taiinet-signal-session", b"/taiinet/session", payload)


def _record_envelope(signaller: str) -> bytes:
    payload = signal_pb2.PeerRecord(
        peer_id=ALICE.peer_id, signaller_peer_id=signaller, signaller_url="ws://h:1", seq=1,
        expires_unix_ms=int(time.time() * 1000) + 60_000).SerializeToString()
    return Envelope.seal(ALICE, "taiinet-peer-record", b"/taiinet/peer-record", payload)


@pytest.mark.parametrize("bad", BAD_PEER_IDS)
def test_signed_sessions_and_records_name_valid_ids(bad: str) -> None:
    """A correctly signed session to "0" was accepted; the signaller then crashed on it."""
    with pytest.raises(RecordRejected):
        open_session(_session_envelope(bad))
    with pytest.raises(RecordRejected):
        open_peer_record(_record_envelope(bad), int(time.time() * 1000))
    opened = open_session(_session_envelope(STRANGER))
    assert type(opened.to_peer) is PeerId and type(opened.from_peer) is PeerId
    record = open_peer_record(_record_envelope(STRANGER), int(time.time() * 1000))
    assert type(record.signaller_peer_id) is PeerId and type(record.peer_id) is PeerId


# --- fuzz: arbitrary messages and bytes ---------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(pb_messages(signal_pb2.SignalMessage))
def test_signal_decoder_on_arbitrary_messages(pb: signal_pb2.SignalMessage) -> None:
    data = signal_frame(pb)
    try:
        message = decode_signal(data)
    except MalformedSignalMessage:
        return
    assert_ids_validated(message)


@FUZZ
@given(pb_messages(dht_pb2.DhtMessage))
def test_dht_decoder_on_arbitrary_messages(pb: dht_pb2.DhtMessage) -> None:
    try:
        message, _ = decode_dht_pb(pb)
    except MalformedSignalMessage:
        return
    assert_ids_validated(message)


@FUZZ
@given(pb_messages(overlay_pb2.OverlayMessage))
def test_overlay_decoder_on_arbitrary_messages(pb: overlay_pb2.OverlayMessage) -> None:
    try:
        parts = link_parts(item_of(10, pb))
    except OverlayDecodeError:
        return
    assert_ids_validated(parts)


@FUZZ
@given(pb_messages(pubsub_pb2.PubsubMessage, depth=4))
def test_pubsub_decoder_on_arbitrary_messages(pb: pubsub_pb2.PubsubMessage) -> None:
    try:
        message = pubsub_codec.decode(pb.SerializeToString())
    except PubsubDecodeError:
        return
    assert_ids_validated(message)


@FUZZ
@given(pb_messages(signal_pb2.SessionDescription), pb_messages(signal_pb2.PeerRecord))
def test_signed_payloads_of_arbitrary_content(session: signal_pb2.SessionDescription,
                                              record: signal_pb2.PeerRecord) -> None:
    """Whatever a signer puts in a session or record, opening it is valid or RecordRejected."""
    for domain, kind, payload, opener in (
            ("taiinet-signal-session", b"/taiinet/session", session, open_session),
            ("taiinet-peer-record", b"/taiinet/peer-record", record,
             lambda data: open_peer_record(data, 0))):
        sealed = Envelope.seal(ALICE, domain, kind, payload.SerializeToString())
        try:
            opened = opener(sealed)  # type: ignore[operator]
        except RecordRejected:
            continue
        assert_ids_validated(opened)


@FUZZ
@given(st.binary(max_size=400))
def test_every_decoder_on_arbitrary_bytes(data: bytes) -> None:
    for decode, error in ((decode_signal, MalformedSignalMessage),
                          (link_parts, (OverlayDecodeError, MalformedFrame)),
                          (overlay_codec.decode, OverlayDecodeError),
                          (pubsub_codec.decode, PubsubDecodeError),
                          (lambda d: decode_dht(d)[0], MalformedSignalMessage),
                          (open_session, RecordRejected),
                          (lambda d: open_peer_record(d, 0), RecordRejected)):
        with contextlib.suppress(error):
            assert_ids_validated(decode(data))  # type: ignore[operator]
