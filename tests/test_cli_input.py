"""Bad arguments and bad URLs: one line, exit code 2, before anything starts;
what a signaller advertises."""

from __future__ import annotations

import logging
import socket

import pytest
import trio

from taiinet.cli import main
from taiinet.cli.run import first_in_group
from taiinet.errors import LocalProtocolError
from taiinet.node.errors import NodeError
from taiinet.node.links import LinkMeter, WebSocketLinks, websocket_links
from taiinet.node.node import NodeConfig, open_node
from taiinet.signal.api import advertised_url, open_signaller
from taiinet.signal.errors import InvalidSignallerUrl
from taiinet.signal.urls import check_signaller_url
from taiinet.wire.identity import Identity


@pytest.mark.parametrize("argv, message", [
    (["demo", "--rate", "0"], "argument --rate: must be > 0, not 0"),
    (["demo", "--peers", "1"], "argument --peers: must be at least 2"),
    (["demo", "--duration", "nan"], "must be a finite number"),
    (["sub", "--signaller", "ws://127.0.0.1:9", "--count", "-1", "{}"], "must be at least 0"),
    (["pub", "--signaller", "ws://127.0.0.1:9", "--wait", "-1", "{}"], "must be >= 0"),
    (["sub", "--signaller", "ws://127.0.0.1:9"], "required: QUERY_JSON"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert err.startswith(f"taiinet {argv[0]}: ")


@pytest.mark.parametrize("url, message", [
    ("http://127.0.0.1:9", "must start with ws://"),
    ("https://127.0.0.1:9", "must start with ws:// or wss://"),
    ("127.0.0.1:9", "has no scheme: write ws://127.0.0.1:9"),
    ("localhost:9", "has no scheme"),
    ("ws://127.0.0.1:99999", "bad port"),
    ("ws:///path", "no host"),
])
@pytest.mark.parametrize("command", ["sub", "pub", "signal"])
def test_a_bad_signaller_url_is_one_line_and_exit_2(
        command: str, url: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = {"sub": ["sub", "--signaller", url, "{}"], "pub": ["pub", "--signaller", url, "{}"],
            "signal": ["signal", "--join", url]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


async def test_open_node_refuses_a_bad_url_at_once() -> None:
    with trio.fail_after(1):
        with pytest.raises(InvalidSignallerUrl, match="ws://") as info:
            async with open_node(["ws://127.0.0.1:9", "http://127.0.0.1:9"]):
                pass
    assert isinstance(info.value, LocalProtocolError)
    assert check_signaller_url("ws://example.test:80/signal") == "ws://example.test:80/signal"


@pytest.mark.parametrize("bound, advertise, expected", [
    ("ws://127.0.0.1:5000", None, "ws://127.0.0.1:5000"),
    ("ws://0.0.0.0:5000", None, "ws://hostA:5000"),
    ("ws://[::]:5000", None, "ws://hostA:5000"),
    ("ws://0.0.0.0:5000", "ws://a.example:443", "ws://a.example:443"),
    ("ws://0.0.0.0:5000", "ws://a.example", "ws://a.example:5000"),
    ("ws://0.0.0.0:5000", "ws://[2001:db8::1]/s", "ws://[2001:db8::1]:5000/s"),
    ("mem://12D3KooWabc", None, "mem://12D3KooWabc"),
    ("wss://0.0.0.0:5000", None, "wss://hostA:5000"),
    ("wss://0.0.0.0:5000", "wss://a.example", "wss://a.example:5000"),
    # A plain listener advertising wss:// sits behind a TLS-terminating proxy.
    ("ws://127.0.0.1:5000", "wss://a.example", "wss://a.example"),
    ("ws://127.0.0.1:5000", "wss://a.example/signal", "wss://a.example/signal"),
])
def test_advertised_url(bound: str, advertise: str | None, expected: str) -> None:
    assert advertised_url(bound, advertise, "hostA") == expected


async def test_a_signaller_advertises_the_given_url_to_the_mesh() -> None:
    with trio.fail_after(30):
        async with open_signaller(listen="127.0.0.2:0", advertise="ws://127.0.0.2") as first:
            assert first.url.startswith("ws://127.0.0.2:")
            async with open_signaller(listen="127.0.0.1:0", join=[first.url]) as second:
                assert second.dht is not None
                contacts = {c.peer_id: c.address for c in second.dht.table.contacts()}
                assert contacts[first.peer_id] == first.url


async def test_a_wildcard_listener_advertises_the_host_name_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    # Bound to every interface for a moment; nothing is dialed.
    with trio.fail_after(10), caplog.at_level(logging.WARNING, "taiinet.signal.api"):
        async with open_signaller(listen="0.0.0.0:0") as signaller:
            assert "0.0.0.0" not in signaller.url
    assert "--advertise" in caplog.text


async def test_websocket_links_on_a_wildcard_hand_out_the_host_name() -> None:
    with trio.fail_after(10):
        async with websocket_links("0.0.0.0", 0)(
                Identity.generate(), None, LinkMeter()) as links:  # type: ignore[arg-type]
            assert isinstance(links, WebSocketLinks)
            assert links.url.startswith(f"ws://{socket.gethostname()}:")
        async with websocket_links("127.0.0.2", 0, advertised_host="::1")(
                Identity.generate(), None, LinkMeter()) as links:  # type: ignore[arg-type]
            assert isinstance(links, WebSocketLinks)
            assert links.url.startswith("ws://[::1]:")


def test_listen_and_advertise_are_for_websocket_links(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sub", "--signaller", "ws://127.0.0.1:9", "--listen", "0.0.0.0:7000",
                 "{}"]) == 2
    assert "for --links websocket" in capsys.readouterr().err


async def test_an_unreachable_signaller_fails_with_the_reason() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"ws://127.0.0.1:{closed.getsockname()[1]}"
        with trio.fail_after(20), pytest.raises(BaseException) as info:
            async with open_node([url], config=NodeConfig(register_timeout=1.0)):
                pass
    # (open_node may wrap it in an exception group; the CLI unwraps it.)
    error = first_in_group(info.value, NodeError)
    assert error is not None and "Connection refused" in str(error), info.value
