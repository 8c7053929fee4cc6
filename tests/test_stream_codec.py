"""The stream layer's wire form: round trips, limits, fuzzing, signed announcements."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taiinet.sim.network import sim_peer_ids
from taiinet.stream import announce, codec
from taiinet.stream.errors import StreamDecodeError, StreamUsageError
from taiinet.stream.messages import (
    MAX_DEPTH,
    Adopt,
    Heartbeat,
    Join,
    Leave,
    Redirect,
    Reparent,
    StallReport,
    Status,
    TreeMessage,
)
from taiinet.v1 import stream_pb2
from taiinet.wire.identity import Identity

PEERS = sim_peer_ids(70)
SID = bytes(range(32))

MESSAGES: list[TreeMessage] = [
    Join(slots=0), Join(slots=64),
    Adopt(path=tuple(PEERS[:3])),
    Redirect(candidates=()), Redirect(candidates=tuple(PEERS[3:7])),
    Leave(), Leave(evicted=True),
    Reparent(to=PEERS[1]),
    Heartbeat(seq=-1, path=(), standby=()),
    Heartbeat(seq=(1 << 63) - 1, path=tuple(PEERS[:MAX_DEPTH]), standby=tuple(PEERS[:8])),
    Status(slots=4, children=tuple(PEERS[:4]), free=1 << 20, seq=7, recommend=(PEERS[2],)),
    StallReport(parent=PEERS[5], seq=99),
    Join(slots=2, have=1234), Join(slots=3, have=9, free_slot_only=True),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: TreeMessage) -> None:
    assert codec.decode(codec.encode(SID, message)) == (SID, message)


def raw(**fields: object) -> bytes:
    return stream_pb2.StreamMessage(stream_id=SID, **fields).SerializeToString()  # type: ignore[arg-type]


PB = stream_pb2.StreamMessage


@pytest.mark.parametrize("data", [
    stream_pb2.StreamMessage(stream_id=b"short", leave=PB.Leave()).SerializeToString(),
    raw(),  # no body
    raw(join=PB.Join(slots=65)),
    raw(adopt=PB.Adopt(path=[])),
    raw(adopt=PB.Adopt(path=PEERS[:MAX_DEPTH + 1])),
    raw(redirect=PB.Redirect(candidates=PEERS[:9])),
    raw(redirect=PB.Redirect(candidates=[PEERS[0], PEERS[0]])),
    raw(reparent=PB.Reparent(to="not-a-peer-id")),
    raw(heartbeat=PB.Heartbeat(seq=-2)),
    raw(status=PB.Status(free=(1 << 20) + 1)),
    raw(stall_report=PB.StallReport(parent="")),
    raw(join=PB.Join(slots=1, have=-2)),
    raw(chunk=PB.Chunk(seq=1, payload=b"x" * (codec.MAX_CHUNK_PAYLOAD + 1))),
    raw(seal=PB.Seal(first=0, hashes=[], signature=bytes(64))),
    raw(seal=PB.Seal(first=0, hashes=[bytes(31)], signature=bytes(64))),
    raw(seal=PB.Seal(first=0, hashes=[bytes(32)] * 257, signature=bytes(64))),
    raw(seal=PB.Seal(first=0, hashes=[bytes(32)], signature=bytes(63))),
    b"\xff" * 10,
    b"\x00" * (codec.MAX_MESSAGE_SIZE + 1),
])
def test_malformed_messages_raise_the_remote_error(data: bytes) -> None:
    with pytest.raises(StreamDecodeError):
        codec.decode(data)


@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_the_remote_error(data: bytes) -> None:
    with contextlib.suppress(StreamDecodeError):
        codec.decode(data)
    with contextlib.suppress(StreamDecodeError):
        codec.CODEC.decode(data)


IDENTITY = Identity.from_seed(b"\x07" * 32)


def announcement(**changes: object) -> announce.Announcement:
    fields: dict[str, object] = {"name": "launch", "broadcaster": IDENTITY.peer_id,
                                 "started": 1_700_000_000_000, "seq": 1,
                                 "signallers": ("ws://127.0.0.1:9000",)}
    fields.update(changes)
    return announce.Announcement(**fields)  # type: ignore[arg-type]


def test_an_announcement_signed_by_its_broadcaster_verifies() -> None:
    signed = announce.sign(IDENTITY, announcement())
    opened = announce.verify(signed.raw)
    assert opened.announcement == announcement()
    assert opened.stream_id == signed.stream_id and len(opened.stream_id) == 32


def test_only_the_broadcaster_may_sign_and_tampering_is_caught() -> None:
    other = Identity.from_seed(b"\x08" * 32)
    with pytest.raises(StreamUsageError):
        announce.sign(other, announcement())
    with pytest.raises(StreamUsageError):
        announce.sign(IDENTITY, announcement(name=""))
    signed = bytearray(announce.sign(IDENTITY, announcement()).raw)
    signed[-1] ^= 1
    with pytest.raises(StreamDecodeError):
        announce.verify(bytes(signed))


def test_an_announcement_naming_another_broadcaster_is_refused() -> None:
    from taiinet.wire.envelope import Envelope

    payload = stream_pb2.StreamAnnouncement(name="x", broadcaster=PEERS[1]).SerializeToString()
    raw_env = Envelope.seal(IDENTITY, announce.DOMAIN, announce.PAYLOAD_TYPE, payload)
    with pytest.raises(StreamDecodeError, match="not signed by its broadcaster"):
        announce.verify(raw_env)
