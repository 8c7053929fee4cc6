"""DTLS records read in the socket's callback, not through aioice's queue and aiortc's reader task.

aiortc (1.16) reads every datagram of a connection in one task,
``RTCDtlsTransport.__run``: aioice's socket callback puts the datagram in an
``asyncio.Queue``, which wakes the task (a future, a scheduled callback, one
more loop iteration), which resumes through four coroutine frames to decrypt
the record and hand the SCTP packet on.  Before that, aioice tries to parse
every datagram as STUN and catches the ``ValueError``.  Per datagram, that
was a large share of what WebRTC costs over a WebSocket link.

``read_directly`` makes one peer connection do, once its DTLS handshake is
over, what that task does for a DTLS record (decrypt, flush what OpenSSL
wants to send, hand the plaintext to SCTP) inside the socket callback, with
``_asyncio_eager.run_eagerly``; a datagram whose first byte is in the DTLS
range (20-63, RFC 7983) skips the STUN parse.  The record is read in a
plain call that hands the SCTP packet on through its plain variant
(``_asyncio_eager.call_now``): no coroutine unless something waits.  Order
is kept: while the reader task still has datagrams to process (or is not waiting on its queue),
datagrams go its way as before; while a record processed here waits (only
the receive back-pressure of ``_asyncio_channel`` makes it wait), later ones
wait behind it in a deque.  Both that deque and aioice's queue share one
budget per connection (``MAX_HELD_BYTES``, ``MAX_HELD_DATAGRAMS``) that an
honest peer never reaches; a datagram past it is dropped (SCTP retransmits
it), so a peer that sends faster than it is read, or sends garbage, cannot
grow memory.  Whatever ends the reader
task (the peer's close_notify, an error) ends it here too: a ``None`` in
aioice's queue makes the parked task raise ``ConnectionError`` and close the
transport, as its own reading would have.

``send_directly`` cuts the other direction: aiortc encrypts an SCTP packet
(``_send_data``) and then awaits, for that one record, ``_write_ssl``,
aioice's ``Connection.send``, ``Connection.sendto`` and
``StunProtocol.send_data``, four coroutines around one ``sendto``.  It does
the same work in one: encrypt, take the record out of OpenSSL's memory BIO,
hand it to the nominated pair's socket.  Reading a record also flushes what
OpenSSL wants to send; that is almost always nothing, which pyOpenSSL's
``bio_read`` reports by raising ``WantReadError``: both paths ask the BIO how
many bytes it holds first (``BIO_get_mem_data``).  A pair whose protocol is
not aioice's plain ``StunProtocol`` still gets its own ``send_data``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aioice.ice import Connection as IceConnection
from aioice.ice import StunProtocol
from aiortc.rtcdtlstransport import State
from OpenSSL import SSL

from taiinet.transport._asyncio_eager import PLAIN_VARIANT as _NOW
from taiinet.transport._asyncio_eager import run_eagerly

_ffi: Any
_lib: Any
try:  # pyOpenSSL's cffi binding (private): without it, records keep aiortc's ``_write_ssl``
    from OpenSSL._util import ffi as _ffi
    from OpenSSL._util import lib as _lib
except ImportError:
    _ffi = _lib = None
#: ``bytes`` of a cffi ``char[]``'s first bytes, with no ``ffi.buffer`` object between.
_unpack: Any = getattr(_ffi, "unpack", None)
_NULL: Any = getattr(_ffi, "NULL", None)

logger = logging.getLogger(__name__)

_HOOKED = "_taiinet_direct_reads"
_HELD = "_taiinet_held"  # the connection's ``HeldDatagrams``
_HANDSHAKE_DONE = "_RTCDtlsTransport__handshake_done"
_RX_BYTES = "_RTCDtlsTransport__rx_bytes"
_RX_PACKETS = "_RTCDtlsTransport__rx_packets"
_TX_BYTES = "_RTCDtlsTransport__tx_bytes"
_TX_PACKETS = "_RTCDtlsTransport__tx_packets"
_SEND_HOOKED = "_taiinet_direct_sends"
_WRITER = "_taiinet_record_writer"
_CONNECTED = State.CONNECTED
#: Largest record read out of OpenSSL at once (aiortc's ``_write_ssl`` reads 1500).
_RECORD_READ = 1500
#: Bytes of datagrams one connection may hold for later: behind a record being
#: processed, or in aioice's queue for aiortc's reader task.  A record waits only
#: while the trio reader is behind, and then nothing is acknowledged, so an honest
#: peer has at most our SCTP receive window in flight toward us (aiortc advertises
#: 1 MiB, ``_advertised_rwnd``; an aiortc sender, which ignores the window, is held
#: by its congestion window, which stops growing without SACKs).  A full window
#: is ~900 packets of <= 1189 bytes (``SCTP_MAX_PACKET_LENGTH``) plus ~30 bytes of
#: DTLS each, ~1.1 MiB of datagrams; twice the window leaves room for SACKs,
#: heartbeats and retransmissions.
MAX_HELD_BYTES = 2 * 1024 * 1024
#: ... and datagrams: a window of small packets (>= 128 bytes of user data on
#: average); each held datagram also costs ~40 bytes of Python object.
MAX_HELD_DATAGRAMS = 8192


class HeldDatagrams:
    """The budget of one connection's held datagrams; past it a datagram is dropped.

    Dropping a UDP datagram is what a full socket buffer does anyway: SCTP
    retransmits what was lost, so an honest peer that somehow overshoots
    loses time, not data, and a flooding one gains no memory.
    """

    __slots__ = ("bytes", "datagrams", "dropped")

    def __init__(self) -> None:
        self.bytes = 0
        self.datagrams = 0
        self.dropped = 0

    def admit(self, size: int) -> bool:
        """Count a datagram of ``size`` bytes in, or count it dropped (False)."""
        if self.bytes + size > MAX_HELD_BYTES or self.datagrams >= MAX_HELD_DATAGRAMS:
            if not self.dropped:
                logger.warning("a WebRTC peer sends faster than it is read: dropping datagrams")
            self.dropped += 1
            return False
        self.bytes += size
        self.datagrams += 1
        return True

    def release(self, size: int, datagrams: int = 1) -> None:
        self.bytes -= size
        self.datagrams -= datagrams


#: Largest plaintext read from a record at once (aiortc's ``_recv_next`` reads 1500).
_PLAIN_READ = 1500
#: Per DTLS transport: the buffers its cffi calls read into (``_CffiBuffers``).
_BUFFERS = "_taiinet_cffi_buffers"


class _CffiBuffers:
    """One transport's buffers for ``SSL_read`` and ``BIO_read`` (one each, reused)."""

    __slots__ = ("plain", "record")

    def __init__(self) -> None:
        self.plain = _ffi.new("char[]", _PLAIN_READ)
        self.record = _ffi.new("char[]", _RECORD_READ)


