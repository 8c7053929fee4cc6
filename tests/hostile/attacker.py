"""A small attacker: speaks TaiiNet with the project's own code, then breaks the rules.

The honest parts (TCP, the WebSocket upgrade, Noise XX, frame and envelope
encoding) are the project's; the dishonest parts are explicit here:

* ``raw_upgrade`` / ``rst_close``: a hand-written HTTP upgrade on a bare
  socket, and a close that resets the connection (``SO_LINGER`` 0);
* ``secure_connect``: ``connect_websocket`` with a chosen source address
  (127.0.0.0/8 is all loopback on Linux, so one machine can look like many
  hosts: ``source_address(i)``) and no writer task;
* ``send_stream_bytes``: encrypts arbitrary bytes of the plaintext frame
  stream (a frame cut short, a 4 GiB length prefix, garbage) with the link's
  own Noise keys;
* ``signal_link``: a link to a signaller greeted as a peer (registered) or as
  a signaller, to send crafted ``SignalMessage`` frames;
* ``learn_node_url`` / ``overlay_link``: the WebSocket URL a node hands out
  in answer to an offer, and a Noise link to it under any identity, to send
  crafted overlay frames;
* frame builders for crafted relays, records, DHT stores, overlay messages
  and signed documents of any size.

Attack traffic comes from ``ATTACKER_HOST`` (and its neighbours), never from
127.0.0.1, so that per-address budgets can tell it from the legitimate pair.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import socket
import struct
import time
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import trio

from taiinet.overlay import codec as overlay_codec
from taiinet.overlay.messages import Gossip, OverlayMessage
from taiinet.pubsub.documents import DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE
from taiinet.pubsub.query import DocumentLimits, document_to_value
from taiinet.signal.client import open_signal_client
from taiinet.signal.codec import (
    Dht,
    Hello,
    Register,
    Registered,
    Relay,
    Role,
    SignalMessage,
    decode_signal,
    encode_signal,
)
from taiinet.signal.dht_types import DhtMessage, DhtRecord, FindNode, Store
from taiinet.signal.ids import id_bytes, node_id
from taiinet.signal.records import (
    MAX_RECORD_LIFETIME_MS,
    PEER_RECORD_DOMAIN,
    PEER_RECORD_TYPE,
    SESSION_DOMAIN,
    SESSION_TYPE,
)
from taiinet.transport.connection import Connection
from taiinet.transport.noise import MAX_PLAINTEXT, with_length_prefix
from taiinet.transport.secure import secure_channel
from taiinet.transport.websocket import SUBPROTOCOL, WEBSOCKET_MAX_MESSAGE_SIZE
from taiinet.transport.wsproto_channel import connect_websocket_stream
from taiinet.v1 import pubsub_pb2, signal_pb2
from taiinet.wire.envelope import Envelope
from taiinet.wire.framing import encode_uvarint, join_items
from taiinet.wire.identity import Identity
from taiinet.wire.keepalive import encode_ping, encode_pong

#: First loopback address the attacker sends from (never the legit pair's 127.0.0.1).
ATTACKER_HOST = "127.66.0.1"
#: Peer ids that are not peer ids: a base58 "0", the finding's id, empty-ish and odd ones.
BAD_PEER_IDS = (
    "0OIl-not-a-peer",
    "12D3KooW0000000000000000000000000000000000000000000000",
    "0",
    "bafzaa-not-base32!",
    "Qm" + "1" * 44,
    "\u00e9\u00e9\u00e9",
    "x" * 120,
)
#: The WebSocket offer text nodes answer with their URL (``taiinet.node.links``).
WS_OFFER_PREFIX = "taiinet-ws:"
#: Seconds any single attacker step may take before it gives up.
STEP_TIMEOUT = 10.0


def source_address(index: int) -> str:
    """The ``index``-th attacker loopback address (127.66.x.y)."""
    return f"127.66.{1 + index // 250}.{1 + index % 250}"


def host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    return parts.hostname, parts.port


def unix_ms() -> int:
    return math.floor(time.time() * 1000)


# -- bare sockets ---------------------------------------------------------------

def upgrade_request(host: str, port: int) -> bytes:
    key = secrets.token_bytes(16).hex()[:22] + "=="
    return (f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
            ).encode()


async def raw_connect(url: str, source: str = ATTACKER_HOST) -> trio.SocketStream:
    host, port = host_port(url)
    with trio.fail_after(STEP_TIMEOUT):
        return await trio.open_tcp_stream(host, port, local_address=source)


async def raw_upgrade(url: str, source: str = ATTACKER_HOST, *,
                      wait_answer: bool = True) -> trio.SocketStream:
    """A TCP connection with an upgrade request sent (and, by default, the answer read).

    Raises ``OSError`` if the server closed the connection instead of answering.
    """
    stream = await raw_connect(url, source)
    host, port = host_port(url)
    try:
        await stream.send_all(upgrade_request(host, port))
        if wait_answer:
            answer = b""
            with trio.fail_after(STEP_TIMEOUT):
                while b"\r\n\r\n" not in answer:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        raise OSError("closed before answering the upgrade")
                    answer += chunk
    except BaseException:
        rst_close(stream)
        raise
    return stream


async def serve_tarpit(*, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
                       ) -> None:
    """Accept TCP connections at ``ws://ATTACKER_HOST:port`` and never answer them.

    ``task_status.started`` gets the URL; runs until cancelled.
    """
    listeners = await trio.open_tcp_listeners(0, host=ATTACKER_HOST)
    port = listeners[0].socket.getsockname()[1]
    held: list[trio.SocketStream] = []

    async def hold(stream: trio.SocketStream) -> None:
        held.append(stream)
        await trio.sleep_forever()

    task_status.started(f"ws://{ATTACKER_HOST}:{port}")
    await trio.serve_listeners(hold, listeners)


def rst_close(stream: trio.SocketStream) -> None:
    """Close with a TCP reset: ``SO_LINGER`` on, timeout 0."""
    with suppress(OSError):
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


# -- secure links -------------------------------------------------------------

@asynccontextmanager
async def secure_connect(url: str, identity: Identity | None = None, *,
                         source: str = ATTACKER_HOST,
                         expected_peer_id: str | None = None) -> AsyncIterator[Connection]:
    """A Noise link to ``url`` from ``source`` (TCP, WebSocket upgrade, Noise XX)."""
    identity = identity or Identity.generate()
    host, port = host_port(url)
    stream = await raw_connect(url, source)
    try:
        with trio.fail_after(STEP_TIMEOUT):
            channel = await connect_websocket_stream(stream, f"{host}:{port}", "/", SUBPROTOCOL)
            connection = await secure_channel(channel, identity, initiator=True,
                                              expected_peer_id=expected_peer_id)
        try:
            yield connection
        finally:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + 1):
                await connection.aclose()
    finally:
        rst_close(stream)


async def send_stream_bytes(connection: Connection, plaintext: bytes) -> None:
    """Send ``plaintext`` as the next bytes of the link's frame stream, whatever they are.

    Reaches into the ``SecureConnection``: its Noise send state and channel.
    """
    session = connection._session  # type: ignore[attr-defined]
    channel = connection._channel  # type: ignore[attr-defined]
    for start in range(0, len(plaintext), MAX_PLAINTEXT):
        chunk = plaintext[start:start + MAX_PLAINTEXT]
        message = with_length_prefix(session._send.encrypt(b"", chunk))
        for cut in range(0, len(message), WEBSOCKET_MAX_MESSAGE_SIZE):
            await channel.send_message(message[cut:cut + WEBSOCKET_MAX_MESSAGE_SIZE])


async def drain(connection: Connection) -> None:
    """Read and drop everything until the link closes (so the victim never blocks on us)."""
    try:
        while True:
            await connection.receive()
    except Exception:
        return


async def wait_closed(connection: Connection, timeout: float) -> bool:
    """Read until the victim closes the link; True if it did within ``timeout``."""
    with trio.move_on_after(timeout):
        await drain(connection)
        return True
    return False


# -- signalling -----------------------------------------------------------------

def record_envelope(identity: Identity, *, home: str, home_url: str,
                    lifetime_ms: int = MAX_RECORD_LIFETIME_MS - 5000,
                    seq: int | None = None) -> bytes:
    """A signed peer record; by default as long-lived as signallers accept."""
    pb = signal_pb2.PeerRecord(peer_id=identity.peer_id, signaller_peer_id=home,
                               signaller_url=home_url, seq=seq or unix_ms(),
                               expires_unix_ms=unix_ms() + lifetime_ms)
    return Envelope.seal(identity, PEER_RECORD_DOMAIN, PEER_RECORD_TYPE,
                         pb.SerializeToString())


def session_envelope(identity: Identity, to_peer: str, sdp: str = "x", kind: int = 1) -> bytes:
    """A signed session message to any ``to_peer`` text at all (no local checks)."""
    pb = signal_pb2.SessionDescription(from_peer=identity.peer_id, to_peer=to_peer,
                                       session_id=secrets.token_bytes(16), kind=kind,  # type: ignore[arg-type]
                                       sdp=sdp, created_unix_ms=unix_ms())
    return Envelope.seal(identity, SESSION_DOMAIN, SESSION_TYPE, pb.SerializeToString())


def relay_frame(identity: Identity, target: str, sdp: str = "x") -> bytes:
    return encode_signal(Relay(target_peer=target, session=session_envelope(
        identity, target, sdp), hops_left=0))


def store_frame(sender_url: str, record: bytes, peer_id: str, seq: int,
                request_id: int) -> bytes:
    key = id_bytes(node_id(peer_id))
    return encode_signal(Dht(message=Store(request_id=request_id, record=DhtRecord(
        key=key, value=record, seq=seq, ttl=3600.0)), sender_address=sender_url))


def find_node_frame(sender_url: str, request_id: int) -> bytes:
    message: DhtMessage = FindNode(request_id=request_id, target=secrets.token_bytes(32))
    return encode_signal(Dht(message=message, sender_address=sender_url))


async def next_signal(connection: Connection) -> SignalMessage:
    while True:
        message = decode_signal(await connection.receive())
        if message is not None:
            return message


@asynccontextmanager
async def signal_link(url: str, identity: Identity | None = None, *, role: Role = Role.PEER,
                      listen_url: str = "", source: str = ATTACKER_HOST,
                      register: bool = True) -> AsyncIterator[Connection]:
    """A link to the signaller at ``url`` greeted as ``role``; a peer registers itself."""
    identity = identity or Identity.generate()
    async with secure_connect(url, identity, source=source) as connection:
        await connection.send(encode_signal(Hello(role=role, listen_url=listen_url)))
        with trio.fail_after(STEP_TIMEOUT):
            hello = await next_signal(connection)
            assert isinstance(hello, Hello), hello
            if role is Role.PEER and register:
                await connection.send(encode_signal(Register(request_id=1, record=record_envelope(
                    identity, home=connection.remote_peer_id, home_url=url))))
                while not isinstance(answer := await next_signal(connection), Registered):
                    pass
                assert answer.ok, answer
        yield connection


async def learn_node_url(signaller_url: str, node_peer_id: str) -> str:
    """The WebSocket URL a node gives to whoever offers it a WebSocket link."""
    async with open_signal_client(Identity.generate(), [signaller_url]) as client:
        with trio.fail_after(STEP_TIMEOUT):
            await client.wait_registered()
        answer = await client.send_offer(node_peer_id, WS_OFFER_PREFIX + "ws://127.0.0.1:9")
    assert answer.startswith(WS_OFFER_PREFIX), answer
    return answer[len(WS_OFFER_PREFIX):]


# -- overlay and documents ----------------------------------------------------

def overlay_frame(message: OverlayMessage) -> bytes:
    return overlay_codec.encode_frame(message)


def batch_frame(messages: Sequence[OverlayMessage]) -> bytes:
    return join_items([overlay_frame(m) for m in messages])


def ping_frame(nonce: int = 0) -> bytes:
    return encode_ping(nonce)


def pong_frame(nonce: int = 0) -> bytes:
    return encode_pong(nonce)


#: Limits for sealing attack documents: as large as the wire allows.
LAX_LIMITS = DocumentLimits(max_depth=64, max_nodes=1_000_000, max_bytes=1 << 22)


def document_value(document: Any) -> bytes:
    """``Value`` bytes of any JSON-like document the wire can carry (no local limits)."""
    return document_to_value(document, LAX_LIMITS)


def document_envelope(identity: Identity, value: bytes) -> bytes:
    """A validly signed publication of the ``Value`` bytes ``value``, with a fresh nonce."""
    payload = pubsub_pb2.PublishedDocument(value=value, published_unix_ms=unix_ms(),
                                           nonce=secrets.randbits(64)).SerializeToString()
    return Envelope.seal(identity, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE, payload,
                         max_size=1 << 22)


def gossip_frame(envelope: bytes, *, hops: int = 1, origin: str = "") -> bytes:
    """A Plumtree ``Gossip`` carrying ``envelope`` under its true message id."""
    return overlay_frame(Gossip(message_id=hashlib.sha256(envelope).digest(), hops=hops,
                                payload=envelope, origin=origin))


def fake_peer_ids(count: int) -> list[str]:
    """Valid peer ids of identities nobody runs."""
    return [Identity.generate().peer_id for _ in range(count)]


def frame_prefix(length: int) -> bytes:
    return encode_uvarint(length)
