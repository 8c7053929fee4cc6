# taiinet: sans-io core
"""The signaller core's timer values, its one output event, and its action type.

The signaller core names links, not peers (:mod:`taiinet.core.links`: it may
hold two links to one peer id), and returns the contract's actions
(:mod:`taiinet.core.actions`): ``Send(peer, message, link=...)``,
``CloseLink(peer, link=..., reason=...)`` (``failed``: without a flush),
``Dial(address, peer)`` and ``SetTimer(at, timer)`` with the timers below
(values, never cancelled: one that no longer matters when it fires is
ignored), plus the output event ``Joined``.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.core.actions import CloseLink, Dial, LinkId, Send, SetTimer
from taiinet.signal.codec import SignalMessage
from taiinet.signal.dht_types import DhtTimer as KademliaTimer
from taiinet.wire.peer_id import PeerId

__all__ = [
    "ContactsTimer",
    "DhtTimer",
    "HelloTimer",
    "HomeTimer",
    "JoinTimer",
    "Joined",
    "LookupTimer",
    "SignallerAction",
    "SignallerTimer",
    "VerifyTimer",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Joined:
    """Joining the mesh through ``url`` ended: ``ok`` once a self-lookup ran."""

    url: str
    ok: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DhtTimer:
    """A timer of the Kademlia core (its ``SetTimer``), handed back to it when due."""

    timer: KademliaTimer


@dataclass(frozen=True, slots=True, kw_only=True)
class HelloTimer:
    """A link must have said hello by now."""

    link: LinkId


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupTimer:
    """A lookup the signaller waits on (relay, register, join) gives up now."""

    lookup_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HomeTimer:
    """A relay waiting for the dial to its target's home stops waiting."""

    job: int
    stage: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactsTimer:
    """A contacts fan-out answers with what arrived so far."""

    job: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyTimer:
    """A signaller claim not proven by now is refused."""

    peer: PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinTimer:
    """The link to a join URL had its chance to come up."""

    url: str


SignallerTimer = (DhtTimer | HelloTimer | LookupTimer | HomeTimer | ContactsTimer | VerifyTimer
                  | JoinTimer)

SignallerAction = (Send[SignalMessage] | Dial | CloseLink | SetTimer[SignallerTimer] | Joined)
"""What the signaller core returns: the contract's link actions and ``Joined``."""
