"""A stranger sends a real ``taiinet signal`` process every message variant with
every field at an invalid extreme; the process lives and still serves.

The cases come from the protobuf definitions (``hostile_cases.extreme_cases``),
so a new SignalMessage or DHT variant is covered without editing this test;
crafted ones add what needs a signature: sessions and records that are
correctly signed but name an invalid peer, are signed by someone else, or
carry another payload type.  Each case runs on its own secure WebSocket link
(the project's own dialer), as a PEER and as a SIGNALLER, then asks for
contacts: the answer comes or the link is closed; either way the process must
still be running.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import trio
from hostile_cases import BAD_PEER_IDS, STRANGER, extreme_cases
from test_signal_loopback import start_signaller

from taiinet.errors import ConnectionClosed, RemoteProtocolError
from taiinet.signal.client import open_signal_client
from taiinet.signal.codec import (
    Contacts,
    GetContacts,
    Hello,
    Register,
    Relay,
    Role,
    decode_signal,
    encode_signal,
)
from taiinet.signal.records import (
    PEER_RECORD_DOMAIN,
    PEER_RECORD_TYPE,
    SESSION_DOMAIN,
    SESSION_TYPE,
)
from taiinet.signal.transport import WebSocketSignalTransport
from taiinet.transport.errors import DialError
from taiinet.v1 import signal_pb2
from taiinet.wire.envelope import Envelope
from taiinet.wire.identity import Identity
from tests.link_support import signal_frame

MALLORY = Identity.from_seed(b"m" * 32)
ALICE = Identity.from_seed(b"a" * 32)
#: Largest hostile frame sent (WebSocket messages are bounded below a megabyte).
MAX_CASE_FRAME = 60_000
#: Hostile links open at once.
PARALLEL = 8
PROBE_ID = 4242


def _signal_frame(pb: signal_pb2.SignalMessage) -> bytes:
    return signal_frame(pb)


def _session(to_peer: str, *, signer: Identity = MALLORY, from_peer: str | None = None,
             payload_type: bytes = SESSION_TYPE) -> bytes:
    payload = signal_pb2.SessionDescription(
        from_peer=signer.peer_id if from_peer is None else from_peer, to_peer=to_peer,
        session_id=bytes(16), kind=1, sdp="v=0", created_unix_ms=1).SerializeToString()
    return Envelope.seal(signer, SESSION_DOMAIN, payload_type, payload)


def _record(*, signaller: str, signer: Identity = MALLORY, peer: str | None = None,
            seq: int = 1, expires_ms: int | None = None,
            payload_type: bytes = PEER_RECORD_TYPE) -> bytes:
    now = int(time.time() * 1000)
    payload = signal_pb2.PeerRecord(
        peer_id=signer.peer_id if peer is None else peer, signaller_peer_id=signaller,
        signaller_url="ws://127.0.0.1:1", seq=seq,
        expires_unix_ms=now + 60_000 if expires_ms is None else expires_ms).SerializeToString()
    return Envelope.seal(signer, PEER_RECORD_DOMAIN, payload_type, payload)


def _flip(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


def crafted_cases(home: str) -> Iterator[tuple[str, bytes]]:
    """Signed payloads that are well formed but lie, one way each."""
    for bad in BAD_PEER_IDS:
        yield f"relay to {bad[:20]!r} signed for it", encode_signal(Relay(
            target_peer=bad, session=_session(bad), hops_left=1))  # type: ignore[arg-type]
        for hops in (0, 1, 2):
            pb = signal_pb2.SignalMessage(relay=signal_pb2.Relay(
                target_peer=bad, session=_session(bad), hops_left=hops))
            yield f"raw relay to {bad[:20]!r} hops {hops}", _signal_frame(pb)
        yield f"register naming signaller {bad[:20]!r}", encode_signal(Register(
            request_id=1, record=_record(signaller=bad)))
        pb = signal_pb2.SignalMessage(relay_failed=signal_pb2.RelayFailed(
            target_peer=bad, session_id=bytes(16), reason="x", origin_peer=bad))
        yield f"relay failed naming {bad[:20]!r}", _signal_frame(pb)
    session = _session(STRANGER)
    yield "relay with a bad signature", encode_signal(Relay(
        target_peer=STRANGER, session=_flip(session), hops_left=0))
    yield "relay of someone else's session", encode_signal(Relay(
        target_peer=STRANGER, session=_session(STRANGER, signer=ALICE), hops_left=0))
    yield "relay whose session names another sender", encode_signal(Relay(
        target_peer=STRANGER, session=_session(STRANGER, from_peer=ALICE.peer_id), hops_left=0))
    yield "relay of a record instead of a session", encode_signal(Relay(
        target_peer=STRANGER, session=_session(STRANGER, payload_type=PEER_RECORD_TYPE),
        hops_left=0))
    yield "relay to a stranger", encode_signal(Relay(
        target_peer=STRANGER, session=session, hops_left=0))
    record = _record(signaller=home)
    yield "register with a bad signature", encode_signal(Register(request_id=1,
                                                                  record=_flip(record)))
    yield "register someone else's record", encode_signal(Register(
        request_id=1, record=_record(signaller=home, signer=ALICE)))
    yield "register a record naming another peer", encode_signal(Register(
        request_id=1, record=_record(signaller=home, peer=ALICE.peer_id)))
    yield "register an expired record", encode_signal(Register(
        request_id=1, record=_record(signaller=home, expires_ms=1)))
    yield "register a record from the far future", encode_signal(Register(
        request_id=1, record=_record(signaller=home, expires_ms=(1 << 63) - 1)))
    yield "register a session instead of a record", encode_signal(Register(
        request_id=1, record=_record(signaller=home, payload_type=SESSION_TYPE)))
    yield "register with the largest sequence number", encode_signal(Register(
        request_id=(1 << 64) - 1, record=_record(signaller=home, seq=(1 << 64) - 1)))


def all_cases(home: str) -> list[tuple[str, bytes]]:
    cases = [(label, _signal_frame(pb))
             for label, pb in extreme_cases(signal_pb2.SignalMessage, big_bytes=20_000)]
    cases += crafted_cases(home)
    return [(label, frame) for label, frame in cases if len(frame) <= MAX_CASE_FRAME]


async def probe(url: str, role: Role, frame: bytes) -> bool:
    """One hostile frame on a fresh link, then a contacts request: whether it was
    answered (else the signaller closed the link; either ending is fine)."""
    transport = WebSocketSignalTransport()
    try:
        async with transport.dial(url, MALLORY) as link:
            await link.send(encode_signal(Hello(role=role, listen_url="ws://127.0.0.1:9")))
            await link.send(frame)
            await link.send(encode_signal(GetContacts(
                request_id=PROBE_ID, count=4, local_only=role is Role.SIGNALLER)))
            while True:
                reply = decode_signal(await link.receive())
                if isinstance(reply, Contacts) and reply.request_id == PROBE_ID:
                    return True
    except (ConnectionClosed, RemoteProtocolError, DialError):
        return False  # DialError: the process is gone (the caller checks it)


async def test_every_signal_message_at_every_extreme_leaves_the_signaller_running() -> None:
    process, home, url = await start_signaller([])
    try:
        cases = all_cases(home)
        variants = {f.name for f in signal_pb2.SignalMessage.DESCRIPTOR.oneofs_by_name[
            "body"].fields}
        assert all(any(f"SignalMessage.{v}" in label for label, _ in cases) for v in variants)
        limiter = trio.CapacityLimiter(PARALLEL)
        dead: list[str] = []
        answered: list[bool] = []

        async def one(label: str, role: Role, frame: bytes) -> None:
            async with limiter:
                if dead:
                    return
                with trio.fail_after(20):
                    answered.append(await probe(url, role, frame))
                if process.poll() is not None:
                    dead.append(f"{label} as {role.name}")

        with trio.fail_after(50):
            async with trio.open_nursery() as nursery:
                for label, frame in cases:
                    for role in (Role.PEER, Role.SIGNALLER):
                        nursery.start_soon(one, label, role, frame)
        assert not dead, f"the signaller exited while these cases ran: {dead}"
        assert process.poll() is None
        # Both endings happened: the cases reached the signaller's checks.
        assert any(answered) and not all(answered)

        async with open_signal_client(ALICE, [url], rng=random.Random(1)) as alice:
            with trio.fail_after(10):
                await alice.wait_registered()
            async with open_signal_client(Identity.from_seed(b"b" * 32), [url],
                                          rng=random.Random(2)) as bob:
                with trio.fail_after(10):
                    await bob.wait_registered()
                    contacts = await bob.contacts()
        assert ALICE.peer_id in {record.peer_id for record in contacts}
        assert process.poll() is None
    finally:
        process.kill()
        await process.wait()
