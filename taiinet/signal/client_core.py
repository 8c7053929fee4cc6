# taiinet: sans-io core
"""The signal-client core: every decision of a peer's side of signalling, with no I/O.

Theory of operation
-------------------
A peer keeps one link to a home signaller.  It follows the core contract
(:mod:`taiinet.core`, docs/cores.md): inputs take ``now``, timers are
``SetTimer`` values, commands that start something return ``Started(id,
actions)``.  It names links (:mod:`taiinet.core.links`), as a home is dialed
by URL before its peer id is known and a link reported down late must not
end its successor: ``Dial(url)``, then ``Send(home, message, link=...)`` and
``CloseLink(home, link=..., failed=True)`` on the link that came up.  The driver
(:mod:`taiinet.signal.client` over sockets, :mod:`taiinet.sim.signal` in the
simulator) reports the link up or down, the messages the home sends and the
timers, each with ``now``; the core answers with :data:`ClientAction`s.
Wall-clock time (signed records carry it) is ``unix_epoch + now``.

* Homes are tried in the given order (callers shuffle to spread load): on a
  link that fails or closes the core waits ``backoff_initial * 2**failures``
  (at most ``backoff_max``, times a jitter in [0.5, 1.5)) and dials the next
  URL.  A link that comes up resets the failure count.
* On a new link the peer says ``Hello(PEER)``; the home must answer
  ``Hello(SIGNALLER)`` within ``request_timeout``.  Then the peer registers a
  record signed by itself naming the URL the home announced, with
  ``seq = max(seq + 1, unix ms)`` (so it grows across restarts), and renews it
  ``RECORD_RENEWALS`` times per ``record_lifetime``.  A refused or unanswered
  registration closes the link (and so re-homes).
* Session messages (offers, answers, rejections) are signed and relayed
  through the home; while no home is registered they wait (bounded by
  ``max_pending_sessions``).  An offer ends with the answer, a
  ``RelayFailed``, a rejection or ``offer_timeout``.  Incoming offers are
  verified and handed out; anything not for us is ignored.
* A clean exit registers a tombstone (higher ``seq``, ``withdrawn``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from taiinet.core.actions import CloseLink, Dial, LinkId, Send, SetTimer, Started
from taiinet.signal.codec import (
    MAX_CONTACTS,
    Contacts,
    GetContacts,
    Hello,
    Register,
    Registered,
    Relay,
    RelayFailed,
    Role,
    SignalMessage,
)
from taiinet.signal.errors import RecordRejected, SignalUsageError
from taiinet.signal.records import (
    MAX_RECORD_LIFETIME_MS,
    MAX_SERVICE_CHARS,
    RECORD_LIFETIME,
    RECORD_RENEWALS,
    SESSION_ID_BYTES,
    PeerRecord,
    SessionDescription,
    SessionKind,
    open_peer_record,
    open_session,
    seal_peer_record,
    seal_session,
)
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

__all__ = ["ClientAction", "ClientTimer", "HelloTimer", "HomeChanged", "OfferReceived",
           "OfferSettled", "OfferTimer", "RenewTimer", "RequestSettled", "RequestTimer",
           "RetryTimer", "SetTimer", "SignalClientConfig", "SignalClientCore", "Started"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalClientConfig:
    record_lifetime: float = RECORD_LIFETIME
    """Seconds a registered record lives; renewed ``RECORD_RENEWALS`` times per life
    (a vanished peer's record is gone from the mesh this long after its last renewal)."""
    withdraw_timeout: float = 2.0
    """Seconds a clean exit waits for the home to confirm the withdrawal."""
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    offer_timeout: float = 20.0
    request_timeout: float = 10.0
    incoming_queue: int = 32
    max_pending_sessions: int = 64
    #: Services named in our peer record (``("seeder",)`` on a seeder).
    services: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        longest = MAX_RECORD_LIFETIME_MS / 1000
        if not 0 < self.record_lifetime <= longest:
            raise SignalUsageError(f"record_lifetime must be in (0, {longest:g}] s: homes "
                                   "refuse records that expire later")


# -- actions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HomeChanged:
    """Registered at ``home`` (``None``: the home was lost, re-homing)."""

    home: PeerId | None
    url: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferSettled:
    """An offer we made ended: ``answer`` SDP, or ``failure`` saying why not."""

    session_id: bytes
    answer: str | None
    failure: str
    #: The target itself refused (``failure`` says so and why).
    rejected: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferReceived:
    from_peer: PeerId
    session_id: bytes
    sdp: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestSettled:
    """A ``GetContacts`` or a withdrawal ended; ``records`` for contacts."""

    request_id: int
    records: tuple[PeerRecord, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryTimer:
    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HelloTimer:
    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RenewTimer:
    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTimer:
    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferTimer:
    session_id: bytes


ClientTimer = RetryTimer | HelloTimer | RenewTimer | RequestTimer | OfferTimer


ClientAction = (Send[SignalMessage] | Dial | CloseLink | HomeChanged | OfferSettled
                | OfferReceived | RequestSettled | SetTimer[ClientTimer])


@dataclass(slots=True)
class _Request:
    kind: str  # "register", "withdraw" or "contacts"
    service: str = ""


@dataclass(slots=True)
class _Link:
    epoch: int
    url: str
    #: The runner's id of the link, once it is up.
    link: LinkId | None = None
    home: PeerId | None = None
    home_url: str = ""
    registered: bool = False


@dataclass(slots=True)
class _Offer:
    target: PeerId
    failure: str = ""


class SignalClientCore:
    """One peer's signalling state.  See the module docstring."""

    def __init__(self, *, identity: Identity, signallers: list[str],
                 config: SignalClientConfig, rng: random.Random, now: float,
                 unix_epoch: float) -> None:
        if not signallers:
            raise SignalUsageError("give at least one signaller URL")
        self.identity = identity
        self.signallers = list(signallers)
        self.config = config
        self.rng = rng
        self.unix_epoch = unix_epoch
        self.seq = 0
        #: Dials in a row that failed (reset by a link that comes up).
        self.failures = 0
        self.closing = False
        self.link: _Link | None = None
        self._epoch = 0
        self._index = 0
        self._offers: dict[bytes, _Offer] = {}
        self._requests: dict[int, _Request] = {}
        self._waiting: list[SignalMessage] = []
        self._next_request = rng.getrandbits(32)
        self._now = now
        self._out: list[ClientAction] = []

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    @property
    def home(self) -> PeerId | None:
        link = self.link
        return link.home if link is not None and link.registered else None

    # -- inputs ---------------------------------------------------------------

    def start(self, now: float) -> list[ClientAction]:
        self._now = now
        self._dial_next()
        return self._flush()

    def handle_link_up(self, link: LinkId, peer: PeerId, address: str | None,
                       dialed: str | None, now: float) -> list[ClientAction]:
        """The link asked for by the last ``Dial`` is authenticated as ``peer``, the home."""
        self._now = now
        current = self.link
        if current is None or current.link is not None or dialed != current.url:
            return [CloseLink(peer=peer, link=link, failed=True, reason="not dialed for a home")]
        self.failures = 0
        current.link = link
        current.home = peer
        self._send(Hello(role=Role.PEER, listen_url=""))
        self._timer(now + self.config.request_timeout, HelloTimer(epoch=current.epoch))
        return self._flush()

    def handle_link_down(self, link: LinkId, now: float) -> list[ClientAction]:
        """The link to the home ended; wait, then dial the next URL."""
        self._now = now
        if self.link is None or self.link.link != link:
            return []
        return self._lost()

    def handle_dial_failed(self, address: str, peer: PeerId | None,
                           now: float) -> list[ClientAction]:
        """The dial to the home failed; wait, then dial the next URL."""
        self._now = now
        if self.link is None or self.link.link is not None or self.link.url != address:
            return []
        return self._lost()

    def _lost(self) -> list[ClientAction]:
        now = self._now
        link, self.link = self.link, None
        if link is not None and link.registered:
            self._out.append(HomeChanged(home=None, url=None))
        for offer in self._offers.values():
            offer.failure = offer.failure or "home signaller lost"
        for request_id, request in list(self._requests.items()):
            if request.kind == "register":
                del self._requests[request_id]
        if not self.closing:
            self.failures += 1
            c = self.config
            delay = min(c.backoff_max, c.backoff_initial * 2 ** min(self.failures, 16))
            self._epoch += 1
            self._timer(now + delay * self.rng.uniform(0.5, 1.5), RetryTimer(epoch=self._epoch))
        return self._flush()

    def handle_message(self, link: LinkId, message: SignalMessage,
                       now: float) -> list[ClientAction]:
        self._now = now
        current = self.link
        if current is None or current.link != link:
            return []
        return self._from_home(current, message)

    def _from_home(self, link: _Link, message: SignalMessage) -> list[ClientAction]:
        if not link.home_url:
            if not isinstance(message, Hello) or message.role is not Role.SIGNALLER:
                self._close("the home did not greet as a signaller")
                return self._flush()
            # The record names the URL the home announces (what other signallers
            # dial), which may differ from the one we dialed (e.g. localhost).
            link.home_url = message.listen_url or link.url
            self._register(link)
        elif isinstance(message, Registered):
            self._registered(link, message)
        elif isinstance(message, Contacts):
            self._contacts(message)
        elif isinstance(message, Relay):
            self._relay(message)
        elif isinstance(message, RelayFailed):
            if message.target_peer and message.session_id in self._offers:
                self._settle(message.session_id, None, message.reason)
        else:
            self._close(f"home sent an unexpected {type(message).__name__}")
        return self._flush()

    def handle_timer(self, timer: ClientTimer, now: float) -> list[ClientAction]:
        self._now = now
        link = self.link
        if isinstance(timer, RetryTimer):
            if timer.epoch == self._epoch and link is None and not self.closing:
                self._dial_next()
        elif isinstance(timer, HelloTimer | RenewTimer):
            if link is not None and link.epoch == timer.epoch:
                if isinstance(timer, RenewTimer):
                    self._register(link)
                elif not link.home_url:
                    self._close("no hello from the home in time")
        elif isinstance(timer, RequestTimer):
            request = self._requests.pop(timer.request_id, None)
            if request is not None and request.kind == "register":
                self._close("the home did not answer our registration")
            elif request is not None:
                self._out.append(RequestSettled(request_id=timer.request_id))
        elif timer.session_id in self._offers:
            self._settle(timer.session_id, None, self._offers[timer.session_id].failure
                         or "timed out")
        return self._flush()

    # -- commands -------------------------------------------------------------

    def send_offer(self, target: PeerId, sdp: str, now: float,
                   ) -> Started[bytes, ClientAction]:
        """Relay an offer to ``target``; an ``OfferSettled`` with its session id ends it."""
        self._now = now
        if len(self._offers) >= self.config.max_pending_sessions:
            raise SignalUsageError("too many offers in flight")
        session_id = self.rng.getrandbits(8 * SESSION_ID_BYTES).to_bytes(SESSION_ID_BYTES, "big")
        self._offers[session_id] = _Offer(target=target)
        self._timer(now + self.config.offer_timeout, OfferTimer(session_id=session_id))
        self._session(target, session_id, SessionKind.OFFER, sdp)
        return Started(session_id, self._flush())

    def reply(self, from_peer: PeerId, session_id: bytes, kind: SessionKind, sdp: str,
              now: float) -> list[ClientAction]:
        """Answer (or reject) an offer we received."""
        self._now = now
        self._session(from_peer, session_id, kind, sdp)
        return self._flush()

    def request_contacts(self, count: int, service: str, now: float,
                         ) -> Started[int, ClientAction]:
        """Ask the home for contacts; a ``RequestSettled`` with the id ends it."""
        self._now = now
        if len(service) > MAX_SERVICE_CHARS:
            raise SignalUsageError(f"a service name has at most {MAX_SERVICE_CHARS} characters")
        request_id = self._new_request_id()
        self._requests[request_id] = _Request(kind="contacts", service=service)
        self._timer(now + self.config.request_timeout, RequestTimer(request_id=request_id))
        self._queue(GetContacts(request_id=request_id, count=min(count, MAX_CONTACTS),
                                local_only=False, service=service))
        return Started(request_id, self._flush())

    def withdraw(self, now: float) -> Started[int | None, ClientAction]:
        """Leave: register a tombstone; stop re-homing.  ``None``: no home to tell."""
        self._now = now
        self.closing = True
        link = self.link
        if link is None or link.home is None or not link.registered:
            return Started(None, self._flush())
        request_id = self._new_request_id()
        self._requests[request_id] = _Request(kind="withdraw")
        self._timer(now + self.config.withdraw_timeout, RequestTimer(request_id=request_id))
        self._send(Register(request_id=request_id,
                            record=self._record(link, withdrawn=True)))
        return Started(request_id, self._flush())

    # -- internals ------------------------------------------------------------

    def _dial_next(self) -> None:
        url = self.signallers[self._index % len(self.signallers)]
        self._index += 1
        self._epoch += 1
        self.link = _Link(epoch=self._epoch, url=url)
        self._out.append(Dial(address=url))

    def _record(self, link: _Link, *, withdrawn: bool = False) -> bytes:
        assert link.home is not None
        self.seq = max(self.seq + 1, self.unix_ms())
        lifetime_ms = math.floor(self.config.record_lifetime * 1000)
        return seal_peer_record(self.identity, PeerRecord(
            peer_id=self.peer_id, signaller_peer_id=link.home, signaller_url=link.home_url,
            addresses=(), seq=self.seq, expires_unix_ms=self.unix_ms() + lifetime_ms,
            withdrawn=withdrawn, services=() if withdrawn else self.config.services))

    def _register(self, link: _Link) -> None:
        request_id = self._new_request_id()
        self._requests[request_id] = _Request(kind="register")
        self._timer(self._now + self.config.request_timeout, RequestTimer(request_id=request_id))
        self._send(Register(request_id=request_id, record=self._record(link)))

    def _registered(self, link: _Link, message: Registered) -> None:
        request = self._requests.pop(message.request_id, None)
        if request is None:
            return
        if request.kind == "withdraw":
            self._out.append(RequestSettled(request_id=message.request_id))
            return
        if request.kind != "register":  # a contacts request answered wrongly: no contacts
            self._out.append(RequestSettled(request_id=message.request_id))
            return
        if not message.ok:
            self._close(f"{link.url} refused our record: {message.reason}")
            return
        link.registered = True
        self._out.append(HomeChanged(home=link.home, url=link.home_url))
        waiting, self._waiting = self._waiting, []
        for queued in waiting:
            self._send(queued)
        self._timer(self._now + self.config.record_lifetime / RECORD_RENEWALS,
                    RenewTimer(epoch=link.epoch))

    def _contacts(self, message: Contacts) -> None:
        request = self._requests.get(message.request_id)
        if request is None or request.kind != "contacts":
            return
        del self._requests[message.request_id]
        records: dict[PeerId, PeerRecord] = {}
        for raw in message.records:
            try:
                record = open_peer_record(raw, self.unix_ms())
            except RecordRejected:
                continue
            # (The service is checked here too: a signaller that predates the
            # filter answers any peers.)  One record per peer, its newest: a
            # signaller may list a peer twice, and two dials to one peer waste one.
            kept = records.get(record.peer_id)
            if (record.peer_id != self.peer_id and not record.withdrawn
                    and (not request.service or request.service in record.services)
                    and (kept is None or record.seq > kept.seq)):
                records[record.peer_id] = record
        self._out.append(RequestSettled(request_id=message.request_id,
                                        records=tuple(records.values())))

    def _relay(self, message: Relay) -> None:
        try:
            session = open_session(message.session)
        except RecordRejected:
            return  # a badly signed session message is dropped
        if session.to_peer != self.peer_id:
            return
        if session.kind is SessionKind.OFFER:
            self._out.append(OfferReceived(from_peer=session.from_peer,
                                           session_id=session.session_id, sdp=session.sdp))
        elif session.kind is SessionKind.ANSWER and session.session_id in self._offers:
            self._settle(session.session_id, session.sdp, "")
        elif session.kind is SessionKind.REJECT and session.session_id in self._offers:
            self._settle(session.session_id, None,
                         f"{session.from_peer} refused the offer: {session.sdp}", rejected=True)

    def _settle(self, session_id: bytes, answer: str | None, failure: str, *,
                rejected: bool = False) -> None:
        del self._offers[session_id]
        self._out.append(OfferSettled(session_id=session_id, answer=answer, failure=failure,
                                      rejected=rejected))

    def _session(self, peer: PeerId, session_id: bytes, kind: SessionKind, sdp: str) -> None:
        envelope = seal_session(self.identity, SessionDescription(
            from_peer=self.peer_id, to_peer=peer, session_id=session_id, kind=kind, sdp=sdp,
            created_unix_ms=self.unix_ms()))
        self._queue(Relay(target_peer=peer, session=envelope, hops_left=0))

    def _queue(self, message: SignalMessage) -> None:
        """Send now when registered, else once registered (bounded)."""
        if self.link is not None and self.link.registered:
            self._send(message)
        elif len(self._waiting) < 2 * self.config.max_pending_sessions:
            self._waiting.append(message)

    def _send(self, message: SignalMessage) -> None:
        """Send on the home's link (always up here: sends follow its hello)."""
        link = self.link
        assert link is not None and link.link is not None and link.home is not None
        self._out.append(Send(peer=link.home, message=message, link=link.link))

    def _close(self, reason: str) -> None:
        """Leave the home's link at once (the runner reports it down)."""
        link = self.link
        assert link is not None and link.link is not None and link.home is not None
        self._out.append(CloseLink(peer=link.home, link=link.link, failed=True, reason=reason))

    def _timer(self, at: float, timer: ClientTimer) -> None:
        self._out.append(SetTimer(at=at, timer=timer))

    def _new_request_id(self) -> int:
        self._next_request = (self._next_request + 1) % (1 << 64)
        return self._next_request

    def unix_ms(self) -> int:
        return math.floor((self.unix_epoch + self._now) * 1000)

    def _flush(self) -> list[ClientAction]:
        out, self._out = self._out, []
        return out

