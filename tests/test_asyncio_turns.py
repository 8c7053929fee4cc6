"""Scheduling work per message across the trio <-> asyncio bridge (127.0.0.1 only).

Each test counts what a message costs in trio scheduling rounds, task steps
or loop iterations, so it fails when a change adds one back.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
from typing import Any

import trio

from tests.test_asyncio_bridge import wait_until_stalled
from tests.webrtc_support import open_bridge, raw_pair


class StepCounter(trio.abc.Instrument):
    """Counts the steps of one task, and the scheduling rounds (I/O waits) of the run."""

    def __init__(self) -> None:
        self.task: trio.lowlevel.Task | None = None
        self.steps = 0
        self.rounds = 0
        self.after_first_step: list[Any] = []
        self.look: Any = None

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task and self.look is not None and not self.after_first_step:
            self.after_first_step.append(self.look())

    def before_io_wait(self, timeout: float) -> None:
        self.rounds += 1


async def test_a_waiting_reader_takes_no_round_before_it_waits() -> None:
    # The wait is the checkpoint: a reader with nothing to read parks in its
    # first step, and one wake-up later it has the message (two steps, not a
    # yield first and then the wait).
    async with raw_pair() as (a, b):
        counter = StepCounter()
        trio.lowlevel.add_instrument(counter)
        try:
            got: list[bytes] = []

            async def reader() -> None:
                counter.task = trio.lowlevel.current_task()
                counter.steps = 1  # this one
                got.append(await b.receive_message())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()
                steps_while_waiting = counter.steps
                await a.send_message(b"ping")
            assert got == [b"ping"]
            assert steps_while_waiting == 1
            assert counter.steps == 2
        finally:
            trio.lowlevel.remove_instrument(counter)


async def test_a_waiting_message_is_still_a_checkpoint() -> None:
    async with raw_pair() as (a, b):
        await a.send_message(b"here")
        while not b.message_waiting():
            await trio.sleep(0.001)
        with trio.CancelScope() as scope:
            scope.cancel()
            await b.receive_message()
        assert scope.cancelled_caught
        assert await b.receive_message() == b"here"  # not consumed by the cancelled call


async def test_send_hands_the_message_over_before_it_yields() -> None:
    # The flush is scheduled (the loop's driver woken) in the sender's first
    # step, so the driver sends it in the round the sender yields in.
    async with raw_pair() as (a, b):
        counter = StepCounter()
        counter.look = lambda: (list(a._outbox), a._flush_scheduled)
        trio.lowlevel.add_instrument(counter)
        try:
            async def sender() -> None:
                counter.task = trio.lowlevel.current_task()
                await a.send_message(b"over")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
        finally:
            trio.lowlevel.remove_instrument(counter)
        assert counter.after_first_step == [([b"over"], True)]
        assert await b.receive_message() == b"over"


async def test_sends_of_one_round_share_one_loop_callback() -> None:
    # Messages handed over in the same trio round, on different data channels,
    # are flushed by one asyncio callback, not one each.
    async with raw_pair() as (a, b):
        await a.send_message(b"warm")
        assert await b.receive_message() == b"warm"
        loop: Any = a._hosted.loop
        call_soon = loop.call_soon
        scheduled: list[Any] = []

        def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
            scheduled.append(callback)
            return call_soon(callback, *args, **kwargs)

        loop.call_soon = counting
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.send_message, b"one way")
                nursery.start_soon(b.send_message, b"the other")
        finally:
            del loop.call_soon
        assert len(scheduled) == 1, scheduled
        assert await b.receive_message() == b"one way"
        assert await a.receive_message() == b"the other"


async def test_a_failing_flush_does_not_hold_up_the_others() -> None:
    async with open_bridge() as bridge:
        hosted = bridge.hosted
        errors: list[BaseException | None] = []
        hosted.loop.set_exception_handler(lambda _, context: errors.append(context["exception"]))
        ran: list[str] = []
        done = trio.Event()

        def failing() -> None:
            ran.append("failing")
            raise ValueError("a bug")

        def last() -> None:
            ran.append("last")
            done.set()

        hosted.flush_soon(failing)
        hosted.flush_soon(last)
        with trio.fail_after(5):
            await done.wait()
        assert ran == ["failing", "last"]
        assert [type(e) for e in errors] == [ValueError]


async def test_a_cancelled_send_sends_nothing() -> None:
    async with raw_pair() as (a, b):
        with trio.CancelScope() as scope:
            scope.cancel()
            await a.send_message(b"never")
        assert scope.cancelled_caught
        assert not a._outbox and not a._flush_scheduled
        await a.send_message(b"after")
        assert await b.receive_message() == b"after"


async def test_a_ping_pong_frame_costs_two_scheduling_rounds() -> None:
    # Per frame: the sender's round (its flush sent by the driver in the next
    # one) and the driver's round, which also reads the datagram the flush put
    # on the other socket and wakes the reader.  SACK timers may add a few.
    frames = 100
    async with raw_pair() as (a, b):
        for _ in range(5):  # warm up
            await a.send_message(b"x")
            await b.send_message(await b.receive_message())
            await a.receive_message()
        counter = StepCounter()
        trio.lowlevel.add_instrument(counter)
        try:
            for _ in range(frames // 2):
                await a.send_message(b"x" * 400)
                await b.send_message(await b.receive_message())
                await a.receive_message()
        finally:
            trio.lowlevel.remove_instrument(counter)
        assert counter.rounds <= 2 * frames + 10, counter.rounds


async def test_a_datagram_sent_in_a_turn_is_read_in_that_turn() -> None:
    # A callback sends to a socket of the same loop (both ends of a link in
    # one process): the driver reads it in the same turn instead of parking
    # until trio's poll sees the loop's selector ready.
    async with open_bridge() as bridge:
        hosted = bridge.hosted
        received: list[bytes] = []

        class Counting(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                received.append(data)

        async def listen() -> Any:
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                Counting, local_addr=("127.0.0.1", 0))
            return transport

        transport = await bridge.run(listen)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                address = transport.get_extra_info("sockname")
                for i in range(5):
                    hosted.call_soon(lambda i=i: sender.sendto(bytes([i]), address))
                    rounds = 0
                    with trio.fail_after(10):
                        while len(received) <= i:
                            await trio.lowlevel.checkpoint()
                            rounds += 1
                    assert rounds <= 2, (i, rounds)
            assert received == [bytes([i]) for i in range(5)]
        finally:
            transport.close()


async def test_a_later_timer_leaves_the_armed_deadline_alone() -> None:
    # Moving trio's deadline later costs more than one early wake-up; a timer
    # that moves earlier moves it, and every timer still fires on time.
    async with open_bridge() as bridge:
        hosted = bridge.hosted
        loop = hosted.loop
        fired: list[str] = []
        handles: dict[str, asyncio.TimerHandle] = {}

        def schedule(name: str, delay: float) -> None:
            handles[name] = loop.call_later(delay, fired.append, name)

        hosted.call_soon(lambda: schedule("first", 1.0))
        await trio.testing.wait_all_tasks_blocked()
        armed = hosted._timer_when
        assert armed == handles["first"].when()

        def replace() -> None:
            handles["first"].cancel()
            schedule("second", 1.1)

        hosted.call_soon(replace)
        await trio.testing.wait_all_tasks_blocked()
        hosted.call_soon(lambda: None)  # another iteration: asyncio drops the cancelled one
        await trio.testing.wait_all_tasks_blocked()
        assert loop._scheduled[0] is handles["second"]  # type: ignore[attr-defined]
        assert hosted._timer_when == armed  # not moved later
        hosted.call_soon(lambda: schedule("sooner", 0.01))
        await trio.testing.wait_all_tasks_blocked()
        assert hosted._timer_when == handles["sooner"].when() < armed
        with trio.fail_after(10):
            while len(fired) < 2:
                await trio.sleep(0.01)
        assert fired == ["sooner", "second"]


async def test_a_stalled_sender_resumes_without_the_event_emitter() -> None:
    # aiortc's "bufferedamountlow" (one per message) reaches the channel in a
    # direct call: with no pyee listener left, a sender held by back-pressure
    # still resumes once aiortc's queue drains.
    message_size, count = 4096, 600  # 2.5 MB: more than SEND_HIGH_WATER and the windows
    async with raw_pair() as (a, b):
        a._channel.remove_all_listeners("bufferedamountlow")
        sent = 0

        async def sender() -> None:
            nonlocal sent
            for i in range(count):
                await a.send_message(i.to_bytes(4, "big") * (message_size // 4))
                sent += 1

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
                await wait_until_stalled(lambda: sent)
                assert a._writer_waiting and sent < count
                for i in range(count):
                    assert await b.receive_message() == i.to_bytes(4, "big") * (message_size // 4)
        assert sent == count


async def test_the_check_between_chained_iterations_skips_selectors_wrapper() -> None:
    # After an iteration the driver asks whether a socket is readable: on epoll
    # it asks the kernel for one event, not the selector's select(0) (a Python
    # wrapper that maps every event to its key), and still sees a datagram.
    async with open_bridge() as bridge:
        hosted = bridge.hosted
        if hosted._epoll is None:  # no epoll here: select(0) is the only way
            return
        selects: list[float | None] = []
        select = hosted._selector.select

        def counting(timeout: float | None = None) -> Any:
            selects.append(timeout)
            return select(timeout)

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            receiver.bind(("127.0.0.1", 0))
            receiver.setblocking(False)
            # Registered and unregistered with no checkpoint in between: the
            # driver never steps while the selector holds a key asyncio did not make.
            hosted._selector.register(receiver, selectors.EVENT_READ)
            try:
                hosted._selector.select = counting  # type: ignore[method-assign]
                assert not hosted._more_to_do()
                sender.sendto(b"x", receiver.getsockname())  # queued when sendto returns (loopback)
                assert hosted._more_to_do()
            finally:
                hosted._selector.select = select  # type: ignore[method-assign]
                hosted._selector.unregister(receiver)
        assert selects == []


#: The coroutines a usual DATA packet ran through before it was read by plain calls:
#: aiortc's, the DTLS record's, and our hooks' when awaited instead of called through
#: their plain variants (``hook_with_plain_variant``'s coroutine).
PACKET_COROUTINES = frozenset({
    "process", "awaiting_plain_variant", "_receive", "_handle_data",
    "_receive_data_chunk", "_data_channel_receive", "_receive_sack_chunk",
})


async def test_a_usual_packet_is_read_without_a_coroutine() -> None:
    # Messages of two packets each way: the DTLS record, its SCTP packet, the
    # DATA chunks, the message handed to the channel, the SACK sent and read:
    # plain calls all the way (``_asyncio_eager.call_now``), no coroutine frame.
    import sys
    from types import FrameType

    started: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        code = frame.f_code
        if event == "call" and code.co_flags & 0x80 and code.co_name in PACKET_COROUTINES:
            started.append(code.co_name)

    async with raw_pair() as (a, b):
        for _ in range(5):  # warm up
            await a.send_message(b"x" * 2000)
            await b.send_message(await b.receive_message())
            await a.receive_message()
        messages = 0
        sys.setprofile(profile)
        try:
            for _ in range(10):
                await a.send_message(b"y" * 2000)
                await b.send_message(await b.receive_message())
                await a.receive_message()
                messages += 2
        finally:
            sys.setprofile(None)
        assert messages == 20
        assert started == []


async def test_a_reader_waits_without_an_event_per_message(monkeypatch: Any) -> None:
    # The reader parks its task; a trio.Event (and its parking lot) made per
    # wait lived as long as the gap between messages, into the GC's oldest
    # generation on a busy link.
    made: list[trio.Event] = []
    real_event = trio.Event

    def counting_event() -> trio.Event:
        event = real_event()
        made.append(event)
        return event

    async with raw_pair() as (a, b):
        for _ in range(5):  # warm up
            await a.send_message(b"x")
            await b.send_message(await b.receive_message())
            await a.receive_message()
        monkeypatch.setattr(trio, "Event", counting_event)
        for _ in range(20):
            await a.send_message(b"y" * 400)
            await b.send_message(await b.receive_message())
            await a.receive_message()
        monkeypatch.undo()
        assert made == []
