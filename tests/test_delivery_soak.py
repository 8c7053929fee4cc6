"""One run of ``bench/delivery_soak.py``: real signaller, sub and pub processes on loopback.

Three chained signallers, subscriber A on the first, B on the second, and a
one-shot ``taiinet pub -`` on the third:
``pub`` exits 0 once its documents are handed to a neighbour, and A gets
exactly the two documents its query matches, B the three of its own, once.
"""

from __future__ import annotations

import pytest
import trio

from bench.delivery_soak import one_run
from tests.cli_support import processes, signaller, spawn


@pytest.mark.parametrize("links", ["websocket", "webrtc"])
async def test_one_shot_publisher_reaches_every_subscriber_exactly_once(links: str) -> None:
    result = await one_run(links)
    assert result["pub_exit"] == 0, result
    assert (result["lost"], result["duplicates"], result["wrong"]) == (0, 0, 0), result
    assert len(result["latency_ms"]) == 5


async def test_a_publisher_that_reaches_no_neighbour_exits_non_zero_saying_so() -> None:
    async with processes() as spawned:
        _sig, url = await signaller(spawned, "--listen", "127.0.0.1:0")
        pub = await spawn(spawned, "pub", "--signaller", url, "--links", "websocket",
                          "--neighbors", "0", "--join-timeout", "1",
                          '{"a": 1}')
        with trio.fail_after(30):
            code, out, err = await pub.finish()
    assert code != 0
    assert '"id"' in out  # it did publish
    assert "not handed to a neighbour" in err, err


async def test_a_publisher_alone_in_the_mesh_exits_non_zero_before_publishing() -> None:
    async with processes() as spawned:
        _sig, url = await signaller(spawned, "--listen", "127.0.0.1:0")
        pub = await spawn(spawned, "pub", "--signaller", url, "--links", "websocket",
                          "--join-timeout", "1", '{"a": 1}')
        with trio.fail_after(30):
            code, out, err = await pub.finish()
    assert code != 0
    assert out == ""  # nothing published
    assert "overlay neighbours" in err, err
