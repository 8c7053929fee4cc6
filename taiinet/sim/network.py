"""A seeded network model for simulations: link delays, loss, duplication,
reordering, crashes and partitions.

Generic: it moves opaque message objects between node ids and calls
``receive(src, dst, message)``; what a message means is the simulation's
business.  Links are FIFO (like TCP) unless ``reorder`` is non-zero: then
that share of messages may overtake earlier ones.  A message to a crashed or
partitioned node is lost; if the simulation gives ``on_unreachable``, the
sender is told ``failure_delay`` seconds later (a TCP-like connection
failure, as HyParView's failure detector assumes).  A ``probe`` of a live
link is answered: if the simulation gives ``on_probe_answer``, the prober
hears back from its peer (a link-level Ping/Pong); a crashed or cut-off peer
never answers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from taiinet.errors import LocalProtocolError
from taiinet.sim.events import EventLoop
from taiinet.wire.peer_id import PeerId

#: log2 of the number of precomputed delays.
_DELAY_TABLE_BITS = 16
#: Links tracked for FIFO order before idle ones are forgotten.
_FIFO_TABLE_LIMIT = 200_000
NodeId = Hashable
Receive = Callable[[Any, Any, Any], None]
Unreachable = Callable[[Any, Any], None]
ProbeAnswer = Callable[[Any, Any], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkModel:
    """Per-message link behaviour; all draws come from the network's seeded rng.

    Delay is log-normal with the given median and spread (sigma of the log),
    clipped to ``[min_delay, max_delay]``; with ``uniform``, uniform in
    ``[min_delay, max_delay]`` (``median_delay`` and ``delay_sigma`` unused).
    """

    median_delay: float = 0.05
    delay_sigma: float = 0.25
    min_delay: float = 0.005
    max_delay: float = 1.0
    loss: float = 0.0
    duplication: float = 0.0
    reorder: float = 0.0
    #: Seconds until a sender learns that its peer is unreachable.
    failure_delay: float = 0.3
    #: One-way delays a dial takes before its link is up (TCP, WebSocket and
    #: Noise handshakes; ``taiinet.sim.links``).
    dial_delays: float = 3.0
    uniform: bool = False

    def __post_init__(self) -> None:
        for name in ("loss", "duplication", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise LocalProtocolError(f"link {name} must be in [0, 1]")
        if not 0 < self.min_delay <= self.max_delay or not (
                self.uniform or self.min_delay <= self.median_delay <= self.max_delay):
            raise LocalProtocolError("need 0 < min_delay <= median_delay <= max_delay")
        if self.failure_delay <= 0 or self.dial_delays <= 0:
            raise LocalProtocolError("failure_delay and dial_delays must be positive")


class SimNetwork:
    """Delivers messages between simulated nodes through a ``LinkModel``."""

    __slots__ = (
        "_blocked",
        "_delays",
        "_fifo_limit",
        "_group",
        "_last_arrival",
        "crashed",
        "link",
        "loop",
        "on_probe_answer",
        "on_unreachable",
        "receive",
        "rng",
        "sent",
    )

    def __init__(self, loop: EventLoop, rng: random.Random, receive: Receive,
                 link: LinkModel | None = None,
                 on_unreachable: Unreachable | None = None,
                 on_probe_answer: ProbeAnswer | None = None) -> None:
        self.loop = loop
        self.rng = rng
        self.receive = receive
        self.on_unreachable = on_unreachable
        self.on_probe_answer = on_probe_answer
        self.link = link or LinkModel()
        self.crashed: set[Any] = set()
        self.sent = 0
        # Delays are drawn from a table sampled once from the distribution: a
        # table look-up costs a tenth of a Gaussian draw.
        log_median = math.log(self.link.median_delay)
        table_rng = random.Random(rng.getrandbits(64))
        lo, hi, sigma = self.link.min_delay, self.link.max_delay, self.link.delay_sigma
        if self.link.uniform:
            self._delays = [table_rng.uniform(lo, hi) for _ in range(1 << _DELAY_TABLE_BITS)]
        else:
            self._delays = [
                min(max(math.exp(log_median + sigma * table_rng.gauss(0.0, 1.0)), lo), hi)
                for _ in range(1 << _DELAY_TABLE_BITS)]
        self._last_arrival: dict[tuple[Any, Any], float] = {}
        self._fifo_limit = _FIFO_TABLE_LIMIT
        self._group: dict[Any, int] = {}  # partition group of each node (absent: group 0)
        self._blocked: set[tuple[int, int]] = set()  # (from group, to group) pairs cut

    # --- faults ------------------------------------------------------------

    def crash(self, node: Any) -> None:
        """Crash ``node``: it neither sends nor receives again."""
        self.crashed.add(node)

    def partition(self, groups: list[list[Any]], one_way: bool = False) -> None:
        """Cut links between the given groups (nodes not listed form group 0).

        With ``one_way``, only messages from a lower-numbered group to a higher
        one are cut.
        """
        self._group = {node: index + 1 for index, group in enumerate(groups) for node in group}
        count = len(groups) + 1
        self._blocked = {(a, b) for a in range(count) for b in range(count)
                         if a != b and (not one_way or a < b)}

    def heal(self) -> None:
        """Remove every partition."""
        self._group = {}
        self._blocked = set()

    def reachable(self, src: Any, dst: Any) -> bool:
        if dst in self.crashed:
            return False
        if self._blocked:
            return (self._group.get(src, 0), self._group.get(dst, 0)) not in self._blocked
        return True

    # --- traffic -------------------------------------------------------------

    def delay(self) -> float:
        """One link delay, drawn from a table of the distribution (fast, seeded)."""
        return self._delays[self.rng.getrandbits(_DELAY_TABLE_BITS)]

    def send(self, src: Any, dst: Any, message: Any, extra_delay: float = 0.0) -> None:
        """Send ``message`` from ``src`` to ``dst`` through the link model.

        ``extra_delay`` is added to the link delay (the sender's processing
        time, for example a relay's).
        """
        crashed = self.crashed
        if src in crashed:
            return
        self.sent += 1
        loop = self.loop
        if dst in crashed or (self._blocked and not self.reachable(src, dst)):
            if self.on_unreachable is not None:
                loop.schedule(loop.now + self.link.failure_delay, self._unreachable, src, dst)
            return
        link = self.link
        rng = self.rng
        if link.loss and rng.random() < link.loss:
            return
        copies = 2 if link.duplication and rng.random() < link.duplication else 1
        delays = self._delays
        for _ in range(copies):
            at = loop.now + extra_delay + delays[rng.getrandbits(_DELAY_TABLE_BITS)]
            if not (link.reorder and rng.random() < link.reorder):
                key = (src, dst)
                last = self._last_arrival.get(key, 0.0)
                if at <= last:
                    at = last + 1e-9
                self._last_arrival[key] = at
                if len(self._last_arrival) > self._fifo_limit:
                    self._forget_idle_links()
            # The function and ``self`` as an argument, not ``self._arrive``: a bound
            # method is one more object per message in flight, and the GC promotes
            # whatever is in flight when it runs (bench/hotpath.py counts it).
            loop.schedule(at, SimNetwork._arrive, self, src, dst, message)

    def probe(self, src: Any, dst: Any) -> None:
        """Check the link from ``src`` to ``dst``; report it later if it is dead.

        A link alive both ways is answered with ``on_probe_answer(src, dst)``
        at once: the round trip is far shorter than a keep-alive interval, and
        counting it at the probe's time costs no event, no random draw and no
        loss draw, so probes do not shift the seeded run.
        """
        if src in self.crashed:
            return
        if not self.reachable(src, dst):
            if self.on_unreachable is not None:
                loop = self.loop
                loop.schedule(loop.now + self.link.failure_delay, self._unreachable, src, dst)
        elif self.on_probe_answer is not None and self.reachable(dst, src):
            self.on_probe_answer(src, dst)

    def _forget_idle_links(self) -> None:
        """Drop FIFO entries of links with nothing in flight (bounds the table)."""
        now = self.loop.now
        self._last_arrival = {k: t for k, t in self._last_arrival.items() if t > now}
        self._fifo_limit = max(_FIFO_TABLE_LIMIT, 2 * len(self._last_arrival))

    def _arrive(self, src: Any, dst: Any, message: Any) -> None:
        if dst not in self.crashed:
            self.receive(src, dst, message)

    def _unreachable(self, src: Any, dst: Any) -> None:
        if src not in self.crashed and self.on_unreachable is not None:
            self.on_unreachable(src, dst)


def sim_peer_ids(count: int) -> list[PeerId]:
    """``count`` distinct, valid peer ids in ascending order (node i has key i).

    Valid ids, so a run through the wire codecs (which accept nothing else)
    behaves as one without them.
    """
    return [PeerId.from_public_key(i.to_bytes(32, "big")) for i in range(count)]
