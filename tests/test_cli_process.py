"""The CLI as a user meets it, in real processes: interrupts, closed pipes, busy
ports, documents JSON cannot spell, link kinds that do not meet, ids of what
``pub`` published.  Every wait is on an output line, bounded by ``fail_after``."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
import trio

from tests.cli_support import Proc, processes, signaller, spawn

NO_TRACEBACK = ("Traceback", "ExceptionGroup", "Exception ignored")


def assert_one_line(err: str, text: str) -> None:
    assert not any(word in err for word in NO_TRACEBACK), err
    assert err.endswith("\n") and text in err.splitlines()[-1], err


async def subscribed(spawned: list[Proc], url: str, query: Any, *args: str) -> Proc:
    proc = await spawn(spawned, "sub", "--signaller", url, *args, json.dumps(query))
    assert (await proc.line("err")).startswith("subscribed ")
    return proc


async def test_sub_prints_bytes_and_infinity_losslessly_and_goes_on() -> None:
    with trio.fail_after(90):
        async with processes() as spawned:
            _, url = await signaller(spawned)
            sub = await subscribed(spawned, url, {"n": {"$exists": True}})
            pub = await spawn(spawned, "pub", "--signaller", url, "--wait", "0.5", "-",
                              stdin=True)
            odd = ('{"n": 1, "blob": {"$bytes": "AAH/"}, "x": {"$float": "-inf"}, '
                   '"$$bytes": "key"}')
            await pub.send(odd.encode() + b"\n")
            published = json.loads(await pub.line())
            assert set(published) == {"id", "neighbors"} and published["neighbors"] >= 1
            got = json.loads(await sub.line())
            assert got["id"] == published["id"]
            assert got["data"] == json.loads(odd)
            await pub.send(b'{"n": 2}\n')
            published = json.loads(await pub.line())
            got = json.loads(await sub.line())
            assert (got["id"], got["data"]) == (published["id"], {"n": 2})
            assert pub.process.stdin is not None
            await pub.process.stdin.aclose()
            code, out, err = await pub.finish()
            assert code == 0 and out == "", err


async def test_sub_with_a_closed_stdout_exits_141_quietly() -> None:
    with trio.fail_after(90):
        async with processes() as spawned:
            _, url = await signaller(spawned)
            sub = await subscribed(spawned, url, {"n": {"$exists": True}})
            pub = await spawn(spawned, "pub", "--signaller", url, "--wait", "0.5", "-",
                              stdin=True)
            await pub.send(b'{"n": 1}\n')
            await pub.line()
            await sub.line()  # as `head -1` does, then it closes the pipe
            assert sub.process.stdout is not None
            await sub.process.stdout.aclose()
            await pub.send(b'{"n": 2}\n')
            await pub.line()
            code = await sub.process.wait()
            assert sub.process.stderr is not None
            err = (await sub.process.stderr.receive_some()).decode()
            assert code == 141 and not any(word in err for word in NO_TRACEBACK), err


@pytest.mark.parametrize("command", ["sub", "pub", "signal"])
async def test_ctrl_c_exits_130_with_one_line(command: str) -> None:
    with trio.fail_after(90):
        async with processes() as spawned:
            first, url = await signaller(spawned)
            if command == "signal":
                target = first
            elif command == "sub":
                target = await subscribed(spawned, url, {})
            else:
                target = await spawn(spawned, "pub", "--signaller", url, "--neighbors", "0",
                                     "--wait", "0", "-", stdin=True)
                await target.send(b'{"n": 1}\n')
                await target.line()  # published; now reading stdin
            target.interrupt()
            code, _, err = await target.finish()
            assert code == 130
            assert_one_line(err, f"taiinet {command}: interrupted")


async def test_demo_ctrl_c_exits_130_and_its_piped_output_is_plain() -> None:
    with trio.fail_after(90):
        async with processes() as spawned:
            demo = await spawn(spawned, "demo", "--peers", "3", "--links", "websocket",
                               "--duration", "60")
            await demo.line_containing("publishing")
            demo.interrupt()
            code, out, err = await demo.finish()
            assert code == 130
            assert_one_line(err, "taiinet demo: interrupted")
            assert "\x1b" not in out


async def test_demo_piped_table_is_plain_and_80_columns() -> None:
    with trio.fail_after(90):
        async with processes() as spawned:
            demo = await spawn(spawned, "demo", "--peers", "3", "--links", "websocket",
                               "--duration", "1", "--drain", "10")
            code, out, err = await demo.finish()
    assert code == 0, err
    assert "\x1b" not in out and out.isascii()
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "peer" in out and "delivered" in out and "summary" in out


async def test_signal_on_a_busy_port_is_one_line() -> None:
    with trio.fail_after(30), socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        async with processes() as spawned:
            proc = await spawn(spawned, "signal", "--listen", f"127.0.0.1:{port}")
            code, out, err = await proc.finish()
    assert code == 2 and out == ""
    assert_one_line(err, f"taiinet signal: cannot listen at 127.0.0.1:{port}")
    assert err.count("\n") == 1


async def test_advertised_url_is_what_the_signaller_prints_and_peers_use() -> None:
    with trio.fail_after(60):
        async with processes() as spawned:
            _, url = await signaller(spawned, "--listen", "127.0.0.2:0",
                                     "--advertise", "ws://127.0.0.2")
            assert url.startswith("ws://127.0.0.2:") and url.rsplit(":", 1)[1].isdigit()
            sub = await subscribed(spawned, url, {})
            assert sub.process.returncode is None


@pytest.mark.parametrize("first, second", [("websocket", "webrtc"), ("webrtc", "websocket")])
async def test_link_kind_mismatch_is_one_line_on_both_sides(first: str, second: str) -> None:
    with trio.fail_after(90):
        async with processes() as spawned:
            _, url = await signaller(spawned)
            sub = await subscribed(spawned, url, {}, "--links", first)
            pub = await spawn(spawned, "pub", "--signaller", url, "--links", second,
                              "--join-timeout", "3", '{"n": 1}')
            line = await sub.line("err")
            assert f"takes {second} links and this node {first} links" in line, line
            _, _, err = await pub.finish()
            assert f"takes {first} links and this node {second} links" in err, err
            assert not any(word in err for word in NO_TRACEBACK), err


async def test_websocket_peers_listen_and_advertise_where_told() -> None:
    with trio.fail_after(90):
        async with processes() as spawned:
            _, url = await signaller(spawned)
            sub = await subscribed(spawned, url, {}, "--links", "websocket",
                                   "--listen", "127.0.0.2:0", "--advertise", "127.0.0.2")
            pub = await spawn(spawned, "pub", "--signaller", url, "--links", "websocket",
                              "--wait", "0.5", '{"n": 1}')
            published = json.loads(await pub.line())
            got = json.loads(await sub.line())
            assert got["id"] == published["id"] and got["data"] == {"n": 1}
