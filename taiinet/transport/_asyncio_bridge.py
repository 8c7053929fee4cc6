"""The one module where asyncio (and aiortc) live; the rest of TaiiNet is trio.

Theory of operation
-------------------
aiortc runs on asyncio, TaiiNet on trio.  Trio guest mode needs asyncio to be
the host loop, which a trio program cannot offer, and trio-asyncio (which does
work with trio 0.35) replaces the asyncio event loop policy process-wide.  So
aiortc runs on a plain asyncio loop in one dedicated thread, shared by every
``AiortcBridge`` of the process (the first one started starts it, the last
one closed stops it and joins the thread).  One thread rather than one per
bridge: with twenty nodes in a process, twenty loop threads spent their time
handing the GIL to each other (measured in ``bench/pubsub.py``, WebRTC, 40
documents/s: p50 175 ms and 1,800 us of CPU per delivery with a thread per
node, 21 ms and 1,470 us with one loop):

* trio -> asyncio: ``AiortcBridge.run`` submits a coroutine with
  ``asyncio.run_coroutine_threadsafe`` and waits for it on a ``trio.Event``
  that the loop thread sets through the trio token.  Cancelling the trio side
  cancels the asyncio task and waits (shielded, bounded) for it to finish, so
  no task outlives its caller.
* Data channel messages cross in bounded, lock-protected deques with at most
  one pending wake-up per direction (no per-message thread hop when the other
  side is busy).  Inbound: once ``RECEIVE_HIGH_WATER`` messages wait for trio,
  the SCTP receive path (``RTCSctpTransport._data_channel_receive``, which
  aiortc awaits for every message) waits until the reader has brought them down
  to ``RECEIVE_LOW_WATER``; the DTLS loop stops reading, nothing is
  acknowledged, and the remote sender's ``bufferedAmount`` grows until its
  ``send`` waits: back-pressure end to end (aiortc ignores the SCTP receive
  window, so this is the only lever).  Outbound: ``send``
  waits while the bytes handed over plus the data channel's
  ``bufferedAmount`` exceed ``SEND_HIGH_WATER``, and wakes when they drain to
  ``SEND_LOW_WATER`` (the ``bufferedamountlow`` event).
* Shutdown closes every peer connection of the bridge; the last bridge to
  close also cancels and awaits every task left on the loop, shuts down async
  generators and the default executor, stops and closes the loop and joins
  the thread: nothing leaks.

Loopback and ICE: the configuration always names its ICE servers explicitly
(``iceServers=[]`` unless the user gave some), so aiortc never contacts its
default public STUN server.  aioice leaves 127.0.0.1 out of its host
candidates; ``candidate_addresses`` replaces what aioice gathers for the peer
connections of one bridge (through a context variable read by a wrapper
around ``aioice.ice.get_host_addresses``; unset, aioice's own answer is used).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aioice.ice
import trio
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import SessionDescription

from taiinet.errors import ConnectionClosed, LocalProtocolError
from taiinet.transport._coalesce import coalesce
from taiinet.transport.connection import MessageChannel

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Label of the one data channel a TaiiNet WebRTC link carries.
DATA_CHANNEL_LABEL = "taiinet"
#: Largest data channel message we send: one Noise message with its 2-byte length,
#: lowered to the peer's SDP ``max-message-size`` when that is smaller.
MAX_DATA_CHANNEL_MESSAGE = 65537
#: Inbound messages (or bytes) waiting for the trio reader at which the loop stops
#: reading the link ...
RECEIVE_HIGH_WATER = 256
RECEIVE_HIGH_WATER_BYTES = 1024 * 1024
#: ... and resumes once the reader has brought them down to these.
RECEIVE_LOW_WATER = 64
RECEIVE_LOW_WATER_BYTES = 256 * 1024
#: Hard bound: more waiting messages than this close the link (only reached if the
#: SCTP receive path could not be paused, e.g. with an aiortc lacking the hook below).
RECEIVE_QUEUE_LIMIT = 4096
#: ``send`` waits while more than this many bytes are queued for the network.
SEND_HIGH_WATER = 1024 * 1024
#: ... and resumes once the queue has drained to this many bytes.
SEND_LOW_WATER = 256 * 1024
#: How long shutdown waits for aiortc to close a peer connection or a task.
SHUTDOWN_TIMEOUT = 5.0
#: How long a local close waits for queued messages to reach the peer.
CLOSE_LINGER = 5.0


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


# -- candidate addresses ------------------------------------------------------

_CANDIDATE_ADDRESSES: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "taiinet_candidate_addresses", default=None
)
_aioice_get_host_addresses = aioice.ice.get_host_addresses
_install_lock = threading.Lock()


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    override = _CANDIDATE_ADDRESSES.get()
    if override is None:
        return _aioice_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return [a for a in override if (use_ipv6 if ":" in a else use_ipv4)]


def _install_candidate_override() -> None:
    with _install_lock:
        if aioice.ice.get_host_addresses is not _get_host_addresses:
            aioice.ice.get_host_addresses = _get_host_addresses


def check_sdp_with_aiortc(sdp: str) -> None:
    """Parse ``sdp`` with aiortc's own parser; raise ``BridgeSdpError`` if it cannot."""
    try:
        SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc raises whatever its parsing hits
        raise BridgeSdpError(f"{type(exc).__name__}: {exc}") from None


