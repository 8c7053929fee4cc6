"""Deadlines of a secured link: per handshake message, partial frame, idle (MockClock).

The hostile side is a TaiiNet link driven by hand: it encrypts a frame with its
session and sends only part of the Noise messages on the raw channel, so the
receiver holds a partial frame.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from taiinet import ConnectionClosed, Identity
from taiinet.transport.errors import (
    FrameTimeout,
    HandshakeTimeout,
    IdleTimeout,
    PartialFrameBudgetExceeded,
)
from taiinet.transport.limits import LinkDeadlines, PartialFrameBudget
from taiinet.transport.memory import memory_channel_pair
from taiinet.transport.noise import DH_SIZE, NoiseHandshake, with_length_prefix
from taiinet.transport.secure import SecureConnection, secure_channel

ALICE = Identity.from_seed(bytes([0xA]) * 32)
BOB = Identity.from_seed(bytes([0xB]) * 32)


@asynccontextmanager
async def secured_pair(deadlines: LinkDeadlines, partial_frames: PartialFrameBudget | None = None,
                       ) -> AsyncIterator[tuple[SecureConnection, SecureConnection]]:
    """(attacker, victim): the victim keeps ``deadlines``."""
    ours, theirs = memory_channel_pair(capacity=64)
    links: dict[str, object] = {}

    async def run(name: str, *args: object, **kwargs: object) -> None:
        links[name] = await secure_channel(*args, **kwargs)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run("attacker", ours, ALICE, initiator=True))
        nursery.start_soon(lambda: run("victim", theirs, BOB, initiator=False,
                                       deadlines=deadlines, partial_frames=partial_frames))
    attacker, victim = links["attacker"], links["victim"]
    assert isinstance(attacker, SecureConnection) and isinstance(victim, SecureConnection)
    try:
        yield attacker, victim
    finally:
        await attacker.aclose()
        await victim.aclose()


async def send_partial_frame(link: SecureConnection, size: int, keep: int) -> None:
    """Send the first ``keep`` Noise messages of a ``size``-byte frame, never the rest."""
    messages = link._session.encrypt_frame(bytes(size))
    assert len(messages) > keep
    for message in messages[:keep]:
        await link._channel.send_message(message)


async def test_a_held_partial_frame_is_cut_at_the_frame_deadline(
        autojump_clock: trio.testing.MockClock) -> None:
    async with secured_pair(LinkDeadlines(frame=4.0)) as (attacker, victim):
        await send_partial_frame(attacker, 200_000, keep=2)
        start = trio.current_time()
        with pytest.raises(FrameTimeout):
            await victim.receive()
        assert trio.current_time() - start == pytest.approx(4.0)
        assert victim.closed
        with pytest.raises(ConnectionClosed):
            await victim.receive()


async def test_a_frame_trickled_slower_than_the_deadline_is_cut(
        autojump_clock: trio.testing.MockClock) -> None:
    """Each piece resets nothing: the whole frame must arrive within the deadline."""
    async with secured_pair(LinkDeadlines(frame=4.0)) as (attacker, victim):
        messages = attacker._session.encrypt_frame(bytes(300_000))

        async def trickle() -> None:
            for message in messages:
                await attacker._channel.send_message(message)
                await trio.sleep(1.5)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle)
            start = trio.current_time()
            with pytest.raises(FrameTimeout):
                await victim.receive()
            assert trio.current_time() - start == pytest.approx(4.0)
            nursery.cancel_scope.cancel()


async def test_a_frame_that_completes_in_time_is_delivered(
        autojump_clock: trio.testing.MockClock) -> None:
    async with secured_pair(LinkDeadlines(frame=4.0, idle=10.0)) as (attacker, victim):
        messages = attacker._session.encrypt_frame(b"y" * 200_000)

        async def slowly() -> None:
            for message in messages:
                await attacker._channel.send_message(message)
                await trio.sleep(0.9)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slowly)
            assert await victim.receive() == b"y" * 200_000


async def test_a_silent_link_is_cut_at_the_idle_deadline_and_frames_reset_it(
        autojump_clock: trio.testing.MockClock) -> None:
    async with secured_pair(LinkDeadlines(idle=30.0)) as (attacker, victim):
        for _ in range(3):  # a frame every 20 s keeps the link
            await trio.sleep(20.0)
            await attacker.send(b"ping")
            assert await victim.receive() == b"ping"
        start = trio.current_time()
        with pytest.raises(IdleTimeout):
            await victim.receive()
        assert trio.current_time() - start == pytest.approx(30.0)
        assert victim.closed


async def test_without_an_idle_deadline_a_quiet_link_stays(
        autojump_clock: trio.testing.MockClock) -> None:
    async with secured_pair(LinkDeadlines()) as (_attacker, victim):
        with trio.move_on_after(3600):
            await victim.receive()
        assert not victim.closed


async def test_each_handshake_message_has_its_own_deadline(
        autojump_clock: trio.testing.MockClock) -> None:
    """A responder that got message 1 and then hears nothing gives up after the
    per-message deadline, well before the whole handshake's."""
    ours, theirs = memory_channel_pair()
    async with trio.open_nursery() as nursery:
        async def initiator_sends_one_message() -> None:
            handshake = NoiseHandshake(initiator=True, identity=ALICE, expected_peer_id=None,
                                       static_private_key=bytes(range(DH_SIZE)),
                                       ephemeral_private_key=bytes(range(1, DH_SIZE + 1)))
            await ours.send_message(with_length_prefix(handshake.write_message()))
            await trio.sleep_forever()

        nursery.start_soon(initiator_sends_one_message)
        start = trio.current_time()
        with pytest.raises(HandshakeTimeout):
            await secure_channel(theirs, BOB, initiator=False, handshake_timeout=30.0,
                                 deadlines=LinkDeadlines(handshake_message=2.0))
        assert trio.current_time() - start == pytest.approx(2.0)
        nursery.cancel_scope.cancel()


