"""The one simulation harness: runs any protocol core, one per node, over a ``SimNetwork``.

Theory of operation
-------------------
The harness is the simulator's runner of the core contract
(``taiinet.core``, ``docs/cores.md``): it carries out the shared actions
and feeds the inputs back, as the trio runner does over real links.

* ``Send``: through the network, after ``encode`` (``wire_codec`` runs).
* ``SetTimer``: an event at ``at`` calling ``handle_timer``; a crashed
  node's timers do nothing.
* ``ProbeLink``: the network probes the link; an answer is fed as
  ``heard_from``, a dead link as ``handle_link_down``.
* ``CloseLink``: nothing (links are implicit; a send to any live peer
  arrives), unless it names a link (below).
* ``Dial``: below.
* ``NeighborUp`` / ``NeighborDown`` and every other action (deliveries,
  lookups that finished): ``on_event(node, action)``, in order.

A message that arrives is ``decode``d, shown to ``on_message`` (the
simulation counts what crosses the network there) and fed to the core's
``handle_message``, unless ``take`` takes it (the scenario's own data plane,
as a node's driver handles media chunks beside the stream core); one for a
node without a core goes to ``on_orphan`` (an adversary's peers).  A send
to a crashed or cut-off node is reported with ``handle_link_down`` after the
link model's ``failure_delay`` when ``report_unreachable`` (TCP-like links),
else it is silently lost.

Cores that name links (``taiinet.core.links``: the signaller and the signal
client) get dialled links, kept by ``taiinet.sim.links``: ``Dial`` is fed
back as ``handle_link_up(link, ...)`` or ``handle_dial_failed``, and
``Send`` and ``CloseLink`` that name a ``link`` act on it alone; a message
on a link is fed as ``handle_message(link, ...)``, its end as
``handle_link_down(link, now)``.  A node is dialled at the ``address`` it
was ``add``ed with.  Cores that name peers never see a link id, and dialled
links cost them nothing (no event, no random draw).

A simulation (``sim/overlay.py``, ``sim/pubsub.py``, ``sim/dht.py``,
``sim/stream.py``, ``sim/signal.py``, ...) is a scenario on top: it makes
the cores, schedules joins, commands and crashes, and measures through the
hooks.  Same seeds, same run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar, cast

from taiinet.core.actions import CloseLink, Dial, LinkId, ProbeLink, Send, SetTimer
from taiinet.core.contract import LinkObserver
from taiinet.core.links import LinkCore
from taiinet.sim.events import EventLoop
from taiinet.sim.links import SimLinks
from taiinet.sim.network import LinkModel, SimNetwork
from taiinet.wire.peer_id import PeerId

#: progress(done, total): simulated seconds run so far, and planned in all.
Progress = Callable[[float, float], None]
#: ``on_event(node, action)``: an action the harness does not carry out itself.
OnEvent = Callable[[PeerId, Any], None]
#: ``on_message(src, dst, message)``: a decoded message arrived (before the core sees it).
OnMessage = Callable[[PeerId, PeerId, Any], None]
#: ``take(src, dst, message)``: True if the scenario handled it (the core never sees it).
Take = Callable[[PeerId, PeerId, Any], bool]


class SimCore(Protocol):
    """The inputs the harness feeds (``taiinet.core.contract.Core``, loosely typed:
    one harness runs cores of any message, timer and action types; ``peer``
    is a ``LinkId`` for a core that names links, ``taiinet.core.links.LinkCore``)."""

    def handle_message(self, peer: Any, message: Any, now: float) -> Iterable[Any]: ...

    def handle_timer(self, timer: Any, now: float) -> Iterable[Any]: ...

    def handle_link_down(self, peer: Any, now: float) -> Iterable[Any]: ...


C = TypeVar("C", bound=SimCore)


def _ignore(*_args: Any) -> None:
    return None


def _identity(message: Any) -> Any:
    return message


class Harness(Generic[C]):
    """Runs ``cores`` (one per node id) through a seeded ``SimNetwork``."""

    def __init__(self, loop: EventLoop, rng: random.Random, link: LinkModel | None = None, *,
                 on_event: OnEvent = _ignore,
                 on_message: OnMessage | None = None,
                 on_orphan: OnMessage | None = None,
                 take: Take | None = None,
                 encode: Callable[[Any], Any] | None = None,
                 decode: Callable[[Any], Any] | None = None,
                 report_unreachable: bool = True) -> None:
        self.loop = loop
        self.network = SimNetwork(loop, rng, self._receive, link,
                                  self._unreachable if report_unreachable else None,
                                  self._probe_answered)
        self.links = SimLinks(self.network, up=self._link_up, failed=self._dial_failed,
                              receive=self._receive_on_link, down=self._link_down)
        self.cores: dict[PeerId, C] = {}
        self.on_event = on_event
        self.on_message = on_message
        self.on_orphan = on_orphan
        self.take = take
        self._encode = encode or _identity
        self._decode = decode or _identity
        self._coded = encode is not None
        self._observers: dict[type, bool] = {}

    @property
    def now(self) -> float:
        return self.loop.now

    def add(self, node: PeerId, core: C, address: str | None = None) -> None:
        """Give ``node`` its core (start it with ``apply(node, core.start(now))``);
        a ``Dial`` of ``address`` reaches it."""
        self.cores[node] = core
        if address is not None:
            self.links.addresses[address] = node

    def crash(self, node: PeerId) -> None:
        """``node`` stops: it neither sends nor receives, its timers do nothing,
        and the other ends of its dialled links hear them go down."""
        self.network.crash(node)
        self.links.crash(node)

    def is_crashed(self, node: PeerId) -> bool:
        return node in self.network.crashed

    def command(self, node: PeerId, command: Callable[[C, float], Iterable[Any]]) -> None:
        """Run ``command(core, now)`` on ``node``'s core now and carry out its actions."""
        self.apply(node, command(self.cores[node], self.loop.now))

    def apply(self, node: PeerId, actions: Iterable[Any]) -> None:
        """Carry out ``actions`` that ``node``'s core returned, in order."""
        network = self.network
        for action in actions:
            if isinstance(action, Send):
                message = action.message
                data = self._encode(message) if self._coded else message
                if action.link is None:
                    network.send(node, action.peer, data)
                else:
                    self.links.send(node, action.link, data)
            elif isinstance(action, SetTimer):
                self.loop.schedule(action.at, self._timer, node, action.timer)
            elif isinstance(action, ProbeLink):
                network.probe(node, action.peer)
            elif isinstance(action, CloseLink):
                if action.link is not None:
                    self.links.close(node, action.link)
            elif isinstance(action, Dial):
                self.links.dial(node, action.address, action.peer)
            else:
                self.on_event(node, action)

    def run(self, end: float, progress: Progress | None = None, step: float = 1.0) -> None:
        """Run events up to ``end`` in about 200 slices, reporting ``progress``."""
        loop = self.loop
        step = max(step, end / 200)
        t = loop.now
        while t < end:
            t = min(end, t + step)
            loop.run(until=t)
            if progress is not None:
                progress(t, end)

    # --- inputs ------------------------------------------------------------------

    def _receive(self, src: PeerId, dst: PeerId, data: Any) -> None:
        message = self._decode(data) if self._coded else data
        if self.on_message is not None:
            self.on_message(src, dst, message)
        if self.take is not None and self.take(src, dst, message):
            return
        core = self.cores.get(dst)
        if core is None:
            if self.on_orphan is not None:
                self.on_orphan(src, dst, message)
            return
        self.apply(dst, core.handle_message(src, message, self.loop.now))

    def _receive_on_link(self, src: PeerId, dst: PeerId, link: LinkId, data: Any) -> None:
        message = self._decode(data) if self._coded else data
        if self.on_message is not None:
            self.on_message(src, dst, message)
        if self.take is None or not self.take(src, dst, message):
            self.apply(dst, self.cores[dst].handle_message(link, message, self.loop.now))

    def _link_up(self, node: PeerId, link: LinkId, peer: PeerId, dialed: str | None) -> None:
        core = cast(LinkCore[Any, Any, Any], self.cores[node])
        self.apply(node, core.handle_link_up(link, peer, None, dialed, self.loop.now))

    def _dial_failed(self, node: PeerId, address: str, peer: PeerId | None) -> None:
        core = cast(LinkCore[Any, Any, Any], self.cores[node])
        self.apply(node, core.handle_dial_failed(address, peer, self.loop.now))

    def _link_down(self, node: PeerId, link: LinkId) -> None:
        self.apply(node, self.cores[node].handle_link_down(link, self.loop.now))

    def _unreachable(self, src: PeerId, dst: PeerId) -> None:
        core = self.cores.get(src)
        if core is not None:  # (an attacker's failed sends are its own business)
            self.apply(src, core.handle_link_down(dst, self.loop.now))

    def _probe_answered(self, src: PeerId, dst: PeerId) -> None:
        core = self.cores[src]
        kind = type(core)
        observes = self._observers.get(kind)
        if observes is None:  # (a protocol isinstance check is slow: once per type)
            observes = self._observers[kind] = isinstance(core, LinkObserver)
        if observes:
            cast(LinkObserver[Any], core).heard_from(dst, self.loop.now)

    def _timer(self, node: PeerId, timer: Any) -> None:
        if node not in self.network.crashed:
            core = self.cores.get(node)
            if core is not None:
                self.apply(node, core.handle_timer(timer, self.loop.now))
