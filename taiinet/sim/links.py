"""Dialled links in the simulator, for cores that name links (``taiinet.core.links``).

Theory of operation
-------------------
A signaller or a signal client opens links by address and tells them apart
by ``LinkId``.  The harness keeps those links here, over the same
``SimNetwork`` as every other simulation (its delays, crashes, partitions):

* ``dial(node, address, peer)``: if a live node registered at ``address``
  is reachable both ways, the link is up ``LinkModel.dial_delays`` one-way
  delays later (TCP, WebSocket and Noise handshakes): the listener hears it
  first, then the dialer.  A dial to no one, or to a crashed or cut-off
  node, fails after ``failure_delay``; one that finds another peer id than
  ``peer``, or a node that crashed meanwhile, fails when it gets there.
* ``send(node, link, data)``: arrives one delay later, in order per link
  direction; a link is a reliable stream, so the model's ``loss``,
  ``duplication`` and ``reorder`` do not apply.  Dropped if the sender no
  longer holds the link, or the receiver has heard it go down.  A send
  across a partition fails the link.
* ``close(node, link)``: the closer hears the link go down next (an event
  at the same time), the other end one delay later, after what was already
  sent to it.
* ``crash(node)``: the other end of each of its links hears the link go
  down ``failure_delay`` later (its TCP connection is reset); so do both
  ends of a link failed by a partition.

A ``LinkId`` is never reused; a crashed node hears nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taiinet.core.actions import LinkId
from taiinet.sim.network import SimNetwork

#: ``up(node, link, peer, dialed)``: ``dialed`` is the address the node dialed, or None.
LinkUp = Callable[[Any, LinkId, Any, str | None], None]
#: ``failed(node, address, peer)``: a dial of the node reached nothing, or not ``peer``.
DialFailed = Callable[[Any, str, Any], None]
#: ``receive(src, dst, link, data)``: data sent on ``link`` arrived at ``dst``.
LinkReceive = Callable[[Any, Any, LinkId, Any], None]
#: ``down(node, link)``: the node's end of ``link`` went down.
LinkDown = Callable[[Any, LinkId], None]


@dataclass(slots=True)
class _Link:
    dialer: Any
    listener: Any
    #: Neither end closed it and neither crashed: its down is not scheduled yet.
    open: bool = True
    #: Arrival time of the last data towards each end (FIFO per direction).
    last: dict[Any, float] = field(default_factory=dict)

    def other(self, end: Any) -> Any:
        return self.listener if end == self.dialer else self.dialer


class SimLinks:
    """The dialled links of one simulation; see the module docstring."""

    def __init__(self, network: SimNetwork, *, up: LinkUp, failed: DialFailed,
                 receive: LinkReceive, down: LinkDown) -> None:
        self.network = network
        self.loop = network.loop
        #: Where each listening node can be dialled.
        self.addresses: dict[str, Any] = {}
        self.links: dict[LinkId, _Link] = {}
        #: The links each node holds (up, and not heard down yet).
        self.held: dict[Any, set[LinkId]] = {}
        #: Data sent on links (whether or not it arrived).
        self.sent = 0
        self._up = up
        self._failed = failed
        self._receive = receive
        self._down = down
        self._last_id = 0

    def dial(self, node: Any, address: str, peer: Any) -> None:
        network, loop = self.network, self.loop
        target = self.addresses.get(address)
        if target is None or not (network.reachable(node, target)
                                  and network.reachable(target, node)):
            loop.call_later(network.link.failure_delay, self._dial_failed, node, address, peer)
            return
        loop.call_later(network.link.dial_delays * network.delay(),
                        self._connect, node, target, address, peer)

    def send(self, node: Any, link_id: LinkId, data: Any) -> None:
        link = self.links.get(link_id)
        if link is None or link_id not in self.held.get(node, ()):
            return
        self.sent += 1
        network, loop = self.network, self.loop
        other = link.other(node)
        if other in network.crashed:
            return  # (its crash reports the link down)
        if not network.reachable(node, other):
            self._fail(link_id, link)
            return
        at = max(loop.now + network.delay(), link.last.get(other, 0.0))
        link.last[other] = at
        loop.schedule(at, self._arrive, node, other, link_id, data)

    def close(self, node: Any, link_id: LinkId) -> None:
        link = self.links.get(link_id)
        if link is None or link_id not in self.held.get(node, ()):
            return
        loop = self.loop
        loop.schedule(loop.now, self._link_down, node, link_id)
        if link.open:
            link.open = False
            other = link.other(node)
            at = max(loop.now + self.network.delay(), link.last.get(other, 0.0))
            loop.schedule(at, self._link_down, other, link_id)

    def crash(self, node: Any) -> None:
        """``node`` crashed (the network knows already): its peers hear its links go down."""
        delay = self.network.link.failure_delay
        for link_id in sorted(self.held.pop(node, ())):
            link = self.links[link_id]
            other = link.other(node)
            if link_id not in self.held.get(other, ()):
                del self.links[link_id]
            elif link.open:
                link.open = False
                self.loop.call_later(delay, self._link_down, other, link_id)

    # --- events ----------------------------------------------------------------

    def _dial_failed(self, node: Any, address: str, peer: Any) -> None:
        if node not in self.network.crashed:
            self._failed(node, address, peer)

    def _connect(self, node: Any, target: Any, address: str, peer: Any) -> None:
        crashed = self.network.crashed
        if node in crashed:
            return
        if target in crashed or (peer is not None and target != peer):
            self._failed(node, address, peer)
            return
        self._last_id += 1
        link_id = LinkId(self._last_id)
        self.links[link_id] = _Link(dialer=node, listener=target)
        self.held.setdefault(node, set()).add(link_id)
        self.held.setdefault(target, set()).add(link_id)
        self._up(target, link_id, node, None)
        self._up(node, link_id, target, address)

    def _arrive(self, src: Any, dst: Any, link_id: LinkId, data: Any) -> None:
        if link_id in self.held.get(dst, ()):
            self._receive(src, dst, link_id, data)

    def _fail(self, link_id: LinkId, link: _Link) -> None:
        if link.open:
            link.open = False
            delay = self.network.link.failure_delay
            self.loop.call_later(delay, self._link_down, link.dialer, link_id)
            self.loop.call_later(delay, self._link_down, link.listener, link_id)

    def _link_down(self, node: Any, link_id: LinkId) -> None:
        held = self.held.get(node)
        if held is None or link_id not in held:
            return
        held.discard(link_id)
        link = self.links[link_id]
        if link_id not in self.held.get(link.other(node), ()):
            del self.links[link_id]
        self._down(node, link_id)
