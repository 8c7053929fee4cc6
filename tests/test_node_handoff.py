"""``Node.hand_off`` waits on the router's inputs, never on a clock: it sleeps
while nothing happens and returns once the document is pushed to the parent
and written to that link."""

from __future__ import annotations

import trio
import trio.testing
from trio.lowlevel import Task

from taiinet.node import NodeConfig, memory_links
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.memory import MemoryNetwork
from tests.node_support import slow_dials, start_nodes, start_signallers


class StepCounter(trio.abc.Instrument):
    """Counts the steps (wake-ups) of one task."""

    def __init__(self) -> None:
        self.task: Task | None = None
        self.steps = 0

    def before_task_step(self, task: Task) -> None:
        if task is self.task:
            self.steps += 1


async def test_hand_off_waits_for_the_parent_without_polling(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with trio.open_nursery() as nursery:
        (sig, _), = await start_signallers(nursery, transport, 1)
        # Every dial takes 20 s: the publisher publishes with no neighbour, so
        # the document waits for a parent.
        slow = slow_dials(20.0, memory_links(network))
        config = NodeConfig(join_timeout=0.5, join_dial_timeout=30.0)
        (root, _), (pub, _) = await start_nodes(nursery, [[sig.url]] * 2, slow, transport,
                                                config, first=1)
        assert pub.neighbors == []
        message_id = await pub.publish({"a": 1})
        counter = StepCounter()
        handed = trio.Event()

        async def hand_off() -> None:
            counter.task = trio.lowlevel.current_task()
            assert await pub.hand_off(message_id)
            handed.set()

        trio.lowlevel.add_instrument(counter)
        try:
            nursery.start_soon(hand_off)
            with trio.move_on_after(15):
                await handed.wait()
            assert not handed.is_set()
            # Woken only by the router's own inputs (its timers: a few a second),
            # not 100 times a second as a 10 ms poll would be.
            assert counter.steps < 60, counter.steps
            with trio.fail_after(30):
                await handed.wait()
        finally:
            trio.lowlevel.remove_instrument(counter)
        assert pub.neighbors == [root.peer_id]
        assert pub.driver.router.handed_to(bytes.fromhex(message_id)) == [root.peer_id]
        nursery.cancel_scope.cancel()
