"""The routed node's driver: the router is its only core; a bad pubsub frame drops the peer."""

from __future__ import annotations

import random

import pytest
import trio

from taiinet.errors import ConnectionClosed
from taiinet.link.runner import Runner
from taiinet.node.routed import RoutedDriver
from taiinet.overlay import codec
from taiinet.overlay.errors import OverlayUsageError
from taiinet.overlay.messages import Join
from taiinet.transport.connection import Connection
from taiinet.transport.memory import memory_connection_pair
from taiinet.wire.identity import Identity

#: ``Frame{pubsub: {}}``: a well-formed frame whose ``PubsubMessage`` has no body.
BAD_PUBSUB_FRAME = bytes([12 << 3 | 2, 0])


async def test_a_peer_sending_a_malformed_pubsub_frame_is_dropped(autojump_clock: object) -> None:
    me, rogue = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)

    async def no_dial(peer_id: str) -> Connection:
        raise AssertionError("nothing to dial")

    driver = RoutedDriver(me, no_dial, rng=random.Random(1))
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        ours, theirs = await memory_connection_pair(rogue, me)
        driver.add_connection(theirs)
        await ours.send(codec.encode_frame(Join()))
        await trio.sleep(0.1)
        assert driver.neighbors == [rogue.peer_id]
        await ours.send(BAD_PUBSUB_FRAME)
        await trio.sleep(0.1)
        assert driver.neighbors == []
        while True:  # whatever was sent before, the link ends closed
            try:
                await ours.receive()
            except ConnectionClosed:
                break
        nursery.cancel_scope.cancel()


async def test_documents_go_through_the_router_not_a_second_overlay(autojump_clock: object) -> None:
    async def no_dial(peer_id: str) -> Connection:
        raise AssertionError("nothing to dial")

    driver = RoutedDriver(Identity.from_seed(b"\x01" * 32), no_dial, rng=random.Random(1))
    assert driver.overlay is None
    with pytest.raises(OverlayUsageError):
        driver.broadcast(b"id", b"payload")


def test_a_seeders_driver_forgets_the_payloads_of_an_input_once_it_is_carried_out() -> None:
    """With ``keep_envelopes`` the payloads opened during one input are kept until
    its actions are carried out, then forgotten (``Runner.after_apply``); the
    driver's ``apply`` is the runner's own, not a wrapper called per input."""
    async def no_dial(peer_id: str) -> Connection:
        raise AssertionError("nothing to dial")

    seeder = RoutedDriver(Identity.from_seed(b"\x05" * 32), no_dial, rng=random.Random(1),
                          keep_envelopes=True)
    plain = RoutedDriver(Identity.from_seed(b"\x06" * 32), no_dial, rng=random.Random(1))
    assert type(seeder).apply is Runner.apply and plain.after_apply is None
    assert seeder._capture is not None
    seeder._capture.opened[b"id"] = b"payload"
    seeder.apply([])
    assert seeder._capture.opened == {}
