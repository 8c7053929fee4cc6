"""Discrete-event simulation of signalling: offers relayed across a mesh of signallers.

The signaller and signal-client cores that ``taiinet signal`` and every node
run, thousands of each, on the one simulation harness (their dialled links:
``taiinet.sim.links``; the nodes: :mod:`taiinet.sim.signal_net`).  One seed
reproduces the whole run.

Phases of :func:`simulate_signal`:

1. *join*: signallers start ``join_interval`` apart, each joining the mesh
   through one random earlier signaller (as ``taiinet signal --join URL``);
2. *peers*: ``peers`` peers start, each given ``homes`` random signaller URLs
   to fail over among, and register;
3. *steady*: ``offers`` offers between random registered peers, answered at
   once by their targets: success, signaller hops (1 when both share a home,
   2 when relayed to the target's home, more when that home was stale) and
   seconds from offer to answer;
4. *churn* (``churn > 0``): that fraction of peers leaves (withdrawing its
   record) and as many new peers join; offers are measured again;
5. *crash* (``crash > 0``): that fraction of signallers stops at once.  Offers
   between peers registered before the crash are measured right away
   ("after crash"), then again between the peers registered after one record
   renewal period ("after refresh": the peers of crashed homes re-homed and
   every record was renewed).  Peers whose every home crashed cannot register
   and are counted as ``unhomed``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from taiinet.errors import LocalProtocolError
from taiinet.signal.client_core import SignalClientConfig
from taiinet.signal.records import RECORD_RENEWALS
from taiinet.signal.signaller_config import SignallerConfig
from taiinet.sim.dht import default_sim_dht_config, percentile, sim_peer_id
from taiinet.sim.events import EventLoop
from taiinet.sim.network import LinkModel
from taiinet.sim.signal_net import SignalNet
from taiinet.wire.identity import Identity

MAX_SIM_SIGNALLERS = 100_000
MAX_SIM_PEERS = 100_000
#: Simulated seconds the join and registration phases may take before measuring anyway.
SETTLE_LIMIT = 60.0


def default_sim_signaller_config() -> SignallerConfig:
    """Signallers as deployed, with DHT maintenance timers scaled for simulation."""
    return SignallerConfig(dht=default_sim_dht_config())


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalSimConfig:
    """One run; every figure in seconds of simulated time."""

    signallers: int
    peers: int = 1000
    crash: float = 0.0
    churn: float = 0.0
    offers: int = 1000
    seed: int = 1
    #: Signaller URLs each peer is given to fail over among.
    homes: int = 3
    min_delay: float = 0.005
    max_delay: float = 0.050
    failure_delay: float = 0.3
    join_interval: float = 0.01
    peer_interval: float = 0.005
    offer_interval: float = 0.005
    signaller: SignallerConfig = field(default_factory=default_sim_signaller_config)
    client: SignalClientConfig = field(default_factory=SignalClientConfig)

    def __post_init__(self) -> None:
        if not 2 <= self.signallers <= MAX_SIM_SIGNALLERS:
            raise LocalProtocolError(f"signallers must be in 2..{MAX_SIM_SIGNALLERS}")
        if not 2 <= self.peers <= MAX_SIM_PEERS:
            raise LocalProtocolError(f"peers must be in 2..{MAX_SIM_PEERS}")
        if not (0.0 <= self.crash < 1.0 and 0.0 <= self.churn < 1.0):
            raise LocalProtocolError("crash and churn must be fractions in [0, 1)")
        if self.offers < 1 or not 1 <= self.homes <= self.signallers:
            raise LocalProtocolError("need offers >= 1 and 1 <= homes <= signallers")
        if not 0 < self.min_delay <= self.max_delay or self.failure_delay <= 0:
            raise LocalProtocolError("need 0 < min_delay <= max_delay and failure_delay > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferPhase:
    offers: int
    success: float
    hops_p50: float
    hops_p99: float
    answer_p50: float
    answer_p99: float
    #: Live peers with no home at the start of the phase (all their homes down).
    unhomed: int

    def as_json(self) -> dict[str, float]:
        return {"offers": self.offers, "success": round(self.success, 4),
                "hops_p50": self.hops_p50, "hops_p99": self.hops_p99,
                "answer_p50": round(self.answer_p50, 3), "answer_p99": round(self.answer_p99, 3),
                "unhomed": self.unhomed}


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalSimResult:
    config: SignalSimConfig
    steady: OfferPhase
    after_churn: OfferPhase | None
    after_crash: OfferPhase | None
    after_refresh: OfferPhase | None
    messages: int
    events: int
    simulated_seconds: float

    @property
    def phases(self) -> list[tuple[str, OfferPhase]]:
        named = [("steady", self.steady), ("after_churn", self.after_churn),
                 ("after_crash", self.after_crash), ("after_refresh", self.after_refresh)]
        return [(name, phase) for name, phase in named if phase is not None]

    def as_json(self) -> dict[str, object]:
        """The ``--json`` object; top-level figures are those of the last phase run."""
        c = self.config
        last = self.phases[-1][1]
        out: dict[str, object] = {
            "signallers": c.signallers, "peers": c.peers, "crash": c.crash, "churn": c.churn,
            "offers": c.offers, "seed": c.seed, "success": round(last.success, 4),
            "hops_p50": last.hops_p50, "hops_p99": last.hops_p99,
            "answer_p50": round(last.answer_p50, 3), "answer_p99": round(last.answer_p99, 3),
        }
        out.update({name: phase.as_json() for name, phase in self.phases})
        out.update({"messages": self.messages, "events": self.events,
                    "simulated_seconds": round(self.simulated_seconds, 3)})
        return out


class _Run:
    """The phases of one simulation."""

    def __init__(self, config: SignalSimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.loop = EventLoop()
        link = LinkModel(uniform=True, min_delay=config.min_delay, max_delay=config.max_delay,
                         failure_delay=config.failure_delay)
        self.net = SignalNet(self.loop, random.Random(self.rng.getrandbits(64)), link,
                             config.signaller, config.client)

    def settle(self, done: Callable[[], bool]) -> None:
        """Run until ``done()`` holds (checked each simulated second), at most SETTLE_LIMIT."""
        end = self.loop.now + SETTLE_LIMIT
        while self.loop.now < end and not done():
            self.loop.run(until=self.loop.now + 1.0)

    def join_signallers(self) -> None:
        net, config = self.net, self.config
        for index in range(config.signallers):
            join = f"sim://{self.rng.randrange(index)}" if index else None
            net.add_signaller(sim_peer_id(self.rng), join)
            self.loop.run(until=self.loop.now + config.join_interval)
        self.settle(lambda: len(net.joined) == config.signallers)

    def add_peers(self, count: int) -> None:
        live = [s.core.url for s in self.net.signallers if s.alive]
        first = len(self.net.peers)
        for _ in range(count):
            identity = Identity.from_seed(self.rng.getrandbits(256).to_bytes(32, "big"))
            self.net.add_peer(identity, self.rng.sample(live, self.config.homes))
            self.loop.run(until=self.loop.now + self.config.peer_interval)
        self.settle(lambda: all(p.core.home is not None for p in self.net.peers[first:]))

    def registered(self) -> list[int]:
        return [i for i, p in enumerate(self.net.peers)
                if p.alive and not p.core.closing and p.core.home is not None]

    def measure(self, candidates: list[int]) -> OfferPhase:
        """Offers between random ``candidates``, one ``offer_interval`` apart."""
        net, config = self.net, self.config
        unhomed = sum(1 for p in net.peers
                      if p.alive and not p.core.closing and p.core.home is None)
        started: list[tuple[int, bytes]] = []
        for _ in range(config.offers):
            source, target = self.rng.sample(candidates, 2)
            started.append((source, net.offer(source, target)))
            self.loop.run(until=self.loop.now + config.offer_interval)
        self.loop.run(until=self.loop.now + config.client.offer_timeout + 1.0)
        outcomes = [net.outcomes.pop(key, None) for key in started]
        answered = [o for o in outcomes if o is not None and o.answered]
        hops = [o.hops for o in answered]
        seconds = [o.seconds for o in answered]
        return OfferPhase(offers=len(started), success=len(answered) / len(started),
                          hops_p50=percentile(hops, 0.5), hops_p99=percentile(hops, 0.99),
                          answer_p50=_percentile(seconds, 0.5),
                          answer_p99=_percentile(seconds, 0.99), unhomed=unhomed)

    def churn(self) -> None:
        leaving = self.rng.sample(self.registered(), round(self.config.churn * self.config.peers))
        for index in leaving:
            self.net.leave(index)
        self.add_peers(len(leaving))

    def crash(self) -> None:
        alive = [i for i, s in enumerate(self.net.signallers) if s.alive]
        for index in self.rng.sample(alive, round(self.config.crash * len(alive))):
            self.net.crash_signaller(index)

    def refresh(self) -> None:
        """One record renewal period, plus the longest re-homing backoff."""
        client = self.config.client
        self.loop.run(until=self.loop.now + client.record_lifetime / RECORD_RENEWALS
                      + client.backoff_max)


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def simulate_signal(config: SignalSimConfig) -> SignalSimResult:
    """Run every phase of the module docstring; the same config gives the same result."""
    run = _Run(config)
    run.join_signallers()
    run.add_peers(config.peers)
    steady = run.measure(run.registered())
    after_churn = after_crash = after_refresh = None
    if config.churn > 0:
        run.churn()
        after_churn = run.measure(run.registered())
    if config.crash > 0:
        before = run.registered()
        run.crash()
        after_crash = run.measure(before)
        run.refresh()
        after_refresh = run.measure(run.registered())
    return SignalSimResult(config=config, steady=steady, after_churn=after_churn,
                           after_crash=after_crash, after_refresh=after_refresh,
                           messages=run.net.messages, events=run.loop.events_run,
                           simulated_seconds=run.loop.now)
