"""Simulation of a live stream's relay tree at thousands of viewers.

One broadcaster makes a chunk every 20-33 ms (uniform); every viewer runs the
real ``taiinet.stream.RelayTree`` core and relays each new chunk to its
children after a small processing delay, through the shared seeded
``SimNetwork`` link model.  Viewers join over ``join_period``, the tree
settles for ``settle`` seconds, then a window of ``duration`` seconds is
measured, during which ``churn`` of the viewers crash at random times (each
replaced by a newcomer at once).  Free-riders declare slots and take part in
the control protocol, but relay no chunk.

Measured in the window: delay from the broadcaster per chunk arrival (and
per tree depth), stall time per viewer (time beyond ``stall_gap`` without a
new chunk), the share of viewers *served* (present for the whole window and
received at least ``served_share`` of its chunks), the tree's depth at the
end, upload used per relaying peer, time from joining to the first chunk of
newcomers, time to reparent (from losing a parent to the next adoption, for
honest viewers, repairs that began in the window), and evictions of
free-riders and of honest peers, with how long a free-rider fed nobody
before it was removed (from the first child it adopted to its eviction,
each time it found a new parent).  Same config, same seed: same result.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from taiinet.errors import LocalProtocolError
from taiinet.sim.events import EventLoop
from taiinet.sim.harness import Harness
from taiinet.sim.network import LinkModel, sim_peer_ids
from taiinet.stream.actions import Action, Backfill, Evicted, ParentChanged
from taiinet.stream.config import TreeConfig
from taiinet.stream.messages import MAX_SLOTS
from taiinet.stream.tree import RelayTree
from taiinet.wire.peer_id import PeerId

#: progress(done, total): simulated seconds run so far, and planned in all.
Progress = Callable[[float, float], None]
#: Delay histogram: one bin per millisecond up to this many.
_DELAY_BINS = 20_000

#: The default capacity mix: (slots, share of viewers); mean 1.7 slots.
DEFAULT_CAPACITY_MIX: tuple[tuple[int, float], ...] = (
    (0, 0.3), (1, 0.3), (2, 0.2), (4, 0.15), (8, 0.05))


def parse_capacity_mix(text: str) -> tuple[tuple[int, float], ...]:
    """``"0:0.3,1:0.3,4:0.4"`` (slots:share, shares summing to 1) as a tuple of pairs."""
    pairs: list[tuple[int, float]] = []
    try:
        for item in text.split(","):
            slots, share = item.split(":")
            pairs.append((int(slots), float(share)))
    except ValueError:
        raise LocalProtocolError(
            f"capacity mix {text!r}: expected SLOTS:SHARE[,SLOTS:SHARE...]") from None
    return tuple(pairs)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSimConfig:
    viewers: int = 1000
    capacity_mix: tuple[tuple[int, float], ...] = DEFAULT_CAPACITY_MIX
    #: Children the broadcaster feeds directly.
    root_slots: int = 8
    #: Share of viewers that declare slots (drawn from the mix, at least 1)
    #: but relay nothing.
    free_riders: float = 0.0
    #: Share of viewers that crash during the measured window (each replaced).
    churn: float = 0.0
    seed: int = 0
    #: Seconds over which the viewers join (None: one per millisecond, at least 2 s).
    join_period: float | None = None
    #: Seconds between the last join and the measured window.
    settle: float = 8.0
    #: Seconds measured.
    duration: float = 20.0
    #: Range of the broadcaster's chunk interval (uniform), seconds.
    chunk_interval: tuple[float, float] = (0.020, 0.033)
    #: Seconds a relay takes between receiving a chunk and sending it on.
    processing_delay: float = 0.002
    #: A viewer is served when it got at least this share of the window's chunks.
    served_share: float = 0.95
    #: Gaps between new chunks longer than this count as stall (beyond it).
    stall_gap: float = 0.2
    #: Seconds of chunks a relay keeps to backfill a re-adopted child (0: none).
    buffer: float = 3.0
    link: LinkModel = field(default_factory=LinkModel)
    tree: TreeConfig = field(default_factory=TreeConfig)

    def __post_init__(self) -> None:
        if self.viewers < 1:
            raise LocalProtocolError("a stream simulation needs at least 1 viewer")
        if not self.capacity_mix or any(not 0 <= s <= MAX_SLOTS or w < 0
                                        for s, w in self.capacity_mix):
            raise LocalProtocolError(f"capacity mix: slots in [0, {MAX_SLOTS}], shares >= 0")
        if abs(sum(w for _, w in self.capacity_mix) - 1.0) > 1e-6:
            raise LocalProtocolError("capacity mix shares must sum to 1")
        if not 1 <= self.root_slots <= MAX_SLOTS:
            raise LocalProtocolError(f"root slots must be in [1, {MAX_SLOTS}]")
        if not 0.0 <= self.free_riders < 1.0 or not 0.0 <= self.churn <= 1.0:
            raise LocalProtocolError("--free-riders must be in [0, 1) and --churn in [0, 1]")
        low, high = self.chunk_interval
        if not 0 < low <= high:
            raise LocalProtocolError("chunk interval: need 0 < low <= high")
        if self.settle < 0 or self.duration <= 0 or self.processing_delay < 0:
            raise LocalProtocolError("need settle >= 0, duration > 0, processing delay >= 0")
        if self.join_period is not None and self.join_period < 0:
            raise LocalProtocolError("join period must be >= 0")
        if not 0.0 < self.served_share <= 1.0 or self.stall_gap <= 0 or self.buffer < 0:
            raise LocalProtocolError("need served share in (0, 1] and stall gap > 0")

    @property
    def joins_over(self) -> float:
        return max(2.0, self.viewers * 0.001) if self.join_period is None else self.join_period


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class StreamSimulation:
    """A scenario on the harness: one ``RelayTree`` core per peer; chunks are the
    scenario's own (as a node's driver moves them beside the core)."""

    def __init__(self, config: StreamSimConfig) -> None:
        self.config = config
        master = random.Random(config.seed)
        self.rng = random.Random(master.getrandbits(64))
        self._core_seed = master.getrandbits(64)
        self.loop = EventLoop()
        self.harness: Harness[RelayTree] = Harness(
            self.loop, random.Random(master.getrandbits(64)), config.link,
            on_event=self._on_event, take=self._take)
        self.network = self.harness.network
        replacements = round(config.churn * config.viewers)
        self.ids = sim_peer_ids(config.viewers + 1 + replacements)
        self.root = self.ids[0]
        self.index = {peer: i for i, peer in enumerate(self.ids)}
        count = len(self.ids)
        self.slots = [0] * count
        self.free_rider = [False] * count
        self.cores: dict[PeerId, RelayTree] = self.harness.cores
        self.live: set[PeerId] = set()
        self.joined_at = [float("inf")] * count
        self.first_chunk = [float("inf")] * count
        self.last_arrival = [0.0] * count
        self.received = [0] * count
        #: Chunks each peer holds, as a bit set (bit ``seq``).
        self.held = [0] * count
        self.stall = [0.0] * count
        #: Live chunks sent per peer in the window, and chunks sent to catch a
        #: repaired subtree up (backfills and their relays), over all peers.
        self.uploads = [0] * count
        self.catch_up = 0
        self.evicted_free_riders: set[PeerId] = set()
        self.evicted_honest: set[PeerId] = set()
        #: Free-riders that held a child long enough to be blamed for it (a stall
        #: timeout while chunks came), and since when each child is theirs.
        self.riders_with_child: set[PeerId] = set()
        self._rider_children: dict[PeerId, dict[PeerId, float]] = {}
        #: When each free-rider adopted its first child since it was last evicted,
        #: and the seconds from then to each eviction.
        self.rider_since = [float("inf")] * count
        self.removal_times: list[float] = []
        #: When each viewer lost its parent (None: it has one), and the seconds
        #: each repair that began in the window took to the next adoption.
        self.lost_parent_at: list[float | None] = [None] * count
        self.repair_times: list[float] = []
        self.window_start = config.joins_over + config.settle
        self.window_end = self.window_start + config.duration
        self.produced = 0  # chunks made in the window
        self.created: list[float] = []  # chunk seq -> time made
        self.delay_bins = [0] * (_DELAY_BINS + 1)
        self.depth_delay: dict[int, list[float]] = {}  # depth -> [sum, count]
        self._next_seq = 0
        self._measuring = False

    # --- peers -----------------------------------------------------------------

    def add_peer(self, peer: PeerId, slots: int, *, free_rider: bool = False) -> None:
        """Start ``peer``'s core now (the root when ``peer`` is the broadcaster)."""
        i = self.index[peer]
        cfg = self.config
        self.slots[i] = slots
        self.free_rider[i] = free_rider
        self.joined_at[i] = self.loop.now
        self.last_arrival[i] = self.loop.now
        core = RelayTree(peer, self.root, slots, random.Random(self._core_seed + i), cfg.tree)
        self.cores[peer] = core
        self.live.add(peer)
        self._apply(peer, core.start(self.loop.now))

    def crash(self, peer: PeerId) -> None:
        self.network.crash(peer)
        self.live.discard(peer)
        self.lost_parent_at[self.index[peer]] = None

    def draw_slots(self) -> int:
        r = self.rng.random()
        for slots, share in self.config.capacity_mix:
            r -= share
            if r < 0:
                return slots
        return self.config.capacity_mix[-1][0]

    # --- driving the cores --------------------------------------------------------

    def _apply(self, node: PeerId, actions: list[Action]) -> None:
        self.harness.apply(node, actions)

    def _on_event(self, node: PeerId, action: object) -> None:
        """The tree's output events (``Send``, ``SetTimer`` and ``CloseLink`` are
        the harness's; links are implicit, and chunks are accepted from whoever
        sends a new one, so ``ParentChanged`` only times repairs)."""
        if isinstance(action, Backfill):
            self._backfill(node, action.peer, action.after)
        elif isinstance(action, Evicted):
            peer = action.peer
            i = self.index[peer]
            if self.free_rider[i]:
                self.evicted_free_riders.add(peer)
                if self.rider_since[i] != float("inf"):
                    self.removal_times.append(self.loop.now - self.rider_since[i])
                    self.rider_since[i] = float("inf")
            else:
                self.evicted_honest.add(peer)
        elif isinstance(action, ParentChanged):
            self._parent_changed(node, action.parent)
        else:
            raise LocalProtocolError(f"unknown action {action!r}")

    def _parent_changed(self, node: PeerId, parent: PeerId | None) -> None:
        i = self.index[node]
        now = self.loop.now
        if parent is None:
            if self._measuring and not self.free_rider[i]:
                self.lost_parent_at[i] = now
            return
        lost = self.lost_parent_at[i]
        if lost is not None:
            self.lost_parent_at[i] = None
            if now <= self.window_end:
                self.repair_times.append(now - lost)

    def _take(self, src: PeerId, dst: PeerId, message: object) -> bool:
        """Chunks (a live one as its ``int`` seq, a catch-up one as ``(seq,)``)
        are the scenario's; tree messages go to the core."""
        if type(message) is int:
            self._chunk_arrived(dst, message)
        elif type(message) is tuple:
            self._chunk_arrived(dst, message[0], live=False)
        else:
            return False
        return True

    # --- media ---------------------------------------------------------------------

    def _make_chunk(self) -> None:
        now = self.loop.now
        low, high = self.config.chunk_interval
        self.loop.schedule(now + low + (high - low) * self.rng.random(), self._make_chunk)
        seq = self._next_seq
        self._next_seq += 1
        self.created.append(now)
        if self._measuring:
            self.produced += 1
        core = self.cores[self.root]
        core.chunk(seq, now)
        self.held[0] |= 1 << seq
        self._relay(self.root, core, seq)

    def _relay(self, node: PeerId, core: RelayTree, seq: int, live: bool = True) -> None:
        children = core.children
        if children:
            send = self.network.send
            extra = self.config.processing_delay
            message: int | tuple[int] = seq if live else (seq,)
            for child in children:
                send(node, child, message, extra)
            if self._measuring:
                if live:
                    self.uploads[self.index[node]] += len(children)
                else:
                    self.catch_up += len(children)

    def _backfill(self, node: PeerId, child: PeerId, after: int) -> None:
        """Send ``child`` the chunks after ``after`` that ``node`` holds and still buffers."""
        if after < 0:
            return  # a newcomer starts with the live chunks
        held = self.held[self.index[node]]
        oldest = self.loop.now - self.config.buffer
        created = self.created
        send = self.network.send
        extra = self.config.processing_delay
        for seq in range(after + 1, self.cores[node].seq + 1):
            if created[seq] >= oldest and held >> seq & 1:
                send(node, child, (seq,), extra)
                if self._measuring:
                    self.catch_up += 1

    def _chunk_arrived(self, node: PeerId, seq: int, live: bool = True) -> None:
        core = self.cores[node]
        now = self.loop.now
        i = self.index[node]
        bit = 1 << seq
        if self.held[i] & bit:
            return
        self.held[i] |= bit
        # An older chunk than the newest held is catch-up traffic whatever its route
        # (one missed in a move, say): it is relayed, but not counted as live upload.
        live = core.chunk(seq, now) and live
        if self.first_chunk[i] == float("inf"):
            self.first_chunk[i] = now
        if self._measuring:
            gap = now - self.last_arrival[i]
            if gap > self.config.stall_gap:
                self.stall[i] += gap - self.config.stall_gap
            self.received[i] += 1
            delay = now - self.created[seq]
            self.delay_bins[min(_DELAY_BINS, int(delay * 1000))] += 1
            depth = len(core.path)
            entry = self.depth_delay.get(depth)
            if entry is None:
                self.depth_delay[depth] = [delay, 1.0]
            else:
                entry[0] += delay
                entry[1] += 1
        self.last_arrival[i] = now
        if not self.free_rider[i]:
            self._relay(node, core, seq, live)
        else:
            self._withholding(node, core, now)
            if core.children and self.rider_since[i] == float("inf"):
                self.rider_since[i] = now  # it feeds nobody from here on (to a chunk)

    def _withholding(self, rider: PeerId, core: RelayTree, now: float) -> None:
        """Note a free-rider that held a child long enough to be blamed (a child that
        only passed by, a parallel join that went elsewhere, does not count)."""
        before = self._rider_children.get(rider, {})
        held = {child: before.get(child, now) for child in core.children}
        self._rider_children[rider] = held
        blamable = self.config.tree.stall_timeout
        if any(now - since > blamable for since in held.values()):
            self.riders_with_child.add(rider)

    # --- the scenario ----------------------------------------------------------------

    def _join_viewer(self, peer: PeerId) -> None:
        slots = self.draw_slots()
        rider = self.rng.random() < self.config.free_riders
        if rider:
            slots = max(1, slots)
        self.add_peer(peer, slots, free_rider=rider)

    def _start_window(self) -> None:
        self._measuring = True
        now = self.loop.now
        for i in range(len(self.ids)):
            self.last_arrival[i] = max(self.last_arrival[i], now)

    def _churn(self, newcomer: PeerId) -> None:
        viewers = sorted(p for p in self.live if p != self.root)
        if viewers:
            self.crash(viewers[self.rng.randrange(len(viewers))])
        self._join_viewer(newcomer)

    def begin(self) -> None:
        """Start the broadcaster: its core, and a chunk every 20-33 ms from now on."""
        self.add_peer(self.root, self.config.root_slots)
        self.loop.schedule(self.loop.now, self._make_chunk)

    def run(self, progress: Progress | None = None) -> StreamSimResult:
        cfg = self.config
        loop = self.loop
        self.begin()
        viewers = self.ids[1:cfg.viewers + 1]
        spacing = cfg.joins_over / len(viewers)
        for n, peer in enumerate(viewers):
            loop.schedule(n * spacing, self._join_viewer, peer)
        loop.schedule(self.window_start, self._start_window)
        for newcomer in self.ids[cfg.viewers + 1:]:
            at = self.window_start + self.rng.random() * cfg.duration * 0.9
            loop.schedule(at, self._churn, newcomer)
        end = self.window_end
        step = max(0.5, end / 200)
        t = 0.0
        while t < end:
            t = min(end, t + step)
            loop.run(until=t)
            if progress is not None:
                progress(t, end)
        return self._result()

    # --- measuring ---------------------------------------------------------------------

    def depths(self) -> list[int]:
        """Depth of every live viewer attached to the tree (its chain reaches the root)."""
        out = []
        for peer in self.live:
            if peer != self.root and self.reaches_root(peer):
                out.append(len(self.cores[peer].path))
        return out

    def reaches_root(self, peer: PeerId) -> bool:
        """True if following live parents (that count ``peer`` as a child) reaches the root."""
        seen = set()
        node = peer
        while node != self.root:
            parent = self.cores[node].parent
            if (parent is None or parent not in self.live or node in seen
                    or node not in self.cores[parent].children):
                return False
            seen.add(node)
            node = parent
        return True

    def _result(self) -> StreamSimResult:
        cfg = self.config
        end = self.window_end
        honest = [p for p in self.live if p != self.root and not self.free_rider[self.index[p]]]
        whole = [p for p in honest if self.joined_at[self.index[p]] <= self.window_start]
        need = cfg.served_share * self.produced
        served = sum(1 for p in whole if self.received[self.index[p]] >= need)
        stalls = []
        for p in whole:
            i = self.index[p]
            tail = end - self.last_arrival[i]
            stalls.append(self.stall[i] + max(0.0, tail - cfg.stall_gap))
        stalls.sort()
        newcomers = [p for p in honest if self.joined_at[self.index[p]] > self.window_start]
        join_times = sorted(self.first_chunk[self.index[p]] - self.joined_at[self.index[p]]
                            for p in newcomers)
        depths = sorted(self.depths())
        total = sum(self.delay_bins)

        def delay_quantile(q: float) -> float:
            target = q * total
            running = 0
            for ms, n in enumerate(self.delay_bins):
                running += n
                if running >= target and n:
                    return (ms + 1) / 1000
            return 0.0

        relays = [p for p in honest if self.slots[self.index[p]] > 0]
        used = sorted(self.uploads[self.index[p]] / max(1, self.produced) for p in relays)
        slot_total = sum(self.slots[self.index[p]] for p in relays)
        riders = [p for p in self.ids if self.free_rider[self.index[p]]]
        removals = sorted(self.removal_times)
        # A repair still under way at the end counts with the time it took so far.
        repairs = sorted([*self.repair_times, *(
            end - at for p in self.live
            if (at := self.lost_parent_at[self.index[p]]) is not None)])
        feeding = [p for p in riders if p in self.live and self.cores[p].children]
        return StreamSimResult(
            config=cfg,
            served=served / len(whole) if whole else 0.0,
            viewers_measured=len(whole),
            delay_p50=delay_quantile(0.5), delay_p99=delay_quantile(0.99),
            delay_max=delay_quantile(1.0),
            delay_by_depth={d: s / n for d, (s, n) in sorted(self.depth_delay.items())},
            depth_mean=sum(depths) / len(depths) if depths else 0.0,
            depth_p99=_percentile([float(d) for d in depths], 0.99),
            depth_max=depths[-1] if depths else 0,
            attached=len(depths) / max(1, len(self.live) - 1),
            stall_mean=sum(stalls) / len(stalls) if stalls else 0.0,
            stall_p99=_percentile(stalls, 0.99),
            upload_mean=sum(used) / len(used) if used else 0.0,
            upload_max=used[-1] if used else 0.0,
            upload_share=sum(used) / slot_total if slot_total else 0.0,
            catch_up=self.catch_up / max(1, self.produced),
            join_p50=_percentile(join_times, 0.5), join_p99=_percentile(join_times, 0.99),
            free_riders=len(riders), free_riders_evicted=len(self.evicted_free_riders),
            free_riders_withholding=len(self.riders_with_child),
            honest_evicted=len(self.evicted_honest),
            free_rider_removals=len(removals),
            free_rider_removal_p50=_percentile(removals, 0.5),
            free_rider_removal_p99=_percentile(removals, 0.99),
            free_rider_removal_max=removals[-1] if removals else 0.0,
            free_riders_with_children=len(feeding),
            repairs=len(repairs), repair_p50=_percentile(repairs, 0.5),
            repair_p99=_percentile(repairs, 0.99),
            repair_max=repairs[-1] if repairs else 0.0,
            chunks=self.produced, events=self.loop.events_run)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSimResult:
    config: StreamSimConfig
    #: Share of honest viewers present for the whole window that were served.
    served: float
    viewers_measured: int
    #: Seconds from the broadcaster to a viewer, over all chunk arrivals.
    delay_p50: float
    delay_p99: float
    delay_max: float
    #: Mean delay (seconds) per tree depth.
    delay_by_depth: dict[int, float]
    depth_mean: float
    depth_p99: float
    depth_max: int
    #: Share of live viewers attached to the tree at the end.
    attached: float
    #: Seconds of stall per viewer over the window.
    stall_mean: float
    stall_p99: float
    #: Streams uploaded per relaying peer (chunks sent / chunks made).
    upload_mean: float
    upload_max: float
    #: Uploads used / slots declared, over honest relaying peers.
    upload_share: float
    #: Catch-up chunks sent (backfills and their relays, not in ``upload_*``),
    #: over all peers, per chunk made: the cost of repairing without loss.
    catch_up: float
    #: Seconds from a newcomer's join to its first chunk.
    join_p50: float
    join_p99: float
    free_riders: int
    free_riders_evicted: int
    #: Free-riders that held a child for a stall timeout while chunks came (the
    #: ones to remove).
    free_riders_withholding: int
    honest_evicted: int
    #: Evictions of free-riders that had adopted a child, and seconds from its
    #: first child (since its previous eviction) to the eviction.
    free_rider_removals: int
    free_rider_removal_p50: float
    free_rider_removal_p99: float
    free_rider_removal_max: float
    #: Live free-riders with children at the end (not yet removed).
    free_riders_with_children: int
    #: Time to reparent: seconds from an honest viewer losing its parent (a
    #: crash, a stall, a ``Reparent``, a cycle) to its next adoption, over the
    #: repairs that began in the window.
    repairs: int
    repair_p50: float
    repair_p99: float
    repair_max: float
    chunks: int
    events: int

    def summary(self) -> dict[str, object]:
        def r(x: float) -> float:
            return round(x, 4)

        return {
            "served": r(self.served), "viewers_measured": self.viewers_measured,
            "delay_p50": r(self.delay_p50), "delay_p99": r(self.delay_p99),
            "delay_max": r(self.delay_max),
            "delay_by_depth": {str(d): r(v) for d, v in self.delay_by_depth.items()},
            "depth_mean": r(self.depth_mean), "depth_p99": r(self.depth_p99),
            "depth_max": self.depth_max, "attached": r(self.attached),
            "stall_mean": r(self.stall_mean), "stall_p99": r(self.stall_p99),
            "upload_mean": r(self.upload_mean), "upload_max": r(self.upload_max),
            "upload_share": r(self.upload_share), "catch_up": r(self.catch_up),
            "join_p50": r(self.join_p50), "join_p99": r(self.join_p99),
            "free_riders": self.free_riders, "free_riders_evicted": self.free_riders_evicted,
            "free_riders_withholding": self.free_riders_withholding,
            "honest_evicted": self.honest_evicted,
            "free_rider_removals": self.free_rider_removals,
            "free_rider_removal_p50": r(self.free_rider_removal_p50),
            "free_rider_removal_p99": r(self.free_rider_removal_p99),
            "free_rider_removal_max": r(self.free_rider_removal_max),
            "free_riders_with_children": self.free_riders_with_children,
            "repairs": self.repairs, "repair_p50": r(self.repair_p50),
            "repair_p99": r(self.repair_p99), "repair_max": r(self.repair_max),
            "chunks": self.chunks, "events": self.events,
        }


def simulate(config: StreamSimConfig, progress: Progress | None = None) -> StreamSimResult:
    """Run one stream simulation scenario."""
    return StreamSimulation(config).run(progress)


def simulate_pair(config: StreamSimConfig,
                  progress: Progress | None = None) -> tuple[StreamSimResult, StreamSimResult]:
    """The scenario with capacity ranking, then the same seed with a random tree."""
    ranked = simulate(config, progress)
    baseline = simulate(replace(config, tree=replace(config.tree, ranking=False)), progress)
    return ranked, baseline
