# taiinet: sans-io core
"""Deadlines and budgets of links: what a stranger may hold, and for how long.

Every phase of a link has a deadline, so a peer that stops half-way (a
trickled HTTP upgrade, a Noise handshake never finished, a frame started and
never completed, a link left silent) loses its link instead of holding a slot
and buffers.  A listener also budgets its connections per remote address, so
one address cannot fill the listener.  The values are documented in
docs/protocol.md ("Deadlines and budgets"); a peer that wants to keep its link
must stay inside them.

``AddressBudget`` is the pure bookkeeping of the per-address budget; the
WebSocket listener drives it.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field

from taiinet.errors import LocalProtocolError

#: Seconds the whole Noise XX handshake may take.
DEFAULT_HANDSHAKE_TIMEOUT = 5.0
#: Seconds we wait for each Noise handshake message of the peer.
DEFAULT_HANDSHAKE_MESSAGE_TIMEOUT = 3.0
#: Seconds a frame, once its first byte arrived, has to arrive whole.
DEFAULT_FRAME_TIMEOUT = 10.0
#: Seconds an accepted link may stay silent (no frame) before it is closed.
#: Node links carry overlay Pings every 2 s; signal links send a Ping frame
#: every ``taiinet.signal`` keep-alive interval (20 s).
DEFAULT_IDLE_TIMEOUT = 60.0
#: Seconds a TCP client has to send a complete HTTP upgrade request.
DEFAULT_UPGRADE_TIMEOUT = 5.0
#: Clients a listener serves at once (upgrading, handshaking, waiting or accepted).
DEFAULT_MAX_CONNECTIONS = 1024
#: Clients in the HTTP upgrade or the Noise handshake at once, from all addresses.
DEFAULT_MAX_UNAUTHENTICATED = 256
#: Clients in the HTTP upgrade or the Noise handshake at once, from one address.
DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS = 32
#: Secured links from one address at once.
DEFAULT_MAX_AUTHENTICATED_PER_ADDRESS = 128
#: Secured connections waiting for ``accept`` before new clients wait in the handshake.
DEFAULT_ACCEPT_BACKLOG = 16
#: Bytes all of a listener's links may hold in partial frames (and Noise messages) at once.
DEFAULT_MAX_PARTIAL_FRAME_BYTES = 64 * 1024 * 1024
#: IPv6 addresses are budgeted per prefix of this length (one host owns a /64).
IPV6_BUDGET_PREFIX = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkDeadlines:
    """Seconds a peer has for each phase of a secured link (``None``: no deadline)."""

    #: The whole Noise handshake, from the first byte.
    handshake: float = DEFAULT_HANDSHAKE_TIMEOUT
    #: Each handshake message we wait for.
    handshake_message: float = DEFAULT_HANDSHAKE_MESSAGE_TIMEOUT
    #: A frame started (a partial Noise message or frame held) must complete in this time
    #: of waiting for it.
    frame: float | None = DEFAULT_FRAME_TIMEOUT
    #: A ``receive`` waiting this long for a frame closes the link (``IdleTimeout``).
    idle: float | None = None

    def __post_init__(self) -> None:
        for name in ("handshake", "handshake_message", "frame", "idle"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise LocalProtocolError(f"LinkDeadlines.{name} must be positive, not {value}")


#: Deadlines of links a listener accepts: the idle deadline is on.
LISTENER_DEADLINES = LinkDeadlines(idle=DEFAULT_IDLE_TIMEOUT)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerLimits:
    """Deadlines and connection budgets of one listener."""

    #: Seconds to receive the HTTP upgrade request (slowloris bound).
    upgrade_timeout: float = DEFAULT_UPGRADE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_unauthenticated: int = DEFAULT_MAX_UNAUTHENTICATED
    max_unauthenticated_per_address: int = DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS
    max_authenticated_per_address: int = DEFAULT_MAX_AUTHENTICATED_PER_ADDRESS
    accept_backlog: int = DEFAULT_ACCEPT_BACKLOG
    #: Bytes of partial frames held across all links; a link that would go past it is closed.
    max_partial_frame_bytes: int = DEFAULT_MAX_PARTIAL_FRAME_BYTES
    deadlines: LinkDeadlines = field(default_factory=lambda: LISTENER_DEADLINES)

    def __post_init__(self) -> None:
        if not self.upgrade_timeout > 0:
            raise LocalProtocolError("ListenerLimits.upgrade_timeout must be positive")
        for name in ("max_connections", "max_unauthenticated",
                     "max_unauthenticated_per_address", "max_authenticated_per_address",
                     "max_partial_frame_bytes"):
            if getattr(self, name) < 1:
                raise LocalProtocolError(f"ListenerLimits.{name} must be at least 1")
        if self.accept_backlog < 0:
            raise LocalProtocolError("ListenerLimits.accept_backlog must be >= 0")


def budget_key(address: str) -> str:
    """The unit an address is budgeted by: the IPv4 address, or the IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if ip.is_loopback:
            return str(ip)  # "::1", recognisably loopback (its /64 would not be)
        return str(ipaddress.IPv6Network((ip, IPV6_BUDGET_PREFIX), strict=False))
    return str(ip)


