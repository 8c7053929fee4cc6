"""The attacks of the "Survive strangers" findings, and the runner that measures them.

Each attack is an ``Attack``: a coroutine ``run(world, counts)`` that attacks
the ``World`` (``procs``) until it is cancelled, counting what it did in
``counts``, plus what the runner needs: which processes it aims at (they
must live, and their RSS must stay within ``bound_mib`` of growth), how
many signallers the world needs, and whether it runs before the legitimate
pair starts (attacks that leave stale or forged state behind) or while it
runs.  ``run_attack`` runs one for a given time and returns an ``Outcome``;
the tests (``tests/hostile/``) assert on it, ``bench/hostile.py`` prints it.

Each attack keeps going whatever the victim does: a link the victim closes
is reopened after a short pause, a refused connection is retried, so the
attack lasts as long as the runner says.
"""

from __future__ import annotations

import collections
import random
import secrets
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
import trio_websocket

from taiinet.errors import TaiiNetError
from taiinet.overlay.messages import (
    ForwardJoin,
    IHave,
    Join,
    OverlayMessage,
    Shuffle,
    ShuffleReply,
)
from taiinet.signal.codec import Role
from taiinet.transport.connection import Connection
from taiinet.wire.framing import decode_link_frame
from taiinet.wire.identity import Identity
from taiinet.wire.keepalive import LINK_PROTOCOL, decode_control
from tests.hostile import attacker as a
from tests.hostile.procs import Memory, WindowFigures, World, open_world, sample_memory

Counts = collections.Counter[str]
#: What an attacker step may raise when the victim pushes back (closes, refuses, times out).
PUSHBACK: tuple[type[BaseException], ...] = (
    TaiiNetError, OSError, trio.TooSlowError, trio.BrokenResourceError,
    trio.ClosedResourceError, trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed, AssertionError,
)
#: Seconds a newcomer has to receive its first document during an attack.
NEWCOMER_TIMEOUT = 20.0
#: Seconds between reopening links the victim closed (keeps the attacker's CPU in check).
REOPEN_PAUSE = 0.2


@dataclass(frozen=True, slots=True, kw_only=True)
class Attack:
    name: str
    #: What it did to the old code (the finding).
    finding: str
    run: Callable[[World, Counts], Awaitable[None]]
    #: Processes (``World`` child names) that must live and stay within the bound.
    targets: tuple[str, ...] = ("signaller0",)
    #: Largest RSS growth (MiB) of each target allowed by the tests.
    bound_mib: float = 60.0
    signallers: int = 1
    #: Runs before the legitimate pair starts (the pair must then get going).
    before_pair: bool = False
    #: Longest time (s) without a delivery the tests allow during the attack.
    max_gap: float = 5.0
    #: Smallest share of the documents published during the attack that must arrive.
    min_delivered: float = 0.8
    #: Largest median latency (s) of those documents the tests allow.
    max_p50: float = 2.0
    #: Attacks before the pair: seconds from starting the pair (sub, then pub) to
    #: its first delivery the tests allow (unattacked: about 2 s).
    first_delivery: float = 10.0
    #: A fresh ``sub`` starts this many seconds into the attack and must receive a
    #: document while the attack goes on (None: no newcomer); the attack lasts
    #: until that is decided, ``NEWCOMER_TIMEOUT`` at most, if that is longer.
    newcomer_after: float | None = None


async def _forever(step: Callable[[], Awaitable[None]], counts: Counts,
                   pause: float = REOPEN_PAUSE) -> None:
    """Run ``step`` again and again; pushback from the victim is counted, not raised."""
    while True:
        try:
            await step()
        except BaseException as exc:
            _count_pushback(exc, counts)
        await trio.sleep(pause)


