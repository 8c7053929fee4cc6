"""The bridge between trio and aiortc: peer connections made on the shared asyncio loop.

asyncio (and aiortc) live only in the ``_asyncio_*`` modules; the rest of
TaiiNet is trio.  ``_asyncio_loop`` owns the asyncio loop (one per trio run,
stepped in the trio thread) and the ICE host-address override;
``_asyncio_channel`` carries one data channel's messages between trio tasks
and aiortc; ``_asyncio_dtls``, ``_asyncio_sctp``, ``_asyncio_sctp_rx``,
``_asyncio_sctp_tx`` and ``_asyncio_sctp_timers`` hook aiortc's per-packet
paths (this module installs them on each link); ``_asyncio_sctp_sound`` makes
aiortc drop the malformed SCTP packets it failed on (once, before any link);
this module makes and closes peer connections:

* trio -> asyncio: ``AiortcBridge.run`` starts a coroutine as an asyncio
  task on the loop and waits for it on a ``trio.Event`` that the task's
  done-callback sets (same thread: no hand-off).  Cancelling the trio side
  cancels the asyncio task and waits (shielded, bounded) for it to finish, so
  no task outlives its caller.
* Shutdown closes every peer connection of the bridge; the last bridge to
  close also cancels and awaits every task left on the loop, shuts down async
  generators and the default executor, then stops its driver and closes the
  loop: nothing leaks.

ICE: the configuration always names its ICE servers explicitly
(``iceServers=[]`` unless the user gave some), so aiortc never contacts its
default public STUN server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import trio
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import SessionDescription

from taiinet.errors import ConnectionClosed
from taiinet.transport._asyncio_channel import (
    MAX_DATA_CHANNEL_MESSAGE,
    BridgedDataChannel,
)
from taiinet.transport._asyncio_dtls import read_directly, send_directly
from taiinet.transport._asyncio_loop import (
    _CANDIDATE_ADDRESSES,
    HostedLoop,
    _acquire_loop,
    _install_candidate_override,
    _release_loop,
)
from taiinet.transport._asyncio_sctp import delay_sacks, flush_at_once
from taiinet.transport._asyncio_sctp_rx import receive_directly
from taiinet.transport._asyncio_sctp_sound import install_sound_receive
from taiinet.transport._asyncio_sctp_timers import lazy_t3
from taiinet.transport._asyncio_sctp_tx import send_directly as send_sctp_directly
from taiinet.transport._asyncio_sctp_wrap import mend_tsn_wrap

logger = logging.getLogger(__name__)

__all__ = [
    "CLOSE_LINGER",
    "DATA_CHANNEL_LABEL",
    "MAX_DATA_CHANNEL_MESSAGE",
    "SHUTDOWN_TIMEOUT",
    "UDP_READ_SIZE",
    "UDP_RECEIVE_BUFFER",
    "AiortcBridge",
    "BridgeConnectError",
    "BridgeSdpError",
    "BridgedDataChannel",
    "BridgedPeer",
    "IceServerConfig",
    "check_sdp_with_aiortc",
]

T = TypeVar("T")

#: Label of the one data channel a TaiiNet WebRTC link carries.
DATA_CHANNEL_LABEL = "taiinet"
#: How long shutdown waits for aiortc to close a peer connection or a task.
SHUTDOWN_TIMEOUT = 5.0
#: How long a local close waits for queued messages to reach the peer.
CLOSE_LINGER = 5.0
#: Receive buffer asked for each ICE UDP socket (aioice asks 256 KiB; Linux caps
#: the request at ``net.core.rmem_max``).  asyncio reads one datagram per socket
#: per loop iteration, so a busy loop lets an SCTP sender's window pile up in
#: the socket; past the buffer, Linux drops datagrams (``RcvbufErrors`` in
#: ``/proc/net/snmp``) and SCTP recovers only after a retransmission timeout
#: (1 s, 3 s on a new association): the multi-second stalls of loaded
#: ``bench/pubsub.py`` and ``taiinet demo`` runs.  4 MiB holds aiortc's largest
#: window (its 1 MiB advertised receive window) with the kernel's per-datagram
#: overhead; it is a limit, not memory taken up front.
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
#: Bytes asked of each ``recvfrom`` on an ICE socket: any UDP datagram (65,507
#: bytes of payload over IPv4, 65,527 over IPv6).  asyncio asks 256 KiB, and
#: CPython allocates that much for every datagram and shrinks it after: above
#: glibc's mmap threshold (128 KiB until the process frees a larger block) each
#: read then maps and unmaps memory, 24 against 7 us for a 1,200-byte datagram
#: sent and read over loopback in a fresh process.
UDP_READ_SIZE = 65536


class BridgeSdpError(ValueError):
    """aiortc refused a session description (converted to a typed error by webrtc.py)."""


class BridgeConnectError(Exception):
    """The peer connection failed or closed before its data channel opened."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IceServerConfig:
    """One STUN/TURN server, as in ``RTCIceServer``."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


def check_sdp_with_aiortc(sdp: str) -> None:
    """Parse ``sdp`` with aiortc's own parser; raise ``BridgeSdpError`` if it cannot."""
    try:
        SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc raises whatever its parsing hits
        raise BridgeSdpError(f"{type(exc).__name__}: {exc}") from None


