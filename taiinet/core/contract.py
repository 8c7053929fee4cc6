# taiinet: sans-io core
"""What a protocol core takes in: the input methods a runner calls.

Theory of operation
-------------------
A core is a plain object, built with its peer id, a seeded
``random.Random`` and a frozen config.  The runner (the trio runner or the
simulation harness) calls its input methods, always with the current time
``now`` (seconds, monotonic, from the runner's clock), and carries out the
list of actions each returns, in order, before the next input (see
``taiinet.core.actions``).  Nothing in a core blocks, reads a clock or does
I/O, so the simulator runs the very code that ships.

Inputs every core takes (``Core``):

* ``start(now)``: once, before any other input; arms the core's timers.
* ``handle_message(peer, message, now)``: a decoded, validated domain
  message from ``peer`` (its id proven by the link's handshake).  A message
  that breaks the protocol raises a ``RemoteProtocolError`` subclass and
  changes nothing; the runner logs it and closes the link.
* ``handle_timer(timer, now)``: a timer the core set with ``SetTimer`` is
  due.
* ``handle_link_down(peer, now)``: the link to ``peer`` failed, closed, or
  could not be opened (a ``Send`` to it failed).

Inputs of cores that care about links (``LinkObserver``):

* ``handle_link_up(peer, address, now)``: a link to ``peer`` is open
  (authenticated); ``address`` is the remote network address if known.
* ``heard_from(peer, now)``: any frame came from ``peer`` (a ``Pong`` too):
  the link is alive.  Returns nothing: it is the hottest input.

A core that budgets its peers (``FrameAdmission``) is asked first about
every link frame: ``admit_frame(peer, size, messages, now)`` returns ``None``
to process it, or the actions to carry out instead (drop it; maybe close).

Commands (publish, look up, subscribe) are the core's own methods, also
taking ``now``.  A command returns ``list[Action]``, or, when it starts an
operation the caller hears about later, ``Started(id, actions)``: the id
is never hidden in the action list nor read back from a field afterwards.
Where the caller can name the operation itself (a broadcast's message id),
it passes the id in instead.

Composition: a core that owns another (pubsub owns the overlay) feeds it
through these same methods and passes its actions up, reacting to the
neighbour events on the way; it never writes the inner core's fields.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

from taiinet.wire.peer_id import PeerId

#: Message and timer types a core accepts, and the action type it returns.
MessageT = TypeVar("MessageT", contravariant=True)
TimerT = TypeVar("TimerT", contravariant=True)
ActionT = TypeVar("ActionT")


class Core(Protocol[MessageT, TimerT, ActionT]):
    """The inputs every protocol core takes (see the module docstring)."""

    def start(self, now: float) -> list[ActionT]:
        """Arm the timers; called once, first."""
        ...

    def handle_message(self, peer: PeerId, message: MessageT, now: float) -> list[ActionT]:
        """One validated message from ``peer``."""
        ...

    def handle_timer(self, timer: TimerT, now: float) -> list[ActionT]:
        """A timer set with ``SetTimer(at, timer)`` is due (it may be stale)."""
        ...

    def handle_link_down(self, peer: PeerId, now: float) -> list[ActionT]:
        """The link to ``peer`` failed, closed, or could not be opened."""
        ...


@runtime_checkable
class LinkObserver(Protocol[ActionT]):
    """A core that wants to know when links open and when they are alive."""

    def handle_link_up(self, peer: PeerId, address: str | None, now: float) -> list[ActionT]:
        """A link to ``peer`` is open; ``address``: its remote address, if known."""
        ...

    def heard_from(self, peer: PeerId, now: float) -> None:
        """A frame came from ``peer``: its link is alive."""
        ...


@runtime_checkable
class FrameAdmission(Protocol[ActionT]):
    """A core that budgets what each peer may send."""

    def admit_frame(self, peer: PeerId, size: int, messages: int,
                    now: float) -> list[ActionT] | None:
        """``None``: process the frame; a list: drop it and carry these out."""
        ...
