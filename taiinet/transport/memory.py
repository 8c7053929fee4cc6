"""The in-memory transport: real handshakes and frames, no sockets.

For tests and for many-node runs in one process.  A channel pair is two
bounded trio memory channels (``capacity`` messages each way), so
back-pressure behaves as on a real link.  ``MemoryNetwork`` adds addressing
by peer id: nodes ``listen`` and ``dial``, and ``kill`` drops a node's
listener and every link it has, as a crash would.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator

import trio

from taiinet.errors import ConnectionClosed, LocalProtocolError, TaiiNetError
from taiinet.transport.connection import Connection, Listener, MessageChannel
from taiinet.transport.errors import DialError
from taiinet.transport.limits import LinkDeadlines
from taiinet.transport.secure import DEFAULT_DEADLINES, secure_channel
from taiinet.wire.framing import DEFAULT_MAX_FRAME_SIZE
from taiinet.wire.identity import Identity

#: Messages each direction of a memory channel buffers before ``send_message`` waits.
DEFAULT_CHANNEL_CAPACITY = 16
#: Secured connections a listener holds before ``accept``; further dials fail.
DEFAULT_ACCEPT_BACKLOG = 16
#: Seconds a handshake may take before the dial fails.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
#: Largest message a memory channel carries (one prefixed Noise message).
MEMORY_MAX_MESSAGE_SIZE = 65537


class MemoryMessageChannel(MessageChannel):
    """One end of an in-memory channel pair."""

    max_message_size = MEMORY_MAX_MESSAGE_SIZE

    def __init__(self, send: trio.MemorySendChannel[bytes],
                 receive: trio.MemoryReceiveChannel[bytes]) -> None:
        self._send = send
        self._receive = receive

    async def send_message(self, data: bytes) -> None:
        if len(data) > self.max_message_size:
            raise LocalProtocolError(
                f"message of {len(data)} bytes exceeds the channel's {self.max_message_size}")
        try:
            await self._send.send(bytes(data))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ConnectionClosed("the memory channel is closed") from None

    async def receive_message(self) -> bytes:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed("the memory channel is closed") from None

    def message_waiting(self) -> bool:
        return self._receive.statistics().current_buffer_used > 0

    def close(self) -> None:
        self._send.close()
        self._receive.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


def memory_channel_pair(
        capacity: int = DEFAULT_CHANNEL_CAPACITY, *, address_a: str | None = None,
        address_b: str | None = None) -> tuple[MemoryMessageChannel, MemoryMessageChannel]:
    """Two connected raw channels, each direction buffering ``capacity`` messages.

    ``address_a`` is the (fake) network address end ``b`` sees for ``a``
    (its ``remote_address``), and the other way round.
    """
    if capacity < 0 or capacity == math.inf:
        raise LocalProtocolError("a memory channel needs a finite capacity")
    a_send, b_receive = trio.open_memory_channel[bytes](capacity)
    b_send, a_receive = trio.open_memory_channel[bytes](capacity)
    end_a = MemoryMessageChannel(a_send, a_receive)
    end_b = MemoryMessageChannel(b_send, b_receive)
    end_a.remote_address, end_b.remote_address = address_b, address_a
    return end_a, end_b


async def memory_connection_pair(
        a: Identity, b: Identity, *, capacity: int = DEFAULT_CHANNEL_CAPACITY,
        max_frame_size_a: int = DEFAULT_MAX_FRAME_SIZE,
        max_frame_size_b: int = DEFAULT_MAX_FRAME_SIZE,
        deadlines: LinkDeadlines = DEFAULT_DEADLINES,
        packet_payload: int | None = None) -> tuple[Connection, Connection]:
    """Two secured connections, ``a`` the initiator, after a real Noise XX handshake;
    both keep ``deadlines``.  ``packet_payload`` makes both ends report packets of
    that many bytes (``Connection.packets``), as a WebRTC link does."""
    channel_a, channel_b = memory_channel_pair(capacity)
    channel_a.packet_payload = channel_b.packet_payload = packet_payload
    results: dict[str, Connection] = {}

    async def respond() -> None:
        results["b"] = await secure_channel(channel_b, b, initiator=False,
                                            max_frame_size=max_frame_size_b,
                                            deadlines=deadlines)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(respond)
        results["a"] = await secure_channel(channel_a, a, initiator=True,
                                            expected_peer_id=b.peer_id,
                                            max_frame_size=max_frame_size_a,
                                            deadlines=deadlines)
    return results["a"], results["b"]


class MemoryListener(Listener):
    """Incoming secured connections of one node: ``await accept()`` or ``async for``."""

    def __init__(self, network: MemoryNetwork, identity: Identity, backlog: int) -> None:
        self.network = network
        self.identity = identity
        self._send, self._receive = trio.open_memory_channel[Connection](backlog)

    @property
    def peer_id(self) -> str:
        return self.identity.peer_id

    def _offer(self, connection: Connection) -> bool:
        try:
            self._send.send_nowait(connection)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def accept(self) -> Connection:
        """The next incoming connection; ``ConnectionClosed`` once the listener is closed."""
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed("the listener is closed") from None

    async def __aenter__(self) -> MemoryListener:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening; connections not yet accepted are closed."""
        self.network._forget_listener(self)
        self._send.close()
        while True:
            try:
                pending = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            await pending.aclose()
        self._receive.close()


