"""Discrete-event simulation of the signallers' Kademlia DHT.

Thousands of :class:`~taiinet.signal.dht.KademliaNode` cores (the very code the
signallers run) run on the simulation harness (``taiinet.sim.harness``): each
message arrives after a random delay in ``[min_delay, max_delay]``; a crashed
node silently drops everything (the worst case: its contacts learn only by
timeouts).  One seed reproduces the whole run.

Phases of :func:`run_dht_simulation`:

1. *join*: nodes join one after another (``join_interval`` apart), each given
   one random earlier node as its bootstrap contact, and run a self-lookup,
   as a real signaller started with ``--join URL`` does;
2. *steady*: ``lookups`` FIND_NODE lookups of random live nodes from random
   live nodes; success = the target was found;
3. *crash* (when ``crash > 0``): a random fraction of nodes stops at once; the
   same lookups are measured right away, then again after one refresh period
   of simulated time in which the nodes' own maintenance (pings of stale
   contacts, bucket refresh) ran.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from taiinet.errors import LocalProtocolError
from taiinet.signal.dht import DhtConfig, KademliaNode
from taiinet.signal.dht_types import Contact, DhtAction, DhtMessage, DhtTimer, LookupFinished
from taiinet.signal.ids import id_bytes, node_id
from taiinet.sim.events import EventLoop
from taiinet.sim.harness import Harness
from taiinet.sim.network import LinkModel
from taiinet.wire.peer_id import PeerId

MAX_SIM_SIGNALLERS = 200_000


def sim_peer_id(rng: random.Random) -> PeerId:
    """A peer id shaped like an Ed25519 libp2p id: identity multihash of a key."""
    return PeerId.from_public_key(rng.getrandbits(256).to_bytes(32, "big"))


def default_sim_dht_config() -> DhtConfig:
    """Timers scaled so one refresh period is affordable to simulate."""
    return DhtConfig(maintenance_interval=3600.0, refresh_interval=3600.0,
                     max_refresh_lookups_per_tick=1, max_pings_per_tick=20)


@dataclass(frozen=True, slots=True, kw_only=True)
class DhtSimConfig:
    signallers: int
    crash: float = 0.0
    lookups: int = 1000
    seed: int = 1
    min_delay: float = 0.005
    max_delay: float = 0.050
    join_interval: float = 0.02
    lookup_interval: float = 0.01
    dht: DhtConfig = field(default_factory=default_sim_dht_config)


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseResult:
    lookups: int
    success: float
    hops_p50: float
    hops_p99: float
    requests_mean: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DhtSimResult:
    signallers: int
    crash: float
    lookups: int
    seed: int
    steady: PhaseResult
    after_crash: PhaseResult | None
    after_refresh: PhaseResult | None
    messages: int
    simulated_seconds: float

    def as_json(self) -> dict[str, object]:
        """The ``--json`` object; top-level figures are those of the worst phase run."""
        headline = self.after_crash or self.steady
        out: dict[str, object] = {
            "signallers": self.signallers, "crash": self.crash, "lookups": self.lookups,
            "seed": self.seed, "success": headline.success, "hops_p50": headline.hops_p50,
            "hops_p99": headline.hops_p99, "steady": _phase_json(self.steady),
            "messages": self.messages, "simulated_seconds": round(self.simulated_seconds, 3),
        }
        if self.after_crash is not None:
            out["after_crash"] = _phase_json(self.after_crash)
        if self.after_refresh is not None:
            out["after_refresh"] = _phase_json(self.after_refresh)
        return out


def _phase_json(phase: PhaseResult) -> dict[str, float]:
    return {"lookups": phase.lookups, "success": phase.success, "hops_p50": phase.hops_p50,
            "hops_p99": phase.hops_p99, "requests_mean": round(phase.requests_mean, 2)}


def percentile(values: list[int], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-int(fraction * 1000 * len(ordered)) // 1000)))
    return float(ordered[rank - 1])


_Command = Callable[[KademliaNode, float], list[DhtAction]]


class SimSignaller:
    """One signaller's ``KademliaNode`` as the harness feeds it: a message names
    its sender's peer id, and the sender's address comes from the directory
    (the trio server reads it from the ``Dht`` frame instead)."""

    __slots__ = ("directory", "node")

    def __init__(self, node: KademliaNode, directory: dict[PeerId, Contact]) -> None:
        self.node = node
        self.directory = directory

    def handle_message(self, peer: PeerId, message: DhtMessage, now: float) -> list[DhtAction]:
        return self.node.handle_message(self.directory[peer], message, now)

    def handle_timer(self, timer: DhtTimer, now: float) -> list[DhtAction]:
        return self.node.handle_timer(timer, now)

    def handle_link_down(self, peer: PeerId, now: float) -> list[DhtAction]:
        return self.node.handle_link_down(peer, now)


class DhtSimulator:
    """A scenario on the harness: one ``KademliaNode`` per signaller.

    Links are datagram-like: a message to a crashed signaller is lost without a
    word (its contacts learn only by timeouts), delays are uniform in
    ``[min_delay, max_delay]`` and messages may overtake each other.
    """

    def __init__(self, config: DhtSimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.loop = EventLoop()
        link = LinkModel(min_delay=config.min_delay, max_delay=config.max_delay,
                         median_delay=config.max_delay, uniform=True, reorder=1.0)
        self.harness: Harness[SimSignaller] = Harness(
            self.loop, random.Random(self.rng.getrandbits(64)), link,
            on_event=self._on_event, report_unreachable=False)
        self.nodes: dict[PeerId, KademliaNode] = {}
        self.contacts: dict[PeerId, Contact] = {}
        self.alive: set[PeerId] = set()
        self.finished: dict[tuple[PeerId, int], LookupFinished] = {}

    @property
    def now(self) -> float:
        return self.loop.now

    @property
    def messages(self) -> int:
        return self.harness.network.sent

    def _on_event(self, peer: PeerId, action: object) -> None:
        if isinstance(action, LookupFinished):
            self.finished[(peer, action.lookup_id)] = action

    def _call(self, at: float, peer: PeerId, command: _Command) -> None:
        """Run ``command(node, now)`` on ``peer``'s node at ``at``, if it is still up."""
        self.loop.schedule(at, self._run_command, peer, command)

    def _run_command(self, peer: PeerId, command: _Command) -> None:
        if peer in self.alive:
            self.harness.apply(peer, command(self.nodes[peer], self.loop.now))

    def run_until(self, end: float) -> None:
        self.loop.run(until=end)

    def run_until_idle(self, horizon: float = 600.0) -> None:
        """Run until no lookup is in progress (bounded by ``horizon`` seconds)."""
        end = self.now + horizon
        while self.now < end:
            self.run_until(self.now + 1.0)
            if not any(self.nodes[p].active_lookups for p in self.alive):
                return

    # -- phases ---------------------------------------------------------------

    def add_node(self, at: float, bootstrap: Contact | None) -> PeerId:
        peer = sim_peer_id(self.rng)
        contact = Contact(peer_id=peer, address=f"sim://{len(self.nodes)}")
        node = KademliaNode(local=contact, rng=random.Random(self.rng.getrandbits(64)),
                            now=at, config=self.config.dht)
        self.nodes[peer] = node
        self.contacts[peer] = contact
        self.harness.add(peer, SimSignaller(node, self.contacts))
        self.alive.add(peer)

        def join(node: KademliaNode, now: float) -> list[DhtAction]:
            actions = node.start(now)
            if bootstrap is not None:
                actions += node.add_contact(bootstrap, now)
                actions += node.bootstrap(now).actions
            return actions

        self._call(at, peer, join)
        return peer

    def join_all(self) -> None:
        peers: list[PeerId] = []
        at = self.now
        for _ in range(self.config.signallers):
            bootstrap = self.contacts[self.rng.choice(peers)] if peers else None
            peers.append(self.add_node(at, bootstrap))
            at += self.config.join_interval
        self.run_until(at)
        self.run_until_idle()

    def measure_lookups(self) -> PhaseResult:
        """Run ``lookups`` FIND_NODE lookups of random live targets; summarise them."""
        alive = sorted(self.alive)
        started: list[tuple[PeerId, list[int]]] = []
        at = self.now
        for _ in range(self.config.lookups):
            source, target = self.rng.sample(alive, 2)
            handle: list[int] = []

            def start(node: KademliaNode, now: float, target: PeerId = target,
                      handle: list[int] = handle) -> list[DhtAction]:
                lookup_id, actions = node.start_lookup(id_bytes(node_id(target)), now)
                handle.append(lookup_id)
                return actions

            self._call(at, source, start)
            started.append((source, handle))
            at += self.config.lookup_interval
        self.run_until(at)
        self.run_until_idle()
        hops: list[int] = []
        successes = requests = 0
        for source, handle in started:
            result = self.finished.get((source, handle[0])) if handle else None
            if result is None:
                continue
            requests += result.requests
            if result.found:
                successes += 1
                hops.append(result.hops)
        total = len(started)
        return PhaseResult(lookups=total, success=successes / total if total else 0.0,
                           hops_p50=percentile(hops, 0.50), hops_p99=percentile(hops, 0.99),
                           requests_mean=requests / total if total else 0.0)

    def crash(self, fraction: float) -> None:
        count = round(fraction * len(self.alive))
        for peer in self.rng.sample(sorted(self.alive), count):
            self.alive.discard(peer)
            self.harness.crash(peer)

    def refresh_period(self) -> None:
        """Let one refresh period of simulated time pass (maintenance runs)."""
        self.run_until(self.now + self.config.dht.refresh_interval)
        self.run_until_idle()


def run_dht_simulation(config: DhtSimConfig) -> DhtSimResult:
    if not 2 <= config.signallers <= MAX_SIM_SIGNALLERS:
        raise LocalProtocolError(f"signallers must be in 2..{MAX_SIM_SIGNALLERS}")
    if not 0.0 <= config.crash < 1.0:
        raise LocalProtocolError("crash must be a fraction in [0, 1)")
    sim = DhtSimulator(config)
    sim.join_all()
    steady = sim.measure_lookups()
    after_crash = after_refresh = None
    if config.crash > 0:
        sim.crash(config.crash)
        after_crash = sim.measure_lookups()
        sim.refresh_period()
        after_refresh = sim.measure_lookups()
    return DhtSimResult(signallers=config.signallers, crash=config.crash,
                        lookups=config.lookups, seed=config.seed, steady=steady,
                        after_crash=after_crash, after_refresh=after_refresh,
                        messages=sim.messages, simulated_seconds=sim.now)


#: The name ``taiinet.sim`` exports (matching ``simulate_overlay``, ``simulate_pubsub``).
simulate_dht = run_dht_simulation
