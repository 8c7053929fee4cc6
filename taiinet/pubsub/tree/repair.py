# taiinet: sans-io core
"""The repair: when a neighbour's side of invariant (I) widens, restore it, paced.

A neighbour's side of (I) is its *signature*: the link's epoch, whether it
is a tree link, whether it is the parent, and its filter keys.  After every
input the router compares each neighbour's signature with the one (I) was
last restored for; if it widened (new link, link turned tree, neighbour
became parent, or a filter not in the old set), the retained documents it
now must hold are *owed* to it (``Forwarding.owed``, oldest first).  A
narrowing makes the documents pushed to the neighbour that it no longer
must hold count as not held (``Forwarding.narrowed``): it may have dropped
them.  The repair never reshapes the tree.

Owed documents are pushed within a budget per neighbour (a token bucket of
``restore_rate`` documents a second, holding at most ``restore_burst``) and
restores push each document to each neighbour at most ``max_repushes``
times: a new link may be owed thousands of documents, and pushing them in one
step overflowed the link's send queue (the link was dropped as too slow, a
new one came up and was owed them all again) and the receiver's document
budget; and while links flap (a departed root's distance counting up, a
crash reshaping the tree) every narrowing and widening of the same link
pushed everything again.  What the budget leaves owed is pushed on ``RestoreTimer`` ticks
(``pending``), each document checked again then (it may have expired, or
the neighbour may have got it meanwhile).  Both bounds are this node's
policy: a peer sees only documents arriving later, or not at all past the
re-push budget (docs/pubsub.md, sections 7 and 10).

The owed documents go **newest first**: each step takes the newest the
bucket allows and pushes them in the order this node took them (so a
backlog within the burst, a one-shot publisher's above all, still goes out
in order).  What a neighbour whose parent changed lacks is what was in
flight on the tree when it changed, the newest; the older ones it mostly got
from its previous parent.  Pushed oldest first, those came last, up to
backlog / ``restore_rate`` seconds later (20 s for 4,096 documents), after
the retention's count bound had evicted them when it holds less than that
(4,096 documents are 12.8 s at 320 a second): they were lost.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from taiinet.overlay.actions import Send
from taiinet.overlay.budget import TokenBucket
from taiinet.overlay.messages import OverlayMessage
from taiinet.pubsub.tree.forwarding import Forwarding
from taiinet.pubsub.tree.retention import Retained
from taiinet.wire.peer_id import PeerId, plain_key

#: (link epoch, tree link, parent told so, filter keys).
Signature = tuple[int, bool, bool, frozenset[Any]]


def _widened(old: Signature | None, new: Signature) -> bool:
    if old is None or old[0] != new[0]:
        return True
    return (new[1] and not old[1]) or (new[2] and not old[2]) or not new[3] <= old[3]


def _narrowed(old: Signature, new: Signature) -> bool:
    return (old[1] and not new[1]) or (old[2] and not new[2]) or not old[3] <= new[3]


@dataclass(frozen=True, slots=True, kw_only=True)
class RestorePace:
    """How fast one neighbour is pushed the documents a widening owes it.

    ``rate`` documents a second (> 0), at most ``burst`` at once (>= 1); each
    document pushed again to each neighbour by restores at most
    ``max_repushes`` times (>= 1).
    """

    rate: float
    burst: float
    max_repushes: int


@dataclass(slots=True)
class _Owed:
    """What one neighbour is still owed: message ids (oldest first), its bucket."""

    epoch: int
    mids: deque[bytes]
    bucket: TokenBucket


class Repair:
    """Signatures per neighbour, and the restores their widenings call for."""

    __slots__ = ("_owed", "_signatures", "forwarding", "pace", "repaired", "skipped")

    def __init__(self, forwarding: Forwarding, pace: RestorePace) -> None:
        self.forwarding = forwarding
        self.pace = pace
        self._signatures: dict[PeerId, Signature] = {}
        self._owed: dict[PeerId, _Owed] = {}
        #: Documents pushed by restores (not by ordinary forwarding).
        self.repaired = 0
        #: Owed documents not pushed: past their re-push budget for that neighbour.
        self.skipped = 0

    def signature(self, peer: PeerId, epoch: int) -> Signature:
        fwd = self.forwarding
        return (epoch, fwd.tree.is_tree_link(peer),
                peer == fwd.tree.parent and peer in fwd.told, fwd.interest.keys_of(peer))

    @property
    def pending(self) -> bool:
        """Some neighbour is still owed documents (the router ticks ``drain``)."""
        return bool(self._owed)

    def run(self, out: list[Send[OverlayMessage]], now: float) -> None:
        """Owe every neighbour whose signature widened since last time what it now
        must hold, and push it what its budget allows now."""
        signatures = self._signatures
        epochs = self.forwarding.epochs
        for peer in [p for p in signatures if p not in epochs]:
            del signatures[peer]
        for peer in [p for p, owed in self._owed.items() if epochs.get(p) != owed.epoch]:
            del self._owed[peer]
        for peer, epoch in epochs.items():
            new = self.signature(peer, epoch)
            old = signatures.get(peer)
            if old == new:
                continue
            signatures[peer] = new
            if old is not None and old[0] == new[0] and _narrowed(old, new):
                self.forwarding.narrowed(peer)
            if _widened(old, new):
                self._owe(peer, epoch, now)
                self._push_owed(peer, now, out)

    def drain(self, out: list[Send[OverlayMessage]], now: float) -> None:
        """Push every neighbour what its budget allows of what it is owed."""
        for peer in list(self._owed):
            self._push_owed(peer, now, out)

    def _owe(self, peer: PeerId, epoch: int, now: float) -> None:
        mids = deque(self.forwarding.owed(peer))
        owed = self._owed.get(peer)
        if owed is not None and owed.epoch == epoch:
            owed.mids = mids  # the same link: its bucket goes on
        else:
            pace = self.pace
            self._owed[peer] = _Owed(epoch, mids, TokenBucket(pace.rate, pace.burst, now))

    def _push_owed(self, peer: PeerId, now: float, out: list[Send[OverlayMessage]]) -> None:
        owed = self._owed[peer]
        mids, bucket = owed.mids, owed.bucket
        fwd = self.forwarding
        get = fwd.retention.get
        epoch = owed.epoch
        limit = self.pace.max_repushes
        picked: list[tuple[bytes, Retained]] = []
        while mids and bucket.has(1.0, now):
            mid = mids.pop()  # the newest first: see the module docstring
            doc = get(mid)
            if doc is None or doc.held_by(peer, epoch) or not fwd.must_hold(doc, peer):
                continue  # expired, got it meanwhile, or no longer owed
            repushes = fwd.retention.repushes(mid)
            done = repushes.get(peer, 0)
            if done >= limit:
                self.skipped += 1
                continue
            repushes[plain_key(peer)] = done + 1
            bucket.level -= 1.0
            picked.append((mid, doc))
        for mid, doc in reversed(picked):  # one step's pushes in the order taken
            fwd.push(mid, doc, peer, out)
        self.repaired += len(picked)
        if not mids:
            del self._owed[peer]
