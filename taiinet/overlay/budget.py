# taiinet: sans-io core
"""Per-neighbour budgets: token buckets and offences, pure.

Theory of operation
-------------------
Every message a neighbour sends costs the receiver something (a decode, a
table entry, a 60 KB answer).  ``RateBudgets`` gives each neighbour one
token bucket per *kind* of cost (``rate`` tokens a second, holding at most
``burst``, starting full); an input is admitted when every bucket it
charges holds enough, and then takes its tokens from each (all or nothing).
An input over budget is dropped and is an *offence*; the caller may count a
worse fault (an invalid document) as several.  Offences are taken from one
more bucket per neighbour: a neighbour that empties it is disconnected, and
what was left of it is spent, so one that comes back offends once and is
gone.  A neighbour that exceeds a budget now and then (a burst) loses those
inputs only; one that keeps exceeding it is dropped.

Budgets are kept by peer id, at most ``MAX_TRACKED_PEERS`` (least recently
active forgotten), and survive a disconnection, so a peer that reconnects at
once does not start with full buckets.

``LinkBudgets`` is the overlay's use of it: per neighbour, the link
messages and bytes it sends (``admit_frame``; a batch counts each message
inside, a ``Ping`` too), the ``Graft``s it sends and the payload bytes they
make us send back, and its ``IHave``s (``admit_control``).  The pubsub
router budgets documents and adverts with the same machinery
(``taiinet.pubsub.budget``).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from taiinet.overlay.errors import OverlayUsageError
from taiinet.overlay.messages import MAX_PAYLOAD_SIZE, Graft, IHave

#: Neighbours whose buckets are remembered (least recently active forgotten first).
MAX_TRACKED_PEERS = 1024


class TokenBucket:
    """``rate`` tokens a second, at most ``burst``; starts full."""

    __slots__ = ("burst", "level", "rate", "updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.level = burst
        self.updated = now

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.burst, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def has(self, amount: float, now: float) -> bool:
        self.refill(now)
        return self.level >= amount

    def take(self, amount: float, now: float) -> bool:
        """Take ``amount`` tokens if there are that many; False (and nothing taken) if not."""
        if not self.has(amount, now):
            return False
        self.level -= amount
        return True


@dataclass(frozen=True, slots=True)
class Rate:
    """One bucket's parameters: ``per_second`` tokens a second, at most ``burst``."""

    per_second: float
    burst: float


class Verdict(enum.Enum):
    """What to do with an input charged to a neighbour's budget."""

    ADMIT = "admit"
    DROP = "drop"
    DISCONNECT = "disconnect"


