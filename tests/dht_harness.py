"""A tiny instant network of Kademlia cores for tests: FIFO delivery, no delay."""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterable

from taiinet.core import Send, SetTimer
from taiinet.signal.dht import DhtConfig, KademliaNode
from taiinet.signal.dht_types import Contact, DhtAction, DhtMessage, DhtTimer, LookupFinished
from taiinet.sim.dht import sim_peer_id


def contact_of(send: Send[DhtMessage]) -> Contact:
    """The contact a ``Send`` of the DHT goes to (its address rides along)."""
    assert send.address is not None
    return Contact(peer_id=send.peer, address=send.address)


class Timers:
    """One node's ``SetTimer``s, fired when due (what a driver's timer heap does)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, DhtTimer]] = []
        self._seq = 0

    def collect(self, actions: Iterable[object]) -> None:
        for action in actions:
            if isinstance(action, SetTimer):
                self._seq += 1
                heapq.heappush(self._heap, (action.at, self._seq, action.timer))

    @property
    def next_at(self) -> float:
        return self._heap[0][0] if self._heap else float("inf")

    def fire(self, node: KademliaNode, now: float) -> list[DhtAction]:
        """The timers due by ``now``, in time order: their actions (not collected yet:
        the caller collects them, as it does any action)."""
        out: list[DhtAction] = []
        while self._heap and self._heap[0][0] <= now:
            out += node.handle_timer(heapq.heappop(self._heap)[2], now)
        return out


class InstantNetwork:
    def __init__(self, seed: int, config: DhtConfig | None = None) -> None:
        self.rng = random.Random(seed)
        self.config = config or DhtConfig()
        self.nodes: dict[str, KademliaNode] = {}
        self.timers: dict[str, Timers] = {}
        self.down: set[str] = set()
        self.queue: deque[tuple[Contact, str, DhtMessage]] = deque()
        self.finished: list[LookupFinished] = []
        self.now = 0.0

    def add(self) -> KademliaNode:
        peer = sim_peer_id(self.rng)
        node = KademliaNode(local=Contact(peer_id=peer, address=f"sim://{peer}"),
                            rng=random.Random(self.rng.getrandbits(64)), now=self.now,
                            config=self.config)
        self.nodes[peer] = node
        self.timers[peer] = Timers()
        self.apply(node, node.start(self.now))
        return node

    def apply(self, node: KademliaNode, actions: list[DhtAction]) -> None:
        self.timers[node.local.peer_id].collect(actions)
        for action in actions:
            if isinstance(action, Send):
                self.queue.append((node.local, action.peer, action.message))
            elif isinstance(action, LookupFinished):
                self.finished.append(action)

    def run(self) -> None:
        """Deliver until quiet; messages to a down node make its requester time out."""
        while True:
            while self.queue:
                sender, to, message = self.queue.popleft()
                if to in self.down or to not in self.nodes:
                    continue
                node = self.nodes[to]
                self.apply(node, node.handle_message(sender, message, self.now))
            if not any(n.active_lookups for p, n in self.nodes.items() if p not in self.down):
                return
            self.now += self.config.request_timeout
            for peer, node in list(self.nodes.items()):
                if peer not in self.down:
                    self.apply(node, self.timers[peer].fire(node, self.now))

    def join_all(self, count: int) -> list[KademliaNode]:
        first = self.add()
        joined = [first]
        for _ in range(count - 1):
            node = self.add()
            self.apply(node, node.add_contact(self.rng.choice(joined).local, self.now))
            self.apply(node, node.bootstrap(self.now).actions)
            self.run()
            joined.append(node)
        return joined