def _count_pushback(exc: BaseException, counts: Counts) -> None:
    """Count ``exc`` (or each error of a group) as pushback; re-raise anything else.

    A group that also holds ``trio.Cancelled`` (the runner ended the attack while
    the victim was closing a link) re-raises only its cancellations.
    """
    if isinstance(exc, BaseExceptionGroup):
        cancelled, rest = exc.split(trio.Cancelled)
        if rest is not None:
            _count_pushback_leaves(rest, counts)
        if cancelled is not None:
            raise cancelled
        return
    if isinstance(exc, trio.Cancelled):
        raise exc
    _count_pushback_leaves(exc, counts)


def _count_pushback_leaves(exc: BaseException, counts: Counts) -> None:
    leaves = _leaves(exc)
    if not all(isinstance(leaf, PUSHBACK) for leaf in leaves):
        raise exc
    for leaf in leaves:
        counts[f"pushback:{type(leaf).__name__}"] += 1


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


#: The victim node's WebSocket URL per world, learnt before the attack window opens.
_NODE_URLS: weakref.WeakKeyDictionary[World, str] = weakref.WeakKeyDictionary()


async def _node_url(world: World) -> str:
    """The victim node's URL (learnt once per world: setup is not attack time)."""
    known = _NODE_URLS.get(world)
    if known is not None:
        return known
    with trio.fail_after(30):
        while True:
            try:
                url = await a.learn_node_url(world.signaller.url, world.sub_peer_id)
            except PUSHBACK:
                await trio.sleep(0.5)
            else:
                _NODE_URLS[world] = url
                return url


async def _serve_pings(connection: Connection) -> None:
    """Answer the victim's keep-alive pings (so it keeps us) and drop everything else."""
    try:
        while True:
            items = decode_link_frame(await connection.receive())
            if any(protocol == LINK_PROTOCOL and decode_control(body)[0] == "ping"
                   for protocol, body in items):
                await connection.send(a.pong_frame())
    except Exception:
        return


# -- 1. relay to a peer id that is not one ------------------------------------

async def bad_relay_target(world: World, counts: Counts) -> None:
    identity = Identity.generate()

    async def step() -> None:
        async with a.signal_link(world.signaller.url, identity) as link, \
                trio.open_nursery() as nursery:
            nursery.start_soon(a.drain, link)
            counts["links"] += 1
            for target in a.BAD_PEER_IDS:
                await link.send(a.relay_frame(identity, target))
                counts["relays"] += 1
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    await _forever(step, counts)


# -- 2. ForwardJoin naming a peer id that is not one ----------------------------

async def forward_join_bad_peer(world: World, counts: Counts) -> None:
    url = await _node_url(world)

    async def step() -> None:
        async with a.secure_connect(url, expected_peer_id=world.sub_peer_id) as link, \
                trio.open_nursery() as nursery:
            nursery.start_soon(a.drain, link)
            counts["links"] += 1
            bad = list(a.BAD_PEER_IDS)
            messages: list[OverlayMessage] = [ForwardJoin(peer=p, ttl=0) for p in bad]
            messages += [Shuffle(origin=bad[0], ttl=0, peers=tuple(bad)),
                         ShuffleReply(peers=tuple(bad))]
            for message in messages:
                await link.send(a.overlay_frame(message))
                counts["frames"] += 1
                await trio.sleep(0.05)
            await trio.sleep(0.5)
            nursery.cancel_scope.cancel()

    await _forever(step, counts)


# -- 3. WebSocket upgrade, then a TCP reset ---------------------------------------

async def upgrade_rst(world: World, counts: Counts) -> None:
    urls = [world.signaller.url, await _node_url(world)]
    number = 0

    async def step() -> None:
        nonlocal number
        for url in urls:
            number += 1
            stream = await a.raw_upgrade(url, wait_answer=number % 2 == 0)
            a.rst_close(stream)
            counts["resets"] += 1

    await _forever(step, counts, pause=0.05)


# -- 4. upgraded WebSockets that never start Noise, keeping every slot ----------

#: Connections the slot attack holds: more than a listener's 1,024 slots.
SLOT_CONNECTIONS = 1100


