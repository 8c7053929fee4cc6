"""The secure upgrade: run Noise XX over a MessageChannel, get a Connection.

The thin trio driver of ``taiinet.transport.noise``.  The channel is treated
as a byte stream: every Noise message is sent with its 2-byte big-endian
length, in as many channel messages as the channel's ``max_message_size``
needs, and the receiver reassembles messages whatever the chunking.

Back-pressure comes from the channel: ``Connection.send`` waits in the
channel's ``send_message``, and nothing is read from the channel unless the
owner calls ``receive``, so a peer that stops reading stalls its sender once
the channel's bounded buffers are full.

Deadlines (``taiinet.transport.limits.LinkDeadlines``): a handshake that
takes longer than ``handshake_timeout`` (5 s by default), or waits longer than
``deadlines.handshake_message`` (3 s) for one message of the peer, fails with
``HandshakeTimeout``, so a silent peer cannot hold a link open.  On the secured
link, a frame whose first bytes arrived must arrive whole within
``deadlines.frame`` seconds of waiting for it (``FrameTimeout``), so a peer
cannot pin a partial frame's buffer; with ``deadlines.idle`` set, a
``receive`` that waits that long for a frame closes the link (``IdleTimeout``).
Only time spent inside ``receive`` counts: a slow reader never blames its peer.
"""

from __future__ import annotations

import collections
import math

import nacl.utils
import trio

from taiinet.errors import ConnectionClosed, RemoteProtocolError
from taiinet.transport._linklock import LinkLock
from taiinet.transport.connection import Connection, MessageChannel, Packets
from taiinet.transport.errors import (
    FrameTimeout,
    HandshakeTimeout,
    IdleTimeout,
    PartialFrameBudgetExceeded,
)
from taiinet.transport.limits import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    LinkDeadlines,
    PartialFrameBudget,
    budget_key,
)
from taiinet.transport.noise import (
    DH_SIZE,
    LENGTH_PREFIX_SIZE,
    TAG_SIZE,
    HandshakeState,
    NoiseHandshake,
    NoiseMessageReader,
    SecureSession,
    with_length_prefix,
)
from taiinet.wire.framing import DEFAULT_MAX_FRAME_SIZE, MAX_UVARINT_BYTES
from taiinet.wire.identity import Identity, parse_peer_id
from taiinet.wire.peer_id import PeerId

__all__ = ["DEFAULT_HANDSHAKE_TIMEOUT", "SecureConnection", "secure_channel"]

#: Deadlines of a link unless the caller gives its own (no idle deadline).
DEFAULT_DEADLINES = LinkDeadlines()
_INF = math.inf


async def _send_chunked(channel: MessageChannel, data: bytes) -> None:
    step = max(1, channel.max_message_size)
    if len(data) <= step:
        await channel.send_message(data)
        return
    for start in range(0, len(data), step):
        await channel.send_message(data[start:start + step])


async def secure_channel(channel: MessageChannel, identity: Identity, *, initiator: bool,
                         expected_peer_id: str | None = None,
                         max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                         handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
                         deadlines: LinkDeadlines = DEFAULT_DEADLINES,
                         partial_frames: PartialFrameBudget | None = None,
                         ) -> Connection:
    """Run the Noise XX handshake over ``channel``; return the secure ``Connection``.

    Raises ``HandshakeError`` (``PeerIdMismatch`` when the peer is not
    ``expected_peer_id``, ``HandshakeTimeout`` after ``handshake_timeout``
    seconds in all or ``deadlines.handshake_message`` waiting for one message)
    or ``ConnectionClosed``; the channel is closed on any failure.  The link
    keeps ``deadlines.frame`` and ``deadlines.idle``, and reports the bytes of
    its partial frame to ``partial_frames`` (shared by a listener's links).
    """
    if expected_peer_id is not None:
        expected_peer_id = parse_peer_id(expected_peer_id)
    try:
        with trio.fail_after(math.inf if handshake_timeout is None else handshake_timeout):
            return await _handshake(channel, identity, initiator=initiator,
                                    expected_peer_id=expected_peer_id,
                                    max_frame_size=max_frame_size, deadlines=deadlines,
                                    partial_frames=partial_frames)
    except trio.TooSlowError:
        raise HandshakeTimeout(
            f"the handshake did not complete within {handshake_timeout} s") from None


