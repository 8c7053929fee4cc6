"""``taiinet sub``/``pub``/``demo``: bad input, and real processes on loopback."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any

import pytest
import trio

from taiinet.cli import main
from taiinet.pubsub.query import Query

TAIINET = [sys.executable, "-m", "taiinet.cli"]
HAVE_SIGNAL_CLI = importlib.util.find_spec("taiinet.cli.signal") is not None
needs_signal = pytest.mark.skipif(
    not HAVE_SIGNAL_CLI, reason="'taiinet signal' (branch dht) is not merged here yet")


@pytest.mark.parametrize("argv, message", [
    (["sub", "--signaller", "ws://127.0.0.1:9", "{not json"], "QUERY_JSON is not valid JSON"),
    (["sub", "--signaller", "ws://127.0.0.1:9", '{"age": {"$bogus": 1}}'], "$bogus"),
    (["pub", "--signaller", "ws://127.0.0.1:9", "[1, 2"], "DOC_JSON is not valid JSON"),
    (["pub", "--signaller", "ws://127.0.0.1:9", '{"x": NaN}'], "not a valid document"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


async def _line(stream: trio.abc.ReceiveStream, buffer: bytearray) -> str:
    while b"\n" not in buffer:
        chunk = await stream.receive_some()
        if not chunk:
            raise EOFError(bytes(buffer).decode())
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


DOCUMENTS: list[Any] = [
    {"key": "value", "age": 5, "name": "bob", "type": 4},
    {"key": "value", "age": 3, "name": "bob", "type": 4},
    {"age": 9, "name": "zed", "type": 2},
    {"key": "value", "age": 7, "name": "anna", "type": 5},
    {"name": "carol", "age": 1},
]
SUB_QUERIES: list[Any] = [
    {"key": "value", "age": {"$gt": 4},
     "$and": [{"$or": [{"name": {"$contains": "b"}}, {"name": {"$contains": "a"}}]},
              {"type": {"$in": [1, 4, 5]}}]},
    {"age": {"$lt": 6}},
]


@needs_signal
async def test_processes_three_signallers_two_subscribers_one_publisher() -> None:
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            processes: list[trio.Process] = []

            async def spawn(*args: str) -> tuple[trio.Process, bytearray]:
                process: trio.Process = await nursery.start(lambda task_status: trio.run_process(
                    [*TAIINET, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, check=False, task_status=task_status))
                processes.append(process)
                return process, bytearray()

            urls: list[str] = []
            for _ in range(3):
                join = ["--join", urls[-1]] if urls else []
                signaller, buffer = await spawn("signal", "--listen", "127.0.0.1:0", *join)
                assert signaller.stdout is not None
                word, _peer, url = (await _line(signaller.stdout, buffer)).split()
                assert word == "signaller"
                urls.append(url)
            subscribers = []
            for i, query in enumerate(SUB_QUERIES):
                marked = {"$or": [query, {"end": True}]}
                process, out = await spawn("sub", "--signaller", urls[i], json.dumps(marked))
                assert process.stderr is not None and process.stdout is not None
                assert (await _line(process.stderr, bytearray())).startswith("subscribed ")
                subscribers.append((process, out))
            publisher, _ = await spawn("pub", "--signaller", urls[2], "--neighbors", "1", "-")
            assert publisher.stdin is not None
            for document in DOCUMENTS:
                await publisher.stdin.send_all(json.dumps(document).encode() + b"\n")
            await publisher.stdin.send_all(json.dumps({"end": True}).encode() + b"\n")
            await publisher.stdin.aclose()
            for (process, out), query in zip(subscribers, SUB_QUERIES, strict=True):
                expected = [d for d in DOCUMENTS if Query(query).matches(d)]
                assert process.stdout is not None
                got: list[Any] = []
                end = False
                while not end or len(got) < len(expected):
                    line = json.loads(await _line(process.stdout, out))
                    if line["data"] == {"end": True}:
                        end = True
                    else:
                        got.append(line)
                assert sorted((g["data"] for g in got), key=json.dumps) == sorted(
                    expected, key=json.dumps)
                assert all(set(g) == {"publisher", "id", "data"} for g in got)
            assert await publisher.wait() == 0
            for process in processes:
                process.kill()
            nursery.cancel_scope.cancel()


@needs_signal
def test_demo_json_delivers_everything() -> None:
    result = subprocess.run([*TAIINET, "demo", "--json", "--peers", "6", "--duration", "5"],
                            capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["delivered"] == summary["expected"] > 0
    assert summary["duplicates"] == summary["false_deliveries"] == 0
    assert {"published", "p50_ms", "p99_ms"} <= set(summary)