async def slot_exhaustion(world: World, counts: Counts) -> None:
    async def hold() -> None:
        stream = await a.raw_upgrade(world.signaller.url)
        counts["upgraded"] += 1
        try:
            while await stream.receive_some(4096):
                pass  # a listener that answers 503 or times us out closes the stream
        finally:
            a.rst_close(stream)
        counts["closed_by_victim"] += 1

    async with trio.open_nursery() as nursery:
        for _ in range(SLOT_CONNECTIONS):
            nursery.start_soon(_forever, hold, counts, 0.5)
            await trio.sleep(0.002)


# -- 5. partial frames held on many links -----------------------------------------

#: Links the partial-frame attack holds (the finding: 150-180) and addresses it spreads over.
PARTIAL_LINKS = 150
PARTIAL_SOURCES = 16
#: The frame announced: the default maximum, 1 MiB; all of it but one byte is sent.
PARTIAL_FRAME = 1 << 20


def partial_frames(links: int = PARTIAL_LINKS) -> Callable[[World, Counts], Awaitable[None]]:
    async def run(world: World, counts: Counts) -> None:
        stream = a.frame_prefix(PARTIAL_FRAME) + secrets.token_bytes(PARTIAL_FRAME - 1)

        async def hold(index: int) -> None:
            source = a.source_address(index % PARTIAL_SOURCES)
            async with a.signal_link(world.signaller.url, source=source,
                                     register=False) as link:
                counts["links"] += 1
                await a.send_stream_bytes(link, stream)
                counts["partial_mib"] += 1
                await a.drain(link)
            counts["closed_by_victim"] += 1

        async with trio.open_nursery() as nursery:
            for index in range(links):
                nursery.start_soon(_forever, lambda i=index: hold(i), counts, 1.0)
                await trio.sleep(0.01)

    return run


# -- 6. valid documents that match nothing, as fast as the link takes them --------

def document_flood(document: object) -> Callable[[World, Counts], Awaitable[None]]:
    value = a.document_value(document)

    async def run(world: World, counts: Counts) -> None:
        url = await _node_url(world)
        identity = Identity.generate()

        async def step() -> None:
            async with a.secure_connect(url, identity,
                                        expected_peer_id=world.sub_peer_id) as link, \
                    trio.open_nursery() as nursery:
                nursery.start_soon(_serve_pings, link)
                await link.send(a.overlay_frame(Join()))
                counts["links"] += 1
                while True:
                    await link.send(a.gossip_frame(a.document_envelope(identity, value),
                                                   origin=identity.peer_id))
                    counts["documents"] += 1
                    await trio.sleep(0)

        await _forever(step, counts)

    return run


#: A 60,000-character string: a ~60 KB valid document the legit query never matches.
BIG_DOCUMENT = {"junk": "x" * 60_000}
#: 14,000 empty maps: ~56 KB on the wire, many small objects once decoded.
EMPTY_MAPS_DOCUMENT = {"junk": [{} for _ in range(14_000)]}


# -- 7. eclipse: Sybils that re-join the victim over and over ---------------------

EclipseStay = tuple[float, float]


def eclipse(sybils: int = 12, stay: EclipseStay = (3.0, 8.0),
            ) -> Callable[[World, Counts], Awaitable[None]]:
    async def run(world: World, counts: Counts) -> None:
        url = await _node_url(world)
        rng = random.Random(7)

        async def sybil(identity: Identity) -> None:
            # Registered, so the signaller hands it out as a contact; it never
            # answers an offer, so whoever picks it waits in vain.
            async with a.signal_link(world.signaller.url, identity) as home, \
                    trio.open_nursery() as nursery:
                nursery.start_soon(a.drain, home)

                async def join() -> None:
                    async with a.secure_connect(url, identity,
                                                expected_peer_id=world.sub_peer_id) as link, \
                            trio.open_nursery() as inner:
                        inner.start_soon(_serve_pings, link)
                        await link.send(a.overlay_frame(Join()))
                        counts["joins"] += 1
                        await trio.sleep(rng.uniform(*stay))
                        inner.cancel_scope.cancel()

                await _forever(join, counts, pause=0.1)

        async with trio.open_nursery() as nursery:
            for _ in range(sybils):
                nursery.start_soon(_forever, lambda: sybil(Identity.generate()), counts)

    return run


