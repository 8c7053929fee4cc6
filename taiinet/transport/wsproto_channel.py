"""A WebSocket ``MessageChannel`` driven straight over wsproto: no tasks of its own.

Theory of operation: wsproto is the sans-I/O WebSocket core (the HTTP upgrade
through h11, then RFC 6455 frames); this module is its thin trio driver.  The
channel owns one byte stream (TCP, or TLS over TCP):

* reading happens only inside ``receive_message``, in the caller's task: one
  read of up to ``RECEIVE_BYTES`` (on a plain TCP socket: wait until it is
  readable, then one ``os.read``, see ``_read_socket``) is fed to wsproto and every
  whole binary message it completes is queued; the call returns the first,
  later calls the rest (each after a checkpoint, so a burst does not starve
  other tasks).  While the connection is open, frames that are each one
  whole binary message (nearly all) are parsed and built by
  ``taiinet.transport._wsframes`` instead of wsproto; the first frame of any
  other kind, and everything after it, goes through wsproto.
  No reader task, no channel hop between it and the owner, and nothing is
  read while nobody receives, so a peer that outruns its reader stalls in TCP
  flow control.  What a link holds: one partial message (at most
  ``WEBSOCKET_MAX_MESSAGE_SIZE`` bytes) and the whole messages of one read.
* writing frames the message and writes it under a lock that is nearly never
  contended (its holder is the link's one sender; the reader takes it only to
  answer a ping or a close), taken without a trip through the scheduler when
  free.  With a writer nursery the channel coalesces: ``send_message`` queues
  (at most ``SEND_BUFFER_BYTES``) and a writer task joins what queued while
  the socket was busy, and during one scheduler pass after the first message
  woke it, into as few WebSocket messages as possible.
* bad input is typed: a text message or a frame wsproto cannot parse is a
  ``WebSocketProtocolError``, a message over the limit a
  ``WebSocketMessageTooLarge``; the channel answers with a close frame (1003,
  1002, 1009) and closes the stream.
* closing sends a close frame (1000) and waits at most ``CLOSE_TIMEOUT`` for
  the peer's, reading for it itself when no task is in ``receive_message``.

``accept_websocket`` / ``connect_websocket_stream`` run the HTTP upgrade on a
stream (server and client side) and hand back the channel.  Both leave
deadlines to the caller and refuse headers over h11's limit (16 KiB).
"""

from __future__ import annotations

import collections
import math
import os

import trio
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionState, ConnectionType
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from taiinet.errors import ConnectionClosed, LocalProtocolError, RemoteProtocolError
from taiinet.transport._coalesce import coalesce
from taiinet.transport._linklock import LinkLock
from taiinet.transport._wsframes import binary_frame, take_binary_frames
from taiinet.transport.connection import MessageChannel

#: Largest WebSocket message: one Noise message (65535 bytes) with its 2-byte length.
WEBSOCKET_MAX_MESSAGE_SIZE = 65537
#: Bytes asked of the stream per read (one read may complete several messages).
RECEIVE_BYTES = 64 * 1024
#: Bytes asked of the stream per read during the HTTP upgrade.
HANDSHAKE_RECEIVE_BYTES = 4096
#: Bytes ``send_message`` queues for the writer task (coalescing channels) before it waits.
SEND_BUFFER_BYTES = 256 * 1024
#: Seconds a close waits for queued messages to be written.
CLOSE_FLUSH_TIMEOUT = 5.0
#: Seconds a close waits for the peer's half of the WebSocket close handshake.
CLOSE_TIMEOUT = 2.0

#: What a broken or closed stream raises.
_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class WebSocketProtocolError(RemoteProtocolError):
    """The peer sent a WebSocket message TaiiNet does not allow (text, malformed)."""


class WebSocketMessageTooLarge(WebSocketProtocolError):
    """The peer sent a WebSocket message over ``WEBSOCKET_MAX_MESSAGE_SIZE`` bytes."""


class WebSocketUpgradeError(RemoteProtocolError):
    """The HTTP upgrade failed: a malformed request or answer, or a refusal."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        #: The HTTP status of a refusal (client side), ``None`` otherwise.
        self.status_code = status_code


class _MalformedFrame(Exception):
    """wsproto could not parse the peer's frames; ``code`` is the close code to answer."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


#: Read TCP sockets with ``os.read`` after ``wait_readable`` (POSIX: a socket is a file).
_DIRECT_READS = os.name == "posix"


