"""A WebSocket channel's direct reads and writes on a plain TCP socket (POSIX).

trio's ``SocketStream`` calls cost a few context managers and, for reads, a
failed ``recv`` before every wait; a link's reader and sender do one read and
one write per message, so ``WebSocketChannel`` calls these instead.  Both
keep the stream's checkpoints (cancellation checked first, a yield after)
and raise what the stream would:
``ClosedResourceError`` (closed here), ``OSError`` (a reset).
"""

from __future__ import annotations

import os

import trio

#: Read TCP sockets with ``os.read`` after ``wait_readable`` (POSIX: a socket is a file).
DIRECT_READS = os.name == "posix"


async def read_socket(sock: trio.socket.SocketType, size: int, ready: bool = False) -> bytes:
    """Up to ``size`` bytes, ``b""`` at the end of the stream.

    trio's ``recv`` first tries the socket and only waits after it failed; a
    link's reader calls it right after handling the previous message, when the
    next one has nearly never arrived yet, so each message cost a ``recv`` that
    fails (a syscall and a ``BlockingIOError``) before the wait and the ``recv``
    that reads.  Waiting first reads each message with one syscall; the wait is
    the checkpoint (cancellable, and it yields even when data is there).

    ``ready``: the previous read filled its buffer, so the socket likely holds
    more: read it after a plain checkpoint, without registering the socket
    with epoll and waiting (only a read that fails then waits).
    """
    if ready:
        await trio.lowlevel.checkpoint()
        fd = sock.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the socket was closed")
        try:
            return os.read(fd, size)
        except BlockingIOError:
            pass  # drained after all: wait as below
    while True:
        if sock.fileno() < 0:
            raise trio.ClosedResourceError("the socket was closed")
        await trio.lowlevel.wait_readable(sock)
        fd = sock.fileno()  # closed by another task while this one was woken?
        if fd < 0:
            raise trio.ClosedResourceError("the socket was closed")
        try:
            return os.read(fd, size)
        except BlockingIOError:  # a spurious wake-up: wait again
            continue


async def write_socket(sock: trio.socket.SocketType, stream: trio.abc.Stream,
                       data: bytes) -> None:
    """``stream.send_all(data)`` in one ``os.write`` when the socket takes it all
    (nearly always: a link's message is small); what it does not take goes
    through ``send_all``, which waits for the socket.
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
