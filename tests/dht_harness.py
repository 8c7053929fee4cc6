"""A tiny instant network of Kademlia cores for tests: FIFO delivery, no delay."""

from __future__ import annotations

import random
from collections import deque

from taiinet.signal.dht import DhtConfig, KademliaNode
from taiinet.signal.dht_types import Contact, DhtAction, DhtMessage, LookupFinished, SendDht
from taiinet.sim.dht import sim_peer_id


class InstantNetwork:
    def __init__(self, seed: int, config: DhtConfig | None = None) -> None:
        self.rng = random.Random(seed)
        self.config = config or DhtConfig()
        self.nodes: dict[str, KademliaNode] = {}
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
        return node

    def apply(self, node: KademliaNode, actions: list[DhtAction]) -> None:
        for action in actions:
            if isinstance(action, SendDht):
                self.queue.append((node.local, action.to.peer_id, action.message))
            else:
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
                    self.apply(node, node.handle_timer(self.now))

    def join_all(self, count: int) -> list[KademliaNode]:
        first = self.add()
        joined = [first]
        for _ in range(count - 1):
            node = self.add()
            self.apply(node, node.add_contact(self.rng.choice(joined).local, self.now))
            self.apply(node, node.bootstrap(self.now)[1])
            self.run()
            joined.append(node)
        return joined
