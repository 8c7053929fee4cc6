"""Fresh ``sub`` + ``pub`` pairs through a signaller that has seen earlier peers.

Run: ``.venv/bin/python bench/stale_contacts.py`` (about a minute; real
processes on 127.0.0.1).  Options: ``--rounds 6 --earlier 3 --links webrtc``.

One ``taiinet signal``; ``--earlier`` subscribers join and are killed
(SIGKILL: no clean exit).  Then each round starts a subscriber (``--count 1``),
waits for ``subscribed``, runs ``pub`` with one document, and kills the
subscriber (SIGKILL) afterwards, so every round adds vanished peers.  Prints,
per round, whether the subscriber got the document and ``pub``'s exit code;
a round that delivered nothing while ``pub`` exited 0 is a silent loss.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import trio

TAIINET = [sys.executable, "-m", "taiinet.cli"]


async def _line(stream: trio.abc.ReceiveStream, buffer: bytearray) -> str:
    while b"\n" not in buffer:
        chunk = await stream.receive_some()
        if not chunk:
            raise EOFError(bytes(buffer).decode())
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


async def _subscriber(url: str, links: str, duration: float) -> tuple[trio.Process, bytearray]:
    process = await trio.lowlevel.open_process(
        [*TAIINET, "sub", "--signaller", url, "--links", links, "--count", "1",
         "--duration", str(duration), "{}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stderr is not None
    buffer = bytearray()
    while not (await _line(process.stderr, buffer)).startswith("subscribed"):
        pass
    return process, buffer


async def main(args: argparse.Namespace) -> dict[str, object]:
    signaller = await trio.lowlevel.open_process(
        [*TAIINET, "signal", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE)
    try:
        assert signaller.stdout is not None
        url = (await _line(signaller.stdout, bytearray())).split()[2]
        for _ in range(args.earlier):
            process, _ = await _subscriber(url, args.links, 60)
            process.kill()
            await process.wait()
        rounds = []
        for number in range(args.rounds):
            sub, _ = await _subscriber(url, args.links, args.timeout + 10)
            with trio.fail_after(args.timeout + 30):
                pub = await trio.run_process(
                    [*TAIINET, "pub", "--signaller", url, "--links", args.links,
                     "--join-timeout", str(args.timeout), json.dumps({"round": number})],
                    capture_stdout=True, capture_stderr=True, check=False)
            assert sub.stdout is not None
            got = b""
            with trio.move_on_after(5):
                got = await sub.stdout.receive_some()
            sub.kill()
            await sub.wait()
            rounds.append({"round": number, "delivered": bool(got.strip()),
                           "pub_exit": pub.returncode,
                           "pub_stderr": pub.stderr.decode().strip()[-120:]})
            print(json.dumps(rounds[-1]), flush=True)
    finally:
        signaller.kill()
        await signaller.wait()
    return {"rounds": len(rounds),
            "delivered": sum(1 for r in rounds if r["delivered"]),
            "silent_losses": sum(1 for r in rounds if not r["delivered"] and r["pub_exit"] == 0)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--earlier", type=int, default=3)
    parser.add_argument("--links", choices=["webrtc", "websocket"], default="webrtc")
    parser.add_argument("--timeout", type=float, default=15.0,
                        help="pub's --join-timeout (default 15)")
    print(json.dumps(trio.run(main, parser.parse_args())))
