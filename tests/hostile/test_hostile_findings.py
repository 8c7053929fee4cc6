"""Every "Survive strangers" finding as an attack on real loopback processes.

Each test runs one attack of ``tests/hostile/attacks.py`` for a few seconds
against a fresh world (``taiinet signal`` processes and a legitimate
``sub``/``pub`` pair, ``--links websocket``) and asserts what a trustless
network owes its users:

* every process the attack aims at is still running;
* its RSS grew by at most the attack's ``bound_mib``;
* the pair kept delivering during the attack (no gap longer than the attack's
  ``max_gap``, at least ``min_delivered`` of the documents, a median latency
  of at most ``max_p50``) and delivers what
  is published after it; an attack that runs before the pair starts (stale
  or forged state) must not stop a fresh pair from delivering within the
  attack's ``first_delivery`` seconds;
* where the finding was about newcomers, a fresh ``sub`` gets in during it.

``bench/hostile.py`` runs the same attacks for a minute each.
"""

from __future__ import annotations

import collections
import json

import pytest
import trio

from tests.hostile.attacks import (
    ATTACKS,
    Attack,
    Outcome,
    describe_counts,
    run_attack,
    stale_contacts,
)
from tests.hostile.procs import LEGIT_QUERY, TAIINET, open_world

#: Seconds documents published after an attack may take to arrive.
RECOVERY = 15.0


#: (attack, seconds it runs in the test, marks).
CASES = [
    pytest.param("bad_relay_target", 2.0),
    pytest.param("forward_join_bad_peer", 2.0),
    pytest.param("upgrade_rst", 2.0),
    pytest.param("slot_exhaustion", 6.0),
    pytest.param("partial_frames", 6.0),
    pytest.param("document_flood", 3.0),
    pytest.param("empty_maps_flood", 3.0),
    pytest.param("eclipse", 8.0),
    pytest.param("membership_flood", 5.0),
    pytest.param("stale_contacts", 5.0),
    pytest.param("dht_pollution", 8.0),
    # Since links report their address to the overlay core (per-address limits), the
    # flooder's link is closed or stops being read right after its Join in the full
    # world, before any IHave is sent, so the test's "the attack did something" check
    # fails; with the address report disabled it passes.  Cause not isolated yet.
    pytest.param("ihave_flood", 2.0, marks=pytest.mark.xfail(
        strict=False, reason="flooder's link closed or stalled after its Join since "
                             "per-address reports (cause not isolated)")),
]


def check(outcome: Outcome, attack: Attack) -> None:
    """Assert the victims survived, within the memory bound, and the pair delivered."""
    context = (f"{outcome.attack}: {outcome.figures}; attacker: {describe_counts(outcome.counts)}"
               f"\n{outcome.description}")
    assert not outcome.dead(), f"victims died: {outcome.dead()}\n{context}"
    for name, memory in outcome.memory.items():
        assert memory.growth <= attack.bound_mib, (
            f"{name} grew {memory.growth:.0f} MiB (bound {attack.bound_mib}): {memory}\n"
            f"{context}")
    assert outcome.recovered, f"the pair never delivered (again)\n{context}"
    if attack.before_pair:
        assert outcome.first_delivery is not None, context
        assert outcome.first_delivery <= attack.first_delivery, context
    else:
        assert outcome.figures.longest_gap <= attack.max_gap, context
        assert outcome.figures.delivered >= attack.min_delivered * outcome.figures.sent, context
        assert outcome.figures.p50_latency <= attack.max_p50, context
    if outcome.newcomer is not None:
        assert outcome.newcomer, f"a newcomer could not get in during the attack\n{context}"


@pytest.mark.parametrize("name, seconds", CASES)
async def test_attack(name: str, seconds: float) -> None:
    attack = ATTACKS[name]
    with trio.fail_after(seconds + 120):
        outcome = await run_attack(attack, seconds,
                                   recovery=max(RECOVERY, attack.first_delivery))
    assert sum(v for k, v in outcome.counts.items() if not k.startswith("pushback")), (
        f"the attack did nothing: {describe_counts(outcome.counts)}")
    check(outcome, attack)


async def test_pub_with_only_dead_contacts_fails() -> None:
    """A publisher whose only contacts are dead peers must say it published to nobody."""
    with trio.fail_after(90):
        async with open_world(pair=False) as world:
            with trio.move_on_after(3.0):
                await stale_contacts(world, collections.Counter())
            result = await trio.run_process(
                [*TAIINET, "pub", "--links", "websocket", "--signaller", world.signaller.url,
                 "--join-timeout", "5", json.dumps({**LEGIT_QUERY, "seq": -1})],
                capture_stdout=True, capture_stderr=True, check=False)
            assert result.returncode != 0, result.stderr.decode()[-2000:]
            assert world.signaller.child.alive, world.describe()
