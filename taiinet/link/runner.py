"""The trio runner: runs any sans-I/O core (``taiinet.core``) over the link layer.

Theory of operation
-------------------
One core (which may own others: the pubsub router owns the overlay) and one
``LinkManager``.  Every input is fed to the core synchronously (trio is
cooperative, so no lock is needed) and the actions it returns are carried
out at once, in order:

* ``Send(peer, message)``: the message is encoded by the codec its type is
  registered with (``ProtocolRegistry``) into a link item and queued for
  ``peer`` (``lazy`` ones may wait to share a write, see
  ``taiinet.link.manager``);
* ``SetTimer(at, timer)``: kept in a heap served by one timer task; timers
  are values, never cancelled, and the core ignores stale ones;
* ``CloseLink(peer)``: flush then close, unless a protocol composed beside
  the core still uses the link (``link_keepers``: a stream tree's parent or
  child is often an overlay peer too, and the overlay closing its link would
  cut the stream); with ``failed``, close at once whatever uses it (not
  reported back: the core already counts the link down);
* ``ProbeLink(peer)``: the link layer's ``Ping``;
* anything else is an output event of the core (a delivery, a neighbour
  event): handed, unchanged and in order, to ``on_event``, or to the
  handler a driver registered for its type with ``carry``.

Link events go the other way: items are decoded by their protocol's codec
and passed to that protocol's handler (for the core's own protocols,
``handle_message``, called by ``handle_item`` itself when the protocol has no
``admit``: nearly every item is one, a document); a frame is first offered to the core's
``admit_frame`` (``FrameAdmission``), and every frame admitted is reported
with ``heard_from`` (``LinkObserver``); a link that comes up or goes down is
reported with ``handle_link_up`` / ``handle_link_down``.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import AsyncIterable, Callable
from typing import Any

import trio

from taiinet.core.actions import CloseLink, ProbeLink, Send, SetTimer
from taiinet.core.contract import Core, FrameAdmission, LinkObserver
from taiinet.link.config import LinkConfig
from taiinet.link.manager import Dial, LinkManager
from taiinet.link.registry import Admit, Handle, LinkDown, ProtocolCodec, ProtocolRegistry
from taiinet.link.trace import log as _trace
from taiinet.link.trace import trace_in, trace_out
from taiinet.link.wakeup import Wakeup
from taiinet.transport.connection import Connection
from taiinet.wire.peer_id import PeerId

log = logging.getLogger(__name__)

#: ``on_event(action)``: an output event of the core (not a link action).
OnEvent = Callable[[Any], None]


class Runner:
    """Runs ``core`` over links opened with ``dial``; start ``run`` in a nursery."""

    def __init__(self, core: Core[Any, Any, Any], dial: Dial, *,
                 on_event: OnEvent | None = None,
                 link_config: LinkConfig | None = None) -> None:
        self.core = core
        self.links = LinkManager(dial, self, link_config)
        self.protocols = ProtocolRegistry()
        self._on_event = on_event or _ignore
        self._admission = core if isinstance(core, FrameAdmission) else None
        self._observer = core if isinstance(core, LinkObserver) else None
        self._timers: list[tuple[float, int, Any]] = []
        self._timer_seq = 0
        self._timer_changed = Wakeup()  # reused: no event per timer (``wakeup``)
        self._carry: dict[type, Callable[[Any], None]] = {
            Send: self._send, SetTimer: self._set_timer, CloseLink: self._close,
            ProbeLink: self._probe}
        #: Link frames received over their sender's budget and dropped unread.
        self.frames_refused = 0
        #: The last message sent and its encoded item (messages are immutable; the
        #: reference keeps the object alive, so ``is`` cannot match a new one).
        self._last_sent: object = None
        self._last_item = b""
        #: Set (and forgotten) once the core has taken its next input; see ``stepped``.
        self._stepped: trio.Event | None = None
        #: Asked before a (not failed) ``CloseLink`` is carried out: any that says
        #: True for the peer keeps the link open (the core no longer uses it).
        self.link_keepers: list[Callable[[PeerId], bool]] = []
        #: Protocol id -> decode, for the core's own protocols with no ``admit``:
        #: their items go from ``handle_item`` to the core without the registry's
        #: dispatch (the same steps: decode, ``handle_message``, its actions).
        self._to_core_direct: dict[int, Callable[[bytes], Any]] = {}
        #: Called after every ``apply`` (a driver that keeps something for the
        #: length of one input forgets it there; no subclass wrapping ``apply``).
        self.after_apply: Callable[[], None] | None = None

    def register(self, codec: ProtocolCodec, handle: Handle | None = None,
                 admit: Admit | None = None, link_down: LinkDown | None = None) -> None:
        """Run ``codec``'s protocol beside the others; its messages go to ``handle``
        (by default the core's ``handle_message``, its actions carried out), and
        the end of every link to ``link_down`` (after the core's)."""
        self.protocols.register(codec, handle or self._to_core, admit, link_down)
        if handle is None and admit is None:
            self._to_core_direct[codec.protocol_id] = codec.decode

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; every link is closed on the way out."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.links.run)
            self.apply(self.start_core(trio.current_time()))
            nursery.start_soon(self._timer_task)
            task_status.started()

    def start_core(self, now: float) -> list[Any]:
        """The core's ``start(now)`` (a driver that owes its core more, such as
        the wall clock, passes it here)."""
        return self.core.start(now)

    def add_connection(self, connection: Connection) -> None:
        """Take an incoming (or otherwise opened) connection."""
        self.links.add_connection(connection)

    async def serve(self, listener: AsyncIterable[Connection]) -> None:
        """Add every connection a listener accepts (run it as a task)."""
        async for connection in listener:
            self.add_connection(connection)

    def carry(self, kind: type, handler: Callable[[Any], None]) -> None:
        """Hand the core's output events of type ``kind`` to ``handler`` instead of
        ``on_event`` (a driver's own, frequent events: found by their type, as the
        link actions are, without the call to ``on_event`` and its own dispatch)."""
        self._carry[kind] = handler

    def apply(self, actions: list[Any]) -> None:
        """Carry out a core's actions, in order."""
        self._carry_out(actions, _trace.isEnabledFor(logging.DEBUG))

    def _carry_out(self, actions: list[Any], tracing: bool) -> None:
        """``apply``; ``tracing``: the trace log is on (asked once per input)."""
        carry = self._carry
        if tracing:
            trace_out(actions)
        for action in actions:
            handler = carry.get(type(action))
            if handler is None:
                self._on_event(action)
            else:
                handler(action)
        after = self.after_apply
        if after is not None:
            after()
        stepped = self._stepped
        if stepped is not None:
            self._stepped = None
            stepped.set()

    def stepped(self) -> trio.Event:
        """An event set once the core has taken its next input (a message, a timer,
        a link going down, a local call) and its actions were carried out.

        Every change of the core's state comes with such an input, so a task that
        waits for some state takes this event *before* reading that state, then
        waits on it: no polling, and no change slips between the read and the wait.
        """
        if self._stepped is None:
            self._stepped = trio.Event()
        return self._stepped

    # --- actions -------------------------------------------------------------------

    def _send(self, action: Send[Any]) -> None:
        message = action.message
        if message is not self._last_sent:  # one message to several peers: encoded once
            self._last_item = self.protocols.encode(message)
            self._last_sent = message
        self.links.enqueue(action.peer, self._last_item, urgent=not action.lazy)

    def _set_timer(self, action: SetTimer[Any]) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (action.at, self._timer_seq, action.timer))
        self._timer_changed.set()

    def _close(self, action: CloseLink) -> None:
        if action.failed:
            # A silent neighbour (an unanswered probe or request) or a broken budget.
            self.links.drop(action.peer, why="failed by the core")
        elif not any(keeps(action.peer) for keeps in self.link_keepers):
            self.links.close(action.peer)

    def _probe(self, action: ProbeLink) -> None:
        self.links.probe(action.peer)

    # --- link events (``LinkHandler``) ---------------------------------------------

    def admit_frame(self, peer: PeerId, size: int, items: int, now: float) -> bool:
        if self._admission is None:
            return True
        refused = self._admission.admit_frame(peer, size, items, now)
        if refused is None:
            return True
        self.frames_refused += 1
        self.apply(refused)
        return False

    def heard_from(self, peer: PeerId, now: float) -> None:
        if self._observer is not None:
            self._observer.heard_from(peer, now)

    def handle_item(self, peer: PeerId, protocol: int, body: bytes, now: float) -> None:
        decode = self._to_core_direct.get(protocol)
        if decode is None:
            self.protocols.dispatch(peer, protocol, body, now)
            return
        message = decode(body)
        tracing = _trace.isEnabledFor(logging.DEBUG)
        if tracing:
            trace_in(peer, message)
        self._carry_out(self.core.handle_message(peer, message, now), tracing)

    def handle_link_down(self, peer: PeerId, now: float) -> None:
        log.debug("link down %s", peer[-6:])
        self.apply(self.core.handle_link_down(peer, now))
        self.protocols.link_down(peer, now)

    def handle_link_address(self, peer: PeerId, address: str, now: float) -> None:
        if self._observer is not None:
            self.apply(self._observer.handle_link_up(peer, address, now))

    def _to_core(self, peer: PeerId, message: Any, now: float) -> None:
        trace_in(peer, message)
        self.apply(self.core.handle_message(peer, message, now))

    # --- tasks ------------------------------------------------------------------------

    async def _timer_task(self) -> None:
        while True:
            now = trio.current_time()
            while self._timers and self._timers[0][0] <= now:
                _at, _seq, timer = heapq.heappop(self._timers)
                self.apply(self.core.handle_timer(timer, now))
            self._timer_changed.clear()
            deadline = self._timers[0][0] if self._timers else trio.current_time() + 3600
            with trio.move_on_at(deadline):
                await self._timer_changed.wait()


def _ignore(_action: Any) -> None:
    """Output events of a core nobody listens to."""
