"""One aiortc data channel seen from trio: messages cross between trio and asyncio in batches.

aiortc's callbacks and trio's tasks run in the same thread (see
``_asyncio_loop``), so messages cross in plain bounded deques.  Outbound,
every message a trio task sends while a flush is pending joins that flush,
and the flushes of every channel pending by the loop's next iteration run
in one asyncio callback (``HostedLoop.flush_soon``): not one per message,
nor one per channel.  Inbound, aiortc's message
callback appends to the inbox and wakes the reader's trio event.

Scheduling rounds.  ``send_message`` checks for cancellation first (a
cancelled send sends nothing) and yields after it has scheduled the flush,
so the loop's driver sends the message in the round the sender yields in;
``receive_message`` with nothing to read waits at once (the wait is its
checkpoint) and yields first only when a message is already there.  A
ping-pong frame therefore costs two trio rounds (see ``_asyncio_loop``).

Back-pressure.  Inbound: once ``RECEIVE_HIGH_WATER`` messages wait for trio,
the SCTP receive path (``RTCSctpTransport._data_channel_receive``, which
aiortc awaits for every message) waits until the reader has brought them down
to ``RECEIVE_LOW_WATER``; the DTLS loop stops reading, nothing is
acknowledged, and the remote sender's ``bufferedAmount`` grows until its
``send`` waits: back-pressure end to end (aiortc ignores the SCTP receive
window, so this is the only lever).  Outbound: ``send`` waits while the
bytes handed over plus the data channel's ``bufferedAmount`` exceed
``SEND_HIGH_WATER``, and wakes when aiortc has passed everything it holds
to SCTP (the ``bufferedamountlow`` event, threshold 0).  A coalescing channel
also holds its outbox while aiortc still holds messages: they would wait
behind them anyway, and leave joined, as few data channel messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio
from aiortc import RTCDataChannel
from aiortc.rtcsctptransport import USERDATA_MAX_LENGTH, WEBRTC_BINARY

from taiinet.errors import ConnectionClosed, LocalProtocolError, RemoteProtocolError
from taiinet.transport._asyncio_eager import Pending, hook_with_plain_variant
from taiinet.transport._coalesce import coalesce
from taiinet.transport.connection import MessageChannel

if TYPE_CHECKING:
    from taiinet.transport._asyncio_bridge import BridgedPeer

logger = logging.getLogger(__name__)

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
#: ``send`` waits while more than this many bytes are queued for the network
#: (and resumes once aiortc has passed all it holds to SCTP).
SEND_HIGH_WATER = 1024 * 1024


class BridgedDataChannel(MessageChannel):
    """A raw ``MessageChannel`` over one aiortc data channel (unauthenticated).

    With ``coalesce`` set, messages queued while aiortc was busy are joined
    into fewer data channel messages (up to ``max_message_size``): message
    boundaries are lost, which the secure channel allows (it reads a byte
    stream of length-prefixed Noise messages) and which saves aiortc's large
    per-message cost when many small frames are sent.
    """

    max_message_size = MAX_DATA_CHANNEL_MESSAGE
    #: SCTP cuts each message into DATA chunks of this many bytes, one per packet.
    packet_payload = USERDATA_MAX_LENGTH
    coalesce = False

    def __init__(self, peer: BridgedPeer, channel: RTCDataChannel) -> None:
        self._peer = peer
        self._hosted = peer._bridge.hosted
        self._channel = channel
        self._closed_reason: str | None = None
        self._error: RemoteProtocolError | None = None  # raised instead of ConnectionClosed
        self._open = channel.readyState == "open"
        #: Messages ``receive_message`` has returned (the idle watchdog's count, ``_idle``).
        self.messages_received = 0
        #: Told when this channel closes (the endpoint's idle watchdog forgets it).
        self.on_closed: Callable[[BridgedDataChannel], None] | None = None
        # inbound (aiortc -> trio)
        self._inbox: deque[bytes] = deque()
        self._inbox_bytes = 0
        self._reader_waiting = False
        self._reader_task: trio.lowlevel.Task | None = None  # parked in receive_message
        self._room: asyncio.Event | None = None  # set while the SCTP receive path waits
        # outbound (trio -> aiortc)
        self._outbox: deque[bytes] = deque()
        self._flush_scheduled = False
        self._handed_over = 0
        self._buffered = 0
        self._writer_waiting = False
        self._writer_event = trio.Event()
        channel.bufferedAmountLowThreshold = 0  # "bufferedamountlow": aiortc's queue is empty
        channel.on("open", self._on_open)
        channel.on("message", self._on_message)
        channel.on("close", self._on_close)
        self._hear_buffered_low(channel)

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
        # The checkpoint is split around the hand-over: cancelled callers send
        # nothing, and the yield comes after the flush is scheduled, so the
        # loop's driver sends it in the same scheduling round.
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while self._handed_over + self._buffered > SEND_HIGH_WATER:
            if self._closed_reason is not None:
                break
            self._writer_waiting = waited = True
            self._writer_event = trio.Event()
            await self._writer_event.wait()
        if self._closed_reason is not None:
            raise ConnectionClosed(f"data channel closed: {self._closed_reason}")
        self._handed_over += len(data)
        self._outbox.append(bytes(data))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                self._hosted.flush_soon(self._on_flush)
            except RuntimeError:  # the loop is already closed
                self._mark_closed("the WebRTC endpoint is closed")
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()

    def message_waiting(self) -> bool:
        return bool(self._inbox)

    async def receive_message(self) -> bytes:
        if self._inbox or self._closed_reason is not None:
            await trio.lowlevel.checkpoint()
        # else the wait below is the checkpoint: no scheduling round before it
        while not self._inbox:
            if self._closed_reason is not None:
                if self._error is not None:
                    raise self._error
                raise ConnectionClosed(f"data channel closed: {self._closed_reason}")
            self._reader_waiting = True
            await self._park_reader()
        message = self._inbox.popleft()
        self._inbox_bytes -= len(message)
        self.messages_received += 1
        if (
            self._room is not None
            and len(self._inbox) <= RECEIVE_LOW_WATER
            and self._inbox_bytes <= RECEIVE_LOW_WATER_BYTES
        ):
            room, self._room = self._room, None
            self._call_on_loop(room.set)
        return message

    async def _park_reader(self) -> None:
        """Wait until ``_wake_reader``: the task parked itself, no ``trio.Event`` per wait.

        A message arrives every few milliseconds on a busy link: an event
        (with its parking lot) made for every wait cost an allocation or three
        per message, and outlived enough collections to reach the oldest
        generation, which only full collections clear.
        """
        self._reader_task = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(self._abort_reader)

    def _abort_reader(self, _: object) -> trio.lowlevel.Abort:
        """The read is given up: nobody waits any more (the idle watchdog must
        not count a channel nobody reads as a reader waiting for nothing)."""
        self._reader_waiting = False
        self._reader_task = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _wake_reader(self) -> None:
        self._reader_waiting = False
        task, self._reader_task = self._reader_task, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    @property
    def closed(self) -> bool:
        """Whether the channel is closed (locally, by the peer, or for an error)."""
        return self._closed_reason is not None

    @property
    def receiving(self) -> bool:
        """Whether a task waits in ``receive_message`` for a message."""
        return self._reader_waiting

    async def expire(self, error: RemoteProtocolError) -> None:
        """Close for ``error`` (an idle watchdog's verdict): the waiting reader, and any
        later ``receive_message`` once the inbox is read, raises it.

        The peer connection is closed by whoever owns the channel (a secure
        connection closes it when its read fails), not here: closing lingers
        (``CLOSE_LINGER``) and the watchdog must not wait for it.
        """
        if self._closed_reason is not None:
            return
        self._error = error
        self._mark_closed(str(error))

    async def aclose(self) -> None:
        self._mark_closed("closed locally")
        await self._peer.aclose()

    def _call_on_loop(self, fn: Callable[[], object]) -> bool:
        try:
            self._hosted.call_soon(fn)
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
        if self._closed_reason is not None:
            return
        if len(self._inbox) >= RECEIVE_QUEUE_LIMIT:
            logger.warning("closing a WebRTC link: its reader fell behind")
            self._peer._set_failure("receive queue overflow")
            self._channel.close()
            return
        self._inbox.append(data)
        self._inbox_bytes += len(data)
        if self._reader_waiting:
            self._wake_reader()

    def _pause_sctp_receive(self, sctp: Any) -> None:
        """Make aiortc's SCTP receive path wait while too many messages wait for trio.

        A binary message of this channel goes straight to ``_on_message``
        rather than through aiortc's ``message`` event (an event emitter call
        per message; this channel is the event's only listener).
        """
        deliver = getattr(sctp, "_data_channel_receive", None)
        if deliver is None or getattr(deliver, "_taiinet_paced", False):
            return

        channel = self._channel

        def paced_receive_now(stream_id: int, pp_id: int, data: bytes) -> Pending:
            if pp_id != WEBRTC_BINARY or stream_id != channel.id:
                return paced_receive_other(stream_id, pp_id, data)
            self._on_message(data)  # what aiortc's "message" event would call
            return self._wait_for_room()

        async def paced_receive_other(stream_id: int, pp_id: int, data: bytes) -> None:
            await deliver(stream_id, pp_id, data)
            waiting = self._wait_for_room()
            if waiting is not None:
                await waiting

        paced_receive = hook_with_plain_variant(paced_receive_now)
        paced_receive._taiinet_paced = True  # type: ignore[attr-defined]
        sctp._data_channel_receive = paced_receive

    def _wait_for_room(self) -> Pending:
        """Once too many messages wait for trio: the wait until the reader brought them down."""
        if self._closed_reason is not None or (
            len(self._inbox) < RECEIVE_HIGH_WATER
            and self._inbox_bytes < RECEIVE_HIGH_WATER_BYTES
        ):
            return None
        room = self._room = asyncio.Event()
        return _wait(room)

    def _on_flush(self) -> None:
        self._flush_scheduled = False
        if self.coalesce and self._channel.bufferedAmount > 0:
            # aiortc still holds messages it could not pass to SCTP yet: these
            # would wait behind them anyway, so hold them and join them into
            # as few messages as possible once it has passed them all on.
            return
        self._send_outbox()

    def _send_outbox(self) -> None:
        outbox = self._outbox
        batch: list[bytes] | tuple[bytes]
        if len(outbox) == 1:  # the usual flush: one message
            batch = (outbox.popleft(),)
            handed_over = len(batch[0])
        else:
            batch = list(outbox)
            outbox.clear()
            handed_over = sum(map(len, batch))
            if self.coalesce and len(batch) > 1:
                batch = coalesce(batch, self.max_message_size)
        try:
            for message in batch:
                self._channel.send(message)
        except Exception as exc:  # InvalidStateError once the channel closed
            self._peer._set_failure(f"send failed: {type(exc).__name__}")
        self._handed_over -= handed_over
        self._update_buffered()

    def _hear_buffered_low(self, channel: RTCDataChannel) -> None:
        """Take aiortc's ``bufferedamountlow`` events in a direct call, not through pyee.

        Every message fires one (it is passed to SCTP in ``send``'s call, so
        ``bufferedAmount`` drops back to 0 at once), and pyee's ``emit`` costs
        more than the handler.  The bridge owns this channel: nothing else
        listens.  Other events keep pyee's path.
        """
        emit = channel.emit

        def emit_buffered_low_directly(event: str, *args: Any, **kwargs: Any) -> bool:
            if event == "bufferedamountlow":
                self._on_buffered_low()
                return True
            return emit(event, *args, **kwargs)

        channel.emit = emit_buffered_low_directly  # type: ignore[method-assign]

    def _on_buffered_low(self) -> None:
        """aiortc has passed every queued message to SCTP (its ``bufferedAmount`` is 0)."""
        if self._outbox:
            self._send_outbox()
        else:
            self._update_buffered()

    def _update_buffered(self) -> None:
        self._buffered = self._channel.bufferedAmount
        if self._writer_waiting and self._handed_over + self._buffered <= SEND_HIGH_WATER:
            self._writer_waiting = False
            self._writer_event.set()

    def _on_close(self) -> None:
        self._peer._set_failure("data channel closed")

    # either side

    def _mark_closed(self, reason: str) -> None:
        if self._closed_reason is None:
            self._closed_reason = reason
            if self.on_closed is not None:
                self.on_closed(self)
        room, self._room = self._room, None
        if room is not None:
            self._call_on_loop(room.set)
        if self._reader_waiting:
            self._wake_reader()
        if self._writer_waiting:
            self._writer_waiting = False
            self._writer_event.set()


async def _wait(room: asyncio.Event) -> None:
    await room.wait()
