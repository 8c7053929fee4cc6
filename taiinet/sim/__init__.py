"""Discrete-event simulator: drives the same protocol cores as the trio runtime.

Generic pieces, for any protocol's simulation:

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

Protocol simulations: ``taiinet.sim.overlay`` (HyParView + Plumtree).
"""
