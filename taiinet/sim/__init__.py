"""Discrete-event simulator: drives the same protocol cores as the trio runtime.

Generic pieces, for any protocol's simulation:

* ``taiinet.sim.harness.Harness(loop, rng, link, on_event=..., ...)``: runs any
  core on the contract of ``taiinet.core`` (docs/cores.md), one per node,
  over a ``SimNetwork``: ``add(node, core, address=None)``,
  ``apply(node, actions)``, ``crash(node)``, ``run(end, progress)``; cores
  that name links dial each other's ``address`` (``taiinet.sim.links``).

* ``taiinet.sim.events.EventLoop``: ``schedule(at, callback, *args)``,
  ``call_later(delay, ...)``, ``run(until=None, max_events=None)``, ``now``,
  ``events_run``.
* ``taiinet.sim.network.SimNetwork(loop, rng, receive, link=LinkModel(...),
  on_unreachable=None)``: ``send(src, dst, message)`` calls
  ``receive(src, dst, message)`` after a seeded delay (FIFO per link unless
  ``reorder``), with loss and duplication; ``crash(node)``,
  ``partition(groups, one_way=False)``, ``heal()``, ``probe(src, dst)``; a
  send to a crashed or cut-off node calls ``on_unreachable(src, dst)`` after
  ``LinkModel.failure_delay`` (TCP-like), or is silently lost without it
  (UDP-like).

Protocol simulations, one function and config each: ``simulate_overlay``
(HyParView + Plumtree, ``taiinet.sim.overlay``), ``simulate_pubsub``
(content-based routing, ``taiinet.sim.pubsub``), ``simulate_dht`` (the
signallers' Kademlia DHT, ``taiinet.sim.dht``) and ``simulate_signal``
(offers relayed by the signaller and client cores, ``taiinet.sim.signal``).
Names are imported on first use, so ``taiinet.sim.events`` alone loads no
protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taiinet._lazy import lazy_exports

if TYPE_CHECKING:
    from taiinet.sim.dht import DhtSimConfig, DhtSimResult, simulate_dht
    from taiinet.sim.events import EventLoop
    from taiinet.sim.harness import Harness
    from taiinet.sim.network import LinkModel, SimNetwork
    from taiinet.sim.overlay import OverlaySimConfig, OverlaySimResult, simulate_overlay
    from taiinet.sim.pubsub import PubsubSimConfig, PubsubSimResult, simulate_pubsub
    from taiinet.sim.signal import SignalSimConfig, SignalSimResult, simulate_signal

#: Each lazily exported name and the module it is imported from.
_EXPORTS: dict[str, str] = {
    "DhtSimConfig": "taiinet.sim.dht",
    "DhtSimResult": "taiinet.sim.dht",
    "EventLoop": "taiinet.sim.events",
    "Harness": "taiinet.sim.harness",
    "LinkModel": "taiinet.sim.network",
    "OverlaySimConfig": "taiinet.sim.overlay",
    "OverlaySimResult": "taiinet.sim.overlay",
    "PubsubSimConfig": "taiinet.sim.pubsub",
    "PubsubSimResult": "taiinet.sim.pubsub",
    "SignalSimConfig": "taiinet.sim.signal",
    "SignalSimResult": "taiinet.sim.signal",
    "SimNetwork": "taiinet.sim.network",
    "simulate_dht": "taiinet.sim.dht",
    "simulate_overlay": "taiinet.sim.overlay",
    "simulate_pubsub": "taiinet.sim.pubsub",
    "simulate_signal": "taiinet.sim.signal",
}

if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt name stays an error
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "DhtSimConfig",
    "DhtSimResult",
    "EventLoop",
    "Harness",
    "LinkModel",
    "OverlaySimConfig",
    "OverlaySimResult",
    "PubsubSimConfig",
    "PubsubSimResult",
    "SignalSimConfig",
    "SignalSimResult",
    "SimNetwork",
    "simulate_dht",
    "simulate_overlay",
    "simulate_pubsub",
    "simulate_signal",
]
