"""The small HTTP server behind the browser demo and the Chromium tests."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from taiinet.cli.demo_browser import serve_page
from taiinet.cli.run import CommandError
from taiinet.cli.static_http import serve_static


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, "", b""


def test_serves_each_route_reading_the_body_at_each_request() -> None:
    bodies = [b"first", b"second"]
    routes = {"/a.js": ("text/javascript", lambda: bodies.pop(0))}
    with serve_static(routes) as url:
        assert _get(url + "a.js") == (200, "text/javascript", b"first")
        assert _get(url + "a.js?v=2") == (200, "text/javascript", b"second")
        assert _get(url + "b.js")[0] == 404


def test_demo_page_serves_its_config_and_names_a_busy_port() -> None:
    with serve_page(0, {"signallers": ["ws://x"]}) as url:
        assert _get(url + "config.json") == (200, "application/json", b'{"signallers": ["ws://x"]}')
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        with pytest.raises(CommandError, match=f"127.0.0.1:{port}.*--http-port"), \
                serve_page(port, {}):
            pass


def test_an_error_inside_the_demo_is_not_reported_as_a_busy_port() -> None:
    with pytest.raises(OSError, match="inside"), serve_page(0, {}):
        raise OSError("inside")


def test_busy_port_is_an_os_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError), serve_static({}, taken.getsockname()[1]):
            pass
