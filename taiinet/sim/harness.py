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
  arrives).
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

A simulation (``sim/overlay.py``, ``sim/pubsub.py``, ``sim/dht.py``,
``sim/stream.py``, ...) is a
scenario on top: it makes the cores, schedules joins, commands and crashes,
and measures through the hooks.  Same seeds, same run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar, cast

from taiinet.core.actions import CloseLink, ProbeLink, Send, SetTimer
from taiinet.core.contract import LinkObserver
from taiinet.sim.events import EventLoop
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
    one harness runs cores of any message, timer and action types)."""

    def handle_message(self, peer: PeerId, message: Any, now: float) -> Iterable[Any]: ...

    def handle_timer(self, timer: Any, now: float) -> Iterable[Any]: ...

    def handle_link_down(self, peer: PeerId, now: float) -> Iterable[Any]: ...


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

    def add(self, node: PeerId, core: C) -> None:
        """Give ``node`` its core (start it with ``apply(node, core.start(now))``)."""
        self.cores[node] = core

    def crash(self, node: PeerId) -> None:
        """``node`` stops: it neither sends nor receives, and its timers do nothing."""
        self.network.crash(node)

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
                network.send(node, action.peer,
                             self._encode(message) if self._coded else message)
            elif isinstance(action, SetTimer):
                self.loop.schedule(action.at, self._timer, node, action.timer)
            elif isinstance(action, ProbeLink):
                network.probe(node, action.peer)
            elif not isinstance(action, CloseLink):
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