def _direct_ssl(ssl: Any) -> bool:
    """Whether ``ssl`` (pyOpenSSL's ``Connection`` over memory BIOs) can be called through cffi.

    pyOpenSSL's ``send``, ``recv``, ``bio_write`` and ``bio_read`` wrap one
    OpenSSL call each in Python that costs more than the call on a small
    record: buffer conversion, and on every call, successful or not,
    ``_raise_ssl_error`` (three callback-helper checks and ``SSL_get_error``).
    The direct calls leave a failed call to those same pyOpenSSL methods, so
    errors are raised as pyOpenSSL raises them; the helper checks only ever
    report what a verification callback raised, and those run during a
    handshake, which is over before records take these paths (aiortc's
    callback never raises anyway).
    """
    return (
        _lib is not None
        and all(hasattr(_lib, f) for f in ("SSL_write", "SSL_read", "BIO_write", "BIO_read"))
        and isinstance(getattr(ssl, "_ssl", None), _ffi.CData)
        and isinstance(getattr(ssl, "_into_ssl", None), _ffi.CData)
        and isinstance(getattr(ssl, "_from_ssl", None), _ffi.CData)
        and hasattr(ssl, "_raise_ssl_error")
        and hasattr(ssl, "_handle_bio_errors")
    )


def _buffers(dtls: Any) -> _CffiBuffers:
    buffers: _CffiBuffers | None = getattr(dtls, _BUFFERS, None)
    if buffers is None:
        buffers = _CffiBuffers()
        setattr(dtls, _BUFFERS, buffers)
    return buffers


