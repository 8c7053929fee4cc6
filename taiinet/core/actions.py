# taiinet: sans-io core
"""The actions every protocol core returns, and the runner carries out.

One vocabulary for all cores (overlay, pubsub, DHT, history, streams,
signalling), so one trio runner and one simulation harness run any of them:

* ``Send(peer, message)``: send a domain message (the runner finds its codec
  by the message's type); ``lazy`` ones may wait to share a link write,
  ``address`` says where to dial when there is no link yet.
* ``SetTimer(at, timer)``: call ``handle_timer(timer, now)`` at ``at``.
  Timers are values, never cancelled: a core ignores one that no longer
  matters when it fires (compare a sequence number or a deadline it keeps).
* ``CloseLink(peer)``: the core no longer needs the link; ``failed`` closes
  at once (the peer is dead, hung or misbehaving), without a flush.
* ``Dial(address, peer)``: open a link and send nothing yet (a core that
  tells links apart, ``taiinet.core.links``); ``Send`` and ``CloseLink``
  name such a link with ``link``.
* ``ProbeLink(peer)``: check that the link is alive (a link-level ping).
* ``NeighborUp(peer)`` / ``NeighborDown(peer)``: a membership core's
  neighbour set changed.  Every ``NeighborUp`` is followed, eventually, by
  one ``NeighborDown`` of the same peer, never two ``Up``s in a row: layers
  above (and the application) follow the neighbour set from these events,
  they never poll it.

Any other action a core returns is an *output event* of that core
(a delivery to the application, a lookup that finished, a source that
failed): the runner hands it, unchanged and in order, to whoever runs the
core.  ``Started(id, actions)`` is how a command returns the id of what it
started (see ``taiinet.core.contract``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, NamedTuple, NewType, TypeVar

from taiinet.core.frozen import quick_init
from taiinet.wire.peer_id import PeerId

#: A core's message type (what ``Send`` carries), and its timer type.
M = TypeVar("M", covariant=True)
T = TypeVar("T", covariant=True)
#: The id type of ``Started``, and the action type of its list.
I = TypeVar("I")  # noqa: E741 - the id type
A = TypeVar("A")

LinkId = NewType("LinkId", int)
"""The runner's name for one link, for cores that tell links apart (a signaller
may hold two links to one peer id at once): given in the core's
``handle_link_up``, used in ``Send.link`` and ``CloseLink.link``, never reused
while the runner lives (``taiinet.core.links``)."""


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Send(Generic[M]):
    """Send ``message`` to ``peer``, opening a link first if there is none.

    If ``peer`` cannot be reached, or the link fails later, the runner calls
    the core's ``handle_link_down(peer, now)``.  ``lazy``: the message may
    wait (briefly, as the core's pacing says) to share a link write with later
    ones; nothing that decides delivery latency is lazy.  ``address``: where
    to dial ``peer`` when there is no link (a signaller's URL); ``None``: the
    runner knows how to reach it (through signalling, or an open link).
    ``link``: send on that very link (``peer`` is the one it is to), or drop
    the message if it is gone; never dials (``taiinet.core.links``).
    """

    peer: PeerId
    message: M
    lazy: bool = False
    address: str | None = None
    link: LinkId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetTimer(Generic[T]):
    """Call the core's ``handle_timer(timer, now)`` at time ``at`` (or soon after).

    Never cancelled: the core recognises a stale timer when it fires.
    """

    at: float
    timer: T


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseLink:
    """Close the link to ``peer`` once the messages already sent on it are out.

    With ``failed`` the peer is dead, hung or broke the protocol: close at
    once, without waiting for a flush that may never end (the core already
    counts the link down, so the runner does not report it back).
    ``reason`` is for the log.  ``link``: close that very link (to ``peer``);
    a core that names links hears ``handle_link_down(link)`` once it is closed,
    ``failed`` or not (``taiinet.core.links``).
    """

    peer: PeerId
    failed: bool = False
    reason: str = ""
    link: LinkId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Dial:
    """Open a link to ``address``, sending nothing on it yet.

    With ``peer``, the handshake must prove that peer id there (else the dial
    fails).  For cores that tell links apart (``taiinet.core.links``): the
    runner reports ``handle_link_up(link, peer, address, dialed=address,
    now)``, or ``handle_dial_failed(address, peer, now)``.
    """

    address: str
    peer: PeerId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeLink:
    """Check that the link to ``peer`` is alive (a link-level ``Ping``).

    A live peer answers, and the runner reports that it heard from it
    (``heard_from``, as for any frame from it); a link found dead is reported
    with ``handle_link_down(peer, now)``.
    """

    peer: PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class NeighborUp:
    """``peer`` became a neighbour (HyParView: it entered the active view)."""

    peer: PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class NeighborDown:
    """``peer`` stopped being a neighbour (dropped, disconnected or failed)."""

    peer: PeerId


class Started(NamedTuple, Generic[I, A]):
    """What a command that starts an operation returns: the operation's id and
    the actions to carry out now.

    The id names the operation in the output events that end it (a lookup's
    ``LookupFinished.lookup_id``, a publication's ``Deliver.message_id``).
    A tuple, so ``op_id, actions = core.put(...)`` reads naturally.
    """

    id: I
    actions: list[A]


#: The actions the runner carries out itself; any other is an output event.
LinkAction = Send[object] | SetTimer[object] | CloseLink | ProbeLink | Dial
#: Neighbour events: carried up to the layers above and the application.
NeighborEvent = NeighborUp | NeighborDown
