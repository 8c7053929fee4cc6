# taiinet: sans-io core
"""The relay tree of one live stream, as a pure state machine per peer.

Theory of operation
-------------------
A broadcaster (the *root*) sends media chunks to a few children; each viewer
relays every chunk it gets to its own children.  A viewer declares ``slots``:
how many children its uplink can feed.  The tree lives in these cores; the
driver moves chunks from a node to ``children`` and reports each new chunk
with ``chunk``.

*Joining.*  A viewer sends ``Join(slots)`` to the root.  A node with a free
slot adopts (``Adopt(path)``, the path from the root to it); a full node
answers ``Redirect`` with its best candidates below it, and the joiner tries
them in turn, each with a ``join_timeout``.  Candidates come from the
children's upward ``Status`` reports: children with a free slot of their own
first (most slots first), then the children they *recommend* (their own
children with free slots: the origin's "recommend high-uplink peers to the
parent"), then children whose subtrees still have free slots.  A node never
adopts a peer on its own path (no cycles), nor while it is detached, nor
below ``max_depth``; an empty ``Redirect`` from the root means the tree is
full: the joiner backs off and retries.  Zero-slot viewers are thereby
refused first when the tree is full, and pushed to the leaves otherwise.

*Capacity ranking.*  A full node that gets a ``Join`` from a peer with more
slots than its weakest child adopts the newcomer and tells the weakest child
``Reparent(to=newcomer)``; the newcomer has a free slot for it.  Repeated at
every join and every repair, this moves high-capacity peers towards the root,
so the tree is as shallow as the capacities allow.  With ``ranking`` off (the
simulator's baseline) the node redirects to random children with free room
and preempts only a zero-slot leaf, for a joiner with slots (else a tree
whose slots all went to leaves stops growing); with no free room below, a
joiner with slots is sent to random children with slots.

*Heartbeats and repair.*  Every tick a parent sends each child a
``Heartbeat(seq, path, standby)`` and each child sends its parent a
``Status``.  A parent whose path changes sends heartbeats at once, so paths
propagate down the tree in one link delay per level, and a node that finds
itself on its own path (a transient cycle) leaves its parent.  The standby
list is the grandparent and the best siblings.  A parent silent for
``peer_timeout`` (or whose link fails) is lost: the orphan keeps its subtree
and asks ``join_fanout`` standby peers at once (then the next ones, then the
root); the first ``Adopt`` wins and every other peer asked is sent ``Leave``
(``taiinet.stream.joining``).  A ``Join`` sent beside others of its round
says ``free_slot_only``: it takes a free slot, never a child's place, so a
joiner that went elsewhere displaced nobody.  Its children see an empty path
while it is detached and wait ``orphan_grace`` before repairing by
themselves, so a subtree moves as one.  Lost-parent repair is bounded by
``peer_timeout + tick_interval`` to notice, then one ``join_timeout`` per
``join_fanout`` standby peers that do not answer.

*Free-riders.*  A child that gets no chunk for ``stall_timeout`` while its
parent's heartbeats have shown, for as long, chunks it got since it adopted
the child (``blame_lag`` past both ends) blames the parent: it sends
``StallReport(parent, seq)`` to the grandparent, leaves the parent and bans
it.  The grandparent is the peer that can check the report: it must be
``report_lag`` ahead of the reporter, know the reporter as the parent's
child, and see from its children's ``Status`` that it delivers (the accused,
or a sibling, lately got what the reporter lacks).  When reports from at
least half of the parent's listed children (at least one) arrive within
``report_window``, it evicts the parent (``Leave(evicted=True)``) and bans it
for ``ban_duration``.  A parent that hides its progress too gets reported
after ``upstream_grace`` of stall under it.  The rules that make blame
attributable are in ``taiinet.stream.blame``.

*Links.*  The core closes (``CloseLink``) a link it no longer needs once no
tree message went either way for ``link_idle_timeout`` (``TreeLinks``): a
viewer that left, a redirected joiner, a candidate that never adopted.  A
silent or evicted child, and every link at ``leave``, are closed at once.

Inputs: ``start``, ``handle_message``, ``chunk``, ``handle_link_down``,
``handle_timer``, ``leave`` (all take ``now``).  Outputs: ``Send``,
``CloseLink``, ``ParentChanged``, ``Evicted``, ``SetTimer``.
"""

from __future__ import annotations

import random

