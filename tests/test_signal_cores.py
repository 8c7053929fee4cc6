"""The signalling cores alone: no trio, no sockets; inputs with ``now``, actions out."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.core.actions import CloseLink, Dial, LinkId, Send, SetTimer, Started
from taiinet.signal import client_core as cc
from taiinet.signal.client_core import SignalClientConfig, SignalClientCore
from taiinet.signal.codec import (
    Contacts,
    Dht,
    GetContacts,
    Hello,
    Register,
    Registered,
    Relay,
    RelayFailed,
    Role,
    SignalMessage,
)
from taiinet.signal.contacts import ContactsJob, merge_contacts
from taiinet.signal.dht_types import DhtRecord, Store
from taiinet.signal.ids import id_bytes, node_id
from taiinet.signal.pace import ProtocolViolation, ReadPace
from taiinet.signal.records import (
    PeerRecord,
    SessionDescription,
    SessionKind,
    seal_peer_record,
    seal_session,
)
from taiinet.signal.signaller_config import SignallerConfig
from taiinet.signal.signaller_core import SignallerCore
from taiinet.signal.signaller_timers import SignallerAction
from taiinet.wire.identity import Identity

EPOCH = 1_800_000_000.0
URL = "sim://home"
HOME = Identity.from_seed(b"h" * 32)
OTHER = Identity.from_seed(b"o" * 32)
ALICE = Identity.from_seed(b"a" * 32)
BOB = Identity.from_seed(b"b" * 32)
THIRD = Identity.from_seed(b"t" * 32)


def signaller(config: SignallerConfig | None = None) -> SignallerCore:
    return SignallerCore(peer_id=HOME.peer_id, url=URL, config=config or SignallerConfig(),
                         rng=random.Random(1), now=0.0, unix_epoch=EPOCH)


def record(identity: Identity, *, seq: int = 1, home: Identity = HOME, url: str = URL,
           withdrawn: bool = False) -> bytes:
    return seal_peer_record(identity, PeerRecord(
        peer_id=identity.peer_id, signaller_peer_id=home.peer_id, signaller_url=url,
        addresses=(), seq=seq, expires_unix_ms=int(EPOCH * 1000) + 60_000,
        withdrawn=withdrawn))


def offer(source: Identity, target: Identity, sid: bytes = bytes(16)) -> Relay:
    envelope = seal_session(source, SessionDescription(
        from_peer=source.peer_id, to_peer=target.peer_id, session_id=sid,
        kind=SessionKind.OFFER, sdp="v=0", created_unix_ms=int(EPOCH * 1000)))
    return Relay(target_peer=target.peer_id, session=envelope, hops_left=0)


def sent(actions: list[SignallerAction], link: int) -> list[SignalMessage]:
    return [a.message for a in actions if isinstance(a, Send) and a.link == link]


def closed(actions: list[SignallerAction]) -> list[int]:
    return [a.link for a in actions if isinstance(a, CloseLink)]


def homed_peer(core: SignallerCore, link: int, identity: Identity, now: float = 1.0) -> None:
    core.handle_link_up(link, identity.peer_id, None, None, now)
    core.handle_message(link, Hello(role=Role.PEER, listen_url=""), now)
    actions = core.handle_message(link, Register(request_id=7, record=record(identity)), now)
    assert Registered(request_id=7, ok=True, reason="") in sent(actions, link)


# -- signaller core -----------------------------------------------------------


def test_a_link_greets_and_must_say_hello_in_time() -> None:
    core = signaller()
    actions = core.handle_link_up(1, ALICE.peer_id, None, None, 0.0)
    assert sent(actions, 1) == [Hello(role=Role.SIGNALLER, listen_url=URL)]
    timer = next(a for a in actions if isinstance(a, SetTimer))
    assert timer.at == core.config.hello_timeout
    assert closed(core.handle_timer(timer.timer, timer.at)) == [1]
    assert core.links_dropped == 1


def test_the_first_message_must_be_a_hello() -> None:
    core = signaller()
    core.handle_link_up(1, ALICE.peer_id, None, None, 0.0)
    actions = core.handle_message(1, GetContacts(request_id=1, count=1, local_only=False), 0.0)
    assert closed(actions) == [1] and core.links_dropped == 1
    assert core.handle_message(1, Hello(role=Role.PEER, listen_url=""), 0.0) == []


def test_registration_needs_a_higher_sequence_number() -> None:
    core = signaller()
    homed_peer(core, 1, ALICE)
    actions = core.handle_message(1, Register(request_id=8, record=record(ALICE, seq=1)), 2.0)
    assert sent(actions, 1) == [Registered(request_id=8, ok=False,
                                           reason="sequence number not higher")]
    assert core.homed_peers == [ALICE.peer_id] and closed(actions) == []


def test_a_record_of_someone_else_closes_the_link_and_changes_nothing() -> None:
    core = signaller()
    core.handle_link_up(1, ALICE.peer_id, None, None, 0.0)
    core.handle_message(1, Hello(role=Role.PEER, listen_url=""), 0.0)
    actions = core.handle_message(1, Register(request_id=1, record=record(BOB)), 0.0)
    assert closed(actions) == [1] and core.homed_peers == []


def test_a_withdrawal_forgets_the_peer_at_once() -> None:
    core = signaller()
    homed_peer(core, 1, ALICE)
    core.handle_message(1, Register(request_id=9, record=record(ALICE, seq=2, withdrawn=True)),
                        2.0)
    assert core.homed_peers == []


def test_a_relay_between_peers_of_one_home_is_delivered_directly() -> None:
    core = signaller()
    homed_peer(core, 1, ALICE)
    homed_peer(core, 2, BOB)
    relay = offer(ALICE, BOB)
    assert sent(core.handle_message(1, relay, 3.0), 2) == [relay]


def test_a_forged_sender_is_cut_off() -> None:
    core = signaller()
    homed_peer(core, 1, ALICE)
    homed_peer(core, 2, BOB)
    assert closed(core.handle_message(1, offer(BOB, ALICE), 3.0)) == [1]


def test_a_relay_to_an_unknown_peer_fails_once_the_lookup_ends() -> None:
    core = signaller()
    homed_peer(core, 1, ALICE)
    actions = core.handle_message(1, offer(ALICE, BOB, b"s" * 16), 3.0)
    # No other signaller known: the lookup ends at once, nothing found.
    assert sent(actions, 1) == [RelayFailed(target_peer=BOB.peer_id, session_id=b"s" * 16,
                                            reason="target peer not found",
                                            origin_peer=ALICE.peer_id)]
    assert core.inflight_relays() == 0


def test_a_relay_goes_to_the_home_its_record_names_and_retries_a_dead_home() -> None:
    core = signaller()
    homed_peer(core, 1, ALICE)
    # A proven signaller STOREs BOB's record here: BOB is homed at THIRD.
    core.handle_link_up(9, OTHER.peer_id, None, "sim://o", 1.0)
    core.handle_message(9, Hello(role=Role.SIGNALLER, listen_url="sim://o"), 1.0)
    stored = DhtRecord(key=id_bytes(node_id(BOB.peer_id)), seq=1, ttl=60.0,
                       value=record(BOB, home=THIRD, url="sim://t"))
    core.handle_message(9, Dht(message=Store(request_id=1, record=stored),
                               sender_address="sim://o"), 2.0)
    actions = core.handle_message(1, offer(ALICE, BOB, b"t" * 16), 3.0)
    assert Dial(address="sim://t", peer=THIRD.peer_id) in actions
    assert core.inflight_relays() == 1
    # The home cannot be dialed; the second lookup finds nothing newer: the sender hears why.
    actions = core.handle_dial_failed("sim://t", THIRD.peer_id, 4.0)
    for _ in range(10):  # OTHER never answers the lookup: its request times out
        if sent(actions, 1):
            break
        timers = [a for a in actions if isinstance(a, SetTimer)]
        actions = [b for t in sorted(timers, key=lambda t: t.at)
                   for b in core.handle_timer(t.timer, t.at)]
    assert sent(actions, 1) == [RelayFailed(target_peer=BOB.peer_id, session_id=b"t" * 16,
                                            reason="target peer's home unreachable",
                                            origin_peer=ALICE.peer_id)]
    assert core.inflight_relays() == 0


def test_relays_in_flight_are_capped_per_link() -> None:
    core = signaller(SignallerConfig(max_inflight_relays_per_link=1))
    homed_peer(core, 1, ALICE)
    core.handle_link_up(9, OTHER.peer_id, None, "sim://o", 1.0)
    core.handle_message(9, Hello(role=Role.SIGNALLER, listen_url="sim://o"), 1.0)  # proven
    first = core.handle_message(1, offer(ALICE, BOB, b"1" * 16), 2.0)
    assert sent(first, 1) == []  # looking up
    second = core.handle_message(1, offer(ALICE, BOB, b"2" * 16), 2.0)
    assert [m.reason for m in sent(second, 1) if isinstance(m, RelayFailed)] == [
        "signaller busy"]


def test_an_unproven_signaller_claim_is_dialed_back_and_refused_on_failure() -> None:
    core = signaller()
    core.handle_link_up(1, OTHER.peer_id, None, None, 0.0)
    actions = core.handle_message(1, Hello(role=Role.SIGNALLER, listen_url="sim://o"), 0.0)
    assert Dial(address="sim://o", peer=OTHER.peer_id) in actions
    held = core.handle_message(1, GetContacts(request_id=1, count=1, local_only=True), 0.0)
    assert held == []  # held until the claim is settled
    assert closed(core.handle_dial_failed("sim://o", OTHER.peer_id, 1.0)) == [1]


def test_a_proven_claim_releases_what_was_held() -> None:
    core = signaller()
    core.handle_link_up(1, OTHER.peer_id, None, None, 0.0)
    core.handle_message(1, Hello(role=Role.SIGNALLER, listen_url="sim://o"), 0.0)
    core.handle_message(1, GetContacts(request_id=5, count=1, local_only=True), 0.0)
    core.handle_link_up(2, OTHER.peer_id, None, "sim://o", 0.5)  # our dial back
    actions = core.handle_message(2, Hello(role=Role.SIGNALLER, listen_url="sim://o"), 0.5)
    assert Contacts(request_id=5, records=()) in sent(actions, 1)
    assert OTHER.peer_id in core.signallers


def test_a_flood_is_paced_then_dropped() -> None:
    pace = ReadPace(rate=2.0, burst=2.0, byte_rate=1e6, byte_burst=1e6, refilled=0.0)
    assert pace.delay(10, 0.0, 5.0) == 0.0
    assert pace.delay(10, 0.0, 5.0) == 0.0
    assert pace.delay(10, 0.0, 5.0) == pytest.approx(0.5)
    with pytest.raises(ProtocolViolation):
        for step in range(100):
            pace.delay(10, 0.1 * step, 5.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), st.sampled_from([
    Hello(role=Role.PEER, listen_url=""), Hello(role=Role.SIGNALLER, listen_url="sim://x"),
    Register(request_id=1, record=b"junk"), Register(request_id=2, record=record(ALICE)),
    GetContacts(request_id=3, count=40, local_only=False),
    GetContacts(request_id=4, count=2, local_only=True), Contacts(request_id=4, records=()),
    offer(ALICE, BOB), Relay(target_peer=BOB.peer_id, session=b"junk", hops_left=1),
    Registered(request_id=1, ok=True, reason="")])), max_size=20))
def test_any_message_sequence_leaves_the_core_consistent(
        script: list[tuple[int, SignalMessage]]) -> None:
    core = signaller()
    for link in (1, 2, 3):
        core.handle_link_up(link, [ALICE, BOB, OTHER][link - 1].peer_id, None, None, 0.0)
    for step, (link, message) in enumerate(script):
        core.handle_message(link, message, 0.1 * step)
    assert core.inflight_relays() >= 0
    assert all(h.link in core.links for h in core.homed.values())
    for link in (1, 2, 3):
        core.handle_link_down(link, 5.0)
    assert core.homed == {} and core.signallers == {}


# -- client core --------------------------------------------------------------


def client(urls: list[str] | None = None) -> SignalClientCore:
    return SignalClientCore(identity=ALICE, signallers=urls or ["sim://1", "sim://2"],
                            config=SignalClientConfig(), rng=random.Random(1), now=0.0,
                            unix_epoch=EPOCH)


HOME_LINK = LinkId(1)


def registered_client() -> tuple[SignalClientCore, list[cc.ClientAction]]:
    core = client()
    core.start(0.0)
    core.handle_link_up(HOME_LINK, HOME.peer_id, None, "sim://1", 0.1)
    actions = core.handle_message(HOME_LINK, Hello(role=Role.SIGNALLER, listen_url=URL), 0.2)
    register = next(a.message for a in actions if isinstance(a, Send))
    assert isinstance(register, Register)
    return core, core.handle_message(HOME_LINK, Registered(request_id=register.request_id,
                                                           ok=True, reason=""), 0.3)


def test_the_client_fails_over_in_order_with_growing_jittered_backoff() -> None:
    core = client()
    assert core.start(0.0) == [Dial(address="sim://1")]
    now, delays, dialed = 0.0, [], "sim://1"
    for expected in ["sim://2", "sim://1", "sim://2", "sim://1", "sim://2", "sim://1"]:
        timer = next(a for a in core.handle_dial_failed(dialed, None, now)
                     if isinstance(a, SetTimer))
        delays.append(timer.at - now)
        now = timer.at
        assert core.handle_timer(timer.timer, now) == [Dial(address=expected)]
        dialed = expected
    c = core.config
    for failures, delay in enumerate(delays, start=1):
        base = min(c.backoff_max, c.backoff_initial * 2 ** failures)
        assert 0.5 * base <= delay < 1.5 * base


def test_a_home_that_does_not_greet_as_a_signaller_is_left() -> None:
    core = client()
    core.start(0.0)
    core.handle_link_up(HOME_LINK, HOME.peer_id, None, "sim://1", 0.1)
    actions = core.handle_message(HOME_LINK, Hello(role=Role.PEER, listen_url=""), 0.2)
    assert actions == [CloseLink(peer=HOME.peer_id, link=HOME_LINK, failed=True,
                                 reason="the home did not greet as a signaller")]


def test_registration_names_the_announced_url_and_is_renewed() -> None:
    core, actions = registered_client()
    assert cc.HomeChanged(home=HOME.peer_id, url=URL) in actions
    renew = next(a for a in actions if isinstance(a, cc.SetTimer))
    first_seq = core.seq
    again = core.handle_timer(renew.timer, renew.at)
    assert any(isinstance(a, Send) and isinstance(a.message, Register) for a in again)
    assert core.seq > first_seq


def test_a_refused_record_leaves_the_home() -> None:
    core = client()
    core.start(0.0)
    core.handle_link_up(HOME_LINK, HOME.peer_id, None, "sim://1", 0.1)
    register = next(a.message for a in core.handle_message(
        HOME_LINK, Hello(role=Role.SIGNALLER, listen_url=URL), 0.2) if isinstance(a, Send))
    assert isinstance(register, Register)
    actions = core.handle_message(HOME_LINK, Registered(request_id=register.request_id,
                                                        ok=False, reason="full"), 0.3)
    assert [type(a) for a in actions] == [CloseLink]


def test_an_offer_waits_for_a_home_then_times_out() -> None:
    core = client()
    core.start(0.0)
    started = core.send_offer(BOB.peer_id, "v=0", 0.0)
    assert isinstance(started, Started)  # the contract's way to return an id
    session_id, actions = started
    assert not any(isinstance(a, Send) for a in actions)  # queued until registered
    timer = next(a for a in actions if isinstance(a, SetTimer))
    settled = core.handle_timer(timer.timer, timer.at)
    assert settled == [cc.OfferSettled(session_id=session_id, answer=None, failure="timed out")]


def test_an_answer_settles_the_offer() -> None:
    core, _ = registered_client()
    session_id, actions = core.send_offer(BOB.peer_id, "v=0", 1.0)
    assert any(isinstance(a, Send) and isinstance(a.message, Relay) for a in actions)
    answer = seal_session(BOB, SessionDescription(
        from_peer=BOB.peer_id, to_peer=ALICE.peer_id, session_id=session_id,
        kind=SessionKind.ANSWER, sdp="v=0 answer", created_unix_ms=int(EPOCH * 1000)))
    actions = core.handle_message(HOME_LINK, Relay(target_peer=ALICE.peer_id, session=answer,
                                                   hops_left=0), 1.5)
    assert actions == [cc.OfferSettled(session_id=session_id, answer="v=0 answer", failure="")]


def test_a_link_that_went_down_late_does_not_end_its_successor() -> None:
    """Links are named: what is reported of an old link leaves the new one alone."""
    core, _ = registered_client()
    retry = next(a for a in core.handle_link_down(HOME_LINK, 1.0) if isinstance(a, SetTimer))
    [dial] = core.handle_timer(retry.timer, retry.at)
    assert isinstance(dial, Dial)
    later = LinkId(2)
    core.handle_link_up(later, HOME.peer_id, None, dial.address, retry.at)
    # A frame and the down report of the old link, arriving late, change nothing.
    assert core.handle_message(HOME_LINK, Hello(role=Role.SIGNALLER, listen_url=URL),
                               retry.at) == []
    assert core.handle_link_down(HOME_LINK, retry.at) == []
    actions = core.handle_message(later, Hello(role=Role.SIGNALLER, listen_url=URL), retry.at)
    assert [a.link for a in actions if isinstance(a, Send)] == [later]  # registers there


def test_a_contacts_answer_keeps_one_record_per_peer_the_newest() -> None:
    """A signaller listing a peer twice (two versions) costs the client one place, not two."""
    core, _ = registered_client()
    request_id, _ = core.request_contacts(8, "", 1.0)
    records = (record(BOB, seq=2), record(THIRD, seq=1), record(BOB, seq=5), record(BOB, seq=3))
    [settled] = core.handle_message(HOME_LINK, Contacts(request_id=request_id, records=records),
                                    1.5)
    assert isinstance(settled, cc.RequestSettled)
    assert [(r.peer_id, r.seq) for r in settled.records] == [(BOB.peer_id, 5),
                                                             (THIRD.peer_id, 1)]


def test_merged_contacts_list_each_peer_once_with_its_newest_record() -> None:
    """Two signallers holding different versions of one peer's record: the answer has one."""
    job = ContactsJob(job=1, link=LinkId(1), exclude=ALICE.peer_id, request_id=7, count=8,
                      service="", local=[record(BOB, seq=2)],
                      replies=[(record(BOB, seq=4), record(THIRD)), (record(BOB, seq=3),)])
    merged = merge_contacts(job, int(EPOCH * 1000), random.Random(3), {HOME.peer_id})
    assert sorted(merged) == sorted([record(BOB, seq=4), record(THIRD)])
