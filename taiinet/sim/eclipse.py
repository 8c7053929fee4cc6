"""An eclipse attack on one node of a simulated overlay, and what it costs the victim.

The scenario: ``nodes`` honest nodes (real ``Overlay`` cores) join and the
overlay settles, as in ``taiinet.sim.overlay``; then an attacker holding
``sybils`` identities (free to make: a key pair each) goes after one victim
for ``duration`` seconds while broadcasts are sent from random honest nodes
every ``message_interval`` seconds.  Each Sybil sends the victim a ``Join``
every ``rejoin_min``-``rejoin_max`` seconds (under a new identity each time
with ``fresh_identities``), alternately a high-priority ``Neighbor``
(``high_priority``), accepts every ``Neighbor`` request the victim sends it,
and drops everything else: walks, shuffles and broadcasts end with it (a
black hole).  With ``ghost_walks`` each Sybil also sends the victim that
many ``ForwardJoin(ttl=0)`` and ``Shuffle`` walks a second naming peers that
do not exist (sends to them fail, as a dial to nowhere would).

Measured: the honest neighbours the victim keeps (sampled every half
second), the broadcasts sent during the attack that reach it, and the
longest time it goes without a delivery.  Same config, same seed: same run.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from taiinet.errors import LocalProtocolError
from taiinet.overlay.core import OverlayConfig
from taiinet.overlay.messages import (
    ForwardJoin,
    Join,
    Neighbor,
    NeighborReply,
    OverlayMessage,
    Shuffle,
)
from taiinet.sim.overlay import OverlaySimConfig, OverlaySimulation
from taiinet.wire.peer_id import PeerId

#: Seconds between two samples of the victim's active view.
SAMPLE_INTERVAL = 0.5
#: Keys of made-up identities start here (honest node i has key i).
_SYBIL_KEYS = 1 << 200
_GHOST_KEYS = 1 << 201


def _made_up_id(key: int) -> PeerId:
    return PeerId.from_public_key(key.to_bytes(32, "big"))


@dataclass(frozen=True, slots=True, kw_only=True)
class EclipseConfig:
    nodes: int = 200
    seed: int = 0
    sybils: int = 12
    #: Each re-join under a new identity (the per-identity join limit does not apply).
    fresh_identities: bool = False
    #: Every other attempt is a high-priority ``Neighbor`` instead of a ``Join``.
    high_priority: bool = False
    rejoin_min: float = 3.0
    rejoin_max: float = 8.0
    #: ``ForwardJoin(ttl=0)`` and ``Shuffle`` walks naming made-up peers, per
    #: Sybil and second (0: none).
    ghost_walks: float = 0.0
    duration: float = 60.0
    #: Simulated seconds between the last honest join and the attack.
    stabilize: float = 40.0
    message_interval: float = 0.5
    overlay: OverlayConfig = field(default_factory=OverlayConfig)

    def __post_init__(self) -> None:
        if self.nodes < 2 or self.sybils < 1:
            raise LocalProtocolError("need at least 2 nodes and 1 Sybil")
        if not 0 < self.rejoin_min <= self.rejoin_max:
            raise LocalProtocolError("need 0 < rejoin_min <= rejoin_max")
        if self.duration <= 0 or self.message_interval <= 0 or self.ghost_walks < 0:
            raise LocalProtocolError("durations must be positive, ghost_walks >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class EclipseResult:
    victim: PeerId
    #: Honest neighbours of the victim when the attack starts.
    honest_at_start: int
    #: Fewest, and mean, honest neighbours of the victim over the attack.
    honest_min: int
    honest_mean: float
    #: Of the honest neighbours at the start, those still neighbours at the end.
    kept: int
    #: Broadcasts sent by other nodes during the attack, and how many reached the victim.
    sent: int
    delivered: int
    #: Longest stretch of the attack without a delivery at the victim.
    longest_gap: float
    #: Join and Neighbor attempts the Sybils made.
    attempts: int


class EclipseAttack:
    """The attacker: Sybil identities aimed at one victim; the simulation's adversary."""

    def __init__(self, sim: OverlaySimulation, victim: PeerId, config: EclipseConfig,
                 rng: random.Random, start: float) -> None:
        self.sim = sim
        self.victim = victim
        self.config = config
        self.rng = rng
        self.start = start
        self.end = start + config.duration
        self.attempts = 0
        self._renamed = [0] * config.sybils
        self._ghosts = 0

    def launch(self) -> None:
        loop = self.sim.loop
        for sybil in range(self.config.sybils):
            loop.schedule(self.start + self.rng.random() * self.config.rejoin_min,
                          self._attempt, sybil)
            if self.config.ghost_walks:
                loop.schedule(self.start + self.rng.random() / self.config.ghost_walks,
                              self._ghost_walk, sybil)

    def _name(self, sybil: int) -> PeerId:
        return _made_up_id(_SYBIL_KEYS + (sybil << 32) + self._renamed[sybil])

    def _attempt(self, sybil: int) -> None:
        loop = self.sim.loop
        if loop.now >= self.end:
            return
        cfg = self.config
        if cfg.fresh_identities:
            self._renamed[sybil] += 1
        message: OverlayMessage = Join()
        if cfg.high_priority and self.attempts % 2:
            message = Neighbor(high_priority=True)
        self.attempts += 1
        self.sim.network.send(self._name(sybil), self.victim, message)
        loop.call_later(cfg.rejoin_min + self.rng.random() * (cfg.rejoin_max - cfg.rejoin_min),
                        self._attempt, sybil)

    def _ghost_walk(self, sybil: int) -> None:
        loop = self.sim.loop
        if loop.now >= self.end:
            return
        ghosts = []
        for _ in range(4):
            self._ghosts += 1
            ghost = _made_up_id(_GHOST_KEYS + self._ghosts)
            self.sim.network.crash(ghost)  # nobody is there: a dial fails
            ghosts.append(ghost)
        me = self._name(sybil)
        self.sim.network.send(me, self.victim, ForwardJoin(peer=ghosts[0], ttl=0))
        self.sim.network.send(me, self.victim, Shuffle(origin=ghosts[1], ttl=1,
                                                       peers=tuple(ghosts[2:])))
        loop.call_later(1.0 / self.config.ghost_walks, self._ghost_walk, sybil)

    def receive(self, src: PeerId, dst: PeerId, message: OverlayMessage) -> None:
        """A message to a Sybil: say yes to becoming a neighbour, drop the rest."""
        if type(message) is Neighbor:
            self.sim.network.send(dst, src, NeighborReply(accepted=True))


