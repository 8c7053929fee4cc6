"""The trio API as a user meets it: errors come out as raised, subscriptions are channels."""

from __future__ import annotations

import importlib
import pkgutil
import random
import secrets
from collections.abc import AsyncIterator
from typing import cast

import pytest
import trio
import trio.testing

import taiinet
from taiinet._groups import unwrap_own_groups
from taiinet.errors import LocalProtocolError, TaiiNetError
from taiinet.node import NodeConfig, memory_links, open_node, websocket_links
from taiinet.node.errors import (
    InvalidInput,
    NodeClosed,
    NodeError,
    SubscriptionClosed,
    SubscriptionInUse,
    SubscriptionNotOpen,
)
from taiinet.node.links import LinkMeter
from taiinet.signal.api import open_signaller
from taiinet.signal.client import SignalClient
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.errors import DialError
from taiinet.transport.memory import MemoryNetwork
from tests.node_support import ident


class Mine(Exception):
    pass


async def _raise_in(depth: str, error: BaseException) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with open_signaller(transport=transport, identity=ident(1000),
                              rng=random.Random(0)) as sig:
        if depth == "signaller":
            raise error
        async with open_node([sig.url], ident(1), links=memory_links(network),
                             signal_transport=transport, rng=random.Random(1)) as node:
            if depth == "node":
                raise error
            async with node.subscribe({"a": 1}):
                raise error


@pytest.mark.parametrize("depth", ["signaller", "node", "subscription"])
async def test_an_error_in_the_body_comes_out_as_itself(
        depth: str, autojump_clock: trio.testing.MockClock) -> None:
    cause = ValueError("the cause")
    error = Mine("mine")
    error.__cause__ = cause
    with trio.fail_after(30):
        with pytest.raises(Mine) as caught:
            await _raise_in(depth, error)
    assert caught.value is error
    assert caught.value.__cause__ is cause
    assert caught.traceback[-1].name == "_raise_in"  # the body's frame, not a nursery's


async def test_the_users_own_group_comes_out_as_the_same_group(
        autojump_clock: trio.testing.MockClock) -> None:
    group = ExceptionGroup("the user's", [Mine("a"), Mine("b")])
    with trio.fail_after(30):
        with pytest.raises(ExceptionGroup) as caught:
            await _raise_in("node", group)
    assert caught.value is group


@unwrap_own_groups
async def _failing_on_exit() -> AsyncIterator[None]:
    """A context manager whose own background task fails when it is cancelled."""

    async def background() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise RuntimeError("the context manager failed too")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(background)
        await trio.lowlevel.checkpoint()
        try:
            yield
        finally:
            nursery.cancel_scope.cancel()


async def test_a_second_real_error_keeps_the_group(autojump_clock: object) -> None:
    with pytest.raises(ExceptionGroup) as caught:
        async with _failing_on_exit():
            raise Mine("mine")
    assert caught.group_contains(Mine) and caught.group_contains(RuntimeError)


async def test_a_failure_to_start_comes_out_as_itself(autojump_clock: object) -> None:
    transport = MemorySignalTransport(MemoryNetwork())
    with pytest.raises(NodeError, match="no signaller"):
        async with open_node(["mem://nobody"], ident(1), links=memory_links(MemoryNetwork()),
                             signal_transport=transport, rng=random.Random(1),
                             config=NodeConfig(register_timeout=2.0)):
            pass


