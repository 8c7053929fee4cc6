# taiinet: sans-io core
"""Cores that tell links apart: the inputs of a core that names links, not peers.

Theory of operation
-------------------
Most cores name peers, and their runner keeps one link per peer id.  A core
that may hold two links to one peer id at once names links instead: a
signaller does (a link from a peer that claims to be a signaller and the
dial back that proves the claim; a peer that reconnected before its old link
was reported down; a join through a URL whose peer id is not known yet).
It takes the same actions as every core (``taiinet.core.actions``), with:

* ``Send(peer, message, link=...)``: on that link only; dropped if it is gone;
* ``CloseLink(peer, link=..., failed=...)``: closes that link; the runner
  reports ``handle_link_down(link)`` once it is closed, ``failed`` or not;
* ``Dial(address, peer)``: open a link to ``address`` (proving ``peer``
  there, if given), sending nothing yet;
* ``SetTimer`` and output events as for any core.

The runner names each link with a ``LinkId`` it never reuses, and feeds:

* ``handle_link_up(link, peer, address, dialed, now)``: an authenticated link
  to ``peer``; ``dialed`` is the address of the ``Dial`` that opened it
  (``None``: the other side dialed us);
* ``handle_message(link, message, now)``: a decoded message on ``link``;
* ``handle_link_down(link, now)``: ``link`` closed or failed;
* ``handle_dial_failed(address, peer, now)``: a ``Dial`` reached nothing (or
  not ``peer``);
* ``start(now)`` and ``handle_timer(timer, now)`` as for any core.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from taiinet.core.actions import LinkId
from taiinet.wire.peer_id import PeerId

MessageT = TypeVar("MessageT", contravariant=True)
TimerT = TypeVar("TimerT", contravariant=True)
ActionT = TypeVar("ActionT")

__all__ = ["LinkCore", "LinkId"]


class LinkCore(Protocol[MessageT, TimerT, ActionT]):
    """The inputs of a core that names links (see the module docstring)."""

    def start(self, now: float) -> list[ActionT]:
        """Arm the timers; called once, first."""
        ...

    def handle_link_up(self, link: LinkId, peer: PeerId, address: str | None,
                       dialed: str | None, now: float) -> list[ActionT]:
        """``link`` to ``peer`` is authenticated; ``dialed``: the ``Dial`` address, if ours."""
        ...

    def handle_message(self, link: LinkId, message: MessageT, now: float) -> list[ActionT]:
        """One validated message on ``link``."""
        ...

    def handle_timer(self, timer: TimerT, now: float) -> list[ActionT]:
        """A timer set with ``SetTimer(at, timer)`` is due (it may be stale)."""
        ...

    def handle_link_down(self, link: LinkId, now: float) -> list[ActionT]:
        """``link`` closed, failed, or was closed at the core's request."""
        ...

    def handle_dial_failed(self, address: str, peer: PeerId | None,
                           now: float) -> list[ActionT]:
        """A ``Dial(address, peer)`` reached nothing, or not ``peer``."""
        ...