async def _handshake(channel: MessageChannel, identity: Identity, *, initiator: bool,
                     expected_peer_id: str | None, max_frame_size: int,
                     deadlines: LinkDeadlines,
                     partial_frames: PartialFrameBudget | None) -> Connection:
    handshake = NoiseHandshake(
        initiator=initiator, identity=identity, expected_peer_id=expected_peer_id,
        static_private_key=nacl.utils.random(DH_SIZE),
        ephemeral_private_key=nacl.utils.random(DH_SIZE))
    reader = NoiseMessageReader()
    pending: collections.deque[bytes] = collections.deque()
    try:
        while handshake.state in (HandshakeState.WRITE, HandshakeState.READ):
            if handshake.state is HandshakeState.WRITE:
                await _send_chunked(channel, with_length_prefix(handshake.write_message()))
                continue
            with trio.fail_after(deadlines.handshake_message):
                while not pending:
                    pending.extend(reader.feed(await channel.receive_message()))
            handshake.read_message(pending.popleft())
        assert handshake.result is not None
        # Transport messages may arrive in the same channel message as the last
        # handshake message (the initiator sends right away): keep them.
        session = SecureSession(handshake.result, max_frame_size=max_frame_size, reader=reader)
        early_frames = session.receive_messages(list(pending))
    except BaseException:
        with trio.CancelScope(shield=True):
            await channel.aclose()
        raise
    return SecureConnection(channel, session, local_peer_id=identity.peer_id,
                            received=early_frames, deadlines=deadlines,
                            partial_frames=partial_frames)