# -- 8. membership requests from a non-neighbour, ~80 batches a second ------------

FLOOD_BATCHES_PER_SECOND = 80


async def membership_flood(world: World, counts: Counts) -> None:
    url = await _node_url(world)
    pool = a.fake_peer_ids(400)
    rng = random.Random(8)

    async def step() -> None:
        async with a.secure_connect(url, expected_peer_id=world.sub_peer_id) as link, \
                trio.open_nursery() as nursery:
            nursery.start_soon(a.drain, link)
            counts["links"] += 1
            while True:
                messages: list[OverlayMessage] = [
                    ForwardJoin(peer=rng.choice(pool), ttl=rng.randrange(7)) for _ in range(4)]
                messages.append(Shuffle(origin=rng.choice(pool), ttl=rng.randrange(7),
                                        peers=tuple(rng.sample(pool, 8))))
                await link.send(a.batch_frame(messages))
                counts["batches"] += 1
                await trio.sleep(1 / FLOOD_BATCHES_PER_SECOND)

    await _forever(step, counts)


# -- 9. stale and forged state in the signallers ------------------------------------

#: Dead peers left behind: with this many, a node picking contacts at random
#: almost never finds the one live peer on the unfixed code.
STALE_PEERS = 200
#: Registrations in flight at once.
STALE_PARALLEL = 20


async def stale_contacts(world: World, counts: Counts) -> None:
    """Peers that register and vanish (reset, no goodbye): their records stay behind."""
    async def one(index: int) -> None:
        source = a.source_address(index % PARTIAL_SOURCES)
        async with a.signal_link(world.signaller.url, source=source) as link:
            counts["registered"] += 1
            a.rst_close(link._channel._stream)  # type: ignore[attr-defined]

    limiter = trio.CapacityLimiter(STALE_PARALLEL)

    async def limited(index: int) -> None:
        async with limiter:
            await _once(one, index, counts)

    async with trio.open_nursery() as nursery:
        for index in range(STALE_PEERS):
            nursery.start_soon(limited, index)
    await trio.sleep_forever()


#: Forged records stored on each signaller, and Sybil signallers that flood lookups.
POLLUTION_RECORDS = 600
LOOKUP_SYBILS = 24


async def dht_pollution(world: World, counts: Counts) -> None:
    """STOREs of records of identities nobody runs, and Sybil signallers flooding
    FIND_NODE.  Every address they give (the Sybils' listen URLs, the forged
    records' homes) is a tarpit that accepts TCP connections and never answers,
    so each lookup step or relay that believes them waits for its timeout."""
    async with trio.open_nursery() as nursery:
        tarpit = await nursery.start(a.serve_tarpit)

        async def polluter(target_url: str) -> None:
            async with a.signal_link(target_url, role=Role.SIGNALLER,
                                     listen_url=tarpit) as link, trio.open_nursery() as inner:
                inner.start_soon(a.drain, link)
                for number in range(POLLUTION_RECORDS):
                    fake = Identity.generate()
                    seq = a.unix_ms()
                    record = a.record_envelope(fake, home=Identity.generate().peer_id,
                                               home_url=tarpit, seq=seq)
                    await link.send(a.store_frame(tarpit, record, fake.peer_id, seq,
                                                  number + 1))
                    counts["stores"] += 1
                inner.cancel_scope.cancel()

        async def sybil(index: int) -> None:
            target = world.signallers[index % len(world.signallers)].url
            async with a.signal_link(target, role=Role.SIGNALLER, listen_url=tarpit,
                                     source=a.source_address(index)) as link, \
                    trio.open_nursery() as inner:
                inner.start_soon(a.drain, link)
                for number in range(200):
                    await link.send(a.find_node_frame(tarpit, number + 1))
                    counts["find_nodes"] += 1
                await trio.sleep_forever()

        for signaller in world.signallers:
            nursery.start_soon(_once, polluter, signaller.url, counts)
        for index in range(LOOKUP_SYBILS):
            nursery.start_soon(_once, sybil, index, counts)


