"""The pure bookkeeping of listener budgets: per address, per phase, and held bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taiinet.errors import LocalProtocolError
from taiinet.transport.limits import (
    AddressBudget,
    LinkDeadlines,
    ListenerLimits,
    PartialFrameBudget,
    Ticket,
    budget_key,
)


def test_addresses_are_budgeted_per_ipv4_address_and_ipv6_64() -> None:
    assert budget_key("192.0.2.7") == "192.0.2.7"
    assert budget_key("2001:db8::1") == budget_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert budget_key("2001:db8:0:1::1") != budget_key("2001:db8::1")
    assert budget_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert budget_key("fe80::1%eth0") == "fe80::/64"


def test_one_address_cannot_take_more_than_its_share() -> None:
    budget = AddressBudget(ListenerLimits(max_connections=10, max_unauthenticated_per_address=3,
                                          max_authenticated_per_address=2))
    tickets = [budget.admit("10.0.0.1") for _ in range(3)]
    assert all(tickets) and budget.admit("10.0.0.1") is None
    assert budget.admit("10.0.0.2") is not None  # another address still gets in
    first, second, third = (t for t in tickets if t is not None)
    assert budget.authenticate(first) and budget.authenticate(second)
    assert not budget.authenticate(third)  # two secured links from 10.0.0.1 already
    assert budget.held_by("10.0.0.1") == (1, 2)
    assert budget.admit("10.0.0.1") is not None  # the handshake slots freed up
    budget.release(third)
    budget.release(third)  # idempotent
    assert budget.held_by("10.0.0.1") == (1, 2)


def test_the_listener_limits_hold_across_addresses() -> None:
    budget = AddressBudget(ListenerLimits(max_connections=4, max_unauthenticated=2))
    a, b = budget.admit("10.0.0.1"), budget.admit("10.0.0.2")
    assert a and b and budget.admit("10.0.0.3") is None  # two in the handshake already
    assert budget.authenticate(a) and budget.authenticate(b)
    more = [budget.admit(f"10.0.1.{i}") for i in range(3)]
    assert more[0] and more[1] and more[2] is None  # four in all


@given(st.lists(st.tuples(st.sampled_from(["admit", "auth", "release"]),
                          st.integers(0, 3), st.integers(0, 20)), max_size=80))
def test_budget_counts_stay_consistent(operations: list[tuple[str, int, int]]) -> None:
    limits = ListenerLimits(max_connections=8, max_unauthenticated=5,
                            max_unauthenticated_per_address=2, max_authenticated_per_address=3)
    budget = AddressBudget(limits)
    tickets: list[Ticket] = []
    for operation, address, pick in operations:
        if operation == "admit":
            ticket = budget.admit(f"10.0.0.{address}")
            if ticket is not None:
                tickets.append(ticket)
        elif tickets:
            ticket = tickets[pick % len(tickets)]
            if operation == "auth" and not ticket.authenticated and not ticket.released:
                budget.authenticate(ticket)
            elif operation == "release":
                budget.release(ticket)
        live = [t for t in tickets if not t.released]
        assert budget.total == len(live) <= limits.max_connections
        assert budget.unauthenticated == sum(not t.authenticated for t in live)
        assert budget.unauthenticated <= limits.max_unauthenticated
        for index in range(4):
            unauthenticated, authenticated = budget.held_by(f"10.0.0.{index}")
            assert unauthenticated <= limits.max_unauthenticated_per_address
            assert authenticated <= limits.max_authenticated_per_address


def test_partial_frame_budget_refuses_growth_past_the_limit_only() -> None:
    budget = PartialFrameBudget(100)
    assert budget.hold(1, 60) and budget.hold(2, 40)
    assert not budget.hold(2, 41) and budget.total == 100
    assert budget.hold(1, 10) and budget.hold(2, 90) and budget.total == 100
    assert budget.hold(1, 0) and budget.hold(2, 0) and budget.total == 0


def test_limits_reject_nonsense() -> None:
    with pytest.raises(LocalProtocolError):
        LinkDeadlines(frame=0)
    with pytest.raises(LocalProtocolError):
        ListenerLimits(max_unauthenticated_per_address=0)