async def test_partial_frames_of_all_links_share_one_budget(
        autojump_clock: trio.testing.MockClock) -> None:
    """Two links each pinning ~130 KB of a partial frame against a 200 KB budget: the
    second is cut as soon as it goes past; the first keeps its frame until its deadline."""
    budget = PartialFrameBudget(200_000)
    deadlines = LinkDeadlines(frame=4.0)
    async with (secured_pair(deadlines, budget) as (first_attacker, first),
                secured_pair(deadlines, budget) as (second_attacker, second)):
        await send_partial_frame(first_attacker, 300_000, keep=2)
        with trio.move_on_after(1):  # the first link reads, and holds, its partial frame
            await first.receive()
        assert 100_000 < budget.total <= 200_000
        await send_partial_frame(second_attacker, 300_000, keep=2)
        with pytest.raises(PartialFrameBudgetExceeded):
            await second.receive()
        assert second.closed and not first.closed
        with pytest.raises(FrameTimeout):
            await first.receive()
        assert budget.total == 0


async def test_a_completed_partial_frame_gives_its_bytes_back(
        autojump_clock: trio.testing.MockClock) -> None:
    """A link reports what it holds after every read that holds or held bytes: once the
    frame completes, the budget is whole again and the link stays up."""
    budget = PartialFrameBudget(200_000)
    async with secured_pair(LinkDeadlines(frame=4.0), budget) as (attacker, victim):
        await attacker.send(b"before")
        assert await victim.receive() == b"before" and budget.total == 0
        messages = attacker._session.encrypt_frame(bytes(150_000))
        await attacker._channel.send_message(messages[0])
        with trio.move_on_after(1):
            await victim.receive()
        assert 60_000 < budget.total <= 70_000
        for message in messages[1:]:
            await attacker._channel.send_message(message)
        assert await victim.receive() == bytes(150_000)
        assert budget.total == 0 and not victim.closed
        await attacker.send(b"after")
        assert await victim.receive() == b"after" and budget.total == 0
