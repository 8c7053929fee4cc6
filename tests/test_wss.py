"""``wss://``: signallers, their clients and node links behind TLS.

A CA and a certificate for 127.0.0.1 are made by the test (trustme).  Real
sockets on loopback: a TLS handshake cannot be faked in memory.
"""

from __future__ import annotations

import json
import random
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trustme

from taiinet import CertificateUntrusted, Identity, PeerIdMismatch, TlsConfigError
from taiinet.cli import main
from taiinet.node import open_node, websocket_links
from taiinet.signal.api import open_signaller
from taiinet.signal.client import open_signal_client
from taiinet.signal.errors import SignalUsageError
from taiinet.signal.transport import WebSocketSignalTransport
from taiinet.transport.limits import ListenerLimits
from taiinet.transport.tls import client_context, server_context
from taiinet.transport.websocket import connect_websocket, open_websocket_listener
from tests.cli_support import processes, signaller, spawn
from tests.node_support import ident

ALICE = Identity.from_seed(bytes([1]) * 32)
BOB = Identity.from_seed(bytes([2]) * 32)


class Pki:
    """A CA, a certificate it signed for 127.0.0.1, and both as PEM files."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.ca_pem = directory / "ca.pem"
        self.cert_pem = directory / "cert.pem"
        self.key_pem = directory / "key.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_pem))
        self.cert.private_key_pem.write_to_path(str(self.key_pem))
        self.cert_pem.write_bytes(b"".join(blob.bytes() for blob in self.cert.cert_chain_pems))

    def server(self) -> ssl.SSLContext:
        return server_context(self.cert_pem, self.key_pem)

    def client(self) -> ssl.SSLContext:
        return client_context(self.ca_pem)


@pytest.fixture
def pki(tmp_path: Path) -> Iterator[Pki]:
    yield Pki(tmp_path)


async def test_two_nodes_exchange_a_document_through_a_wss_signaller_and_wss_links(
        pki: Pki) -> None:
    with trio.fail_after(30):
        async with open_signaller(identity=ident(1000), ssl_context=pki.server(),
                                  rng=random.Random(0)) as sig:
            assert sig.url.startswith("wss://127.0.0.1:")
            links = websocket_links(server_ssl_context=pki.server(), ssl_context=pki.client())
            async with open_node([sig.url], ident(1), links=links, ssl_context=pki.client(),
                                 rng=random.Random(1)) as sub_node, \
                    sub_node.subscribe({"n": {"$exists": True}}) as subscription, \
                    open_node([sig.url], ident(2), links=links, ssl_context=pki.client(),
                              rng=random.Random(2)) as pub_node:
                assert sub_node.signal.home == sig.peer_id
                await pub_node.wait_neighbors(1)
                while True:  # until the subscriber's interest reached the publisher
                    await pub_node.publish({"n": 1})
                    with trio.move_on_after(0.5):
                        message = await subscription.receive()
                        break
                # The links' listeners speak only TLS: the document came over wss://.
                assert message.data == {"n": 1} and message.publisher == pub_node.peer_id


async def test_a_client_without_the_ca_fails_at_once_saying_why(pki: Pki) -> None:
    async with open_signaller(identity=ident(1000), ssl_context=pki.server()) as sig:
        start = trio.current_time()
        with trio.fail_after(10), pytest.raises(CertificateUntrusted) as info:
            async with open_node([sig.url], ident(1), links=websocket_links()):
                pass
        assert "certificate verify failed" in str(info.value)
        assert "--tls-ca" in str(info.value)
        assert trio.current_time() - start < 5  # not the 15 s register_timeout


async def test_connect_websocket_over_tls_still_checks_the_peer_id(pki: Pki) -> None:
    with trio.fail_after(10):
        async with open_websocket_listener(BOB, ssl_context=pki.server()) as listener:
            assert listener.url.startswith("wss://")
            async with connect_websocket(listener.url, ALICE, expected_peer_id=BOB.peer_id,
                                         ssl_context=pki.client()) as link:
                accepted = await listener.accept()
                await link.send(b"hello")
                assert await accepted.receive() == b"hello"
                await accepted.aclose()
            with pytest.raises(PeerIdMismatch):
                async with connect_websocket(listener.url, ALICE,
                                             expected_peer_id=ALICE.peer_id,
                                             ssl_context=pki.client()):
                    pass
            with pytest.raises(CertificateUntrusted, match="certificate verify failed"):
                async with connect_websocket(listener.url, ALICE):
                    pass


async def test_a_tls_client_stalling_mid_handshake_is_cut_by_the_upgrade_deadline(
        pki: Pki) -> None:
    limits = ListenerLimits(upgrade_timeout=1.0, max_unauthenticated_per_address=1)
    async with open_websocket_listener(BOB, limits=limits, ssl_context=pki.server()) as listener:
        stalled = trio.SocketStream(await _connected(listener.port))
        await stalled.send_all(b"\x16\x03\x01\x00\xc8\x01")  # the start of a ClientHello
        with trio.fail_after(5):
            while listener.budget.held_by("127.0.0.1") != (1, 0):
                await trio.sleep(0.01)
        start = trio.current_time()
        with trio.fail_after(5):
            while await stalled.receive_some():
                pass
        assert trio.current_time() - start < 2.5  # the upgrade deadline (1 s) cut it
        assert listener.budget.held_by("127.0.0.1") == (0, 0)
        await stalled.aclose()
        with trio.fail_after(5):  # its slot is free again
            async with connect_websocket(listener.url, ALICE, ssl_context=pki.client()):
                accepted = await listener.accept()
                await accepted.aclose()


async def _connected(port: int) -> trio.socket.SocketType:
    sock = trio.socket.socket()
    await sock.connect(("127.0.0.1", port))
    return sock


async def test_a_signal_client_joins_over_wss_with_a_transport_context(pki: Pki) -> None:
    transport = WebSocketSignalTransport(ssl_context=pki.client())
    with trio.fail_after(15):
        async with open_signaller(identity=ident(1000), ssl_context=pki.server()) as first, \
                open_signaller(identity=ident(1001), join=[first.url], transport=transport,
                               ssl_context=pki.server()) as second, \
                open_signal_client(ident(1), [second.url], transport=transport) as client:
            await client.wait_registered()
            assert client.home == second.peer_id


async def test_listening_with_tls_must_advertise_wss(pki: Pki) -> None:
    with pytest.raises(SignalUsageError, match="advertise a wss:// URL"):
        async with open_signaller(ssl_context=pki.server(), advertise="ws://a.example:1"):
            pass


def test_bad_tls_files_are_one_typed_error_naming_the_file(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError, match=r"missing\.pem"):
        server_context(tmp_path / "missing.pem", pki.key_pem)
    with pytest.raises(TlsConfigError, match="cannot load the TLS certificate"):
        server_context(pki.ca_pem, pki.key_pem)  # a certificate without its key
    with pytest.raises(TlsConfigError, match="cannot load the TLS CA file"):
        client_context(pki.key_pem)


@pytest.mark.parametrize("argv, message", [
    (["signal", "--tls-cert", "{cert}"], "give both --tls-cert and --tls-key"),
    (["signal", "--tls-cert", "{dir}/nope.pem", "--tls-key", "{key}"], "nope.pem"),
    (["signal", "--tls-cert", "{ca}", "--tls-key", "{key}"], "cannot load"),
    (["sub", "--signaller", "wss://127.0.0.1:9", "--tls-ca", "{dir}/nope.pem", "{{}}"],
     "nope.pem"),
    (["sub", "--signaller", "wss://127.0.0.1:9", "--tls-cert", "{cert}", "--tls-key", "{key}",
      "{{}}"], "are for --links websocket"),
])
def test_bad_tls_options_are_one_line_and_exit_2(
        argv: list[str], message: str, pki: Pki, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    names = {"cert": pki.cert_pem, "key": pki.key_pem, "ca": pki.ca_pem, "dir": tmp_path}
    assert main([arg.format(**names) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


async def test_the_cli_signals_and_links_over_wss(pki: Pki) -> None:
    """``taiinet signal --tls-cert --tls-key`` prints a wss:// URL; sub and pub
    trust it with ``--tls-ca`` and link to each other over wss:// too."""
    tls_listen = ["--tls-cert", str(pki.cert_pem), "--tls-key", str(pki.key_pem)]
    trust = ["--tls-ca", str(pki.ca_pem)]
    with trio.fail_after(90):
        async with processes() as spawned:
            _, url = await signaller(spawned, *tls_listen)
            assert url.startswith("wss://127.0.0.1:")
            sub = await spawn(spawned, "sub", "--signaller", url, *trust, "--links",
                              "websocket", *tls_listen, "{}")
            assert (await sub.line("err")).startswith("subscribed ")
            pub = await spawn(spawned, "pub", "--signaller", url, *trust, "--links",
                              "websocket", *tls_listen, "--wait", "0.5", '{"n": 1}')
            published = json.loads(await pub.line())
            got = json.loads(await sub.line())
            assert got["id"] == published["id"] and got["data"] == {"n": 1}
            untrusting = await spawn(spawned, "sub", "--signaller", url, "{}")
            code, _, err = await untrusting.finish()
            assert code == 2 and "certificate verify failed" in err, err
            assert err.count("\n") == 1 and err.count(url) == 1, err  # one line, said once