async def _once(fn: Callable[..., Awaitable[None]], arg: object, counts: Counts) -> None:
    try:
        await fn(arg)
    except BaseException as exc:
        _count_pushback(exc, counts)


# -- the held-up checks: cheap, each a short burst ----------------------------------

async def ihave_flood(world: World, counts: Counts) -> None:
    url = await _node_url(world)

    async def step() -> None:
        async with a.secure_connect(url, expected_peer_id=world.sub_peer_id) as link, \
                trio.open_nursery() as nursery:
            nursery.start_soon(_serve_pings, link)
            await link.send(a.overlay_frame(Join()))
            while True:
                await link.send(a.batch_frame([
                    IHave(message_id=secrets.token_bytes(32), hops=1) for _ in range(256)]))
                counts["ihaves"] += 256
                await trio.sleep(0.01)

    await _forever(step, counts)


ATTACKS: dict[str, Attack] = {attack.name: attack for attack in (
    Attack(name="bad_relay_target", run=bad_relay_target,
           finding="relay to a peer id with a non-base58 '0': signaller exit 1"),
    Attack(name="forward_join_bad_peer", run=forward_join_bad_peer,
           targets=("signaller0", "sub"),
           finding="ForwardJoin(peer='0OIl-not-a-peer', ttl=0) to a node: its signaller died"),
    Attack(name="upgrade_rst", run=upgrade_rst, targets=("signaller0", "sub"),
           finding="upgrade request then RST: ENOTCONN killed signallers (10) and nodes (6)"),
    Attack(name="slot_exhaustion", run=slot_exhaustion, newcomer_after=3.0,
           finding="1,100 upgraded WebSockets without Noise: a new sub could not register"),
    Attack(name="partial_frames", run=partial_frames(), bound_mib=80.0,
           finding="a 1 MiB partial frame per link, 150-180 links: signaller 76 -> ~400 MB"),
    Attack(name="document_flood", run=document_flood(BIG_DOCUMENT), targets=("sub",),
           finding="60 KB valid documents matching nothing: +593 MB in 45 s"),
    Attack(name="empty_maps_flood", run=document_flood(EMPTY_MAPS_DOCUMENT), targets=("sub",),
           finding="56 KB documents of 14,000 empty maps: +783 MB with 762 documents"),
    Attack(name="eclipse", run=eclipse(), targets=("sub",), min_delivered=0.9,
           finding="12 Sybils re-joining every 3-8 s: node cut off for 41.9 s"),
    Attack(name="membership_flood", run=membership_flood, targets=("sub",), max_gap=3.0,
           min_delivered=0.9, max_p50=0.5,
           finding="ForwardJoin/Shuffle at ~80 batches/s from a non-neighbour: 10 s without "
                   "delivery"),
    Attack(name="stale_contacts", run=stale_contacts, before_pair=True,
           finding="dead peers' records: a fresh pair delivered nothing, pub exited 0"),
    Attack(name="dht_pollution", run=dht_pollution, signallers=2, before_pair=True,
           first_delivery=30.0,
           targets=("signaller0", "signaller1"),
           finding="forged STOREs and Sybil lookup floods broke cross-signaller joins"),
    Attack(name="ihave_flood", run=ihave_flood, targets=("sub",),
           finding="(held up) IHave floods"),
)}