# -- the loop thread ----------------------------------------------------------


def _notify(token: trio.lowlevel.TrioToken, fn: Callable[[], object]) -> None:
    """Run ``fn`` in the trio thread soon; a finished trio run has nobody to tell."""
    with contextlib.suppress(trio.RunFinishedError):
        token.run_sync_soon(fn)


class _LoopThread:
    """The asyncio loop and its thread, shared by the bridges of the process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="taiinet-aiortc", daemon=True)
        self.users = 0
        #: Called in the loop thread once the loop is closed (set by the last user).
        self.on_finished: Callable[[], None] | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()
            if self.on_finished is not None:
                self.on_finished()


_shared_lock = threading.Lock()
_shared: _LoopThread | None = None


def _acquire_loop() -> _LoopThread:
    """The running shared loop (started if there is none), with one more user."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = _LoopThread()
            _shared.thread.start()
        _shared.users += 1
        return _shared


def _release_loop(shared: _LoopThread) -> bool:
    """One user less; True for the last one, who must stop the loop."""
    global _shared
    with _shared_lock:
        shared.users -= 1
        if shared.users:
            return False
        if _shared is shared:
            _shared = None  # the next bridge starts a new loop
        return True


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
        self._shared: _LoopThread | None = None
        self._token = trio.lowlevel.current_trio_token()
        self._peers: set[BridgedPeer] = set()
        self._closing = False  # no new peers
        self._loop_stopping = False  # no new calls

    # lifecycle

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        if self._shared is None:
            raise ConnectionClosed("the WebRTC endpoint is not started")
        return self._shared.loop

    @property
    def _thread(self) -> threading.Thread | None:
        return None if self._shared is None else self._shared.thread

    def start(self) -> None:
        _install_candidate_override()
        if self._shared is None:
            self._shared = _acquire_loop()

    async def aclose(self) -> None:
        """Close every peer connection; the last bridge also stops the loop and joins it."""
        if self._closing:
            return
        self._closing = True
        with trio.CancelScope(shield=True):
            # Concurrently: each close may linger (CLOSE_LINGER) for a dead peer.
            async with trio.open_nursery() as nursery:
                for peer in list(self._peers):
                    nursery.start_soon(peer.aclose)
            self._loop_stopping = True
            shared = self._shared
            if shared is None or not _release_loop(shared):
                return
            done = trio.Event()
            future = asyncio.run_coroutine_threadsafe(self._shutdown_loop(), shared.loop)
            future.add_done_callback(lambda _: _notify(self._token, done.set))
            with trio.move_on_after(SHUTDOWN_TIMEOUT):
                await done.wait()
            thread_done = trio.Event()
            shared.on_finished = lambda: _notify(self._token, thread_done.set)
            shared.loop.call_soon_threadsafe(shared.loop.stop)
            await thread_done.wait()
            shared.thread.join()

    async def _shutdown_loop(self) -> None:
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT)
        await self._loop.shutdown_asyncgens()
        await self._loop.shutdown_default_executor()

    # trio -> asyncio calls

    async def run(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run ``fn(*args)`` as a task on the loop and return its result to trio."""
        if self._loop_stopping:
            raise ConnectionClosed("the WebRTC endpoint is closed")
        done = trio.Event()
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(
            fn(*args), self._loop
        )
        future.add_done_callback(lambda _: _notify(self._token, done.set))
        try:
            await done.wait()
        except BaseException:
            future.cancel()
            with trio.CancelScope(shield=True), trio.move_on_after(SHUTDOWN_TIMEOUT):
                await done.wait()
            raise
        return future.result()

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

    Methods without a leading ``_on_`` run in trio; ``_on_*`` and ``_aio_*``
    run on the loop thread.
    """

    def __init__(self, bridge: AiortcBridge) -> None:
        self._bridge = bridge
        self._pc: RTCPeerConnection | None = None
        self._channel: BridgedDataChannel | None = None
        self._failure: str | None = None
        self._lock = threading.Lock()
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
            with self._lock:
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
        bridged = BridgedDataChannel(self, channel)
        bridged._pause_sctp_receive(channel.transport)
        with self._lock:
            self._channel = bridged
        if channel.readyState == "open":
            self._signal_state()

    async def _aio_create_offer(self, label: str) -> str:
        pc = self._new_pc()
        channel = pc.createDataChannel(label, ordered=True)
        bridged = BridgedDataChannel(self, channel)
        bridged._pause_sctp_receive(channel.transport)
        with self._lock:
            self._channel = bridged
        await pc.setLocalDescription(await pc.createOffer())
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

    # either side

    def _set_failure(self, reason: str) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = reason
            channel = self._channel
        if channel is not None:
            channel._mark_closed(reason)
        self._signal_state()

    def _signal_state(self) -> None:
        def wake() -> None:
            with self._lock:
                event, self._state_changed = self._state_changed, trio.Event()
            event.set()

        if threading.current_thread() is self._bridge._thread:
            _notify(self._bridge._token, wake)
        else:
            wake()


class BridgedDataChannel(MessageChannel):
    """A raw ``MessageChannel`` over one aiortc data channel (unauthenticated).

    With ``coalesce`` set, messages queued while aiortc was busy are joined
    into fewer data channel messages (up to ``max_message_size``): message
    boundaries are lost, which the secure channel allows (it reads a byte
    stream of length-prefixed Noise messages) and which saves aiortc's large
    per-message cost when many small frames are sent.
    """

    max_message_size = MAX_DATA_CHANNEL_MESSAGE
    coalesce = False

    def __init__(self, peer: BridgedPeer, channel: RTCDataChannel) -> None:
        self._peer = peer
        self._bridge = peer._bridge
        self._channel = channel
        self._lock = threading.Lock()
        self._closed_reason: str | None = None
        self._open = channel.readyState == "open"
        # inbound (loop -> trio)
        self._inbox: deque[bytes] = deque()
        self._inbox_bytes = 0
        self._reader_waiting = False
        self._reader_event = trio.Event()
        self._room: asyncio.Event | None = None  # set while the SCTP receive path waits
        # outbound (trio -> loop)
        self._outbox: deque[bytes] = deque()
        self._flush_scheduled = False
        self._handed_over = 0
        self._buffered = 0
        self._writer_waiting = False
        self._writer_event = trio.Event()
        channel.bufferedAmountLowThreshold = SEND_LOW_WATER
        channel.on("open", self._on_open)
        channel.on("message", self._on_message)
        channel.on("close", self._on_close)
        channel.on("bufferedamountlow", self._on_buffered_low)

    @property
    def is_open(self) -> bool:
        return self._open

    def _learn_message_limit(self) -> None:
        """Lower ``max_message_size`` to the peer's SDP max-message-size (0: no limit)."""
        remote = getattr(self._channel.transport, "_remote_max_message_size", 65536)
        if remote:
            self.max_message_size = min(MAX_DATA_CHANNEL_MESSAGE, remote)

    # trio side

    async def send_message(self, data: bytes) -> None:
        if len(data) > self.max_message_size:
            raise LocalProtocolError(
                f"message of {len(data)} bytes exceeds the data channel limit "
                f"of {self.max_message_size}"
            )
        await trio.lowlevel.checkpoint()
        while True:
            with self._lock:
                if self._closed_reason is not None:
                    raise ConnectionClosed(f"data channel closed: {self._closed_reason}")
                if self._handed_over + self._buffered <= SEND_HIGH_WATER:
                    self._handed_over += len(data)
                    self._outbox.append(bytes(data))
                    schedule = not self._flush_scheduled
                    self._flush_scheduled = True
                    break
                self._writer_waiting = True
                event = self._writer_event = trio.Event()
            await event.wait()
        if schedule and not self._call_on_loop(self._on_flush):
            self._mark_closed("the WebRTC endpoint is closed")

    async def receive_message(self) -> bytes:
        await trio.lowlevel.checkpoint()
        while True:
            room: asyncio.Event | None = None
            with self._lock:
                if self._inbox:
                    message = self._inbox.popleft()
                    self._inbox_bytes -= len(message)
                    if (
                        self._room is not None
                        and len(self._inbox) <= RECEIVE_LOW_WATER
                        and self._inbox_bytes <= RECEIVE_LOW_WATER_BYTES
                    ):
                        room, self._room = self._room, None
                elif self._closed_reason is not None:
                    raise ConnectionClosed(f"data channel closed: {self._closed_reason}")
                else:
                    self._reader_waiting = True
                    event = self._reader_event = trio.Event()
                    message = None
            if room is not None:
                self._call_on_loop(room.set)
            if message is not None:
                return message
            await event.wait()

    async def aclose(self) -> None:
        self._mark_closed("closed locally")
        await self._peer.aclose()

    def _call_on_loop(self, fn: Callable[[], None]) -> bool:
        try:
            self._bridge._loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the loop is already closed
            return False
        return True

    # loop side

    def _on_open(self) -> None:
        self._open = True
        self._peer._signal_state()

    def _on_message(self, data: bytes | str) -> None:
        if isinstance(data, str):
            logger.warning("closing a WebRTC link: the peer sent a text message")
            self._peer._set_failure("peer sent a text message")
            self._channel.close()
            return
        with self._lock:
            if self._closed_reason is not None:
                return
            overflow = len(self._inbox) >= RECEIVE_QUEUE_LIMIT
            if not overflow:
                self._inbox.append(data)
                self._inbox_bytes += len(data)
                wake = self._reader_waiting
                self._reader_waiting = False
        if overflow:
            logger.warning("closing a WebRTC link: its reader fell behind")
            self._peer._set_failure("receive queue overflow")
            self._channel.close()
        elif wake:
            _notify(self._bridge._token, self._reader_event.set)

    def _pause_sctp_receive(self, sctp: Any) -> None:
        """Make aiortc's SCTP receive path wait while too many messages wait for trio."""
        deliver = getattr(sctp, "_data_channel_receive", None)
        if deliver is None or getattr(deliver, "_taiinet_paced", False):
            return

        async def paced_receive(stream_id: int, pp_id: int, data: bytes) -> None:
            await deliver(stream_id, pp_id, data)
            with self._lock:
                if self._closed_reason is not None or (
                    len(self._inbox) < RECEIVE_HIGH_WATER
                    and self._inbox_bytes < RECEIVE_HIGH_WATER_BYTES
                ):
                    return
                room = self._room = asyncio.Event()
            await room.wait()

        paced_receive._taiinet_paced = True  # type: ignore[attr-defined]
        sctp._data_channel_receive = paced_receive

    def _on_flush(self) -> None:
        with self._lock:
            batch = list(self._outbox)
            self._outbox.clear()
            self._flush_scheduled = False
        handed_over = sum(len(m) for m in batch)
        if self.coalesce and len(batch) > 1:
            batch = coalesce(batch, self.max_message_size)
        try:
            for message in batch:
                self._channel.send(message)
        except Exception as exc:  # InvalidStateError once the channel closed
            self._peer._set_failure(f"send failed: {type(exc).__name__}")
        with self._lock:
            self._handed_over -= handed_over
        self._update_buffered()

    def _on_buffered_low(self) -> None:
        self._update_buffered()

    def _update_buffered(self) -> None:
        with self._lock:
            self._buffered = self._channel.bufferedAmount
            wake = (
                self._writer_waiting and self._handed_over + self._buffered <= SEND_LOW_WATER
            )
            if wake:
                self._writer_waiting = False
            event = self._writer_event
        if wake:
            _notify(self._bridge._token, event.set)

    def _on_close(self) -> None:
        self._peer._set_failure("data channel closed")

    # either side

    def _mark_closed(self, reason: str) -> None:
        with self._lock:
            if self._closed_reason is None:
                self._closed_reason = reason
            reader = self._reader_event if self._reader_waiting else None
            writer = self._writer_event if self._writer_waiting else None
            self._reader_waiting = self._writer_waiting = False
            room, self._room = self._room, None
        if room is not None:
            if threading.current_thread() is self._bridge._thread:
                room.set()
            else:
                self._call_on_loop(room.set)
        for event in (reader, writer):
            if event is not None:
                if threading.current_thread() is self._bridge._thread:
                    _notify(self._bridge._token, event.set)
                else:
                    event.set()
