"""Seeders as real processes: documents outlive their publisher, survive SIGKILL (WAL),
and a new ``sub --history`` reads the union of two seeders once, in order, then live."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import trio

from tests.cli_support import Proc, processes, signaller, spawn

#: A one-shot `pub` hands each document off before exiting, so it cannot leave
#: with documents in flight (docs/pubsub.md section 1).
LINKS = ("--links", "websocket")


async def _held(proc: Proc, count: int) -> None:
    """Wait for the seeder's report of ``count`` documents held."""
    while True:
        line = await proc.line_containing("documents held", "err")
        if f"{count} documents held" in line:
            return


async def _seed(spawned: list[Proc], url: str, db: Path, key: Path, query: str) -> Proc:
    proc = await spawn(spawned, "seed", "--signaller", url, *LINKS, "--db", str(db),
                       "--key", str(key), "--query", query, "--report", "0.2")
    await proc.line_containing("seeding", "err")
    return proc


async def test_history_from_two_seeders_survives_a_kill_and_meets_the_live_stream(
        tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with processes() as spawned:
            _sig, url = await signaller(spawned, "--listen", "127.0.0.1:0")
            a_db, b_db = tmp_path / "a.db", tmp_path / "b.db"
            a_key, b_key = tmp_path / "a.key", tmp_path / "b.key"
            a = await _seed(spawned, url, a_db, a_key, '{"kind": "a"}')
            b = await _seed(spawned, url, b_db, b_key, '{"n": {"$gte": 100}}')
            publisher = await spawn(spawned, "pub", "--signaller", url, *LINKS, "-",
                                    stdin=True)
            lines = "".join(json.dumps({"n": n, "kind": "a" if n < 150 else "b"}) + "\n"
                            for n in range(200))
            await publisher.send(lines.encode())
            assert publisher.process.stdin is not None
            await publisher.process.stdin.aclose()
            code, out, err = await publisher.finish()
            assert code == 0, err
            assert len(out.splitlines()) == 200
            await _held(a, 150)
            await _held(b, 100)

            a.process.send_signal(signal.SIGKILL)
            await a.process.wait()
            a = await spawn(spawned, "seed", "--signaller", url, *LINKS, "--db", str(a_db),
                            "--key", str(a_key), "--query", '{"kind": "a"}')
            assert "150 documents held" in await a.line_containing("seeding", "err")

            sub = await spawn(spawned, "sub", "--signaller", url, *LINKS, "--history",
                              "--count", "202", '{"n": {"$gte": 0}}')
            stored = [json.loads(await sub.line())["data"]["n"] for _ in range(200)]
            assert stored == list(range(200))
            live = await spawn(spawned, "pub", "--signaller", url, *LINKS, "-", stdin=True)
            await live.send(b'{"n": 1000}\n{"n": 1001}\n')
            assert live.process.stdin is not None
            await live.process.stdin.aclose()
            assert (await live.finish())[0] == 0
            code, rest, err = await sub.finish()
            assert code == 0, err
            assert [json.loads(line)["data"]["n"] for line in rest.splitlines()] == [1000, 1001]

            found = await spawn(spawned, "find", "--signaller", url, *LINKS, "--limit", "3",
                                '{"n": {"$gte": 120}}')
            code, out, err = await found.finish()
            assert code == 0, err
            assert [json.loads(line)["data"]["n"] for line in out.splitlines()] == [120, 121, 122]


async def test_a_foreign_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import sqlite3

    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE accounts (id INTEGER)")
    with trio.fail_after(30):
        async with processes() as spawned:
            seed = await spawn(spawned, "seed", "--signaller", "ws://127.0.0.1:9",
                               "--db", str(foreign))
            code, _out, err = await seed.finish()
    assert code == 2
    assert err.count("\n") == 1 and "another program's SQLite database" in err
    assert "Traceback" not in err


async def test_find_without_a_seeder_says_so_in_one_line() -> None:
    with trio.fail_after(60):
        async with processes() as spawned:
            _sig, url = await signaller(spawned, "--listen", "127.0.0.1:0")
            found = await spawn(spawned, "find", "--signaller", url, *LINKS,
                                "--join-timeout", "1", "{}")
            code, out, err = await found.finish()
    assert code == 0 and out == ""
    assert err.strip() == "taiinet find: history: no seeder found among 0 peers: no stored " \
                          "documents"
