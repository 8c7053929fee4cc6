# taiinet: sans-io core
"""One join round of a relay tree node: whom it asks, and which answers it waits for.

Part of ``RelayTree`` (``taiinet.stream.tree``, *Joining* and *Heartbeats
and repair* in its theory of operation).  A round starts from a list of
candidates (empty for a newcomer: the broadcaster; the standby list for a
repair) and keeps up to ``width`` ``Join`` messages in flight, each with its
own ``join_timeout`` (``JoinTimer(attempt)``).  A ``Redirect`` puts its
candidates first; an answer, a timeout or a failed link frees a place for the
next candidate; the broadcaster is asked last, alone.  A newcomer's round
asks one peer at a time; a repair asks ``join_fanout`` standby peers at once
and takes the first ``Adopt``: the tree then sends ``Leave`` to every other
peer still asked (a peer that adopted it meanwhile frees the slot), and
answers any later ``Adopt`` with ``Leave``.
"""

from __future__ import annotations

from collections.abc import Callable

from taiinet.wire.peer_id import PeerId

Usable = Callable[[PeerId], bool]


class JoinRound:
    """Candidates still to try, the Joins in flight (peer -> attempt) and the peers asked."""

    __slots__ = ("_attempt", "asked", "backoff", "candidates", "max_asked", "max_redirects",
                 "pending", "redirects", "tried_root", "width")

    def __init__(self, max_redirects: int, max_width: int) -> None:
        self.max_redirects = max_redirects
        #: Peers remembered as asked in one round (a late ``Adopt`` from one is taken).
        self.max_asked = (max_redirects + 1) * max_width
        self.width = 1
        self.candidates: list[PeerId] = []
        self.pending: dict[PeerId, int] = {}
        self.asked: set[PeerId] = set()
        self.tried_root = False
        self.redirects = 0
        #: The attempt of the back-off timer after a round found no room (None: none).
        self.backoff: int | None = None
        self._attempt = 0

    def begin(self, first: list[PeerId], width: int) -> None:
        self.clear()
        self.candidates = first
        self.width = width

    def clear(self) -> None:
        """End the round (adopted, or starting over): every timer of it is now stale."""
        self.candidates = []
        self.pending.clear()
        self.asked.clear()
        self.tried_root = False
        self.redirects = 0
        self.backoff = None

    def waiting_on(self, peer: PeerId) -> bool:
        return peer in self.pending

    def may_adopt(self, peer: PeerId) -> bool:
        """Whether an ``Adopt`` from ``peer`` answers a ``Join`` of this round."""
        return peer in self.pending or peer in self.asked

    def answered(self, peer: PeerId) -> bool:
        """``peer`` answered (or its link failed): True if a Join to it was in flight."""
        return self.pending.pop(peer, None) is not None

    def redirected(self, candidates: tuple[PeerId, ...]) -> None:
        """A ``Redirect`` came from a peer asked: its candidates go first."""
        self.redirects += 1
        if self.redirects > self.max_redirects * self.width:
            self.candidates = []
            self.tried_root = True  # give up this round: back off once nothing is pending
        else:
            fresh = [c for c in candidates if c not in self.candidates]
            self.candidates = fresh + self.candidates

    def expire(self, attempt: int) -> bool:
        """A ``JoinTimer`` fired: True if its Join was still unanswered (now given up)."""
        for peer, pending in self.pending.items():
            if pending == attempt:
                del self.pending[peer]
                return True
        return False

    def fill(self, usable: Usable, root: PeerId) -> list[tuple[PeerId, int]]:
        """The peers to send a ``Join`` now, with their attempts: candidates up to
        ``width`` in flight, the broadcaster last and alone, or none (back off)."""
        out: list[tuple[PeerId, int]] = []
        while len(self.pending) < self.width and self.candidates:
            peer = self.candidates.pop(0)
            if peer not in self.pending and usable(peer):
                out.append(self._ask(peer, root))
        if not self.pending and not self.tried_root:
            out.append(self._ask(root, root))
        return out

    def back_off(self) -> int:
        """Nothing left to ask: the attempt of the back-off timer to arm."""
        self._attempt += 1
        self.backoff = self._attempt
        return self._attempt

    def _ask(self, peer: PeerId, root: PeerId) -> tuple[PeerId, int]:
        if peer == root:
            self.tried_root = True
        self._attempt += 1
        self.pending[peer] = self._attempt
        if len(self.asked) < self.max_asked:
            self.asked.add(peer)
        return peer, self._attempt