def simulate_eclipse(config: EclipseConfig) -> EclipseResult:
    """Run the scenario once and measure the victim."""
    duration = config.duration
    messages = int(duration / config.message_interval)
    sim_config = OverlaySimConfig(nodes=config.nodes, messages=messages, seed=config.seed,
                                  stabilize=config.stabilize,
                                  message_interval=config.message_interval,
                                  overlay=config.overlay)
    sim = OverlaySimulation(sim_config)
    rng = random.Random(random.Random(config.seed).getrandbits(64) ^ 0xEC1)
    victim = sim.ids[rng.randrange(config.nodes)]
    start = config.nodes * sim_config.join_interval + config.stabilize
    attack = EclipseAttack(sim, victim, config, rng, start)
    sim.adversary = attack
    sim.watched = victim
    sim.loop.schedule(start, attack.launch)
    honest = set(sim.ids)
    core = sim.cores[victim]
    counts: list[int] = []
    at_start: set[PeerId] = set()

    def sample() -> None:
        view = {p for p in core.active_view if p in honest}
        if not counts:
            at_start.update(view)
        counts.append(len(view))
        if sim.loop.now + SAMPLE_INTERVAL <= attack.end:
            sim.loop.call_later(SAMPLE_INTERVAL, sample)

    sim.loop.schedule(start, sample)
    sim.run()
    kept = len(at_start & set(core.active_view))
    # Broadcasts sent by other nodes while the attack was on.
    others = [i for i in range(messages) if i not in sim.watched_sent]
    times = sorted(sim.watched_deliveries[i] for i in others if i in sim.watched_deliveries)
    marks = [start, *times, attack.end]
    longest_gap = max(b - a for a, b in itertools.pairwise(marks))
    sent = len(others)
    return EclipseResult(
        victim=victim, honest_at_start=len(at_start), honest_min=min(counts),
        honest_mean=sum(counts) / len(counts), kept=kept, sent=sent, delivered=len(times),
        longest_gap=longest_gap, attempts=attack.attempts)
