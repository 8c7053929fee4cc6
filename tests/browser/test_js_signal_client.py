"""The browser peer's signal client (js/src/signal, js/src/io) against real ``taiinet
signal`` processes and a Python peer: register, contacts, offers and answers relayed
both ways across the mesh, failover past a dead URL and after the home dies, and a
clean withdrawal.  The JS side runs in node (WebSocket enabled) from the same bundle a
page loads."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import trio
import trustme

from taiinet.signal.client import IncomingOffer, SignalClient, open_signal_client
from taiinet.wire.identity import Identity
from tests.browser.support import JS, build_bundle, node_script
from tests.cli_support import processes, signaller

SCRIPT = JS / "test" / "live" / "signal_client.mjs"
JS_PEER = Identity.from_seed(bytes([77]) * 32).peer_id


def dead_url() -> str:
    """A loopback URL nobody listens on (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"ws://127.0.0.1:{port}"


async def answer_offers(client: SignalClient, seen: list[IncomingOffer]) -> None:
    async for offer in client.incoming_offers():
        seen.append(offer)
        await offer.answer(f"py answer to: {offer.sdp}")


async def test_js_signal_client_against_taiinet_signal() -> None:
    build_bundle()
    with trio.fail_after(60):
        async with processes() as spawned, trio.open_nursery() as nursery:
            first, url1 = await signaller(spawned)
            _, url2 = await signaller(spawned, "--join", url1)
            _, url3 = await signaller(spawned, "--join", url1)
            async with open_signal_client(Identity.from_seed(bytes([5]) * 32), [url3],
                                          rng=random.Random(5)) as python:
                await python.wait_registered()
                offers: list[IncomingOffer] = []
                nursery.start_soon(answer_offers, python, offers)
                # The first URL refuses: the client moves on to url1.
                async with node_script(SCRIPT, f'["{dead_url()}", "{url1}", "{url2}"]', "9") as js:
                    registered = await js.expect("registered")
                    assert registered["peerId"] == JS_PEER
                    assert registered["homeUrl"] == url1

                    await js.send(op="contacts", count=8)
                    assert python.peer_id in (await js.expect("contacts"))["peers"]

                    # JS -> Python across signallers (home url1, target homed on url3).
                    await js.send(op="offer", to=python.peer_id, sdp="js offer 1")
                    assert (await js.expect("answer"))["sdp"] == "py answer to: js offer 1"
                    assert [o.from_peer for o in offers] == [JS_PEER]

                    # Python -> JS.
                    answer = await python.send_offer(JS_PEER, "py offer 1")
                    assert answer == "js answer to: py offer 1"
                    assert (await js.expect("offer"))["from"] == python.peer_id

                    # The home dies: the JS peer re-homes on url2 and is reachable there.
                    first.process.kill()
                    await js.expect("homeLost")
                    rehomed = await js.expect("registered")
                    assert rehomed["homeUrl"] == url2
                    while True:  # the old record may still be what a lookup finds first
                        try:
                            answer = await python.send_offer(JS_PEER, "py offer 2")
                            break
                        except Exception:  # PeerUnreachable while the mesh catches up
                            await trio.sleep(0.2)
                    assert answer == "js answer to: py offer 2"

                    # A REJECT-free failure: an offer to a peer nobody knows.
                    stranger = Identity.from_seed(bytes([99]) * 32).peer_id
                    await js.send(op="offer", to=stranger, sdp="anyone?")
                    error = await js.expect("error")
                    assert error["name"] == "PeerUnreachable"
                    assert "not found" in error["message"]

                    await js.send(op="close")
                    await js.expect("closed")
                    # Withdrawn: the Python peer no longer gets the JS peer as a contact.
                    assert JS_PEER not in [r.peer_id for r in await python.contacts(32)]
                nursery.cancel_scope.cancel()


async def test_js_signal_client_over_wss(tmp_path: Path) -> None:
    """A ``wss://`` signaller (a certificate the test makes): the JS client verifies it
    against the CA it is given (node: ``NODE_EXTRA_CA_CERTS``; a page: the browser's
    trust store) and registers, naming the ``wss://`` URL its home announces."""
    build_bundle()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    (tmp_path / "cert.pem").write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    with trio.fail_after(60):
        async with processes() as spawned:
            _, url = await signaller(spawned, "--tls-cert", str(tmp_path / "cert.pem"),
                                     "--tls-key", str(tmp_path / "key.pem"))
            assert url.startswith("wss://127.0.0.1:")
            async with node_script(SCRIPT, f'["{url}"]', "3",
                                   env={"NODE_EXTRA_CA_CERTS": str(tmp_path / "ca.pem")}) as js:
                registered = await js.expect("registered")
                assert registered["homeUrl"] == url
                await js.send(op="close")
                await js.expect("closed")
