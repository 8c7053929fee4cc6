# taiinet: sans-io core
"""Plumtree epidemic broadcast trees (Leitao, Pereira, Rodrigues, SRDS 2007), pure.

Theory of operation
-------------------
Each neighbour is either *eager* (gets full payloads, ``Gossip``) or *lazy*
(gets only ``IHave`` announcements).  New neighbours start eager, so the
first broadcast floods; a node that receives a payload it already has marks
the sender lazy and sends it ``Prune``, which makes the link lazy at both
ends.  The eager links left form a spanning tree, and later broadcasts cost
about one payload per node.  When an announced message does not arrive
within ``ihave_timeout`` (a tree link broke), the node sends ``Graft`` to the
first announcer, which makes that link eager and sends the payload; if it
still does not arrive within ``graft_timeout`` the next announcer is
grafted.  Delivered message ids are kept in a seen-cache bounded in entries
(``seen_cache_size``), to drop duplicates; their payloads, to answer grafts,
in a cache bounded in bytes (``payload_cache_bytes``, oldest evicted first).
A graft for a message whose payload is gone only makes the link eager (the
grafter moves on to its next announcer), and a new neighbour is not
announced messages whose payload is gone.  ``drop_payload`` lets the layer
above drop the payload of a message it forwarded to nobody.

Per-origin trees: every ``Gossip`` names its origin (the broadcasting
node).  One shared tree makes a message from a random source cross it end to
end, about twice the flooding depth; a tree per origin is that origin's tree
of fastest paths.  An origin's first message travels on the default, shared
sets (``eager``/``lazy``); at its second message (while it is still among the
``origins_seen`` last origins) the node gives it sets of its own, with every
neighbour eager, so that message floods and its duplicates prune the
origin's tree, as the very first broadcast does for the default tree.  At
most ``origin_trees`` origins have a tree (least recently used evicted);
``Prune`` and ``Graft`` name the tree they act on ("" = the default one).
``eager`` and ``lazy`` are always the default sets; ``tree(origin)`` gives
the sets used for an origin.

Flood prefix (``flood_prefix`` = H > 0, off by default): a message on the
shared tree is pushed to every neighbour, eager and lazy, for its first H
hops (``Gossip.entry`` = 0), then along the tree from every node it reached
at hop H, each tagging its copies with its ``entry_tag``.  The message enters
the tree at many scattered places at once, so its last delivery hop no
longer depends on where its origin sits in the tree.  Copies that entered at
different places meet on tree links, so a duplicate can no longer mean "this
link closes a cycle": the tree is kept explicitly.  Each node has a parent
(the node that brought it the first message it got while in no tree; it
says so with an empty-id ``Graft``, and the parent takes it as a child); the
tree links are the parent's and the children's.  A duplicate prunes a link
that is not a tree link, or a tree link when it entered the tree where this
node's first copy did (a real cycle); prefix copies never prune, and do not
make a lazy link eager.  When a node loses its parent's link (closed or
pruned) its subtree is cut off: it prunes its children's links (which cut
theirs in turn) and joins again as a leaf, below whichever node brings it the
next message; until then it refuses children (answers their ``Graft`` with
``Prune``), so no tree hangs off a node that is in none.  The hop
optimisation is off on the shared tree (it would swap tree links for one
source's sake).

Neighbours come from the membership layer: ``neighbor_up`` and
``neighbor_down`` (the composite ``Overlay`` wires them to HyParView).

Content-based routing hook: ``forward_filter(message_id, payload, peer)`` is
asked, for each neighbour a message would be pushed or announced to, whether
to forward it there.  The default forwards everywhere (plain broadcast); the
pubsub layer restricts forwarding to interested neighbours.  Grafts are
always answered.

Departures from the paper
-------------------------
* Rounds are counted as hops travelled (1 at the origin's neighbours).
* The optimisation step compares hop counts carried by ``IHave`` (the hops
  the receiver would get the message at) with those of the eager copy; a
  ``Graft`` with an empty message id only makes the link eager.
* A new neighbour is sent ``IHave`` for the messages delivered in the last
  ``announce_window`` seconds, so a message pushed on a link that then turned
  out dead still reaches the part of the tree behind it.
* Per-origin trees (the paper's eager/lazy sets are shared by all sources):
  bounded, started by an origin's second message, which floods.
* ``Gossip``, ``IHave`` and ``Graft`` from a peer that is not a neighbour
  are processed, but do not change the eager/lazy sets.
* The flood prefix, with its explicit parent/child tree (opt-in).
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from collections.abc import Callable

from taiinet.overlay.actions import (
    Action,
    Deliver,
    LazyFlushTimer,
    MissingTimer,
    Send,
    SetTimer,
)
from taiinet.overlay.config import PlumtreeConfig
from taiinet.overlay.errors import OverlayUsageError
from taiinet.overlay.lazy import LazyQueue
from taiinet.overlay.messages import (
    MAX_MESSAGE_ID_LENGTH,
    MAX_PAYLOAD_SIZE,
    BroadcastMessage,
    Gossip,
    Graft,
    IHave,
    Prune,
)
from taiinet.wire.peer_id import PeerId

#: ``forward_filter(message_id, payload, peer) -> bool``: forward to ``peer``?
ForwardFilter = Callable[[bytes, bytes, PeerId], bool]

_PRUNE = Prune()
#: Eager and lazy neighbours of one tree (dicts as insertion-ordered sets).
_Sets = tuple[dict[PeerId, None], dict[PeerId, None]]
#: Seen-cache entry: hops, sender, delivery time, origin, entry tag of the
#: tree region the node got it in, whether that first copy came over a link
#: off the shared tree (flood prefix).  Payloads are kept apart (``_payloads``).
_Seen = tuple[int, PeerId | None, float, str, int, bool]


def _by_hops(announcer: tuple[PeerId, int]) -> int:
    return announcer[1]


class Plumtree:
    """Broadcast state of one node; every input returns the actions to carry out."""

    __slots__ = (
        "_detached",
        "_lazy_queue",
        "_missing",
        "_origins",
        "_parent",
        "_payload_bytes",
        "_payloads",
        "_seen",
        "_tree_links",
        "_trees",
        "config",
        "eager",
        "entry_tag",
        "forward_filter",
        "lazy",
        "peer_id",
        "rng",
    )

    def __init__(self, peer_id: PeerId, rng: random.Random, config: PlumtreeConfig | None = None,
                 forward_filter: ForwardFilter | None = None) -> None:
        self.peer_id = peer_id
        self.rng = rng
        self.config = config or PlumtreeConfig()
        self.forward_filter = forward_filter
        #: This node's tag in ``Gossip.entry`` when a message enters the shared
        #: tree here (8 bytes of the SHA-256 of the peer id: the same on every
        #: node, distinct between nodes).
        self.entry_tag = int.from_bytes(hashlib.sha256(peer_id.encode()).digest()[:8], "big") or 1
        #: Eager and lazy neighbours of the default (shared) tree, used for the
        #: messages of origins without a tree of their own (dicts as
        #: insertion-ordered sets).
        self.eager: dict[PeerId, None] = {}
        self.lazy: dict[PeerId, None] = {}
        #: With a flood prefix: the links of the default sets that are links of
        #: the shared tree (the parent's and the children's), and the parent.
        #: (A dict as an insertion-ordered set: a run is the same in every process.)
        self._tree_links: dict[PeerId, None] = {}
        self._parent: PeerId | None = None
        #: Cut off from the tree and not joined again yet: takes no child.
        self._detached = False
        #: Per-origin trees: origin peer id -> (eager, lazy), least recently used first.
        self._trees: OrderedDict[str, _Sets] = OrderedDict()
        #: Origins seen once (their next message starts a tree), oldest first.
        self._origins: OrderedDict[str, None] = OrderedDict()
        #: Seen-cache: message id -> ``_Seen`` (bounded in entries).
        self._seen: OrderedDict[bytes, _Seen] = OrderedDict()
        #: Payloads of seen messages, to answer grafts: message id -> payload,
        #: oldest first, bounded in bytes (``payload_cache_bytes``).
        self._payloads: OrderedDict[bytes, bytes] = OrderedDict()
        self._payload_bytes = 0
        #: Missing messages: message id -> announcers [(peer, hops)], oldest first.
        self._missing: dict[bytes, list[tuple[PeerId, int]]] = {}
        #: ``IHave``s held per lazy link (``taiinet.overlay.lazy``).
        self._lazy_queue = LazyQueue(self.config)

    # --- inputs ----------------------------------------------------------

    def broadcast(self, message_id: bytes, payload: bytes, now: float) -> list[Action]:
        """Broadcast ``payload`` under the caller's ``message_id``; delivers it locally too.

        Broadcasting an id already seen does nothing (returns no action).
        """
        if not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH:
            raise OverlayUsageError(f"message id must be 1..{MAX_MESSAGE_ID_LENGTH} bytes")
        if len(payload) > MAX_PAYLOAD_SIZE:
            raise OverlayUsageError(f"payload exceeds {MAX_PAYLOAD_SIZE} bytes")
        out: list[Action] = []
        if message_id in self._seen:
            return out
        origin = self.peer_id
        sets = self._track(origin)
        if self._prefix(sets):
            self._detached = False  # a tree grows from here: it may take children
        self._remember(message_id, payload, 0, None, now, origin, 0, False)
        out.append(Deliver(message_id=message_id, payload=payload, sender=None, hops=0))
        self._push(message_id, payload, 1, None, origin, sets, 0,
                   self._prefix(sets) > 0, out, now)
        return out

    def handle_message(self, peer: PeerId, message: BroadcastMessage, now: float) -> list[Action]:
        """Process a broadcast message that came from ``peer``."""
        out: list[Action] = []
        if isinstance(message, Gossip):
            self._on_gossip(peer, message, now, out)
        elif isinstance(message, IHave):
            self._on_ihave(peer, message, now, out)
        elif isinstance(message, Graft):
            self._on_graft(peer, message, now, out)
        else:
            self._on_prune(peer, message, now, out)
        return out

    def handle_timer(self, timer: MissingTimer | LazyFlushTimer, now: float) -> list[Action]:
        """Held ``IHave``s are due; or an announced message is still missing:
        graft it from the next announcer."""
        if isinstance(timer, LazyFlushTimer):
            return self._lazy_queue.handle_timer(timer, now)
        out: list[Action] = []
        mid = timer.message_id
        announcers = self._missing.get(mid)
        if announcers is None or mid in self._seen:
            return out
        peer, _hops = announcers.pop(0)
        if not announcers:
            del self._missing[mid]
        else:
            out.append(SetTimer(at=now + self.config.graft_timeout, timer=timer))
        if peer in self.lazy:
            del self.lazy[peer]
            self.eager[peer] = None
        out.append(Send(peer=peer, message=Graft(message_id=mid)))
        return out

    def neighbor_up(self, peer: PeerId, now: float) -> list[Action]:
        """A new neighbour starts eager (in every tree); announce the recent messages to it."""
        out: list[Action] = []
        if peer in self._tree_links:
            self._cut(peer, out)
        self.lazy.pop(peer, None)
        self.eager[peer] = None
        for eager, lazy in self._trees.values():
            lazy.pop(peer, None)
            eager[peer] = None
        cfg = self.config
        oldest = now - cfg.announce_window
        keep = self.forward_filter
        payloads = self._payloads
        for mid, (hops, _sender, at, _origin, _entry, _graft) in reversed(self._seen.items()):
            if at < oldest or len(out) >= cfg.announce_limit:
                break
            payload = payloads.get(mid)
            if payload is None:
                continue  # a graft could not be answered
            if keep is None or keep(mid, payload, peer):
                out.append(Send(peer=peer, message=IHave(message_id=mid, hops=hops + 1)))
        return out

    def neighbor_down(self, peer: PeerId) -> list[Action]:
        """Forget a neighbour, and its announcements of missing messages.

        Returns the ``Prune``s that hand a cut of the shared tree down (flood prefix).
        """
        out: list[Action] = []
        self.eager.pop(peer, None)
        self.lazy.pop(peer, None)
        self._lazy_queue.forget(peer)
        if peer in self._tree_links:
            self._cut(peer, out)
        for eager, lazy in self._trees.values():
            eager.pop(peer, None)
            lazy.pop(peer, None)
        for mid in [m for m, a in self._missing.items() if any(p == peer for p, _ in a)]:
            remaining = [(p, h) for p, h in self._missing[mid] if p != peer]
            if remaining:
                self._missing[mid] = remaining
            else:
                # The pending timer finds the entry gone and does nothing.
                del self._missing[mid]
        return out

    # --- queries -----------------------------------------------------------

    def has_seen(self, message_id: bytes) -> bool:
        return message_id in self._seen

    def has_payload(self, message_id: bytes) -> bool:
        """Whether a graft of ``message_id`` would be answered with its payload."""
        return message_id in self._payloads

    def payload_size(self, message_id: bytes) -> int:
        """Bytes a graft of ``message_id`` would be answered with (0: not held)."""
        payload = self._payloads.get(message_id)
        return 0 if payload is None else len(payload)

    @property
    def payload_bytes(self) -> int:
        """Bytes of payload held to answer grafts (at most ``payload_cache_bytes``)."""
        return self._payload_bytes

    def drop_payload(self, message_id: bytes) -> None:
        """Stop holding ``message_id``'s payload (its id stays seen).

        For a layer above that forwarded a message to nobody: no neighbour was
        told of it, so no graft will ask for it.
        """
        payload = self._payloads.pop(message_id, None)
        if payload is not None:
            self._payload_bytes -= len(payload)

    @property
    def missing_count(self) -> int:
        return len(self._missing)

    def tree(self, origin: str) -> tuple[list[PeerId], list[PeerId]]:
        """Eager and lazy neighbours used for ``origin``'s messages (its tree or the default)."""
        eager, lazy = self._sets(origin)
        return list(eager), list(lazy)

    @property
    def tree_links(self) -> set[PeerId]:
        """With a flood prefix: the neighbours linked to this node in the shared tree."""
        return set(self._tree_links)

    @property
    def origin_trees(self) -> list[str]:
        """Origins with a tree of their own, least recently used first."""
        return list(self._trees)

    # --- message handlers ---------------------------------------------------

    def _on_gossip(self, peer: PeerId, message: Gossip, now: float, out: list[Action]) -> None:
        mid = message.message_id
        origin = message.origin
        seen = self._seen.get(mid)
        if seen is not None:
            # A duplicate: the link to its sender may be redundant.
            sets = self._sets(origin)
            eager, lazy = sets
            if peer not in eager or self.config.flood:
                return
            if self._redundant(peer, message, seen, sets):
                del eager[peer]
                lazy[peer] = None
                out.append(Send(peer=peer, message=Prune(origin=origin) if origin else _PRUNE))
                if peer in self._tree_links:
                    self._cut(peer, out)
            elif seen[5] and peer in self._tree_links:
                # The first copy came over a link off the tree, and the tree
                # brought it too: that link is redundant.
                self._seen[mid] = (*seen[:5], False)
                first = seen[1]
                if first is not None and first in eager and first not in self._tree_links:
                    del eager[first]
                    lazy[first] = None
                    out.append(Send(peer=first, message=_PRUNE))
            return
        announcers = self._missing.pop(mid, None)
        hops = message.hops
        sets = self._track(origin)
        eager, lazy = sets
        prefix = self._prefix(sets)
        flood_on = False
        entry = message.entry
        if self._in_prefix(message, sets):
            # Pushed to every neighbour: it says nothing of the tree's links.
            flood_on = hops < prefix
            entry = 0 if flood_on else self.entry_tag
        else:
            if prefix and not entry:
                entry = self.entry_tag
            if peer in lazy:
                del lazy[peer]
                eager[peer] = None
        off_tree = False
        if prefix:
            if not self._tree_links and (peer in eager or peer in lazy):
                # In no tree (new, or cut off): join the tree below the node
                # that brought the message.  Having no children, this node
                # cannot close a cycle of tree links.
                self._parent = peer
                self._detached = False
                self._tree_links[peer] = None
                lazy.pop(peer, None)
                eager[peer] = None
                out.append(Send(peer=peer, message=Graft(message_id=b"")))
            off_tree = peer not in self._tree_links
        self._remember(mid, message.payload, hops, peer, now, origin, entry, off_tree)
        out.append(Deliver(message_id=mid, payload=message.payload, sender=peer, hops=hops))
        self._push(mid, message.payload, hops + 1, peer, origin, sets, entry, flood_on, out,
                   now)
        if announcers and not prefix:
            best, best_hops = min(announcers, key=_by_hops)
            self._optimize(origin, peer, hops, best, best_hops, out)

    def _on_ihave(self, peer: PeerId, message: IHave, now: float, out: list[Action]) -> None:
        mid = message.message_id
        seen = self._seen.get(mid)
        if seen is not None:
            if seen[1] is not None and not self._prefix(self._sets(seen[3])):
                self._optimize(seen[3], seen[1], seen[0], peer, message.hops, out)
            return
        announcers = self._missing.get(mid)
        if announcers is None:
            if len(self._missing) >= self.config.max_missing:
                return
            self._missing[mid] = [(peer, message.hops)]
            out.append(SetTimer(at=now + self.config.ihave_timeout,
                                timer=MissingTimer(message_id=mid)))
        elif len(announcers) < self.config.max_announcers:
            announcers.append((peer, message.hops))

    def _on_graft(self, peer: PeerId, message: Graft, now: float, out: list[Action]) -> None:
        cached = self._seen.get(message.message_id) if message.message_id else None
        origin = cached[3] if cached is not None else message.origin
        eager, lazy = self._sets(origin)
        if peer in lazy:
            del lazy[peer]
            eager[peer] = None
        if (eager is self.eager and not message.message_id and self.config.flood_prefix
                and peer in eager):
            if self._detached:
                # Cut off from the tree: a child here would hang off no tree.
                del eager[peer]
                lazy[peer] = None
                out.append(Send(peer=peer, message=_PRUNE))
            else:
                self._tree_links[peer] = None  # a new child
        payload = self._payloads.get(message.message_id) if cached is not None else None
        if cached is not None and payload is not None:
            hops, _sender, _at, _origin, entry, _graft = cached
            if not entry and self._prefix((eager, lazy)):
                entry = self.entry_tag  # a repair is a tree copy, never a prefix one
            out.append(Send(peer=peer, message=Gossip(message_id=message.message_id,
                                                      hops=hops + 1, payload=payload,
                                                      origin=origin, entry=entry)))

    def _on_prune(self, peer: PeerId, message: Prune, now: float, out: list[Action]) -> None:
        eager, lazy = self._sets(message.origin)
        if peer in eager:
            del eager[peer]
            lazy[peer] = None
        if eager is self.eager and peer in self._tree_links:
            self._cut(peer, out)

    # --- helpers ------------------------------------------------------------

    def _optimize(self, origin: str, parent: PeerId, hops: int, announcer: PeerId,
                  announced_hops: int, out: list[Action]) -> None:
        """Swap the eager link to ``parent`` for a lazy one that is enough hops shorter."""
        eager, lazy = self._sets(origin)
        threshold = self.config.optimization_threshold
        if (threshold and announced_hops + threshold <= hops
                and parent in eager and announcer in lazy):
            del lazy[announcer]
            eager[announcer] = None
            out.append(Send(peer=announcer, message=Graft(message_id=b"", origin=origin)))
            del eager[parent]
            lazy[parent] = None
            out.append(Send(peer=parent, message=Prune(origin=origin) if origin else _PRUNE))

    def _prefix(self, sets: _Sets) -> int:
        """Hops of the flood prefix for messages on ``sets``: only the shared tree has one."""
        cfg = self.config
        return cfg.flood_prefix if sets[0] is self.eager and not cfg.flood else 0

    def _redundant(self, peer: PeerId, message: Gossip, seen: _Seen, sets: _Sets) -> bool:
        """Does a duplicate from eager ``peer`` show a redundant eager link?

        Always, but on the shared tree with a flood prefix: there the copies
        that entered the tree at different places meet on tree links, so a
        duplicate shows a redundant link only over a link that is not a tree
        link, or when it entered the tree where this node's first copy did (a
        cycle of tree links).  Prefix copies never do.
        """
        if not self._prefix(sets):
            return True
        if self._in_prefix(message, sets):
            return False
        return peer not in self._tree_links or message.entry == seen[4]

    def _cut(self, peer: PeerId, out: list[Action]) -> None:
        """The shared tree's link to ``peer`` is gone (closed or pruned).

        A child's link: forget it.  The parent's: this node's subtree is cut
        off from the tree, so it hands the cut down (``Prune`` to each child,
        which does the same) and, with no tree link left, joins the tree
        again below the node that brings it the next message.
        """
        links = self._tree_links
        links.pop(peer, None)
        if peer != self._parent:
            return
        self._parent = None
        self._detached = True
        eager, lazy = self.eager, self.lazy
        for child in links:
            if child in eager:
                del eager[child]
                lazy[child] = None
            out.append(Send(peer=child, message=_PRUNE))
        links.clear()

    def _in_prefix(self, message: Gossip, sets: _Sets) -> bool:
        """Was ``message`` pushed to every neighbour (part of the flood prefix)?"""
        return not message.entry and message.hops <= self._prefix(sets)

    def _sets(self, origin: str) -> _Sets:
        """The eager and lazy sets used for ``origin``'s messages."""
        tree = self._trees.get(origin) if origin else None
        return (self.eager, self.lazy) if tree is None else tree

    def _track(self, origin: str) -> _Sets:
        """The sets for a message of ``origin`` being delivered.

        An origin's first message uses the default sets; its second starts a
        tree of its own, in which all neighbours are eager.
        """
        trees = self._trees
        tree = trees.get(origin) if origin else None
        if tree is not None:
            trees.move_to_end(origin)
            return tree
        cfg = self.config
        if not origin or not cfg.origin_trees or cfg.flood:
            return self.eager, self.lazy
        origins = self._origins
        if origin not in origins:
            origins[origin] = None
            if len(origins) > cfg.origins_seen:
                origins.popitem(last=False)
            return self.eager, self.lazy
        del origins[origin]
        # Every neighbour starts eager in the new tree, as in a new node: this
        # message floods and its duplicates prune the tree to the fastest paths.
        tree = ({**self.eager, **self.lazy}, {})
        trees[origin] = tree
        if len(trees) > cfg.origin_trees:
            trees.popitem(last=False)
        return tree

    def _remember(self, mid: bytes, payload: bytes, hops: int, sender: PeerId | None,
                  now: float, origin: str, entry: int, grafted: bool) -> None:
        seen = self._seen
        seen[mid] = (hops, sender, now, origin, entry, grafted)
        if len(seen) > self.config.seen_cache_size:
            gone, _entry = seen.popitem(last=False)
            self.drop_payload(gone)
        payloads = self._payloads
        payloads[mid] = payload
        self._payload_bytes += len(payload)
        budget = self.config.payload_cache_bytes
        while self._payload_bytes > budget:
            _gone, old = payloads.popitem(last=False)
            self._payload_bytes -= len(old)

    def _push(self, mid: bytes, payload: bytes, hops: int, sender: PeerId | None, origin: str,
              sets: _Sets, entry: int, everyone: bool, out: list[Action], now: float) -> None:
        """Eager push to eager neighbours, IHave to lazy ones, except ``sender``.

        ``everyone``: push to the lazy neighbours too (the flood prefix).
        """
        keep = self.forward_filter
        eager, lazy = sets
        gossip = Gossip(message_id=mid, hops=hops, payload=payload, origin=origin, entry=entry)
        for peer in eager:
            if peer != sender and (keep is None or keep(mid, payload, peer)):
                out.append(Send(peer=peer, message=gossip))
        if everyone:
            for peer in lazy:
                if peer != sender and (keep is None or keep(mid, payload, peer)):
                    out.append(Send(peer=peer, message=gossip))
        elif lazy:
            ihave = IHave(message_id=mid, hops=hops)
            for peer in lazy:
                if peer != sender and (keep is None or keep(mid, payload, peer)):
                    self._lazy_queue.announce(peer, ihave, now, out)
