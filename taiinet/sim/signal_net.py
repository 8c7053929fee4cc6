"""The simulated signalling network: signaller and client cores joined by links.

Thousands of :class:`SignallerCore` and :class:`SignalClientCore` objects
(the very code ``taiinet signal`` and every node run) exchange their domain
messages over simulated links, on the shared :class:`EventLoop`:

* a ``Dial`` reaches a live signaller after ``3 * delay`` (TCP, WebSocket and
  Noise handshakes), or fails after ``failure_delay`` when it is crashed;
* a message arrives after a seeded delay in ``[min_delay, max_delay]``, in
  order per link direction (links are reliable streams);
* a crash stops a node at once; the other end of each of its links hears the
  link go down ``failure_delay`` later (the peer's TCP connection is reset),
  and a closed link goes down at both ends.

Nothing is encoded: the codec is tested on its own, and the cores see the
same validated messages a driver gives them.  Records and session messages
are signed and verified as in a real run (every peer has an Ed25519 key).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from taiinet.core.actions import CloseLink, Dial, LinkId, Send, SetTimer
from taiinet.signal import client_core as cc
from taiinet.signal.client_core import SignalClientConfig, SignalClientCore
from taiinet.signal.codec import Relay, SignalMessage
from taiinet.signal.records import SessionKind
from taiinet.signal.signaller_config import SignallerConfig
from taiinet.signal.signaller_core import SignallerCore
from taiinet.signal.signaller_timers import Joined, SignallerAction, SignallerTimer
from taiinet.sim.events import EventLoop
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

#: Wall-clock time (Unix seconds) at simulated time 0: records carry wall-clock expiries.
SIM_UNIX_EPOCH = 1_800_000_000.0

End = tuple[str, int]  # ("s", signaller index) or ("p", peer index)


@dataclass(slots=True)
class _Link:
    a: End
    b: End
    last: dict[End, float] = field(default_factory=dict)
    open: bool = True

    def other(self, end: End) -> End:
        return self.b if end == self.a else self.a


@dataclass(slots=True)
class SimSignaller:
    core: SignallerCore
    alive: bool = True
    links: set[LinkId] = field(default_factory=set)


@dataclass(slots=True)
class SimPeer:
    core: SignalClientCore
    alive: bool = True
    link: LinkId | None = None
    #: Outstanding offers: session id -> (started at, envelope of the offer).
    offers: dict[bytes, tuple[float, bytes]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferOutcome:
    answered: bool
    seconds: float
    #: Signallers the offer crossed (1: both peers share a home).
    hops: int
    failure: str


@dataclass(slots=True)
class SignalNet:
    """Cores, links and the event loop; see the module docstring."""

    loop: EventLoop
    rng: random.Random
    min_delay: float
    max_delay: float
    failure_delay: float
    signaller_config: SignallerConfig
    client_config: SignalClientConfig
    signallers: list[SimSignaller] = field(default_factory=list)
    peers: list[SimPeer] = field(default_factory=list)
    by_url: dict[str, int] = field(default_factory=dict)
    links: dict[LinkId, _Link] = field(default_factory=dict)
    messages: int = 0
    joined: set[int] = field(default_factory=set)
    #: Offer envelope -> relays between signallers it took.
    forwards: dict[bytes, int] = field(default_factory=dict)
    outcomes: dict[tuple[int, bytes], OfferOutcome] = field(default_factory=dict)
    _next_link: int = 0

    # -- nodes ----------------------------------------------------------------

    def add_signaller(self, peer_id: PeerId, join: str | None) -> int:
        index = len(self.signallers)
        url = f"sim://{index}"
        now = self.loop.now
        core = SignallerCore(peer_id=peer_id, url=url, config=self.signaller_config,
                             rng=random.Random(self.rng.getrandbits(64)), now=now,
                             unix_epoch=SIM_UNIX_EPOCH)
        self.signallers.append(SimSignaller(core=core))
        self.by_url[url] = index
        self._carry_signaller(index, core.start(now))
        if join is None:
            self.joined.add(index)
        else:
            self._carry_signaller(index, core.join(join, now))
        return index

    def add_peer(self, identity: Identity, urls: list[str]) -> int:
        index = len(self.peers)
        now = self.loop.now
        core = SignalClientCore(identity=identity, signallers=urls, config=self.client_config,
                                rng=random.Random(self.rng.getrandbits(64)), now=now,
                                unix_epoch=SIM_UNIX_EPOCH)
        self.peers.append(SimPeer(core=core))
        self._carry_peer(index, core.start(now))
        return index

    def crash_signaller(self, index: int) -> None:
        node = self.signallers[index]
        node.alive = False
        for link_id in list(node.links):
            self._close(link_id, ("s", index), crashed=True)

    def leave(self, index: int) -> None:
        """A peer leaves cleanly: it withdraws its record, then closes its link."""
        peer = self.peers[index]
        _, actions = peer.core.withdraw(self.loop.now)
        self._carry_peer(index, actions)
        self.loop.call_later(self.client_config.withdraw_timeout, self._gone, index)

    def _gone(self, index: int) -> None:
        peer = self.peers[index]
        peer.alive = False
        if peer.link is not None:
            self._close(peer.link, ("p", index), crashed=True)

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
        self._carry_peer(source, actions)
        return session_id

    # -- links ----------------------------------------------------------------

    def _delay(self) -> float:
        return self.rng.uniform(self.min_delay, self.max_delay)

    def _alive(self, end: End) -> bool:
        kind, index = end
        return (self.signallers[index].alive if kind == "s" else self.peers[index].alive)

    def _dial(self, source: End, url: str, expected: PeerId | None) -> None:
        target = self.by_url.get(url)
        if target is None or not self.signallers[target].alive:
            self.loop.call_later(self.failure_delay, self._dial_failed, source, url, expected)
            return
        self.loop.call_later(3 * self._delay(), self._connect, source, target, url, expected)

    def _dial_failed(self, source: End, url: str, expected: PeerId | None) -> None:
        if not self._alive(source):
            return
        kind, index = source
        if kind == "s":
            core = self.signallers[index].core
            self._carry_signaller(index, core.handle_dial_failed(url, expected, self.loop.now))
        else:
            self._carry_peer(index, self.peers[index].core.handle_dial_failed(url, None,
                                                                              self.loop.now))

    def _connect(self, source: End, target: int, url: str, expected: PeerId | None) -> None:
        if not self._alive(source):
            return
        node = self.signallers[target]
        if not node.alive or (expected is not None and node.core.peer_id != expected):
            self._dial_failed(source, url, expected)
            return
        self._next_link += 1
        link_id = LinkId(self._next_link)
        self.links[link_id] = _Link(a=source, b=("s", target))
        node.links.add(link_id)
        now = self.loop.now
        kind, index = source
        if kind == "s":
            dialer = self.signallers[index]
            dialer.links.add(link_id)
            self._carry_signaller(target, node.core.handle_link_up(
                link_id, dialer.core.peer_id, None, None, now))
            self._carry_signaller(index, dialer.core.handle_link_up(
                link_id, node.core.peer_id, None, url, now))
        else:
            peer = self.peers[index]
            peer.link = link_id
            self._carry_signaller(target, node.core.handle_link_up(
                link_id, peer.core.peer_id, None, None, now))
            self._carry_peer(index, peer.core.handle_link_up(link_id, node.core.peer_id, None,
                                                             url, now))

    def _send(self, source: End, link_id: LinkId, message: SignalMessage) -> None:
        link = self.links.get(link_id)
        if link is None or not link.open:
            return
        self.messages += 1
        if (isinstance(message, Relay) and message.hops_left == 1
                and message.session in self.forwards):
            self.forwards[message.session] += 1
        destination = link.other(source)
        at = max(self.loop.now + self._delay(), link.last.get(destination, 0.0))
        link.last[destination] = at
        self.loop.schedule(at, self._arrive, destination, link_id, message)

    def _arrive(self, destination: End, link_id: LinkId, message: SignalMessage) -> None:
        link = self.links.get(link_id)
        if link is None or not link.open or not self._alive(destination):
            return
        kind, index = destination
        now = self.loop.now
        if kind == "s":
            core = self.signallers[index].core
            self._carry_signaller(index, core.handle_message(link_id, message, now))
        else:
            self._carry_peer(index, self.peers[index].core.handle_message(link_id, message, now))

    def _close(self, link_id: LinkId, closer: End, *, crashed: bool = False) -> None:
        """Close a link; the closer hears it at once, the other end a moment later."""
        link = self.links.get(link_id)
        if link is None or not link.open:
            return
        link.open = False
        other = link.other(closer)
        if not crashed:
            self._link_down(closer, link_id)
        delay = self.failure_delay if crashed else self._delay()
        self.loop.call_later(delay, self._link_down, other, link_id)

    def _link_down(self, end: End, link_id: LinkId) -> None:
        kind, index = end
        if kind == "s":
            node = self.signallers[index]
            if link_id in node.links:
                node.links.discard(link_id)
                if node.alive:
                    self._carry_signaller(index, node.core.handle_link_down(link_id,
                                                                            self.loop.now))
        else:
            peer = self.peers[index]
            if peer.link == link_id:
                peer.link = None
                if peer.alive:
                    self._carry_peer(index, peer.core.handle_link_down(link_id, self.loop.now))
        if all(not self._has(e, link_id) for e in (self.links[link_id].a,
                                                    self.links[link_id].b)):
            del self.links[link_id]

    def _has(self, end: End, link_id: LinkId) -> bool:
        kind, index = end
        if kind == "s":
            return link_id in self.signallers[index].links
        return self.peers[index].link == link_id

    # -- actions --------------------------------------------------------------

    def _carry_signaller(self, index: int, actions: list[SignallerAction]) -> None:
        end: End = ("s", index)
        for action in actions:
            if isinstance(action, Send):
                if action.link is not None:
                    self._send(end, action.link, action.message)
            elif isinstance(action, SetTimer):
                self.loop.schedule(action.at, self._signaller_timer, index, action.timer)
            elif isinstance(action, Dial):
                self._dial(end, action.address, action.peer)
            elif isinstance(action, CloseLink):
                if action.link is not None:
                    self._close(action.link, end)
            elif isinstance(action, Joined):
                self.joined.add(index)

    def _signaller_timer(self, index: int, timer: SignallerTimer) -> None:
        node = self.signallers[index]
        if node.alive:
            self._carry_signaller(index, node.core.handle_timer(timer, self.loop.now))

    def _carry_peer(self, index: int, actions: list[cc.ClientAction]) -> None:
        end: End = ("p", index)
        peer = self.peers[index]
        for action in actions:
            if isinstance(action, Send):
                if action.link is not None:
                    self._send(end, action.link, action.message)
            elif isinstance(action, SetTimer):
                self.loop.schedule(action.at, self._peer_timer, index, action.timer)
            elif isinstance(action, Dial):
                self._dial(end, action.address, None)
            elif isinstance(action, CloseLink):
                if action.link is not None:
                    self._close(action.link, end)
            elif isinstance(action, cc.OfferReceived):
                self._carry_peer(index, peer.core.reply(
                    action.from_peer, action.session_id, SessionKind.ANSWER, "v=0 answer",
                    self.loop.now))
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

    def _peer_timer(self, index: int, timer: cc.ClientTimer) -> None:
        peer = self.peers[index]
        if peer.alive:
            self._carry_peer(index, peer.core.handle_timer(timer, self.loop.now))
