"""Every hostile signal message, at every extreme, fed to the signaller core.

The protocol decisions of ``test_hostile_signaller`` (which sends the same
cases to a real ``taiinet signal`` process over WebSockets) checked on the
core itself, as its driver feeds it: each case on its own link, as a PEER
and as a proven SIGNALLER, then a contacts request.  A frame that does not
decode closes the link in the driver; one that decodes is either answered
past or closes that link (``CloseLink``), never raises, and the core goes on
serving a well-behaved peer.  No sockets, no clock: it runs in a second.
"""

from __future__ import annotations

import random
import time

from hostile_cases import extreme_cases
from test_hostile_signaller import MAX_CASE_FRAME, PROBE_ID, crafted_cases

from taiinet.core.actions import CloseLink, Dial, LinkId, Send, SetTimer
from taiinet.errors import RemoteProtocolError
from taiinet.signal.codec import (
    Contacts,
    GetContacts,
    Hello,
    Register,
    Registered,
    Role,
    SignalMessage,
    decode_signal,
)
from taiinet.signal.records import PeerRecord, open_peer_record, seal_peer_record
from taiinet.signal.signaller_config import SignallerConfig
from taiinet.signal.signaller_core import SignallerCore
from taiinet.signal.signaller_timers import SignallerAction
from taiinet.v1 import signal_pb2
from taiinet.wire.identity import Identity
from tests.link_support import signal_frame

HOME = Identity.from_seed(b"s" * 32)
MALLORY = Identity.from_seed(b"m" * 32)
ALICE = Identity.from_seed(b"a" * 32)
BOB = Identity.from_seed(b"b" * 32)
URL = "ws://127.0.0.1:1"
#: Where MALLORY claims to listen as a signaller (proven by our dial back).
MALLORY_URL = "ws://127.0.0.1:9"


def sent(actions: list[SignallerAction], link: LinkId) -> list[SignalMessage]:
    return [a.message for a in actions if isinstance(a, Send) and a.link == link]


def closes(actions: list[SignallerAction], link: LinkId) -> bool:
    return any(isinstance(a, CloseLink) and a.link == link for a in actions)


class Probe:
    """One core and the links opened to it, numbered as a driver would."""

    def __init__(self) -> None:
        # Wall-clock epoch: the crafted records expire a minute from the real now.
        self.core = SignallerCore(peer_id=HOME.peer_id, url=URL, config=SignallerConfig(),
                                  rng=random.Random(7), now=0.0, unix_epoch=time.time())
        self.core.start(0.0)
        self.next_link = 0
        self.now = 1.0

    def link(self, identity: Identity, role: Role, dialed: str | None = None) -> LinkId:
        self.next_link += 1
        link = LinkId(self.next_link)
        self.core.handle_link_up(link, identity.peer_id, "198.51.100.7:1", dialed, self.now)
        listen = MALLORY_URL if role is Role.SIGNALLER else ""
        self.core.handle_message(link, Hello(role=role, listen_url=listen), self.now)
        return link

    def settle(self, actions: list[SignallerAction]) -> list[SignallerAction]:
        """Carry ``actions`` on as an empty network would: every dial fails, every
        timer fires in turn; all the actions that came of it."""
        seen: list[SignallerAction] = []
        pending = list(actions)
        timers: list[SetTimer[object]] = []
        while pending or timers:
            if not pending:
                timers.sort(key=lambda t: t.at)
                timer = timers.pop(0)
                self.now = max(self.now, timer.at)
                pending = self.core.handle_timer(timer.timer, self.now)  # type: ignore[arg-type]
                continue
            action = pending.pop(0)
            seen.append(action)
            if isinstance(action, Dial):
                pending += self.core.handle_dial_failed(action.address, action.peer, self.now)
            elif isinstance(action, SetTimer) and action.at < self.now + 60:
                timers.append(action)
        return seen

    def case(self, role: Role, frame: bytes) -> bool:
        """Whether the contacts request after ``frame`` was answered (else the link closed)."""
        link = self.link(MALLORY, role)
        try:
            try:
                message = decode_signal(frame)
            except RemoteProtocolError:
                return False  # the driver closes the link
            actions = [] if message is None else self.core.handle_message(link, message,
                                                                           self.now)
            if closes(actions, link):
                return False
            actions = self.core.handle_message(link, GetContacts(
                request_id=PROBE_ID, count=4, local_only=role is Role.SIGNALLER), self.now)
            answered = any(isinstance(m, Contacts) and m.request_id == PROBE_ID
                           for m in sent(actions, link))
            assert answered or closes(actions, link), "neither answered nor closed"
            return answered
        finally:
            self.core.handle_link_down(link, self.now)
            self.now += 0.001


def all_frames() -> list[tuple[str, bytes]]:
    cases = [(label, signal_frame(pb))
             for label, pb in extreme_cases(signal_pb2.SignalMessage, big_bytes=20_000)]
    cases += crafted_cases(HOME.peer_id)
    return [(label, frame) for label, frame in cases if len(frame) <= MAX_CASE_FRAME]


def test_every_signal_message_at_every_extreme_is_answered_or_cut_off() -> None:
    probe = Probe()
    # MALLORY proves its signaller claim once (we dialed its URL and Noise proved it).
    probe.link(MALLORY, Role.SIGNALLER, dialed=MALLORY_URL)
    assert MALLORY.peer_id in probe.core.signallers
    outcomes = {(label, role): probe.case(role, frame)
                for label, frame in all_frames() for role in (Role.PEER, Role.SIGNALLER)}
    # Both endings happened: the cases reached the core's checks.
    assert any(outcomes.values()) and not all(outcomes.values())
    assert not probe.core.links or list(probe.core.links) == [LinkId(1)]
    # A well-behaved peer still registers, and another peer is handed its record.
    alice = probe.link(ALICE, Role.PEER)
    record = seal_peer_record(ALICE, PeerRecord(
        peer_id=ALICE.peer_id, signaller_peer_id=HOME.peer_id, signaller_url=URL,
        addresses=(), seq=1, expires_unix_ms=int(time.time() * 1000) + 60_000))
    actions = probe.settle(probe.core.handle_message(
        alice, Register(request_id=1, record=record), probe.now))
    assert Registered(request_id=1, ok=True, reason="") in sent(actions, alice)
    bob = probe.link(BOB, Role.PEER)
    actions = probe.settle(probe.core.handle_message(bob, GetContacts(
        request_id=2, count=4, local_only=False), probe.now))
    [contacts] = [m for m in sent(actions, bob) if isinstance(m, Contacts)]
    assert ALICE.peer_id in {open_peer_record(raw, probe.core.unix_ms()).peer_id
                             for raw in contacts.records}


def test_a_peer_that_floods_bad_relays_loses_only_its_link() -> None:
    probe = Probe()
    cases = [frame for label, frame in all_frames() if "relay" in label.lower()]
    assert cases
    dropped_before = probe.core.links_dropped
    for frame in cases:
        probe.case(Role.PEER, frame)
    assert probe.core.links_dropped > dropped_before
    # Relays from links that are gone end when their lookups do: nothing stays in flight.
    probe.settle([])
    assert probe.core.inflight_relays() == 0