class RateBudgets:
    """The buckets of every neighbour, one per ``rates`` entry, and its offences.

    ``admit(peer, now, (kind, amount), ...)`` charges the buckets with those
    indexes in ``rates``; ``offend`` counts offences directly.
    """

    __slots__ = ("_offences", "_peers", "_rates")

    def __init__(self, rates: Sequence[Rate], offences: Rate) -> None:
        self._rates = tuple(rates)
        self._offences = offences
        self._peers: OrderedDict[str, tuple[list[TokenBucket], TokenBucket]] = OrderedDict()

    def admit(self, peer: str, now: float, *charges: tuple[int, float]) -> Verdict:
        """Charge ``peer``'s buckets (all or nothing); over budget is one offence."""
        buckets, _offences = self._budget(peer, now)
        for kind, amount in charges:
            if not buckets[kind].has(amount, now):
                return self.offend(peer, 1, now)
        for kind, amount in charges:
            buckets[kind].level -= amount
        return Verdict.ADMIT

    def admit_two(self, peer: str, now: float, kind: int, amount: float, other: int,
                  other_amount: float) -> Verdict:
        """``admit(peer, now, (kind, amount), (other, other_amount))``, without the
        argument tuples (a document from a neighbour is charged twice, every time)."""
        buckets, _offences = self._budget(peer, now)
        first, second = buckets[kind], buckets[other]
        # ``first.has(amount, now) and second.has(other_amount, now)``, one call less each.
        first.refill(now)
        if first.level >= amount:
            second.refill(now)
            if second.level >= other_amount:
                first.level -= amount
                second.level -= other_amount
                return Verdict.ADMIT
        return self.offend(peer, 1, now)

    def offend(self, peer: str, offences: float, now: float) -> Verdict:
        """``peer`` broke a budget or the protocol (``offences`` of them): drop or disconnect."""
        _buckets, bucket = self._budget(peer, now)
        if bucket.take(offences, now):
            return Verdict.DROP
        bucket.level = 0.0  # what was left is spent
        return Verdict.DISCONNECT

    def __len__(self) -> int:
        return len(self._peers)

    def _budget(self, peer: str, now: float) -> tuple[list[TokenBucket], TokenBucket]:
        peers = self._peers
        budget = peers.get(peer)
        if budget is None:
            budget = peers[peer] = ([TokenBucket(r.per_second, r.burst, now) for r in self._rates],
                                    TokenBucket(self._offences.per_second, self._offences.burst,
                                                now))
            if len(peers) > MAX_TRACKED_PEERS:
                peers.popitem(last=False)
        else:
            peers.move_to_end(peer)
        return budget


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkBudgetConfig:
    """What one overlay neighbour may send (every bound of ``LinkBudgets``).

    The defaults are several times what a neighbour sends in the pubsub
    benchmark (~130 documents/s, each a ``Gossip`` or an ``IHave`` per link,
    in batches).  Over budget, the input is dropped and is one offence.
    """

    #: Link messages per second, and in one burst: every overlay or pubsub
    #: message, ``Ping`` and ``Pong`` counts, each message of a batch
    #: (an empty batch counts one).
    messages_per_second: float = 2000.0
    message_burst: float = 4000.0
    #: Link frame bytes per second, and in one burst.
    bytes_per_second: float = 4 * 1024 * 1024
    byte_burst: float = 16 * 1024 * 1024
    #: ``Graft``s per second and in one burst, and the payload bytes their
    #: answers (``Gossip``) may cost per second and in one burst: Plumtree's
    #: repair of a lazy link.  The pubsub tree router answers no ``Graft``; its
    #: pushes have their own budget (``taiinet.pubsub.budget.PeerBudgetConfig``).
    grafts_per_second: float = 500.0
    graft_burst: float = 1000.0
    graft_bytes_per_second: float = 2 * 1024 * 1024
    graft_byte_burst: float = 8 * 1024 * 1024
    #: ``IHave``s per second, and in one burst.
    ihaves_per_second: float = 1000.0
    ihave_burst: float = 2000.0
    #: Offences forgiven per second, and how many a neighbour may have in
    #: hand before it is disconnected (``CloseLink(failed=True)``).
    offences_per_second: float = 1.0
    offence_burst: float = 50.0

    def __post_init__(self) -> None:
        rates = (self.messages_per_second, self.bytes_per_second, self.grafts_per_second,
                 self.graft_bytes_per_second, self.ihaves_per_second, self.offences_per_second)
        if min(rates) <= 0:
            raise OverlayUsageError("link budget rates must be positive")
        if min(self.message_burst, self.graft_burst, self.ihave_burst, self.offence_burst) < 1:
            raise OverlayUsageError("link budget bursts must be at least 1")
        if min(self.byte_burst, self.graft_byte_burst) < MAX_PAYLOAD_SIZE:
            raise OverlayUsageError(
                f"byte bursts must admit the largest payload ({MAX_PAYLOAD_SIZE} bytes)")


_MESSAGES, _BYTES, _GRAFTS, _GRAFT_BYTES, _IHAVES = range(5)


@dataclass(slots=True)
class LinkBudgetStats:
    """Counters of the overlay's budgets (they only grow)."""

    #: Link frames dropped because their sender was over its message or byte budget.
    frames_dropped: int = 0
    grafts_dropped: int = 0
    ihaves_dropped: int = 0
    #: Neighbours disconnected for offences.
    disconnected: int = 0


class LinkBudgets:
    """Per-neighbour budgets of link frames, ``Graft``s and ``IHave``s."""

    __slots__ = ("_budgets", "config", "stats")

    def __init__(self, config: LinkBudgetConfig | None = None) -> None:
        self.config = config = config or LinkBudgetConfig()
        self._budgets = RateBudgets(
            (Rate(config.messages_per_second, config.message_burst),
             Rate(config.bytes_per_second, config.byte_burst),
             Rate(config.grafts_per_second, config.graft_burst),
             Rate(config.graft_bytes_per_second, config.graft_byte_burst),
             Rate(config.ihaves_per_second, config.ihave_burst)),
            Rate(config.offences_per_second, config.offence_burst))
        self.stats = LinkBudgetStats()

    def admit_frame(self, peer: str, size: int, messages: int, now: float) -> Verdict:
        """A link frame of ``size`` bytes holding ``messages`` messages came from ``peer``."""
        verdict = self._budgets.admit(peer, now, (_MESSAGES, max(1, messages)), (_BYTES, size))
        if verdict is not Verdict.ADMIT:
            self.stats.frames_dropped += 1
        return verdict

    def admit_control(self, peer: str, message: Graft | IHave, answer_bytes: int,
                      now: float) -> Verdict:
        """A ``Graft`` (whose answer costs ``answer_bytes``) or an ``IHave`` from ``peer``."""
        if type(message) is Graft:
            verdict = self._budgets.admit(peer, now, (_GRAFTS, 1), (_GRAFT_BYTES, answer_bytes))
            if verdict is not Verdict.ADMIT:
                self.stats.grafts_dropped += 1
        else:
            verdict = self._budgets.admit(peer, now, (_IHAVES, 1))
            if verdict is not Verdict.ADMIT:
                self.stats.ihaves_dropped += 1
        return verdict

    def __len__(self) -> int:
        return len(self._budgets)