async def test_a_subscription_is_a_trio_receive_channel_with_typed_misuse_errors(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    with trio.fail_after(30):
        async with open_signaller(transport=transport, identity=ident(1000)) as sig, \
                open_node([sig.url], ident(1), links=memory_links(network),
                          signal_transport=transport, rng=random.Random(1)) as node:
            sub = node.subscribe({"n": {"$exists": True}})
            assert isinstance(sub, trio.abc.ReceiveChannel)
            with pytest.raises(InvalidInput, match="at least one"):
                node.subscribe({"n": 1}, buffer=-1)
            with pytest.raises(SubscriptionNotOpen, match="async with"):
                async for _ in sub:
                    pass
            with pytest.raises(SubscriptionNotOpen):
                await sub.receive()
            with pytest.raises(SubscriptionInUse):
                sub.clone()
            async with sub:
                with pytest.raises(SubscriptionInUse, match="nested"):
                    async with sub:
                        pass
                await node.publish({"n": 1})  # the outer one is still open
                assert (await sub.receive()).data == {"n": 1}
            with pytest.raises(SubscriptionClosed) as closed:
                await sub.receive()
            assert isinstance(closed.value, trio.ClosedResourceError)
            with pytest.raises(SubscriptionClosed):
                await sub.__aenter__()

            woken: list[BaseException] = []

            async def blocked_reader() -> None:
                try:
                    await other.receive()
                except SubscriptionClosed as exc:
                    woken.append(exc)

            async with node.subscribe({"n": {"$exists": True}}) as other, \
                    trio.open_nursery() as nursery:
                nursery.start_soon(blocked_reader)
                await trio.testing.wait_all_tasks_blocked()
                await other.aclose()  # a reader blocked in receive() wakes with the error
            assert len(woken) == 1
            last = node.subscribe({"n": {"$exists": True}})
            await last.__aenter__()
            await node.publish({"n": 2})
            await trio.testing.wait_all_tasks_blocked()
    # The node closed: what was queued is still read, then ``async for`` ends.
    assert [m.data async for m in last] == [{"n": 2}]
    with pytest.raises(trio.EndOfChannel):
        await last.receive()
    with pytest.raises(NodeClosed):
        await node.subscribe({"n": 1}).__aenter__()


async def test_an_equal_document_published_twice_is_two_messages_drawn_without_secrets(
        autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nonces come from the node's own generator, seeded once (not a system call each)."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    with trio.fail_after(30):
        async with open_signaller(transport=transport, identity=ident(1000)) as sig, \
                open_node([sig.url], ident(1), links=memory_links(network),
                          signal_transport=transport, rng=random.Random(1)) as node, \
                node.subscribe({"n": 1}) as sub:

            def no_secrets(_bits: int) -> int:
                raise AssertionError("a publication drew from secrets")

            monkeypatch.setattr(secrets, "randbits", no_secrets)
            ids = [await node.publish({"n": 1}), await node.publish({"n": 1})]
            assert [(await sub.receive()).id for _ in ids] == ids
            assert ids[0] != ids[1]


def test_every_error_of_the_package_is_exported_from_the_root() -> None:
    missing: list[str] = []
    for module_info in pkgutil.walk_packages(taiinet.__path__, "taiinet."):
        if module_info.name.startswith(("taiinet.v1", "taiinet.cli")):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (isinstance(value, type) and issubclass(value, TaiiNetError)
                    and value.__module__ == module.__name__
                    and (getattr(taiinet, name, None) is not value or name not in taiinet.__all__)):
                missing.append(f"{value.__module__}.{name}")
    assert missing == []
    assert issubclass(taiinet.SubscriptionNotOpen, LocalProtocolError)


class _AnsweringSignal:
    """Stands in for a SignalClient whose every offer gets ``answer``."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    async def send_offer(self, peer_id: str, sdp: str) -> str:
        assert sdp.startswith("taiinet-ws:ws://")
        return self.answer


@pytest.mark.parametrize(("answer", "reason"), [
    ("taiinet-ws:wss://" + "a" * 300, "no usable"),
    ("taiinet-ws:http://example.org", "no usable"),
    ("v=0", "no usable"),
])
async def test_a_websocket_link_answer_must_be_a_ws_url(answer: str, reason: str) -> None:
    signal = cast(SignalClient, _AnsweringSignal(answer))
    async with websocket_links()(ident(1), signal, LinkMeter()) as links:
        with pytest.raises(DialError, match=reason):
            await links.dial(ident(2).peer_id)