@dataclass
class Outcome:
    attack: str
    seconds: float
    alive: dict[str, bool]
    memory: dict[str, Memory]
    figures: WindowFigures
    #: Documents published after the attack arrived (within the recovery time).
    recovered: bool
    #: The newcomer received a document during the attack (None: no newcomer).
    newcomer: bool | None
    #: Seconds from starting the pair to its first delivery (for attacks before
    #: the pair, after the attack; for the others, before it).
    first_delivery: float | None = None
    #: The attack ran before the pair started.
    before_pair: bool = False
    counts: Counts = field(default_factory=collections.Counter)
    description: str = ""

    def dead(self) -> list[str]:
        return [name for name, alive in self.alive.items() if not alive]


async def run_attack(attack: Attack | None, seconds: float, *, recovery: float = 20.0,
                     publish_interval: float = 0.1, observe: float = 0.0) -> Outcome:
    """Run ``attack`` (None: the baseline) for ``seconds`` against a fresh world.

    ``seconds`` is a minimum: an attack with a newcomer lasts until the newcomer
    got in or ``NEWCOMER_TIMEOUT`` passed.  An attack before the pair: the
    delivery figures cover the pair's first ``observe`` seconds (at least until
    its first delivery).
    """
    spec = attack or Attack(name="baseline", finding="", run=_idle,
                            targets=("signaller0", "sub"))
    counts: Counts = collections.Counter()
    memory: dict[str, Memory] = {}
    async with open_world(signallers=spec.signallers, pair=not spec.before_pair,
                          publish_interval=publish_interval) as world, \
            trio.open_nursery() as nursery:
        targets = [world.child(name) for name in spec.targets if name != "sub"]
        newcomer: bool | None = None
        first_delivery = world.first_delivery
        if spec.before_pair:
            nursery.start_soon(sample_memory, targets, memory)
            with trio.move_on_after(seconds):
                await spec.run(world, counts)
            start = trio.current_time()
            await world.start_pair(0, -1)
            recovered = await world.delivery.wait_sent_after(start, recovery)
            first_delivery = trio.current_time() - start if recovered else None
            await trio.sleep_until(start + observe)
            end = trio.current_time()
        else:
            if "sub" in spec.targets:
                targets.append(world.child("sub"))
            nursery.start_soon(sample_memory, targets, memory)
            await _node_url(world)  # learnt before the window: setup is not attack time
            await trio.sleep(0.3)  # a first sample before the attack
            start = trio.current_time()
            async with trio.open_nursery() as attacking:
                attacking.start_soon(spec.run, world, counts)
                if spec.newcomer_after is not None:
                    await trio.sleep(spec.newcomer_after)
                    newcomer = await _newcomer(world, NEWCOMER_TIMEOUT)
                    counts["newcomer_delivered"] = int(newcomer)
                await trio.sleep_until(start + seconds)
                attacking.cancel_scope.cancel()
            end = trio.current_time()
            dead = [child for child in targets if not child.alive]
            recovered = not dead and await world.delivery.wait_sent_after(end, recovery)
        await trio.sleep(0.3)  # a last sample after the attack
        outcome = Outcome(
            attack=spec.name, seconds=seconds,
            alive={child.name: child.alive for child in targets},
            memory=dict(memory), figures=world.delivery.window(start, end),
            recovered=recovered, newcomer=newcomer, first_delivery=first_delivery,
            before_pair=spec.before_pair,
            counts=counts,
            description=world.describe())
        nursery.cancel_scope.cancel()
    return outcome


async def _newcomer(world: World, timeout: float) -> bool:
    """Start a fresh ``sub`` on the first signaller; True once it receives a document."""
    got = trio.Event()

    def on_line(line: str) -> None:
        got.set()

    with trio.move_on_after(max(timeout, 1.0)):
        try:
            await world.start_sub(world.signaller.url, name="newcomer", on_stdout=on_line)
        except AssertionError:
            return False
        await got.wait()
        return True
    return False


async def _idle(world: World, counts: Counts) -> None:
    await trio.sleep_forever()


def describe_counts(counts: Counts) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(counts.items()))

