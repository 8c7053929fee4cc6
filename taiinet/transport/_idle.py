"""One idle watchdog per WebSocket listener or WebRTC endpoint, instead of a deadline per read.

A listener's links must carry some frame at least every ``LinkDeadlines.idle``
seconds of their receiver waiting for one (docs/protocol.md, "Deadlines and
budgets").  Enforced per read, the deadline costs a cancel scope on every
channel message (entering and leaving one registers the deadline with trio's
clock); enforced here it costs one integer increment per message and one
look at every link each ``idle / IDLE_TICKS`` seconds.

At each tick a link counts as quiet if its receiver is waiting and no
message came since the last tick; ``IDLE_TICKS`` quiet ticks in a row cut it
with ``IdleTimeout``.  A link is cut between ``idle`` and
``idle * (1 + 1 / IDLE_TICKS)`` seconds after its last message; a receiver
found busy (not waiting) at a tick starts the count again, so a slow reader
does not blame its peer (up to one tick of its busy time may count).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import trio

from taiinet.errors import RemoteProtocolError
from taiinet.transport.errors import IdleTimeout
from taiinet.transport.limits import LinkDeadlines

#: Looks per idle deadline: a silent link is cut at most ``1 / IDLE_TICKS`` late.
IDLE_TICKS = 4


class Watched(Protocol):
    """A channel the watchdog can judge (``WebSocketChannel``, ``BridgedDataChannel``)."""

    #: Messages ``receive_message`` has returned so far.
    messages_received: int

    @property
    def receiving(self) -> bool:
        """Whether a task is waiting in ``receive_message``."""
        ...

    async def expire(self, error: RemoteProtocolError) -> None:
        """Close for ``error``: the task in ``receive_message``, and any later call, raises it."""
        ...


class IdleWatch:
    """Cuts the watched channels whose receiver waited ``idle`` seconds for nothing."""

    def __init__(self, idle: float) -> None:
        self.idle = idle
        #: channel -> (its ``messages_received`` at the last tick, quiet ticks since).
        self._channels: dict[Watched, tuple[int, int]] = {}

    def watch(self, channel: Watched) -> None:
        self._channels[channel] = (channel.messages_received, -1)  # not a tick yet

    def forget(self, channel: Watched) -> None:
        self._channels.pop(channel, None)

    async def run(self) -> None:
        """Tick every ``idle / IDLE_TICKS`` seconds until cancelled."""
        while True:
            await trio.sleep(self.idle / IDLE_TICKS)
            await self.tick()

    async def tick(self) -> None:
        """Look at every watched channel once; cut those quiet for ``IDLE_TICKS`` ticks."""
        expired: list[Watched] = []
        for channel, (seen, quiet) in self._channels.items():
            received = channel.messages_received
            if received != seen or not channel.receiving:
                self._channels[channel] = (received, 0)
            elif quiet + 1 >= IDLE_TICKS:
                expired.append(channel)
            else:
                self._channels[channel] = (seen, quiet + 1)
        for channel in expired:
            self.forget(channel)
            await channel.expire(IdleTimeout(f"no frame for {self.idle} s"))


def watch_idle(deadlines: LinkDeadlines) -> tuple[IdleWatch | None, LinkDeadlines]:
    """The watchdog that keeps ``deadlines.idle`` for all links of a listener or
    endpoint (None when there is no idle deadline), and the deadlines each link's
    own reads keep: the same without the idle one."""
    watch = None if deadlines.idle is None else IdleWatch(deadlines.idle)
    return watch, dataclasses.replace(deadlines, idle=None)
