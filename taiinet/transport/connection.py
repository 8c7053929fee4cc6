"""The one connection interface every transport offers to the layers above.

Two levels, as in libp2p:

* ``MessageChannel`` is a raw, unauthenticated, message-oriented pipe (an
  in-memory queue pair, a WebSocket, a WebRTC data channel).  Transports
  implement it; nothing above the transport layer sees it.
* ``Connection`` is what the secure upgrade (Noise XX) makes of a channel: an
  authenticated, encrypted link to a known peer id that carries whole frames.
  This is the only link type the signal, overlay and pubsub layers use.

Back-pressure: ``send`` waits while the link's bounded send buffer is full, so
a slow peer slows its sender instead of growing memory.

Implementing a transport means implementing ``MessageChannel`` only:
``taiinet.transport.secure.secure_channel(channel, identity, initiator=...)``
turns it into a ``Connection``, and ``taiinet.testing`` is the
conformance suite both levels must pass.  A channel must bound what it buffers
(both ways) and the size of what it receives; it may deliver the bytes of one
sent message in several received messages or the other way round (the secure
layer treats the channel as a byte stream), but never reorder or drop bytes
silently.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from taiinet.errors import ConnectionClosed, RemoteProtocolError
from taiinet.wire.peer_id import PeerId

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Packets:
    """How a transport that cuts messages into network packets carries a frame.

    A frame of ``n`` bytes is sent as ``n + overhead`` bytes (its length
    prefix, the Noise tag and its length), cut into packets of ``payload``
    bytes each; the last packet carries the rest.  The link layer reads it to
    end a busy link's frames at a packet boundary (``taiinet.link.manager``).
    """

    #: Bytes of a sealed frame one packet carries.
    payload: int
    #: Bytes a frame gains when it is sealed.
    overhead: int

    def count(self, frame_size: int) -> int:
        """The packets a frame of ``frame_size`` bytes takes."""
        return -(-(frame_size + self.overhead) // self.payload)


class MessageChannel(abc.ABC):
    """A raw bidirectional pipe of whole messages, before any security."""

    #: Largest message the channel carries in one piece.
    max_message_size: int = 65535
    #: Bytes of a message each network packet carries when the transport cuts
    #: messages into packets of their own (SCTP DATA chunks); ``None`` for a
    #: byte stream (TCP), where message boundaries do not set packet boundaries.
    packet_payload: int | None = None
    #: The network address of the other end as the transport saw it (an IP
    #: string, not yet normalised), or ``None`` if the transport does not know.
    remote_address: str | None = None

    @abc.abstractmethod
    async def send_message(self, data: bytes) -> None:
        """Send one message; raise ``ConnectionClosed`` if the channel is closed."""

    @abc.abstractmethod
    async def receive_message(self) -> bytes:
        """Return the next message; raise ``ConnectionClosed`` at the end."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the channel; idempotent."""

    def message_waiting(self) -> bool:
        """True if ``receive_message`` would return at once (a message is already here).

        Lets a reader skip setting up a timeout for a message that is already
        here; ``False`` (the default) only means "unknown".
        """
        return False


class Connection(abc.ABC):
    """An authenticated, encrypted link to one peer that carries frames."""

    @property
    @abc.abstractmethod
    def local_peer_id(self) -> PeerId:
        """The peer id this side proved in the handshake."""

    @property
    @abc.abstractmethod
    def remote_peer_id(self) -> PeerId:
        """The peer id the other side proved in the handshake."""

    @property
    def remote_address(self) -> str | None:
        """The other end's network address, the unit budgets count by; ``None`` if unknown.

        Normalised as the listener budgets do (``limits.budget_key``): an IPv4
        address, or the IPv6 /64 (``"2001:db8::/64"``).  WebSocket links know
        the TCP peer's address; memory links carry the fake address their
        ``MemoryNetwork`` assigns; WebRTC links give ``None`` (aiortc has no
        public API for the selected ICE candidate pair).  Unauthenticated: it
        is who sent the packets, not who holds the peer id.
        """
        return None

    @property
    def packets(self) -> Packets | None:
        """How frames are cut into network packets; ``None`` for stream transports
        (WebSocket, memory), where the size of a frame does not set its packets."""
        return None

    @abc.abstractmethod
    async def send(self, frame: bytes) -> None:
        """Send one encoded frame, waiting while the send buffer is full.

        Raises ``ConnectionClosed`` once the link is closed, and
        ``OversizedFrame`` (a ``LocalProtocolError``; the link stays up) for a
        frame over the link's maximum.  Safe to call from several tasks: frames
        never interleave.  Cancelling a send that already wrote part of a frame
        closes the link.
        """

    @abc.abstractmethod
    async def receive(self) -> bytes:
        """Return the next encoded frame.

        Raises ``ConnectionClosed`` when the link ends (frames sent before the
        peer closed are delivered first) and a ``RemoteProtocolError`` (after
        closing the link) when the peer sent something malformed, oversized,
        truncated or wrongly encrypted.  Nothing is read from the transport
        unless a task is in ``receive``: a peer that does not read stalls its
        sender.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the link; idempotent."""

    async def receive_decoded(self, decode: Callable[[bytes], T]) -> T:
        """Receive one frame and decode it with a layer's codec.

        A ``RemoteProtocolError`` from ``decode`` (e.g. ``MalformedFrame``)
        closes this link before it propagates, as for any bad input.
        """
        frame = await self.receive()
        try:
            return decode(frame)
        except RemoteProtocolError:
            await self.aclose()
            raise

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[bytes]:
        while True:
            try:
                yield await self.receive()
            except ConnectionClosed:
                return


class Listener(abc.ABC):
    """Incoming secured connections of one endpoint: ``await accept()`` or ``async for``."""

    @abc.abstractmethod
    async def accept(self) -> Connection:
        """Return the next incoming connection; raise ``ConnectionClosed`` once closed."""

    def __aiter__(self) -> AsyncIterator[Connection]:
        return self._connections()

    async def _connections(self) -> AsyncIterator[Connection]:
        while True:
            try:
                yield await self.accept()
            except ConnectionClosed:
                return
