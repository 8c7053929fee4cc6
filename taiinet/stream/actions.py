# taiinet: sans-io core
"""Outputs of the relay-tree core, carried out by a driver (trio or simulator).

The core contract's actions (``taiinet.core``, docs/cores.md): ``Send`` of a
``TreeMessage``, ``SetTimer`` of the tree's timers (values, never cancelled:
the core ignores a stale one when it fires) and ``CloseLink`` (the tree no
longer needs the link: idle for ``link_idle_timeout``, a silent or evicted
child, or the stream left; the node's driver closes it unless another stream
or the overlay still uses it, see ``taiinet.stream.service``); and the
tree's own output events and timers, below.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.core.actions import CloseLink, Send, SetTimer
from taiinet.stream.messages import TreeMessage
from taiinet.wire.peer_id import PeerId


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


Action = Send[TreeMessage] | CloseLink | ParentChanged | Backfill | Evicted | SetTimer[Timer]