def _write_record(ssl: Any, data: bytes) -> None:
    """``ssl.send(data)`` through cffi (``_direct_ssl``): pyOpenSSL raises only on failure."""
    result = _lib.SSL_write(ssl._ssl, data, len(data))
    if result <= 0:
        ssl._raise_ssl_error(ssl._ssl, result)


def _read_record(ssl: Any, data: bytes, buffer: Any) -> bytes | None:
    """``ssl.bio_write(data)`` then ``ssl.recv``, through cffi (``_direct_ssl``).

    The plaintext; ``b""`` when OpenSSL has none (or the record was bad), None
    once the peer has shut DTLS down (close_notify), as ``process`` reads them.
    """
    written = _lib.BIO_write(ssl._into_ssl, data, len(data))
    if written <= 0:
        ssl._handle_bio_errors(ssl._into_ssl, written)
    result = _lib.SSL_read(ssl._ssl, buffer, _PLAIN_READ)
    if result > 0:
        plain: bytes = _unpack(buffer, result)  # the bytes, no cffi buffer object between
        return plain
    try:
        ssl._raise_ssl_error(ssl._ssl, result)
    except SSL.ZeroReturnError:
        return None
    except SSL.Error:
        pass
    return b""


def read_directly(dtls: Any) -> bool:
    """Read ``dtls``'s records in the socket callback; False if aiortc lacks a hook."""
    ice = getattr(dtls, "transport", None)
    connection = getattr(ice, "_connection", None)
    queue = getattr(connection, "_queue", None)
    if (
        connection is None
        or not isinstance(queue, asyncio.Queue)
        or not hasattr(queue, "_getters")
        or not hasattr(queue, "_queue")
        or getattr(dtls, _HOOKED, False)
        or not all(hasattr(dtls, a) for a in (_HANDSHAKE_DONE, _RX_BYTES, _RX_PACKETS))
        or not hasattr(dtls, "_ssl")
        or not hasattr(dtls, "_write_ssl")
        or not hasattr(dtls, "_data_receiver")
        or not hasattr(dtls, "_state")
    ):
        return False
    direct_flush = _can_flush(dtls)
    buffer = _buffers(dtls).plain if _lib is not None else None
    direct_for: Any = None  # the ``dtls._ssl`` checked by ``_direct_ssl`` (made at DTLS start)
    queued = connection.data_received  # aioice's: into the queue the reader task waits on
    waiting: deque[bytes] = deque()  # behind a record that is being processed
    held = HeldDatagrams()  # ``waiting`` and what we put in aioice's queue
    busy: asyncio.Task[None] | None = None
    stopped = False
    _count_queue_takes(queue, held)

    def process(data: bytes) -> Coroutine[Any, Any, None] | None:
        """What the reader task does with one DTLS record (``RTCDtlsTransport._recv_next``).

        A plain call: what is left to await (flushing to a pair whose send
        may wait, the SCTP packet's handling), or None when all is done.
        The SCTP handler is handed back unawaited, so that its coroutine runs
        in the caller's ``run_eagerly`` with no coroutine of ours around it.
        """
        dtls._RTCDtlsTransport__rx_bytes += len(data)  # _RX_BYTES, _RX_PACKETS
        dtls._RTCDtlsTransport__rx_packets += 1
        nonlocal direct_for
        ssl = dtls._ssl
        if ssl is not direct_for and buffer is not None and _direct_ssl(ssl):
            direct_for = ssl
        plain: bytes | None
        if ssl is direct_for:
            plain = _read_record(ssl, data, buffer)
        else:
            ssl.bio_write(data)
            try:
                plain = ssl.recv(_PLAIN_READ)
            except SSL.ZeroReturnError:
                plain = None
            except SSL.Error:
                plain = b""
        flushing = _flush(dtls) if direct_flush else dtls._write_ssl()
        if flushing is not None:
            return _after_flush(flushing, plain)
        if plain is None:
            raise ConnectionError("DTLS shut down by the peer")
        if plain and dtls._data_receiver is not None:
            handle = dtls._data_receiver._handle_data  # ``call_now``, inline: once per record
            now = getattr(handle, _NOW, None)
            return now(plain) if now is not None else handle(plain)  # type: ignore[no-any-return]
        return None

    async def _after_flush(flushing: Awaitable[None], plain: bytes | None) -> None:
        await flushing
        if plain is None:
            raise ConnectionError("DTLS shut down by the peer")
        if plain and dtls._data_receiver is not None:
            await dtls._data_receiver._handle_data(plain)

    def stop(exc: BaseException) -> None:
        """End reading as the reader task would have ended: it closes the transport."""
        nonlocal stopped
        stopped = True
        held.release(sum(map(len, waiting)), len(waiting))
        waiting.clear()
        if not isinstance(exc, ConnectionError):
            logger.warning("reading a DTLS record failed", exc_info=exc)
        queue.put_nowait(None)  # as aioice's protocol_lost: the reader task raises ConnectionError

    def start(data: bytes) -> None:
        """Process ``data`` now; if it waits, later records wait for it."""
        nonlocal busy
        try:
            pending = process(data)
            busy = None if pending is None else run_eagerly(pending)
        except BaseException as exc:
            stop(exc)
            return
        if busy is not None:
            busy.add_done_callback(finished)

    def finished(task: asyncio.Task[None]) -> None:
        nonlocal busy
        busy = None
        if task.cancelled():
            stop(ConnectionError("cancelled"))
            return
        exc = task.exception()
        if exc is not None:
            stop(exc)
            return
        while waiting and busy is None and not stopped:
            data = waiting.popleft()
            held.release(len(data))
            start(data)

    def to_reader(data: bytes, component: int) -> None:
        if held.admit(len(data)):
            queued(data, component)

    def data_received(data: bytes, component: int) -> None:
        if stopped or not data:
            to_reader(data, component)
        elif busy is not None or waiting:
            if held.admit(len(data)):
                waiting.append(data)
        # A DTLS record (first byte 20-63, RFC 7983), and the reader task has
        # nothing left to read and waits on its queue: the record is ours.
        elif (19 < data[0] < 64 and dtls._state is _CONNECTED
              and dtls._RTCDtlsTransport__handshake_done  # _HANDSHAKE_DONE
              and not queue._queue and queue._getters):
            start(data)
        else:
            to_reader(data, component)

    connection.data_received = data_received
    setattr(dtls, _HELD, held)
    for protocol in getattr(connection, "_protocols", ()):
        _skip_stun_parse(protocol)
    setattr(dtls, _HOOKED, True)
    return True