from taiinet.core.actions import Send, SetTimer
from taiinet.stream.actions import (
    Action,
    Backfill,
    Evicted,
    JoinTimer,
    ParentChanged,
    TickTimer,
)
from taiinet.stream.blame import StallJudge, Verdict
from taiinet.stream.choice import Child as _Child
from taiinet.stream.choice import redirect_candidates, standby_list
from taiinet.stream.config import TreeConfig
from taiinet.stream.errors import StreamUsageError
from taiinet.stream.joining import JoinRound
from taiinet.stream.links import TreeLinks
from taiinet.stream.messages import (
    MAX_CANDIDATES,
    MAX_FREE,
    MAX_SLOTS,
    Adopt,
    Heartbeat,
    Join,
    Leave,
    Redirect,
    Reparent,
    StallReport,
    Status,
    TreeMessage,
)
from taiinet.wire.peer_id import PeerId

_TICK = TickTimer()
_LEAVE = Leave()
_EVICT = Leave(evicted=True)
_NO_ROOM = Redirect(candidates=())
_UNKNOWN_SEQ = -1


class RelayTree:
    """One peer's place in one stream's relay tree; every input returns actions."""

    __slots__ = (
        "_detached_since",
        "_handlers",
        "_judge",
        "_links",
        "_parent_heard",
        "_parent_seq",
        "_round",
        "_stopped",
        "children",
        "config",
        "last_progress",
        "parent",
        "path",
        "peer_id",
        "rng",
        "root",
        "seq",
        "slots",
        "standby",
    )

    def __init__(self, peer_id: PeerId, root: PeerId, slots: int, rng: random.Random,
                 config: TreeConfig | None = None) -> None:
        if not 0 <= slots <= MAX_SLOTS:
            raise StreamUsageError(f"slots must be in [0, {MAX_SLOTS}]")
        self.peer_id = peer_id
        self.root = root
        self.slots = slots
        self.rng = rng
        self.config = config or TreeConfig()
        self.parent: PeerId | None = None
        #: The broadcaster .. the parent; empty while detached (and at the root).
        self.path: tuple[PeerId, ...] = ()
        #: Children in adoption order (dicts keep runs reproducible).
        self.children: dict[PeerId, _Child] = {}
        #: Peers to try, in order, if the parent is lost (from its heartbeats).
        self.standby: tuple[PeerId, ...] = ()
        #: Highest chunk held, and when it arrived.
        self.seq = _UNKNOWN_SEQ
        self.last_progress = 0.0
        self._parent_heard = 0.0
        self._parent_seq = _UNKNOWN_SEQ
        self._detached_since: float | None = None
        self._round = JoinRound(self.config.max_redirects, self.config.join_fanout)
        self._judge = StallJudge(self.config)
        self._links = TreeLinks(self.config.link_idle_timeout, self.config.max_links)
        self._stopped = False
        self._handlers = {
            Join: self._on_join, Adopt: self._on_adopt, Redirect: self._on_redirect,
            Leave: self._on_leave, Reparent: self._on_reparent, Heartbeat: self._on_heartbeat,
            Status: self._on_status, StallReport: self._on_stall_report,
        }

    # --- queries -------------------------------------------------------------

    @property
    def is_root(self) -> bool:
        return self.peer_id == self.root

    @property
    def attached(self) -> bool:
        """True when a chain of parents links this node to the broadcaster (as far as it knows)."""
        return self.is_root or bool(self.path)

    @property
    def depth(self) -> int:
        """Links between the broadcaster and this node (0 at the root)."""
        return len(self.path)

    def is_banned(self, peer: PeerId, now: float) -> bool:
        return self._judge.is_banned(peer, now)

    def has_link(self, peer: PeerId) -> bool:
        """Whether the tree holds a link to ``peer`` (used, or idle and not yet closed)."""
        return peer in self._links

    def needs_link(self, peer: PeerId) -> bool:
        """Whether the tree needs its link to ``peer`` (its parent, a child, or a
        peer of the pending join), whatever its idle time."""
        return not self._stopped and self._needs(peer)

    def _needs(self, peer: PeerId) -> bool:
        return peer == self.parent or peer in self.children or self._round.may_adopt(peer)

    # --- inputs --------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Arm the tick; a viewer also sends its first ``Join`` to the broadcaster."""
        out: list[Action] = [SetTimer(at=now + self.rng.random() * self.config.tick_interval,
                                      timer=_TICK)]
        self.last_progress = now
        if not self.is_root:
            self._begin_join([], 1, now, out)
        self._links.note(out, now, self._needs)
        return out

    def chunk(self, seq: int, now: float) -> bool:
        """A chunk numbered ``seq`` arrived (or, at the root, was made); True if it is new.

        Chunks older than the newest are the driver's business: a new parent
        backfills what a repaired child missed (``Backfill``), and the driver
        passes on each chunk it had not seen.
        """
        if seq > self.seq:
            self.seq = seq
            self.last_progress = now
            return True
        return False

    def handle_message(self, peer: PeerId, message: TreeMessage, now: float) -> list[Action]:
        """Process a control message that came from ``peer`` over an authenticated link."""
        out: list[Action] = []
        if not self._stopped and peer != self.peer_id:
            self._links.touch(peer, now)
            self._handlers[type(message)](peer, message, now, out)  # type: ignore[operator]
            self._links.note(out, now, self._needs)
        return out

    def handle_link_down(self, peer: PeerId, now: float) -> list[Action]:
        """The link to ``peer`` failed or could not be opened."""
        out: list[Action] = []
        if self._stopped:
            return out
        self._links.forget(peer)
        if peer == self.parent:
            self._lose_parent(now, out, ban=False)
        elif peer in self.children:
            self._drop_child(peer)
        elif self._round.answered(peer):
            self._ask_more(now, out)
        self._links.note(out, now, self._needs)  # a message for ``peer`` dials it again
        return out

    def handle_timer(self, timer: TickTimer | JoinTimer, now: float) -> list[Action]:
        if self._stopped:
            return []
        if type(timer) is TickTimer:
            out = self._tick(now)
        else:
            out = []
            attempt: int = timer.attempt  # type: ignore[union-attr]
            if self.parent is None and not self.is_root:
                if self._round.expire(attempt):  # no answer in time
                    self._ask_more(now, out)
                elif attempt == self._round.backoff:  # the back-off after a full tree is over
                    self._begin_join([], 1, now, out)
        self._links.note(out, now, self._needs)
        return out

    def leave(self, now: float) -> list[Action]:
        """Leave the stream: tell the parent and the children; later inputs do nothing."""
        out: list[Action] = []
        for peer in [self.parent, *self.children]:
            if peer is not None:
                out.append(Send(peer=peer, message=_LEAVE))
                self._links.touch(peer, now)
        self._links.close_all(out)
        self.children.clear()
        self.parent = None
        self.path = ()
        self._stopped = True
        return out

    # --- joining ---------------------------------------------------------------

    def _begin_join(self, first: list[PeerId], width: int, now: float,
                    out: list[Action]) -> None:
        """Start a join round from ``first`` (then the root), ``width`` Joins at a time."""
        self._round.begin(first, width)
        self._ask_more(now, out)

    def _ask_more(self, now: float, out: list[Action]) -> None:
        """Send ``Join`` to the next usable candidates (the root last); or back off."""
        def usable(peer: PeerId) -> bool:
            return (peer != self.peer_id and peer not in self.children
                    and not self.is_banned(peer, now))

        asks = self._round.fill(usable, self.root)
        # A Join in flight beside others of the round takes only a free slot: the
        # joiner may go elsewhere, and then must have displaced nobody.
        join = Join(slots=self.slots, have=self.seq,
                    free_slot_only=len(self._round.pending) > 1)
        for peer, attempt in asks:
            out.append(Send(peer=peer, message=join))
            out.append(SetTimer(at=now + self.config.join_timeout,
                                timer=JoinTimer(attempt=attempt)))
        if not self._round.pending:
            out.append(SetTimer(at=now + self.config.retry_backoff,
                                timer=JoinTimer(attempt=self._round.back_off())))

    def _on_adopt(self, peer: PeerId, message: Adopt, now: float, out: list[Action]) -> None:
        path = message.path
        if (not self._round.may_adopt(peer) or self.parent is not None
                or self.is_root or self.peer_id in path or not path or path[-1] != peer
                or path[0] != self.root):
            out.append(Send(peer=peer, message=_LEAVE))
            return
        # The first adoption wins (a parallel one, or a late answer over a slow link):
        # every other peer still asked is told we are no longer waiting, so one that
        # adopted us meanwhile frees the slot.
        for other in self._round.pending:
            if other != peer:
                out.append(Send(peer=other, message=_LEAVE))
        self._round.clear()  # its JoinTimers are now stale
        self.parent = peer
        self._parent_heard = now
        self._parent_seq = _UNKNOWN_SEQ
        self._judge.new_parent()
        self._detached_since = None
        self.last_progress = now  # the first chunk is due from now on
        out.append(ParentChanged(parent=peer))
        self._set_path(path, now, out)

    def _on_redirect(self, peer: PeerId, message: Redirect, now: float,
                     out: list[Action]) -> None:
        if self.parent is not None or not self._round.answered(peer):
            return
        self._round.redirected(message.candidates)
        self._ask_more(now, out)

    # --- adopting ---------------------------------------------------------------

    def _on_join(self, peer: PeerId, message: Join, now: float, out: list[Action]) -> None:
        slots = message.slots
        child = self.children.get(peer)
        if child is not None and not self.attached:
            # A child asking again while we are detached: we have no path to give
            # (an ``Adopt`` needs one), so we let it go and it joins elsewhere.
            self._drop_child(peer)
            out.append(Send(peer=peer, message=_NO_ROOM))
            return
        if child is not None:  # a repeated Join: answer it again
            child.slots = slots
            child.heard = now
            self._adopt_reply(peer, out)
            return
        if (not self.attached or peer in self.path or peer == self.parent
                or self._round.waiting_on(peer) or self.is_banned(peer, now)
                or len(self.path) + 1 >= self.config.max_depth):
            out.append(Send(peer=peer, message=_NO_ROOM))
            return
        if len(self.children) < self.slots:
            self._adopt(peer, slots, now, out, message.have)
            return
        weakest: PeerId | None = None
        if self.children and slots > 0 and not message.free_slot_only:
            if self.config.ranking:
                weakest = min(self.children, key=lambda c: (self.children[c].slots,
                                                            len(self.children[c].children)))
            else:  # a random tree still lets a relay take a leaf's place (else a tree
                # whose slots all went to zero-slot leaves stops growing)
                leaves = [c for c, info in self.children.items() if info.slots == 0]
                weakest = self.rng.choice(leaves) if leaves else None
            if weakest is not None and slots > self.children[weakest].slots:
                self._drop_child(weakest)
                out.append(Send(peer=weakest, message=Reparent(to=peer)))
                self._adopt(peer, slots, now, out, message.have)
                return
        out.append(Send(peer=peer, message=Redirect(candidates=self._redirect_to(peer, slots))))

    def _adopt(self, peer: PeerId, slots: int, now: float, out: list[Action],
               have: int) -> None:
        self.children[peer] = _Child(slots, now)
        self._adopt_reply(peer, out)
        if have < self.seq:  # what it missed (a newcomer, have -1: the driver's choice)
            out.append(Backfill(peer=peer, after=have))

    def _adopt_reply(self, peer: PeerId, out: list[Action]) -> None:
        path = self._child_path()
        out.append(Send(peer=peer, message=Adopt(path=path)))
        out.append(Send(peer=peer, message=Heartbeat(seq=self.seq, path=path,
                                                     standby=self._standby_for(peer))))

    def _redirect_to(self, joiner: PeerId, slots: int) -> tuple[PeerId, ...]:
        return redirect_candidates(self.children, self.path, joiner, slots,
                                   self.config.ranking, self.config.redirect_size, self.rng)

    def _standby_for(self, child: PeerId) -> tuple[PeerId, ...]:
        return standby_list(self.children, self.parent, child, self.config.ranking,
                            self.config.standby_size, self.rng)

    def _drop_child(self, peer: PeerId) -> None:
        del self.children[peer]
        self._judge.forget_child(peer)

    # --- heartbeats and status ----------------------------------------------------

    def _child_path(self) -> tuple[PeerId, ...]:
        if self.is_root:
            return (self.peer_id,)
        return (*self.path, self.peer_id) if self.path else ()

    def _heartbeats(self, out: list[Action]) -> None:
        path = self._child_path()
        for child in self.children:
            out.append(Send(peer=child, message=Heartbeat(
                seq=self.seq, path=path, standby=self._standby_for(child))))

    def _set_path(self, path: tuple[PeerId, ...], now: float, out: list[Action]) -> None:
        """Take a new path and, if it changed, tell the children at once."""
        if path != self.path:
            self._judge.path_changed(self.path, path, now)
            self.path = path
            self._heartbeats(out)

    def _on_heartbeat(self, peer: PeerId, message: Heartbeat, now: float,
                      out: list[Action]) -> None:
        if peer != self.parent:
            if not self._round.waiting_on(peer):
                out.append(Send(peer=peer, message=_LEAVE))  # it thinks we are its child
            return
        self._parent_heard = now
        self._parent_seq = message.seq
        self._judge.parent_heard(self.seq, message.seq, now)
        self.standby = tuple(p for p in message.standby if p != self.peer_id)
        path = message.path
        if self.peer_id in path:  # a transient cycle: break it
            out.append(Send(peer=peer, message=_LEAVE))
            self._lose_parent(now, out, ban=False)
            return
        if path:
            self._detached_since = None
        elif self._detached_since is None:
            self._detached_since = now
        self._set_path(path, now, out)

    def _on_status(self, peer: PeerId, message: Status, now: float, out: list[Action]) -> None:
        child = self.children.get(peer)
        if child is None:
            out.append(Send(peer=peer, message=_LEAVE))  # it thinks we are its parent
            return
        child.update(message, now)

    def _status(self) -> Status:
        kids = self.children
        free = max(0, self.slots - len(kids)) + sum(info.free for info in kids.values())
        if self.config.ranking:
            best = sorted((c for c, info in kids.items() if info.own_free > 0),
                          key=lambda c: -kids[c].slots)
        else:
            best = [c for c, info in kids.items() if info.own_free > 0]
        return Status(slots=self.slots, children=tuple(kids), free=min(free, MAX_FREE),
                      seq=self.seq, recommend=tuple(best[:MAX_CANDIDATES // 4]))

    # --- failures -----------------------------------------------------------------

    def _on_leave(self, peer: PeerId, message: Leave, now: float, out: list[Action]) -> None:
        if peer == self.parent:
            self._lose_parent(now, out, ban=message.evicted)
        elif peer in self.children:
            self._drop_child(peer)  # its link is closed once idle (it may come back)
        elif self._round.answered(peer):
            self._ask_more(now, out)

    def _on_reparent(self, peer: PeerId, message: Reparent, now: float,
                     out: list[Action]) -> None:
        if peer != self.parent:
            return
        self._detach(now, out)
        self._begin_join([message.to, *self.standby], self.config.join_fanout, now, out)

    def _detach(self, now: float, out: list[Action]) -> None:
        self.parent = None
        self._detached_since = None
        out.append(ParentChanged(parent=None))
        self._set_path((), now, out)

    def _lose_parent(self, now: float, out: list[Action], *, ban: bool) -> None:
        old = self.parent
        if old is None:
            return
        if ban:
            self._judge.ban(old, now)
        self._detach(now, out)
        self._begin_join([p for p in self.standby if p != old], self.config.join_fanout,
                         now, out)

    def _on_stall_report(self, peer: PeerId, message: StallReport, now: float,
                         out: list[Action]) -> None:
        accused = message.parent
        child = self.children.get(accused)
        if child is None or not self.attached:
            return
        if self._judge.judge_report(peer, accused, self.children, message.seq, self.seq, now):
            self._drop_child(accused)
            self._judge.ban(accused, now)
            out.append(Send(peer=accused, message=_EVICT))
            self._links.close(accused, out)
            out.append(Evicted(peer=accused))

    # --- the tick ------------------------------------------------------------------

    def _tick(self, now: float) -> list[Action]:
        cfg = self.config
        out: list[Action] = [SetTimer(at=now + cfg.tick_interval, timer=_TICK)]
        silent = now - cfg.peer_timeout
        for child in [c for c, info in self.children.items() if info.heard < silent]:
            self._drop_child(child)
            self._links.close(child, out)
        self._links.close_idle(now, self._needs, out)
        parent = self.parent
        if parent is not None:
            if self._parent_heard < silent:
                self._lose_parent(now, out, ban=False)
            elif (self._detached_since is not None
                  and now - self._detached_since > cfg.orphan_grace):
                out.append(Send(peer=parent, message=_LEAVE))
                self._lose_parent(now, out, ban=False)
            elif self.path and self._check_stall(parent, now, out):
                pass
            else:
                out.append(Send(peer=parent, message=self._status()))
        if self.attached:
            self._heartbeats(out)
        return out

    def _check_stall(self, parent: PeerId, now: float, out: list[Action]) -> bool:
        """Blame a parent that holds chunks it does not relay; True if we left it."""
        grandparent = self.path[-2] if len(self.path) >= 2 else None
        verdict = self._judge.stall_verdict(
            seq=self.seq, parent_seq=self._parent_seq, last_progress=self.last_progress,
            can_report=grandparent is not None, now=now)
        if verdict is Verdict.WAIT:
            return False
        if grandparent is not None:
            out.append(Send(peer=grandparent, message=StallReport(parent=parent, seq=self.seq)))
        if verdict is Verdict.REPORT:
            return False
        out.append(Send(peer=parent, message=_LEAVE))
        self._lose_parent(now, out, ban=True)
        return True
