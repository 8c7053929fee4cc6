# taiinet: sans-io core
"""Outputs of the relay-tree core, carried out by a driver (trio or simulator).

Timers are values: the core asks to be woken with ``SetTimer(at, timer)`` and
ignores a timer that no longer matters when it fires; drivers never cancel.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.stream.messages import TreeMessage
from taiinet.wire.peer_id import PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Send ``message`` to ``peer``, opening a link first if there is none.

    If the peer cannot be reached the driver calls ``handle_link_down``.
    """

    peer: PeerId
    message: TreeMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseLink:
    """The tree no longer needs the link to ``peer`` (the driver may close it)."""

    peer: PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentChanged:
    """Media now comes from ``parent`` (``None``: detached, no media until re-adopted)."""

    parent: PeerId | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Backfill:
    """Send the newly adopted ``peer`` the chunks after ``after`` that this node still holds.

    A viewer that lost its parent keeps its place in the stream: its ``Join``
    says the last chunk it holds, and the new parent sends the rest from its
    (bounded) buffer before the live chunks, so a repair shorter than the
    buffer costs delay, not media.
    """

    peer: PeerId
    after: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Evicted:
    """This node removed its child ``peer`` for stalling its own children (log it)."""

    peer: PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class TickTimer:
    """The periodic tick: heartbeats, status, failure and stall detection."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinTimer:
    """A join attempt got no answer in time; ``attempt`` tells stale timers apart."""

    attempt: int


Timer = TickTimer | JoinTimer


@dataclass(frozen=True, slots=True, kw_only=True)
class SetTimer:
    """Call the core's ``handle_timer(timer, now)`` at time ``at``."""

    at: float
    timer: Timer


Action = Send | CloseLink | ParentChanged | Backfill | Evicted | SetTimer