def _count_queue_takes(queue: Any, held: HeldDatagrams) -> None:
    """Give ``held`` back a datagram's bytes when aiortc's reader task takes it from ``queue``.

    ``asyncio.Queue._get`` is the hook its subclasses override; the datagrams
    queued before the budget existed (and the ``None`` that ends the reader)
    were never counted in.
    """
    take = queue._get
    uncounted = queue.qsize()

    def taking() -> Any:
        nonlocal uncounted
        item = take()
        if uncounted:
            uncounted -= 1
        elif item is not None:
            held.release(len(item[0]))
        return item

    queue._get = taking


def _skip_stun_parse(protocol: Any) -> None:
    """Hand DTLS datagrams straight to the connection (aioice parses them as STUN first)."""
    parse = getattr(protocol, "datagram_received", None)
    if parse is None or getattr(parse, "_taiinet_demux", False):
        return

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
        receiver = protocol.receiver
        if data and 19 < data[0] < 64 and receiver is not None:  # DTLS (RFC 7983)
            receiver.data_received(data, protocol.local_candidate.component)
        else:
            parse(data, addr)

    datagram_received._taiinet_demux = True  # type: ignore[attr-defined]
    protocol.datagram_received = datagram_received


def send_directly(dtls: Any) -> bool:
    """Encrypt and send ``dtls``'s records in one call; False if aiortc or aioice lacks a hook."""
    send_data = getattr(dtls, "_send_data", None)
    if (
        send_data is None
        or getattr(dtls, _SEND_HOOKED, False)
        or not hasattr(dtls, "_state")
        or not _can_flush(dtls)
    ):
        return False

    direct_for: Any = None  # the ``dtls._ssl`` checked by ``_direct_ssl`` (made at DTLS start)

    def encrypt(data: bytes) -> None:
        nonlocal direct_for
        ssl = dtls._ssl
        if ssl is not direct_for and _direct_ssl(ssl):
            direct_for = ssl
        if ssl is direct_for:
            _write_record(ssl, data)
        else:
            ssl.send(data)

    async def direct_send_data(data: bytes) -> None:
        """aiortc's ``_send_data``: encrypt one SCTP packet and send its record."""
        if dtls._state is not State.CONNECTED:
            raise ConnectionError("Cannot send encrypted data, not connected")
        encrypt(data)
        flushing = _flush(dtls)
        if flushing is not None:
            await flushing

    buffers = _buffers(dtls)
    nominated: dict[int, Any] = dtls.transport._connection._nominated  # never replaced (aioice)
    sent_pair: Any = None  # the pair ``sent_to`` is the remote address of
    sent_to: Any = None

    def write(data: bytes) -> None:
        """``direct_send_data`` for a plain pair (``record_writer`` checked): nothing to await.

        ``_flush`` for the one record just written, with less asked again:
        OpenSSL holds it (no ``BIO_get_mem_data`` first), and the pair's
        remote address (a tuple aioice builds per call) is kept per pair.
        """
        nonlocal sent_pair, sent_to
        encrypt(data)
        bio = getattr(dtls._ssl, "_from_ssl", None)
        if bio is None:
            _flush(dtls)
            return
        read = _lib.BIO_read(bio, buffers.record, _RECORD_READ)
        if read <= 0:
            return
        record = _unpack(buffers.record, read)
        pair = nominated.get(1)
        if pair is None:
            raise ConnectionError("Cannot send data, not connected")
        if pair is not sent_pair:
            sent_pair, sent_to = pair, pair.remote_addr
        pair.protocol.transport.sendto(record, sent_to)  # ``StunProtocol.send_data``
        _count_sent(dtls, read)

    dtls._send_data = direct_send_data
    setattr(dtls, _SEND_HOOKED, direct_send_data)  # ``record_writer`` tells it still sends
    setattr(dtls, _WRITER, _Writer(direct_send_data, nominated, write))
    return True