class MemoryNetwork:
    """Nodes addressed by peer id, linked by memory channels with real handshakes."""

    def __init__(self, *, capacity: int = DEFAULT_CHANNEL_CAPACITY,
                 backlog: int = DEFAULT_ACCEPT_BACKLOG,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT) -> None:
        self.capacity = capacity
        self.backlog = backlog
        self.max_frame_size = max_frame_size
        self.handshake_timeout = handshake_timeout
        self._listeners: dict[str, MemoryListener] = {}
        self._links: dict[str, set[Connection]] = {}
        #: Peer id -> the fake network address its links show the other end
        #: (``Connection.remote_address``), so tests can put many identities
        #: behind one address; peers absent from it have none (``None``).
        self.addresses: dict[str, str] = {}

    def listen(self, identity: Identity) -> MemoryListener:
        """Start accepting dials to ``identity.peer_id``."""
        if identity.peer_id in self._listeners:
            raise LocalProtocolError(f"{identity.peer_id} already listens on this network")
        listener = MemoryListener(self, identity, self.backlog)
        self._listeners[identity.peer_id] = listener
        return listener

    def is_listening(self, peer_id: str) -> bool:
        return peer_id in self._listeners

    def _forget_listener(self, listener: MemoryListener) -> None:
        if self._listeners.get(listener.peer_id) is listener:
            del self._listeners[listener.peer_id]

    def _track(self, connection: Connection) -> None:
        links = self._links.setdefault(connection.local_peer_id, set())
        # Forget links closed since (the set stays as large as the open links).
        links.difference_update([c for c in links if getattr(c, "closed", False)])
        links.add(connection)

    async def dial(self, identity: Identity, remote_peer_id: str) -> Connection:
        """Connect to ``remote_peer_id``; ``DialError`` if it does not listen or is full.

        Runs both sides of the handshake; the listener receives its side from
        ``accept``.  ``PeerIdMismatch`` cannot happen here (the network
        routes by peer id) but ``HandshakeError`` can, from a broken peer.
        """
        listener = self._listeners.get(remote_peer_id)
        if listener is None:
            raise DialError(f"no node listens as {remote_peer_id}")
        ours, theirs = memory_channel_pair(
            self.capacity, address_a=self.addresses.get(identity.peer_id),
            address_b=self.addresses.get(remote_peer_id))
        results: dict[str, Connection] = {}

        async def respond() -> None:
            # On failure the channel is closed and the dialer's side reports it.
            with contextlib.suppress(TaiiNetError):
                results["theirs"] = await secure_channel(
                    theirs, listener.identity, initiator=False,
                    max_frame_size=self.max_frame_size)

        with trio.fail_after(self.handshake_timeout):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(respond)
                try:
                    results["ours"] = await secure_channel(
                        ours, identity, initiator=True, expected_peer_id=remote_peer_id,
                        max_frame_size=self.max_frame_size)
                except BaseException:
                    theirs.close()
                    raise
        connection, accepted = results["ours"], results.get("theirs")
        if accepted is None:
            await connection.aclose()
            raise DialError(f"{remote_peer_id} failed its side of the handshake")
        if self._listeners.get(remote_peer_id) is not listener or not listener._offer(accepted):
            await connection.aclose()
            await accepted.aclose()
            raise DialError(f"{remote_peer_id} is not accepting connections")
        self._track(connection)
        self._track(accepted)
        return connection

    def links(self, peer_id: str) -> list[Connection]:
        """The open connections of ``peer_id`` (dialed and accepted), for tests."""
        return [c for c in self._links.get(peer_id, ()) if not getattr(c, "closed", False)]

    async def cut(self, peer_a: str, peer_b: str) -> None:
        """Close every link between two nodes (both ends), as a network failure would."""
        for local, remote in ((peer_a, peer_b), (peer_b, peer_a)):
            for connection in self.links(local):
                if connection.remote_peer_id == remote:
                    await connection.aclose()

    async def kill(self, peer_id: str) -> None:
        """Crash a node: close its listener and every link it has (either end)."""
        listener = self._listeners.get(peer_id)
        if listener is not None:
            await listener.aclose()
        for connection in list(self._links.pop(peer_id, ())):
            await connection.aclose()


@contextlib.asynccontextmanager
async def open_memory_connection_pair(
        a: Identity, b: Identity, *, max_frame_size_a: int = DEFAULT_MAX_FRAME_SIZE,
        max_frame_size_b: int = DEFAULT_MAX_FRAME_SIZE,
        capacity: int = DEFAULT_CHANNEL_CAPACITY) -> AsyncIterator[tuple[Connection, Connection]]:
    """``memory_connection_pair`` as a context manager that closes both ends (a
    ``ConnectionPairFactory`` for ``taiinet.testing``)."""
    conn_a, conn_b = await memory_connection_pair(
        a, b, capacity=capacity, max_frame_size_a=max_frame_size_a,
        max_frame_size_b=max_frame_size_b)
    try:
        yield conn_a, conn_b
    finally:
        await conn_a.aclose()
        await conn_b.aclose()
