# taiinet: sans-io core
"""Outputs and timers of the signaller core, carried out by a driver (trio or simulator).

The core contract's shape (:mod:`taiinet.core`, docs/cores.md): every input
takes ``now`` and returns a list of these, in the order they must be carried
out; timers are the contract's ``SetTimer(at, timer)`` values, never
cancelled, and a timer that no longer matters when it fires is ignored.

Departure from the contract: a signaller may hold two links to one peer id
(a signaller's link and the dial back that proves its claim, or a peer that
reconnected before its old link was reported down), so its ``Send`` and
``CloseLink`` name a link (``LinkId``, an integer the driver chooses when it
reports the link up), not a peer, and ``Dial`` asks for a link to a URL.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.core.actions import SetTimer
from taiinet.signal.codec import SignalMessage
from taiinet.signal.dht_types import DhtTimer as KademliaTimer
from taiinet.wire.peer_id import PeerId

__all__ = [
    "Action",
    "CloseLink",
    "ContactsTimer",
    "DhtTimer",
    "Dial",
    "HelloTimer",
    "HomeTimer",
    "JoinTimer",
    "Joined",
    "LinkId",
    "LookupTimer",
    "Send",
    "SetTimer",
    "Timer",
    "VerifyTimer",
]

LinkId = int


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Queue ``message`` on ``link`` (dropped if that link is gone)."""

    link: LinkId
    message: SignalMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class Dial:
    """Open a link to ``url``; with ``peer``, Noise must prove that peer id there.

    The driver reports the outcome: ``handle_link_up(..., dialed_url=url)``
    or ``handle_dial_failed(url, peer, now)``.
    """

    url: str
    peer: PeerId | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseLink:
    """Close ``link``; the core calls it dropped for ``reason``.

    ``flush``: first send what is queued on it (a refusal saying why), for at
    most the driver's flush timeout.  The driver reports ``handle_link_down``.
    """

    link: LinkId
    reason: str
    flush: bool = False


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


Timer = DhtTimer | HelloTimer | LookupTimer | HomeTimer | ContactsTimer | VerifyTimer | JoinTimer


Action = Send | Dial | CloseLink | Joined | SetTimer[Timer]