class _Writer:
    """What ``record_writer`` checks and hands out for one DTLS transport (``send_directly``)."""

    __slots__ = ("hook", "nominated", "plain_pair", "write")

    def __init__(self, hook: Callable[[bytes], Awaitable[None]], nominated: dict[int, Any],
                 write: Callable[[bytes], None]) -> None:
        #: ``send_directly``'s ``_send_data``: a transport whose hook differs is wrapped.
        self.hook = hook
        #: aioice's nominated pairs of the transport's connection, by component.
        self.nominated = nominated
        #: The last pair found to be aioice's plain ``StunProtocol`` (a pair's protocol is fixed).
        self.plain_pair: Any = None
        self.write = write


def record_writer(dtls: Any) -> Callable[[bytes], None] | None:
    """A plain function that encrypts and sends one record now, if ``send_directly`` would.

    For callers on the hot path that want no coroutine at all (SCTP's direct
    sends): None unless ``dtls._send_data`` is still ``send_directly``'s (a
    wrapper of it keeps seeing every packet), DTLS is connected and the
    nominated pair is aioice's plain ``StunProtocol`` (whose send never waits).
    Ask again for every packet: any of these may change (a pair's protocol is
    checked once per pair: aioice fixes it when it makes the pair).
    """
    writer: _Writer | None = getattr(dtls, _WRITER, None)
    if writer is None or dtls._send_data is not writer.hook or dtls._state is not _CONNECTED:
        return None
    pair = writer.nominated.get(1)
    if pair is None:
        return None
    if pair is not writer.plain_pair:
        if type(pair.protocol).send_data is not StunProtocol.send_data:
            return None
        writer.plain_pair = pair
    return writer.write


