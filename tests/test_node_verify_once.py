"""Each node checks each document's signature exactly once, its own never.

The router tests (``test_pubsub_verify_once``) count ``open`` calls on the
router's document codec; this counts the Ed25519 checks themselves in a
mesh of live nodes, so a second check anywhere between the link and the
subscriber (a link layer, the node's delivery) would show too.
"""

from __future__ import annotations

import contextlib

import pytest
import trio
import trio.testing

import taiinet.wire.envelope as envelope
from taiinet.node import memory_links
from taiinet.pubsub.documents import DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.memory import MemoryNetwork
from tests.node_support import start_nodes, start_signallers

NODES = 4
DOCUMENTS = 10


async def test_every_node_verifies_each_document_once(
        autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = envelope.signed_bytes(DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE, b"")[:-1]
    checks: list[bytes] = []
    verify = envelope.verify_with_public_key

    def counting(raw: bytes, data: bytes, signature: bytes) -> bool:
        if data.startswith(prefix):
            checks.append(data)
        return verify(raw, data, signature)

    monkeypatch.setattr(envelope, "verify_with_public_key", counting)
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            sigs = await start_signallers(nursery, transport, 1)
            started = await start_nodes(nursery, [[sigs[0][0].url]] * NODES,
                                        memory_links(network), transport)
            nodes = [node for node, _ in started]
            for node in nodes:
                await node.wait_neighbors(NODES - 1)
            async with contextlib.AsyncExitStack() as stack:
                subs = [await stack.enter_async_context(node.subscribe({"n": {"$gte": 0}}))
                        for node in nodes]
                await trio.sleep(2.0)  # interest spreads
                for n in range(DOCUMENTS):
                    await nodes[0].publish({"n": n})
                for sub in subs:
                    got = [(await sub.receive()).data["n"] for _ in range(DOCUMENTS)]
                    assert got == list(range(DOCUMENTS))
                await trio.sleep(2.0)  # any late copy arrives
            # Each document checked once by each other node; the publisher checks none.
            assert len(checks) == DOCUMENTS * (NODES - 1)
            assert all(checks.count(data) == NODES - 1 for data in checks)
            nursery.cancel_scope.cancel()
