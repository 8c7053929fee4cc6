"""The signalling scenario's nodes: signaller and client cores on the one harness.

Thousands of :class:`SignallerCore` and :class:`SignalClientCore` objects
(the very code ``taiinet signal`` and every node run) on the simulation
harness (``taiinet.sim.harness``), whose dialled links
(``taiinet.sim.links``) carry out their ``Dial``, ``Send`` and
``CloseLink``: a dial takes three one-way delays (TCP, WebSocket and Noise
handshakes), a crashed signaller's links go down ``failure_delay`` later at
the other end, and a closed link goes down at both ends.

This module adds only what the scenario measures: which signallers joined,
each peer's outstanding offers, the relays between signallers each offer
took, and how each ended.  Targets answer every offer at once.  Nothing is
encoded (the codec is tested on its own); records and session messages are
signed and verified as in a real run (every peer has an Ed25519 key).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from taiinet.core.actions import Send
from taiinet.signal import client_core as cc
from taiinet.signal.client_core import SignalClientConfig, SignalClientCore
from taiinet.signal.codec import Relay
from taiinet.signal.records import SessionKind
from taiinet.signal.signaller_config import SignallerConfig
from taiinet.signal.signaller_core import SignallerCore
from taiinet.signal.signaller_timers import Joined
from taiinet.sim.events import EventLoop
from taiinet.sim.harness import Harness
from taiinet.sim.network import LinkModel
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

#: Wall-clock time (Unix seconds) at simulated time 0: records carry wall-clock expiries.
SIM_UNIX_EPOCH = 1_800_000_000.0


@dataclass(slots=True)
class SimSignaller:
    core: SignallerCore
    alive: bool = True


@dataclass(slots=True)
class SimPeer:
    core: SignalClientCore
    alive: bool = True
    #: Outstanding offers: session id -> (started at, envelope of the offer).
    offers: dict[bytes, tuple[float, bytes]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferOutcome:
    answered: bool
    seconds: float
    #: Signallers the offer crossed (1: both peers share a home).
    hops: int
    failure: str


class SignalNet:
    """Signallers and peers on a :class:`Harness`; see the module docstring."""

    def __init__(self, loop: EventLoop, rng: random.Random, link: LinkModel,
                 signaller_config: SignallerConfig, client_config: SignalClientConfig) -> None:
        self.loop = loop
        self.rng = random.Random(rng.getrandbits(64))  # (the cores' seeds)
        self.harness: Harness[SignallerCore | SignalClientCore] = Harness(
            loop, random.Random(rng.getrandbits(64)), link,
            on_event=self._event, on_message=self._count_forward)
        self.signaller_config = signaller_config
        self.client_config = client_config
        self.signallers: list[SimSignaller] = []
        self.peers: list[SimPeer] = []
        self._index: dict[PeerId, int] = {}
        self.joined: set[int] = set()
        #: Offer envelope -> relays between signallers it took.
        self.forwards: dict[bytes, int] = {}
        self.outcomes: dict[tuple[int, bytes], OfferOutcome] = {}

    @property
    def messages(self) -> int:
        """Messages sent on links."""
        return self.harness.links.sent

    def add_signaller(self, peer_id: PeerId, join: str | None) -> int:
        index = len(self.signallers)
        url = f"sim://{index}"
        now = self.loop.now
        core = SignallerCore(peer_id=peer_id, url=url, config=self.signaller_config,
                             rng=random.Random(self.rng.getrandbits(64)), now=now,
                             unix_epoch=SIM_UNIX_EPOCH)
        self.signallers.append(SimSignaller(core=core))
        self._index[peer_id] = index
        self.harness.add(peer_id, core, address=url)
        self.harness.apply(peer_id, core.start(now))
        if join is None:
            self.joined.add(index)
        else:
            self.harness.apply(peer_id, core.join(join, now))
        return index

    def add_peer(self, identity: Identity, urls: list[str]) -> int:
        index = len(self.peers)
        now = self.loop.now
        core = SignalClientCore(identity=identity, signallers=urls, config=self.client_config,
                                rng=random.Random(self.rng.getrandbits(64)), now=now,
                                unix_epoch=SIM_UNIX_EPOCH)
        self.peers.append(SimPeer(core=core))
        self._index[core.peer_id] = index
        self.harness.add(core.peer_id, core)
        self.harness.apply(core.peer_id, core.start(now))
        return index

    def crash_signaller(self, index: int) -> None:
        node = self.signallers[index]
        node.alive = False
        self.harness.crash(node.core.peer_id)

    def leave(self, index: int) -> None:
        """A peer leaves cleanly: it withdraws its record, then goes (its link drops)."""
        peer = self.peers[index]
        _, actions = peer.core.withdraw(self.loop.now)
        self.harness.apply(peer.core.peer_id, actions)
        self.loop.call_later(self.client_config.withdraw_timeout, self._gone, index)

    def _gone(self, index: int) -> None:
        peer = self.peers[index]
        peer.alive = False
        self.harness.crash(peer.core.peer_id)

    def offer(self, source: int, target: int) -> bytes:
        peer = self.peers[source]
        session_id, actions = peer.core.send_offer(self.peers[target].core.peer_id, "v=0 offer",
                                                   self.loop.now)
        envelope = b""
        for action in actions:
            if isinstance(action, Send) and isinstance(action.message, Relay):
                envelope = action.message.session
                self.forwards[envelope] = 0
        peer.offers[session_id] = (self.loop.now, envelope)
        self.harness.apply(peer.core.peer_id, actions)
        return session_id

    # -- the harness's hooks ----------------------------------------------------

    def _count_forward(self, _src: PeerId, _dst: PeerId, message: Any) -> None:
        """A relay from one signaller to the target's home is one more hop."""
        if (isinstance(message, Relay) and message.hops_left == 1
                and message.session in self.forwards):
            self.forwards[message.session] += 1

    def _event(self, node: PeerId, action: Any) -> None:
        index = self._index[node]
        if isinstance(action, Joined):
            self.joined.add(index)
        elif isinstance(action, cc.OfferReceived):
            core = self.peers[index].core
            self.harness.apply(node, core.reply(action.from_peer, action.session_id,
                                                SessionKind.ANSWER, "v=0 answer", self.loop.now))
        elif isinstance(action, cc.OfferSettled):
            self._settled(index, action)

    def _settled(self, index: int, action: cc.OfferSettled) -> None:
        started = self.peers[index].offers.pop(action.session_id, None)
        if started is None:
            return
        at, envelope = started
        self.outcomes[(index, action.session_id)] = OfferOutcome(
            answered=action.answer is not None, seconds=self.loop.now - at,
            hops=1 + self.forwards.pop(envelope, 0), failure=action.failure)