async def _read_socket(sock: trio.socket.SocketType) -> bytes:
    """``SocketStream.receive_some(RECEIVE_BYTES)``, minus the wasted work per message.

    trio's ``recv`` first tries the socket and only waits after it failed; a
    link's reader calls it right after handling the previous message, when the
    next one has nearly never arrived yet, so each message cost a ``recv`` that
    fails (a syscall and a ``BlockingIOError``) before the wait and the ``recv``
    that reads.  Waiting first reads each message with one syscall; the wait is
    the checkpoint (cancellable, and it yields even when data is there).
    Raises what the stream would: ``ClosedResourceError`` (closed here),
    ``OSError`` (a reset); ``b""`` at the end of the stream.
    """
    while True:
        if sock.fileno() < 0:
            raise trio.ClosedResourceError("the socket was closed")
        await trio.lowlevel.wait_readable(sock)
        fd = sock.fileno()  # closed by another task while this one was woken?
        if fd < 0:
            raise trio.ClosedResourceError("the socket was closed")
        try:
            return os.read(fd, RECEIVE_BYTES)
        except BlockingIOError:  # a spurious wake-up: wait again
            continue


async def _write_socket(sock: trio.socket.SocketType, stream: trio.abc.Stream,
                        data: bytes) -> None:
    """``stream.send_all(data)`` for a plain TCP stream, in one ``os.write`` when the
    socket takes it all (nearly always: a link's message is small); what it does
    not take goes through ``send_all``, which waits for the socket.

    The same checkpoint as ``send_all`` (cancellation checked before writing, a
    yield after), without its per-call context managers.
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    fd = sock.fileno()
    if fd < 0:
        raise trio.ClosedResourceError("the socket was closed")
    try:
        written = os.write(fd, data)
    except BlockingIOError:
        written = 0
    if written < len(data):
        await stream.send_all(data[written:])
    else:
        await trio.lowlevel.cancel_shielded_checkpoint()


def _holds_nothing(connection: WsConnection) -> bool:
    """Whether wsproto holds no bytes from the peer yet, so frames may be parsed here.

    A client's connection starts with what came after the server's answer to
    the upgrade (h11's trailing data, frames the server sent at once): those
    must be read through wsproto, and so must all that follows.  wsproto has no
    public way to ask; should its internals change, everything goes through it.
    """
    try:
        return len(connection._proto._frame_decoder.buffer) == 0
    except (AttributeError, TypeError):
        return False


class WebSocketChannel(MessageChannel):
    """A raw ``MessageChannel`` over one upgraded stream (unauthenticated); module doc."""

    max_message_size = WEBSOCKET_MAX_MESSAGE_SIZE

    def __init__(self, stream: trio.abc.Stream, connection: WsConnection, *,
                 remote_address: str | None = None,
                 writer_nursery: trio.Nursery | None = None) -> None:
        self._stream = stream
        #: A plain TCP stream's socket, read directly (``_read_socket``).
        self._socket = (stream.socket if _DIRECT_READS and type(stream) is trio.SocketStream
                        else None)
        self._ws = connection
        self.remote_address = remote_address
        self._write_lock = LinkLock()
        self._reading = False
        #: Messages ``receive_message`` returned (an idle watchdog compares it, see
        #: ``taiinet.transport._idle``).
        self.messages_received = 0
        self._received: collections.deque[bytes] = collections.deque()
        self._partial: list[bytes] = []
        self._partial_bytes = 0
        #: Frames are parsed by ``_wsframes`` (until a frame of another kind, or
        #: the close, hands the stream to wsproto for good); ``_unparsed`` holds
        #: the start of the next frame (at most one frame's header and payload).
        self._direct = _holds_nothing(connection)
        self._unparsed = b""
        #: Frames we send are masked (RFC 6455 5.3), and those we receive are not.
        self._masking = connection.client
        self._error: RemoteProtocolError | None = None
        self._peer_closed = trio.Event()
        self._closed = trio.Event()
        self._closing = False
        # Coalescing writer state.
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._wake = trio.Event()
        self._space = trio.Event()
        self._flushed = trio.Event()
        self._flushed.set()
        self._send_failed = False
        self._coalescing = writer_nursery is not None
        if writer_nursery is not None:
            writer_nursery.start_soon(self._writer)

    # --- sending ----------------------------------------------------------------------

    async def send_message(self, data: bytes) -> None:
        if len(data) > self.max_message_size:
            raise LocalProtocolError(
                f"message of {len(data)} bytes exceeds the WebSocket limit "
                f"of {self.max_message_size}"
            )
        if not self._coalescing:
            await self._send_now(bytes(data))
            return
        await trio.lowlevel.checkpoint()
        while self._pending_bytes >= SEND_BUFFER_BYTES and not self._send_failed:
            self._space = trio.Event() if self._space.is_set() else self._space
            await self._space.wait()
        if self._send_failed or self._closed.is_set():
            raise ConnectionClosed("the WebSocket is closed")
        self._pending.append(bytes(data))
        self._pending_bytes += len(data)
        self._flushed = trio.Event() if self._flushed.is_set() else self._flushed
        self._wake.set()

    async def _send_now(self, data: bytes) -> None:
        lock = self._write_lock
        if lock.held:
            await lock.wait()
        lock.held = True
        try:
            if self._ws.state is not ConnectionState.OPEN or self._closing:
                raise ConnectionClosed("the WebSocket is closed")
            # What ``self._ws.send(Message(data=data))`` writes when open: one
            # binary frame (wsproto keeps no state for a whole message, and
            # neither side offers an extension).
            frame = binary_frame(data, self._masking)
            try:
                if self._socket is not None:
                    await _write_socket(self._socket, self._stream, frame)
                else:
                    await self._stream.send_all(frame)
            except _STREAM_ERRORS:
                self._closed.set()
                raise ConnectionClosed("the WebSocket is closed") from None
        finally:
            lock.release()

    async def _write_control(self, event: CloseConnection | Pong) -> None:
        """Best effort: a close frame or a pong; a broken stream is the reader's to see.

        A pong is skipped while a send holds the stream (RFC 6455 lets a pong
        answer only the latest ping): the reader never waits on a peer that
        does not read, which could stall both sides.
        """
        lock = self._write_lock
        if lock.held:
            if isinstance(event, Pong):
                return
            await lock.wait()
        lock.held = True
        try:
            if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                data = self._ws.send(event)
                await self._stream.send_all(data)
        except _STREAM_ERRORS:
            pass
        finally:
            lock.release()

    async def _writer(self) -> None:
        try:
            while True:
                await self._wake.wait()
                # One pass of the scheduler before taking the batch: the senders
                # woken with us (a link's sender, its readers' replies) queue
                # theirs too, so one WebSocket message and one write carry them.
                await trio.lowlevel.checkpoint()
                self._wake = trio.Event()
                batch, self._pending, self._pending_bytes = self._pending, [], 0
                self._space.set()
                for message in coalesce(batch, self.max_message_size):
                    await self._send_now(message)
                if not self._pending:
                    self._flushed.set()
        except ConnectionClosed:
            self._send_failed = True
            self._pending, self._pending_bytes = [], 0
            self._space.set()
            self._flushed.set()

    # --- receiving --------------------------------------------------------------------

    def message_waiting(self) -> bool:
        return bool(self._received)

    async def receive_message(self) -> bytes:
        if self._reading:
            raise LocalProtocolError("two tasks receive on one WebSocket channel")
        self._reading = True
        try:
            if self._received:
                # The rest of an earlier read: let other tasks run between
                # messages as a read per message would (a burst of messages must
                # not starve the senders that drain what handling them queued).
                await trio.lowlevel.checkpoint()
            while not self._received:
                if self._error is not None:
                    raise self._error
                if self._peer_closed.is_set() or self._closing:
                    raise ConnectionClosed("the WebSocket is closed")
                await self._read_once()
            self.messages_received += 1
            return self._received.popleft()
        finally:
            self._reading = False

    @property
    def receiving(self) -> bool:
        """Whether a task is waiting in ``receive_message`` (or handling a read)."""
        return self._reading

    async def expire(self, error: RemoteProtocolError) -> None:
        """Close at once for ``error`` (an idle watchdog's verdict): the task in
        ``receive_message``, and any later call, raises it."""
        if self._closing:
            return
        self._error = error
        with trio.CancelScope(shield=True):
            await self._close_stream()

    async def _read_once(self) -> None:
        """One read from the stream, fed to wsproto; whole messages go to ``_received``."""
        data: bytes | bytearray
        try:
            if self._socket is not None:
                data = await _read_socket(self._socket)
            else:
                data = await self._stream.receive_some(RECEIVE_BYTES)
        except _STREAM_ERRORS:
            data = b""
        if isinstance(data, bytearray):  # TLS streams; sockets give bytes
            data = bytes(data)
        if self._closing:  # closed meanwhile (``aclose`` from another task)
            return
        try:
            if self._direct and data and self._ws.state is ConnectionState.OPEN:
                reply = self._take_direct(data)
            else:
                reply = self._take_wsproto(data)
        except _MalformedFrame as exc:
            await self._fail(WebSocketProtocolError(f"malformed WebSocket data: {exc.reason}"),
                             exc.code)
            return
        except WebSocketProtocolError as exc:
            code = (CloseReason.MESSAGE_TOO_BIG if isinstance(exc, WebSocketMessageTooLarge)
                    else CloseReason.UNSUPPORTED_DATA)
            await self._fail(exc, code)
            return
        if reply is not None:
            await self._write_control(reply)
        if self._peer_closed.is_set():
            self._closed.set()

    def _take_direct(self, data: bytes) -> CloseConnection | Pong | None:
        """Queue the whole binary messages at the head of ``_unparsed + data``; from
        the first frame of another kind on, hand the bytes to wsproto."""
        if self._unparsed:
            data = self._unparsed + data
        try:
            taken, simple = take_binary_frames(data, not self._masking, self.max_message_size,
                                               self._received)
        except ValueError:
            raise WebSocketMessageTooLarge(
                f"the peer sent a WebSocket message over {self.max_message_size} bytes"
            ) from None
        if simple:
            self._unparsed = data[taken:] if taken < len(data) else b""
            return None
        self._unparsed = b""
        return self._take_wsproto(data[taken:])

    def _take_wsproto(self, data: bytes) -> CloseConnection | Pong | None:
        """Feed ``data`` to wsproto (for good: it may keep part of a frame)."""
        self._direct = False
        if self._unparsed:  # the start of a frame, left by ``_take_direct``
            self._ws.receive_data(self._unparsed)
            self._unparsed = b""
        self._ws.receive_data(data or None)  # None: the stream ended
        return self._take_events()

    def _take_events(self) -> CloseConnection | Pong | None:
        """Queue the messages wsproto completed; return a control answer to send."""
        reply: CloseConnection | Pong | None = None
        limit = self.max_message_size
        closing = self._ws.state is ConnectionState.LOCAL_CLOSING
        for event in self._ws.events():
            if isinstance(event, BytesMessage):
                if closing:  # read only to find the peer's close: hold nothing
                    continue
                size = self._partial_bytes + len(event.data)
                if size > limit:
                    raise WebSocketMessageTooLarge(
                        f"the peer sent a WebSocket message over {limit} bytes")
                if event.message_finished:
                    if self._partial:
                        self._partial.append(bytes(event.data))
                        self._received.append(b"".join(self._partial))
                        self._partial, self._partial_bytes = [], 0
                    else:
                        self._received.append(bytes(event.data))
                else:
                    self._partial.append(bytes(event.data))
                    self._partial_bytes = size
            elif isinstance(event, TextMessage):
                raise WebSocketProtocolError("the peer sent a text WebSocket message")
            elif isinstance(event, Ping):
                reply = event.response()
            elif isinstance(event, CloseConnection):
                if self._ws.state is ConnectionState.OPEN:
                    # wsproto reports a frame it cannot parse as a close event
                    # with the code to answer, and stays open.
                    raise _MalformedFrame(event.code, event.reason or "malformed frame")
                self._peer_closed.set()
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    return event.response()
                return None
        return reply

    async def _fail(self, error: RemoteProtocolError, code: int) -> None:
        """The peer broke the protocol: answer with a close frame, close, keep ``error``."""
        self._error = error
        with trio.CancelScope(shield=True):
            with trio.move_on_after(CLOSE_TIMEOUT):
                await self._write_control(CloseConnection(code=code))
            await self._close_stream()

    # --- closing ----------------------------------------------------------------------

    async def aclose(self) -> None:
        if self._closing:
            return
        try:
            # Shielded so a cancelled owner still closes, but bounded: a peer that
            # never answers the close handshake must not hold us forever, and a
            # cancelled owner does not wait for it at all.
            cancelled = trio.current_effective_deadline() == -math.inf
            with trio.CancelScope(shield=True):
                with trio.move_on_after(CLOSE_FLUSH_TIMEOUT):
                    await self._flushed.wait()  # what was sent before the close goes first
            timeout = 0.0 if cancelled else CLOSE_TIMEOUT
            with trio.CancelScope(shield=True, deadline=trio.current_time() + timeout):
                await self._close_handshake()
        finally:
            with trio.CancelScope(shield=True):
                await self._close_stream()

    async def _close_handshake(self) -> None:
        if self._ws.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            return
        await self._write_control(CloseConnection(code=CloseReason.NORMAL_CLOSURE))
        if self._reading:  # the owner's reader will see the peer's close
            await self._peer_closed.wait()
            return
        self._reading = True
        try:
            while not self._peer_closed.is_set() and self._error is None:
                await self._read_once()
        finally:
            self._reading = False

    async def _close_stream(self) -> None:
        self._closing = True
        self._closed.set()
        self._send_failed = True
        self._space.set()
        self._flushed.set()
        self._peer_closed.set()
        await trio.aclose_forcefully(self._stream)

    async def wait_closed(self) -> None:
        """Return once this side closed the channel or saw it closed."""
        await self._closed.wait()


async def _receive_handshake_data(stream: trio.abc.Stream) -> bytes:
    data: bytes | bytearray
    try:
        data = await stream.receive_some(HANDSHAKE_RECEIVE_BYTES)
    except _STREAM_ERRORS:
        data = b""
    if not data:
        raise ConnectionClosed("the stream ended during the WebSocket upgrade")
    return bytes(data)


async def accept_websocket(stream: trio.abc.Stream, subprotocol: str, *,
                           remote_address: str | None = None,
                           writer_nursery: trio.Nursery | None = None,
                           ) -> WebSocketChannel | None:
    """The server side of the HTTP upgrade on ``stream``.

    Returns ``None`` after refusing (400) a client that does not offer
    ``subprotocol``; raises ``WebSocketUpgradeError`` (after a 400 answer)
    for a request that is no WebSocket upgrade, ``ConnectionClosed`` if the
    client goes away.  The caller bounds the time it takes.
    """
    handshake = H11Handshake(ConnectionType.SERVER)
    request: Request | None = None
    while request is None:
        try:
            handshake.receive_data(await _receive_handshake_data(stream))
            for event in handshake.events():
                if isinstance(event, Request):
                    request = event
        except WsRemoteProtocolError as exc:
            hint = exc.event_hint
            if isinstance(hint, RejectConnection):
                await stream.send_all(handshake.send(hint))
            raise WebSocketUpgradeError(f"not a WebSocket upgrade: {exc}") from None
    if subprotocol not in request.subprotocols:
        body = f"subprotocol {subprotocol} required".encode()
        headers = [(b"content-type", b"text/plain"),
                   (b"content-length", str(len(body)).encode())]
        answer = handshake.send(RejectConnection(status_code=400, headers=headers,
                                                 has_body=True))
        await stream.send_all(answer + handshake.send(RejectData(data=body)))
        return None
    await stream.send_all(handshake.send(AcceptConnection(subprotocol=subprotocol)))
    connection = handshake.connection
    assert connection is not None
    return WebSocketChannel(stream, connection, remote_address=remote_address,
                            writer_nursery=writer_nursery)


async def connect_websocket_stream(stream: trio.abc.Stream, host: str, resource: str,
                                   subprotocol: str, *,
                                   remote_address: str | None = None,
                                   writer_nursery: trio.Nursery | None = None,
                                   ) -> WebSocketChannel:
    """The client side of the HTTP upgrade on ``stream``, asking for ``subprotocol``.

    Raises ``WebSocketUpgradeError`` when the server refuses (``status_code``),
    answers something that is no valid upgrade, or picks another subprotocol;
    ``ConnectionClosed`` if it goes away.  The caller bounds the time it takes.
    """
    handshake = H11Handshake(ConnectionType.CLIENT)
    await stream.send_all(handshake.send(
        Request(host=host, target=resource, subprotocols=[subprotocol])))
    while True:
        try:
            handshake.receive_data(await _receive_handshake_data(stream))
            events = list(handshake.events())
        except WsRemoteProtocolError as exc:
            raise WebSocketUpgradeError(f"bad answer to the WebSocket upgrade: {exc}") from None
        for event in events:
            if isinstance(event, RejectConnection):
                raise WebSocketUpgradeError(
                    f"the server refused the WebSocket upgrade (HTTP {event.status_code})",
                    status_code=event.status_code)
            if isinstance(event, AcceptConnection):
                if event.subprotocol != subprotocol:
                    raise WebSocketUpgradeError(
                        f"the server did not agree to the {subprotocol} subprotocol")
                connection = handshake.connection
                assert connection is not None
                return WebSocketChannel(stream, connection, remote_address=remote_address,
                                        writer_nursery=writer_nursery)