def _can_flush(dtls: Any) -> bool:
    """Whether ``_flush`` can stand in for ``dtls._write_ssl`` (aioice's own connection)."""
    ice = getattr(dtls, "transport", None)
    connection = getattr(ice, "_connection", None)
    send = getattr(ice, "_send", None)
    return (
        hasattr(dtls, "_write_ssl")
        and hasattr(dtls, "_ssl")
        and all(hasattr(dtls, a) for a in (_TX_BYTES, _TX_PACKETS))
        and type(connection) is IceConnection
        and getattr(send, "__func__", None) is IceConnection.send
        and isinstance(getattr(connection, "_nominated", None), dict)
        and hasattr(_lib, "BIO_get_mem_data")
    )


def _flush(dtls: Any) -> Awaitable[None] | None:
    """aiortc's ``_write_ssl`` with no coroutine on its usual paths; an awaitable otherwise.

    Nothing to send (after most reads): ask the BIO, no exception raised.  A
    record for a plain aioice pair: to its socket now.  A pair of another
    kind: its own ``send_data``, which the caller awaits.
    """
    ssl = dtls._ssl
    bio = getattr(ssl, "_from_ssl", None)
    if bio is not None and not _lib.BIO_get_mem_data(bio, _NULL):
        return None
    buffers: _CffiBuffers | None = getattr(dtls, _BUFFERS, None)
    if bio is not None and buffers is not None:
        read = _lib.BIO_read(bio, buffers.record, _RECORD_READ)
        if read <= 0:
            return None
        record = _unpack(buffers.record, read)
    else:
        try:
            record = ssl.bio_read(_RECORD_READ)
        except SSL.Error:
            return None
        if not record:
            return None
    pair = dtls.transport._connection._nominated.get(1)  # aioice's Connection.send
    if pair is None:
        raise ConnectionError("Cannot send data, not connected")
    protocol = pair.protocol
    if type(protocol).send_data is not StunProtocol.send_data:
        return _send_and_count(dtls, protocol.send_data(record, pair.remote_addr), len(record))
    protocol.transport.sendto(record, pair.remote_addr)  # what StunProtocol.send_data does
    _count_sent(dtls, len(record))
    return None


async def _send_and_count(dtls: Any, sending: Awaitable[None], size: int) -> None:
    await sending
    _count_sent(dtls, size)


def _count_sent(dtls: Any, size: int) -> None:
    dtls._RTCDtlsTransport__tx_bytes += size  # _TX_BYTES, _TX_PACKETS
    dtls._RTCDtlsTransport__tx_packets += 1