class SecureConnection(Connection):
    """A ``Connection`` over a ``MessageChannel`` after a completed handshake."""

    def __init__(self, channel: MessageChannel, session: SecureSession, *,
                 local_peer_id: PeerId, received: list[bytes] | None = None,
                 deadlines: LinkDeadlines = DEFAULT_DEADLINES,
                 partial_frames: PartialFrameBudget | None = None) -> None:
        self._channel = channel
        self._deadlines = deadlines
        self._partial_frames = partial_frames
        self._session = session
        self._seal_frame = session.seal_frame
        self._local_peer_id = local_peer_id
        self._send_lock = LinkLock()
        self._receive_lock = LinkLock()
        self._received: collections.deque[bytes] = collections.deque(received or ())
        self._closed = False
        self._holding = False  # reported bytes held to ``partial_frames``
        self._idle = deadlines.idle
        self._frame_deadline = deadlines.frame
        # Frames that fit one channel message with their Noise overhead.
        self._small_frame_size = min(
            session.small_frame_size,
            channel.max_message_size - LENGTH_PREFIX_SIZE - TAG_SIZE - MAX_UVARINT_BYTES)
        payload = channel.packet_payload
        # A sealed frame of 128..16,383 bytes: 2-byte length, 2-byte uvarint, tag
        # (a byte more for larger ones, which packet boundaries hardly concern).
        self._packets = None if payload is None else Packets(
            payload=payload, overhead=LENGTH_PREFIX_SIZE + 2 + TAG_SIZE)

    @property
    def local_peer_id(self) -> PeerId:
        return self._local_peer_id

    @property
    def remote_peer_id(self) -> PeerId:
        return self._session.remote_peer_id

    @property
    def remote_address(self) -> str | None:
        address = self._channel.remote_address
        return None if address is None else budget_key(address)

    @property
    def packets(self) -> Packets | None:
        return self._packets

    @property
    def max_frame_size(self) -> int:
        return self._session.max_frame_size

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def held_bytes(self) -> int:
        """Bytes of a partial Noise message and frame this link holds for its peer."""
        return self._session.held_bytes

    async def send(self, frame: bytes) -> None:
        if self._closed:
            raise ConnectionClosed("the link is closed")
        lock = self._send_lock
        if lock.held:
            await lock.wait()
            if self._closed:  # closed while this task waited
                lock.release()
                raise ConnectionClosed("the link is closed")
        lock.held = True
        try:
            channel = self._channel
            if len(frame) <= self._small_frame_size:  # one channel message
                message = self._seal_frame(frame)
                try:
                    await channel.send_message(message)
                except BaseException:
                    await self._abort()  # as below
                    raise
                return
            messages = self._session.encrypt_frame(bytes(frame))  # OversizedFrame: link stays
            try:
                for message in messages:
                    if len(message) <= channel.max_message_size:
                        await channel.send_message(message)
                    else:
                        await _send_chunked(channel, message)
            except BaseException:
                # A frame cut short leaves the stream unusable (and the nonces spent).
                await self._abort()
                raise
        finally:
            if lock.waiting:
                lock.release()
            else:
                lock.held = False  # ``release`` without the call

    async def receive(self) -> bytes:
        lock = self._receive_lock
        if lock.held:
            await lock.wait()
        lock.held = True
        try:
            received = self._received
            if received:
                return received.popleft()
            session = self._session
            channel = self._channel
            idle = self._idle
            frame = self._frame_deadline
            # The clock is read only when a deadline applies: ``idle`` is set, or
            # a partial frame is held (at the start, or after a channel message).
            started = partial_since = None
            idle_at = frame_at = _INF
            while True:
                if self._closed:
                    raise ConnectionClosed("the link is closed")
                try:
                    if idle is None and (frame is None or not session.has_partial_frame):
                        # No deadline: no clock, no cancel scope per message
                        # (entering and leaving one registers its deadline with
                        # trio, ~5 % of a WebRTC pubsub run).
                        data = await channel.receive_message()
                    else:
                        now = trio.current_time()
                        if idle is not None and started is None:
                            started, idle_at = now, now + idle
                        if (frame is not None and partial_since is None
                                and session.has_partial_frame):
                            partial_since, frame_at = now, now + frame
                        if channel.message_waiting():  # here already: no cancel scope
                            data = await channel.receive_message()
                        else:
                            data = await self._receive_before(min(idle_at, frame_at),
                                                              frame_at <= idle_at)
                except ConnectionClosed:
                    closed_here = self._closed
                    await self._abort()
                    if not closed_here:
                        session.end_of_stream()  # TruncatedFrame if cut mid-frame
                    raise
                except RemoteProtocolError:  # the transport itself saw a broken peer
                    await self._abort()
                    raise
                try:
                    frames = session.receive_data(data)
                except RemoteProtocolError:
                    await self._abort()
                    raise
                budget = self._partial_frames
                if budget is not None and (self._holding or session.has_partial_frame):
                    # Reported after every read that holds bytes, and once after
                    # one that held some (nothing held is nothing to report).
                    held = session.held_bytes
                    if not budget.hold(id(self), held):
                        await self._abort()
                        raise PartialFrameBudgetExceeded(
                            "the listener's budget of bytes in partial frames is spent")
                    self._holding = held > 0
                if frames:
                    if len(frames) == 1:
                        return frames[0]
                    received.extend(frames)
                    return received.popleft()
        finally:
            if lock.waiting:
                lock.release()
            else:
                lock.held = False  # ``release`` without the call

    async def _receive_before(self, deadline: float, frame_deadline: bool) -> bytes:
        """One channel message, or ``FrameTimeout`` / ``IdleTimeout`` at ``deadline``."""
        with trio.move_on_at(deadline):
            return await self._channel.receive_message()
        # The caller's RemoteProtocolError handling closes the link.
        if frame_deadline:
            raise FrameTimeout(f"a frame started {self._deadlines.frame} s ago is still "
                               "incomplete")
        raise IdleTimeout(f"no frame for {self._deadlines.idle} s")

    async def _abort(self) -> None:
        self._closed = True
        if self._partial_frames is not None:
            self._partial_frames.hold(id(self), 0)
        with trio.CancelScope(shield=True):
            await self._channel.aclose()

    async def aclose(self) -> None:
        """Close the link; frames received but not yet returned are dropped."""
        self._received.clear()
        if self._closed:
            return
        await self._abort()

    def __repr__(self) -> str:
        return f"SecureConnection({self._local_peer_id} -> {self.remote_peer_id})"