class AiortcBridge:
    """The peer connections of one endpoint, made on the shared asyncio loop."""

    def __init__(
        self,
        *,
        candidate_addresses: Sequence[str] | None,
        ice_servers: Sequence[IceServerConfig],
    ) -> None:
        self._candidate_addresses = (
            None if candidate_addresses is None else tuple(candidate_addresses)
        )
        self._ice_servers = tuple(ice_servers)
        self._hosted: HostedLoop | None = None
        self._peers: set[BridgedPeer] = set()
        self._closing = False  # no new peers
        self._loop_stopping = False  # no new calls

    # lifecycle

    @property
    def hosted(self) -> HostedLoop:
        """The asyncio loop this bridge's peer connections live on."""
        if self._hosted is None:
            raise ConnectionClosed("the WebRTC endpoint is not started")
        return self._hosted

    def start(self) -> None:
        """Join (or start) this trio run's asyncio loop; call from trio."""
        _install_candidate_override()
        install_sound_receive()  # before any association reads a packet
        if self._hosted is None:
            self._hosted = _acquire_loop()

    async def aclose(self) -> None:
        """Close every peer connection; the last bridge also shuts the loop down."""
        if self._closing:
            return
        self._closing = True
        with trio.CancelScope(shield=True):
            # Concurrently: each close may linger (CLOSE_LINGER) for a dead peer.
            async with trio.open_nursery() as nursery:
                for peer in list(self._peers):
                    nursery.start_soon(peer.aclose)
            self._loop_stopping = True
            hosted = self._hosted
            if hosted is None or not _release_loop(hosted):
                return
            done = trio.Event()
            task = hosted.create_task(self._shutdown_loop(hosted.loop))
            task.add_done_callback(lambda _: done.set())
            with trio.move_on_after(SHUTDOWN_TIMEOUT):
                await done.wait()
            hosted.stop()
            await hosted.finished.wait()

    @staticmethod
    async def _shutdown_loop(loop: asyncio.AbstractEventLoop) -> None:
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT)
        await loop.shutdown_asyncgens()
        await loop.shutdown_default_executor()

    # trio -> asyncio calls

    async def run(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run ``fn(*args)`` as a task on the loop and return its result to trio."""
        if self._loop_stopping:
            raise ConnectionClosed("the WebRTC endpoint is closed")
        try:
            task = self.hosted.create_task(fn(*args))
        except RuntimeError:  # the loop is closed (its driver failed)
            raise ConnectionClosed("the WebRTC endpoint's loop is closed") from None
        done = trio.Event()
        task.add_done_callback(lambda _: done.set())
        try:
            await done.wait()
        except BaseException:
            task.cancel()
            self.hosted.poke()
            with trio.CancelScope(shield=True), trio.move_on_after(SHUTDOWN_TIMEOUT):
                await done.wait()
            raise
        return task.result()

    # peers

    @property
    def peer_count(self) -> int:
        return len(self._peers)

    def new_peer(self) -> BridgedPeer:
        if self._closing:
            raise ConnectionClosed("the WebRTC endpoint is closed")
        peer = BridgedPeer(self)
        self._peers.add(peer)
        return peer

    def _configuration(self) -> RTCConfiguration:
        servers = [
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in self._ice_servers
        ]
        return RTCConfiguration(iceServers=servers)


# -- one peer connection ------------------------------------------------------


class BridgedPeer:
    """One ``RTCPeerConnection`` carrying one data channel, driven from trio.

    Methods without a leading ``_on_`` run in trio tasks; ``_on_*`` and
    ``_aio_*`` run inside the asyncio loop's iterations (same thread).
    """

    def __init__(self, bridge: AiortcBridge) -> None:
        self._bridge = bridge
        self._pc: RTCPeerConnection | None = None
        self._channel: BridgedDataChannel | None = None
        self._failure: str | None = None
        self._state_changed = trio.Event()
        self._closed = False

    # trio side

    async def create_offer(self, *, label: str = DATA_CHANNEL_LABEL) -> str:
        """Make the offer; ``label`` is only ever changed by tests of the answerer's check."""
        return await self._bridge.run(self._aio_create_offer, label)

    async def accept_answer(self, sdp: str) -> None:
        await self._bridge.run(self._aio_accept_answer, sdp)

    async def create_answer(self, offer_sdp: str) -> str:
        return await self._bridge.run(self._aio_create_answer, offer_sdp)

    async def wait_open(self) -> BridgedDataChannel:
        """Wait until the data channel is open; raise ``BridgeConnectError`` on failure."""
        while True:
            channel, failure = self._channel, self._failure
            changed = self._state_changed
            if failure is not None:
                raise BridgeConnectError(failure)
            if channel is not None and channel.is_open:
                channel._learn_message_limit()
                return channel
            await changed.wait()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._set_failure("closed locally")
        with trio.CancelScope(shield=True):
            try:
                await self._bridge.run(self._aio_close)
            except Exception:
                logger.debug("closing a peer connection failed", exc_info=True)
        self._bridge._peers.discard(self)

    # loop side

    def _new_pc(self) -> RTCPeerConnection:
        _CANDIDATE_ADDRESSES.set(self._bridge._candidate_addresses)
        pc = RTCPeerConnection(configuration=self._bridge._configuration())
        self._pc = pc

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self._set_failure(f"peer connection {pc.connectionState}")

        return pc

    def _widen_receive_buffers(self) -> None:
        """Ask ``UDP_RECEIVE_BUFFER`` for this connection's ICE sockets (after gathering),
        and read them ``UDP_READ_SIZE`` bytes at a time."""
        pc = self._pc
        sctp = pc.sctp if pc is not None else None
        if sctp is None:
            return
        # aiortc and aioice expose no socket option: reach the sockets through
        # the gatherer's aioice connection, and do nothing if that changes.
        connection = getattr(sctp.transport.transport.iceGatherer, "_connection", None)
        for protocol in getattr(connection, "_protocols", ()):
            transport = getattr(protocol, "transport", None)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is None:
                continue
            if transport is not None and getattr(transport, "max_size", 0) > UDP_READ_SIZE:
                transport.max_size = UDP_READ_SIZE
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            except OSError:
                logger.debug("could not widen a UDP receive buffer", exc_info=True)

    def _bridged(self, channel: RTCDataChannel) -> BridgedDataChannel:
        """The link's data channel, bridged, with our hooks on its SCTP association
        (receive back-pressure, TSN bookkeeping right across the wrap, delayed SACKs,
        sends flushed in the call, the usual packets read and sent directly, T3
        moved lazily)."""
        bridged = BridgedDataChannel(self, channel)
        bridged._pause_sctp_receive(channel.transport)
        mend_tsn_wrap(channel.transport)  # before any hook takes its ``_send_sack``
        receive_directly(channel.transport)  # next: the hooks below wrap its chunk reader
        delay_sacks(channel.transport)
        flush_at_once(channel.transport)
        send_sctp_directly(channel.transport)  # after both: takes the usual message first
        lazy_t3(channel.transport)
        return bridged

    def _adopt(self, channel: RTCDataChannel) -> None:
        if (
            self._channel is not None
            or channel.label != DATA_CHANNEL_LABEL
            or not channel.ordered
            or channel.maxRetransmits is not None
            or channel.maxPacketLifeTime is not None
        ):
            logger.info("closing an unexpected data channel %r", channel.label)
            self._set_failure(f"unexpected data channel {channel.label!r}")
            channel.close()
            return
        self._channel = self._bridged(channel)
        read_directly(channel.transport.transport)
        send_directly(channel.transport.transport)
        if channel.readyState == "open":
            self._signal_state()

    async def _aio_create_offer(self, label: str) -> str:
        pc = self._new_pc()
        channel = pc.createDataChannel(label, ordered=True)
        self._channel = self._bridged(channel)
        await pc.setLocalDescription(await pc.createOffer())
        self._widen_receive_buffers()
        read_directly(channel.transport.transport)  # after gathering: the sockets exist
        send_directly(channel.transport.transport)
        return str(pc.localDescription.sdp)

    async def _aio_accept_answer(self, sdp: str) -> None:
        assert self._pc is not None
        try:
            description = RTCSessionDescription(sdp=sdp, type="answer")
            await self._pc.setRemoteDescription(description)
        except Exception as exc:  # aiortc raises whatever its parsing hits
            raise BridgeSdpError(f"{type(exc).__name__}: {exc}") from None

    async def _aio_create_answer(self, offer_sdp: str) -> str:
        pc = self._new_pc()
        pc.on("datachannel", self._adopt)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:  # aiortc raises whatever its parsing hits
            raise BridgeSdpError(f"{type(exc).__name__}: {exc}") from None
        await pc.setLocalDescription(await pc.createAnswer())
        self._widen_receive_buffers()
        return str(pc.localDescription.sdp)

    async def _aio_close(self) -> None:
        channel = self._channel._channel if self._channel is not None else None
        if channel is not None and channel.readyState == "open":
            # Closing the channel resets its stream after every queued message
            # (W3C WebRTC 6.2.4); closing the peer connection at once would abort
            # the SCTP association and lose them.
            closed = asyncio.Event()
            channel.on("close", closed.set)
            channel.close()
            if channel.readyState != "closed":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), CLOSE_LINGER)
        if self._pc is not None:
            await asyncio.wait_for(self._pc.close(), SHUTDOWN_TIMEOUT)
            sctp = self._pc.sctp
            if sctp is not None and sctp.state != "closed":
                # aiortc starts the SCTP association when the DTLS handshake ends,
                # even while close() waits (in its DTLS shutdown): that association
                # outlived its connection, sending INITs every 3 s for ~24 s, and
                # the peer, which had read the first, waited for an open channel
                # until its connect timeout.  Stop it.
                await asyncio.wait_for(sctp.stop(), SHUTDOWN_TIMEOUT)

    # either side

    def _set_failure(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason
        if self._channel is not None:
            self._channel._mark_closed(reason)
        self._signal_state()

    def _signal_state(self) -> None:
        event, self._state_changed = self._state_changed, trio.Event()
        event.set()
