# taiinet: sans-io core
"""The seeder's side of the history protocol: admit requests, bound the work.

Theory of operation
-------------------
A ``HistoryRequest`` from a peer is charged to that peer's token bucket
(``requests_per_second``, ``request_burst``); one over budget is refused
(``HistoryRefused(reason="rate")``), and a peer that keeps going over it is
disconnected (``DropPeer``).  An admitted request becomes ``RunQuery``: the
driver reads one page from the store, off the event loop, and hands it back
with ``query_done``, which answers ``SendHistory(HistoryPage)``.  At most
``max_running`` queries run at once and ``max_running_per_peer`` per peer;
past either the request is refused ("busy") at once, never queued, so a
seeder holds no per-request state beyond the queries it is running.  A
requester pages with its own cursor (``HistoryRequest.after``), so a
"stream" is a sequence of independent requests, one page each; the
requester waits for a page before it asks for the next, which bounds what
a seeder sends to what was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.history.errors import HistoryUsageError
from taiinet.history.messages import HistoryPage, HistoryRefused, HistoryRequest, Key
from taiinet.overlay.budget import Rate, RateBudgets, Verdict
from taiinet.wire.peer_id import PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryServerConfig:
    """Bounds of a seeder: ``requests_per_second`` per peer (``request_burst`` at once),
    ``max_running`` store queries at once, ``max_running_per_peer`` per peer, and the
    offences (refused requests) a peer may commit, ``offence_burst`` at once."""

    requests_per_second: float = 50.0
    request_burst: float = 100.0
    max_running: int = 8
    max_running_per_peer: int = 2
    offences_per_second: float = 2.0
    offence_burst: float = 50.0

    def __post_init__(self) -> None:
        if min(self.requests_per_second, self.request_burst, self.max_running,
               self.max_running_per_peer, self.offences_per_second, self.offence_burst) <= 0:
            raise HistoryUsageError("history server bounds must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunQuery:
    """Read the page ``request`` asks for from the store; then call ``query_done``."""

    peer: PeerId
    request: HistoryRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class SendHistory:
    """Send a history message to ``peer``."""

    peer: PeerId
    message: HistoryRequest | HistoryPage | HistoryRefused


@dataclass(frozen=True, slots=True, kw_only=True)
class DropPeer:
    """``peer`` broke the history protocol or its budget: close its links."""

    peer: PeerId
    reason: str


ServerAction = RunQuery | SendHistory | DropPeer


class HistoryServer:
    """Admission of history requests on a seeder (see the module docstring)."""

    def __init__(self, config: HistoryServerConfig | None = None) -> None:
        self.config = config or HistoryServerConfig()
        c = self.config
        self._budgets = RateBudgets((Rate(c.requests_per_second, c.request_burst),),
                                    Rate(c.offences_per_second, c.offence_burst))
        self._running: dict[PeerId, int] = {}
        #: Requests answered with a page, refused, and pages' documents sent.
        self.served = 0
        self.refused = 0
        self.documents_sent = 0

    @property
    def running(self) -> int:
        return sum(self._running.values())

    def handle_request(self, peer: PeerId, request: HistoryRequest,
                       now: float) -> list[ServerAction]:
        verdict = self._budgets.admit(peer, now, (0, 1.0))
        if verdict is Verdict.DISCONNECT:
            return [DropPeer(peer=peer, reason="too many history requests")]
        if verdict is Verdict.DROP:
            return self._refuse(peer, request, "rate")
        if (self.running >= self.config.max_running
                or self._running.get(peer, 0) >= self.config.max_running_per_peer):
            return self._refuse(peer, request, "busy")
        self._running[peer] = self._running.get(peer, 0) + 1
        return [RunQuery(peer=peer, request=request)]

    def query_done(self, peer: PeerId, request: HistoryRequest, documents: tuple[bytes, ...],
                   more: bool, cursor: Key) -> list[ServerAction]:
        """The store answered ``request``: send the page."""
        self._finished(peer)
        self.served += 1
        self.documents_sent += len(documents)
        return [SendHistory(peer=peer, message=HistoryPage(
            request_id=request.request_id, documents=documents, more=more, cursor=cursor))]

    def query_failed(self, peer: PeerId, request: HistoryRequest,
                     reason: str) -> list[ServerAction]:
        """The store could not answer (I/O error): refuse."""
        self._finished(peer)
        return self._refuse(peer, request, reason)

    def _finished(self, peer: PeerId) -> None:
        left = self._running.get(peer, 0) - 1
        if left > 0:
            self._running[peer] = left
        else:
            self._running.pop(peer, None)

    def _refuse(self, peer: PeerId, request: HistoryRequest, reason: str) -> list[ServerAction]:
        self.refused += 1
        return [SendHistory(peer=peer, message=HistoryRefused(request_id=request.request_id,
                                                               reason=reason))]
