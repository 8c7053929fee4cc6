"""A live stream between real processes on loopback: one broadcaster, viewers, some killed.

    python bench/stream_process.py [--viewers 12] [--kill 3] [--duration 30] [--links websocket]

Starts a signaller, ``taiinet stream publish --test-pattern`` and ``--viewers``
``taiinet stream watch`` processes with mixed declared slots (cycling
``--slots-mix``), kills ``--kill`` relaying viewers (SIGKILL) in the middle of
the stream, waits for the others to finish and checks every file a
surviving viewer wrote with PyAV: it decodes, and its longest gap in video
(lost media) is reported per viewer with the viewer's parent changes.
Prints one JSON object: per viewer (slots, killed, frames, media seconds,
longest gap, parent changes), the broadcaster's figures (``upload_streams``
= chunk bytes sent / chunk bytes made, ``most_children``, ``slots``) and
``ok`` (every survivor decodable, longest gap per parent loss <= 2 s,
broadcaster within its slots).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TAIINET = [sys.executable, "-m", "taiinet.cli"]
#: Seconds of lost media allowed per parent loss.
MAX_GAP = 2.0


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*TAIINET, *args], stdout=subprocess.PIPE,
                            stderr=log.open("wb"), start_new_session=True)


def _first_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line and time.monotonic() > deadline:
        raise TimeoutError("no first line")
    return line


def video_gaps(path: Path) -> tuple[int, float, float]:
    """Frames, seconds covered and the longest gap between two video frames of a file."""
    import av

    with av.open(str(path)) as container:
        times = [float(f.time) for f in container.decode(video=0) if f.time is not None]
    if len(times) < 2:
        return len(times), 0.0, float("inf")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return len(times), times[-1] - times[0], max(gaps)


def run(viewers: int = 12, kill: int = 3, duration: float = 30.0, links: str = "websocket",
        slots_mix: tuple[int, ...] = (3, 2, 0, 1), root_slots: int = 2,
        size: str = "160x120", fps: int = 10, workdir: str | None = None) -> dict[str, Any]:
    work = Path(workdir or tempfile.mkdtemp(prefix="taiinet-stream-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sig = _spawn(["signal", "--listen", "127.0.0.1:0"], work / "signal.log")
        procs.append(sig)
        url = _first_line(sig, time.monotonic() + 30).split()[2]
        common = ["--signaller", url, "--links", links]
        # The broadcaster runs the pattern a little longer than the viewers watch, so
        # viewers that took a while to join still see `duration` seconds.
        lead = 8.0
        pub = _spawn(["stream", "publish", "--name", "bench", "--test-pattern",
                      "--duration", str(duration + 2 * lead), "--slots", str(root_slots),
                      "--size", size, "--fps", str(fps), *common], work / "publish.log")
        procs.append(pub)
        time.sleep(1.0)
        watchers = []
        for i in range(viewers):
            slots = slots_mix[i % len(slots_mix)]
            out = work / f"viewer{i}.webm"
            proc = _spawn(["stream", "watch", "--name", "bench", "--out", str(out),
                           "--duration", str(duration), "--slots", str(slots), *common],
                          work / f"viewer{i}.log")
            procs.append(proc)
            watchers.append({"index": i, "slots": slots, "proc": proc, "out": out,
                             "killed": False})
        # Kill relaying viewers in the middle of the stream.
        time.sleep(lead + duration / 2)
        victims = [w for w in watchers if w["slots"] > 0][:kill]
        for w in victims:
            os.killpg(w["proc"].pid, signal.SIGKILL)
            w["killed"] = True
        rows = []
        for w in watchers:
            proc = w["proc"]
            report: dict[str, Any] = {}
            if not w["killed"]:
                stdout, _ = proc.communicate(timeout=duration + 120)
                lines = stdout.decode().strip().splitlines()
                report = json.loads(lines[-1]) if lines else {}
            else:
                proc.wait()
            row: dict[str, Any] = {"viewer": w["index"], "slots": w["slots"],
                                   "killed": w["killed"],
                                   "parent_changes": report.get("parent_changes")}
            if not w["killed"]:
                try:
                    frames, seconds, gap = video_gaps(w["out"])
                except Exception as exc:
                    frames, seconds, gap = 0, 0.0, float("inf")
                    row["error"] = repr(exc)
                row.update(frames=frames, seconds=round(seconds, 2), longest_gap=round(gap, 2),
                           lost_chunks=report.get("lost_chunks"))
            rows.append(row)
        stdout, _ = pub.communicate(timeout=3 * lead + 120)
        broadcaster = json.loads(stdout.decode().strip().splitlines()[-1])
        survivors = [r for r in rows if not r["killed"]]
        ok = (all(r["frames"] > 0 and r["longest_gap"] <= MAX_GAP for r in survivors)
              and broadcaster["most_children"] <= broadcaster["slots"]
              and broadcaster["upload_streams"] <= broadcaster["slots"])
        return {"viewers": viewers, "killed": kill, "duration": duration, "links": links,
                "broadcaster": broadcaster, "rows": rows, "ok": ok, "workdir": str(work)}
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", type=int, default=12)
    parser.add_argument("--kill", type=int, default=3)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--links", choices=["websocket", "webrtc"], default="websocket")
    args = parser.parse_args()
    print(json.dumps(run(args.viewers, args.kill, args.duration, args.links)))


if __name__ == "__main__":
    main()