@dataclass(slots=True)
class Ticket:
    """One admitted connection; hand it back to ``AddressBudget.release``."""

    key: str
    authenticated: bool = False
    released: bool = False


class AddressBudget:
    """Counts a listener's connections, in all and per address, in both phases.

    ``admit`` a new TCP connection (unauthenticated), ``authenticate`` it once
    its Noise handshake is done, ``release`` it when it ends.  A refusal changes
    nothing.
    """

    def __init__(self, limits: ListenerLimits) -> None:
        self.limits = limits
        self._unauthenticated: Counter[str] = Counter()
        self._authenticated: Counter[str] = Counter()
        self.total = 0
        self.unauthenticated = 0

    def admit(self, address: str) -> Ticket | None:
        key = budget_key(address)
        limits = self.limits
        if (self.total >= limits.max_connections
                or self.unauthenticated >= limits.max_unauthenticated
                or self._unauthenticated[key] >= limits.max_unauthenticated_per_address):
            return None
        self._unauthenticated[key] += 1
        self.unauthenticated += 1
        self.total += 1
        return Ticket(key=key)

    def authenticate(self, ticket: Ticket) -> bool:
        """Move ``ticket`` to the authenticated budget; ``False`` if its address is full."""
        if ticket.released or ticket.authenticated:
            raise LocalProtocolError("authenticate takes an unauthenticated, unreleased ticket")
        if self._authenticated[ticket.key] >= self.limits.max_authenticated_per_address:
            return False
        self._drop(self._unauthenticated, ticket.key)
        self.unauthenticated -= 1
        self._authenticated[ticket.key] += 1
        ticket.authenticated = True
        return True

    def release(self, ticket: Ticket) -> None:
        if ticket.released:
            return
        ticket.released = True
        self.total -= 1
        if ticket.authenticated:
            self._drop(self._authenticated, ticket.key)
        else:
            self._drop(self._unauthenticated, ticket.key)
            self.unauthenticated -= 1

    def held_by(self, address: str) -> tuple[int, int]:
        """(unauthenticated, authenticated) connections of ``address``'s budget."""
        key = budget_key(address)
        return self._unauthenticated[key], self._authenticated[key]

    @staticmethod
    def _drop(counter: Counter[str], key: str) -> None:
        counter[key] -= 1
        if counter[key] <= 0:
            del counter[key]


class PartialFrameBudget:
    """Bytes that links hold in incomplete frames, in all, against one limit.

    Each link reports what it holds after every read (``hold``); a report that
    would take the total past ``limit`` is refused and the link must close
    (then report 0), so many links each holding a large partial frame cannot
    add up to more than ``limit``.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise LocalProtocolError("PartialFrameBudget limit must be >= 0")
        self.limit = limit
        self.total = 0
        self._held: dict[int, int] = {}

    def hold(self, link: int, held: int) -> bool:
        """Record that ``link`` now holds ``held`` bytes; ``False`` (nothing changed) if
        that goes past the limit.  Shrinking is always accepted."""
        before = self._held.get(link, 0)
        total = self.total - before + held
        if held > before and total > self.limit:
            return False
        self.total = total
        if held:
            self._held[link] = held
        else:
            self._held.pop(link, None)
        return True
