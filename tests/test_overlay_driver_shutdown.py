"""The overlay driver while a node shuts down: actions for links whose sender is gone.

When a node's nursery is cancelled, its per-link sender tasks end (marking
their links stopped) while a reader may still hand the core one last frame (trio
returns ready data even when cancelled); the core's answer may queue a frame
or close that link.  Neither may raise.
"""

from __future__ import annotations

import random

from taiinet.overlay.actions import CloseLink, Send
from taiinet.overlay.driver import OverlayDriver
from taiinet.overlay.messages import IHave
from taiinet.transport.connection import Connection
from taiinet.wire.identity import Identity

PEER = Identity.from_seed(b"\x02" * 32).peer_id


async def _no_dial(peer_id: str) -> Connection:
    raise AssertionError("the driver is not running: nothing is dialed")


def _driver_with_a_cancelled_sender() -> OverlayDriver:
    driver = OverlayDriver(Identity.from_seed(b"\x01" * 32).peer_id, _no_dial,
                           rng=random.Random(1))
    # Not running: the link's sender task is never spawned; marking the link
    # stopped is what the sender's end (its cancellation) does.
    driver._apply([Send(peer=PEER, message=IHave(message_id=b"\x01" * 32, hops=1))])
    driver._links[PEER].stopped = True
    return driver


async def test_closing_a_link_whose_sender_was_cancelled_does_not_raise(
        autojump_clock: object) -> None:
    driver = _driver_with_a_cancelled_sender()
    driver._apply([CloseLink(peer=PEER)])


async def test_sending_on_a_link_whose_sender_was_cancelled_does_not_raise(
        autojump_clock: object) -> None:
    driver = _driver_with_a_cancelled_sender()
    driver._apply([Send(peer=PEER, message=IHave(message_id=b"\x02" * 32, hops=1))])
