"""A live stream between real processes on loopback: one broadcaster, viewers, some killed.

    python bench/stream_process.py [--viewers 12] [--kill 3] [--duration 30]
        [--links webrtc|websocket] [--stagger 0]

Starts a signaller, ``taiinet stream publish --test-pattern`` and ``--viewers``
``taiinet stream watch`` processes (``--stagger`` seconds apart) with mixed
declared slots (cycling ``--slots-mix``) over ``--links`` (WebRTC data
channels by default, as a node uses).  Every viewer watches until the bench
stops it (SIGTERM), so all watch at once however their arrivals spread.  In
the middle of the stream -- a third of ``--duration`` after every viewer has
a parent, and once a relay still watching has a child still watching (each
viewer reports its parent changes on stderr) -- it kills ``--kill`` relaying
viewers (SIGKILL), most children first; two thirds of ``--duration`` later
(and once each survivor has watched ``--duration``) it stops the others and
the broadcaster, and checks every file a surviving viewer wrote with PyAV: it
decodes, and its longest gap in video, its lost media (the video's span less
its frames' worth: every gap), ``behind`` (seconds from its first packet to
the end of watching, less the video's span: delay gained in repairs, which
the backfill turns lost media into) and ``stopped`` (media stopped coming
for 20 s) are reported per viewer with the viewer's parent changes and
whether its parent was killed.
Prints one JSON object: ``error`` (why nothing was killed: no relay had a
child in time; else null), per viewer (slots, killed, ``attached_after``,
frames, media seconds, longest gap, ``lost``, ``behind``, ``stopped``,
parent changes, ``orphaned``), the broadcaster's figures
(``upload_streams`` = chunk bytes sent / chunk bytes made, ``most_children``,
``slots``), ``victims_children`` (children of each viewer killed, still
watching then), ``orphans`` (survivors still watching at the kill whose
parent was killed), ``attached_after`` / ``attach_spread`` /
``relay_ready_after`` / ``killed_after`` / ``ended_after`` (seconds from the
first viewer's start), the host's
``load`` average (1 min) at the start, the kill and the end, and ``ok``
(nothing in ``error``, every survivor decodable, not stopped, longest gap and
lost media <= 2 s -- a kill costs a viewer at most one parent -- broadcaster
within its slots).
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


def parents(logs: dict[str, Path]) -> dict[str, str | None]:
    """Each viewer's parent now, from the ``parent ...`` lines of its stderr (by peer id)."""
    out: dict[str, str | None] = {}
    for peer, log in logs.items():
        parent: str | None = None
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("parent "):
                value = line.split()[1]
                parent = None if value == "none" else value
        out[peer] = parent
    return out


def watching_peer(log: Path) -> str | None:
    """The peer id on a viewer's ``watching PEER-ID NAME`` line, if written yet."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("watching "):
            return line.split()[1]
    return None


def _relays(watchers: list[dict[str, Any]], logs: dict[str, Path]
            ) -> tuple[dict[str, str | None], dict[str, int], list[dict[str, Any]]]:
    """Each viewer's parent now, its children still watching, and the relaying viewers
    still watching, most children first (a viewer that found the stream early may
    have finished watching: killing it, or its parent, would test no repair)."""
    now = parents(logs)
    live = {w["peer"] for w in watchers if w["proc"].poll() is None}
    children = {w["peer"]: sum(1 for c, p in now.items() if p == w["peer"] and c in live)
                for w in watchers}
    relays = sorted((w for w in watchers if w["slots"] > 0 and w["peer"] in live),
                    key=lambda w: -children[w["peer"]])
    return now, children, relays


def video_gaps(path: Path) -> tuple[int, float, float]:
    """Frames, seconds covered and the longest gap between two video frames of a file."""
    import av

    with av.open(str(path)) as container:
        times = [float(f.time) for f in container.decode(video=0) if f.time is not None]
    if len(times) < 2:
        return len(times), 0.0, float("inf")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return len(times), times[-1] - times[0], max(gaps)


def _note(watchers: list[dict[str, Any]], attach: dict[str, float], since: float) -> None:
    """Read the viewers' peer ids as they come, and note when each first reported a
    parent (seconds since ``since``): polled from the first viewer's start on."""
    for w in watchers:
        if "peer" not in w:
            peer = watching_peer(w["log"])
            if peer is None:
                continue
            w["peer"] = peer
        if w["peer"] not in attach and parents({w["peer"]: w["log"]})[w["peer"]] is not None:
            attach[w["peer"]] = time.monotonic() - since


def _pause(seconds: float, watchers: list[dict[str, Any]], attach: dict[str, float],
           since: float) -> None:
    """Sleep ``seconds`` while noting the viewers' attach times."""
    until = time.monotonic() + seconds
    while True:
        _note(watchers, attach, since)
        left = until - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.2, left))


def run(viewers: int = 12, kill: int = 3, duration: float = 30.0, links: str = "webrtc",
        slots_mix: tuple[int, ...] = (3, 2, 0, 1), root_slots: int = 2,
        size: str = "160x120", fps: int = 10, workdir: str | None = None,
        verbose: bool = False, find_timeout: float = 40.0,
        stagger: float = 0.0) -> dict[str, Any]:
    work = Path(workdir or tempfile.mkdtemp(prefix="taiinet-stream-"))
    procs: list[subprocess.Popen[bytes]] = []
    load = {"start": os.getloadavg()[0]}
    # Viewers and broadcaster run until the bench stops them (SIGTERM: each prints
    # its figures), so every viewer watches from when it finds the stream until
    # the end, whenever it found it.  Before, each watched `duration` from its own
    # find: on a loaded host viewers that found the stream early had finished
    # when the last one attached, and the bench killed a relay with no child.
    # The processes' own --duration is only a backstop past every deadline here.
    lead = 8.0
    spread = stagger * (viewers - 1)
    backstop = spread + 2 * (find_timeout + lead) + 2 * duration
    try:
        sig = _spawn(["signal", "--listen", "127.0.0.1:0"], work / "signal.log")
        procs.append(sig)
        url = _first_line(sig, time.monotonic() + 30).split()[2]
        common = ["--signaller", url, "--links", links, *(["-v"] if verbose else [])]
        pub = _spawn(["stream", "publish", "--name", "bench", "--test-pattern",
                      "--duration", str(backstop + lead), "--slots", str(root_slots),
                      "--size", size, "--fps", str(fps), *common], work / "publish.log")
        procs.append(pub)
        time.sleep(1.0)
        began = time.monotonic()
        watchers: list[dict[str, Any]] = []
        attach: dict[str, float] = {}
        for i in range(viewers):
            if i and stagger:  # spread the arrivals, as a loaded host does
                _pause(stagger, watchers, attach, began)
            slots = slots_mix[i % len(slots_mix)]
            out = work / f"viewer{i}.webm"
            log = work / f"viewer{i}.log"
            proc = _spawn(["stream", "watch", "--name", "bench", "--out", str(out),
                           "--duration", str(backstop), "--slots", str(slots),
                           "--find-timeout", str(find_timeout), *common], log)
            procs.append(proc)
            watchers.append({"index": i, "slots": slots, "proc": proc, "out": out,
                             "log": log, "killed": False})
        while not all("peer" in w for w in watchers):
            if time.monotonic() > began + spread + 30:
                raise TimeoutError(f"no 'watching' line in {work}/viewer*.log")
            _pause(0.2, watchers, attach, began)
        logs = {w["peer"]: w["log"] for w in watchers}
        # Kill relaying viewers with children, most first, a third of `duration`
        # after every viewer has a parent (each has watched a while, and watches
        # on after).  The bench waits on the event it needs -- a relay still
        # watching with a child still watching -- for as long as a loaded host may
        # take; with more viewers than the broadcaster's slots, and every viewer
        # watching to the end, one comes once all are attached.  If none comes
        # it kills nothing and says so (`error`).
        deadline = began + spread + find_timeout + lead
        while time.monotonic() < deadline and not all(parents(logs).values()):
            _pause(0.2, watchers, attach, began)
        attached = time.monotonic() - began if all(parents(logs).values()) else None
        _pause(duration / 3, watchers, attach, began)
        now, children, relays = _relays(watchers, logs)
        deadline = time.monotonic() + find_timeout + lead
        while ((not relays or children[relays[0]["peer"]] == 0)
               and time.monotonic() < deadline):
            time.sleep(0.2)
            now, children, relays = _relays(watchers, logs)
        _note(watchers, attach, began)
        ready = bool(relays) and children[relays[0]["peer"]] > 0
        relay_ready = time.monotonic() - began
        error = None if ready else (
            f"no relaying viewer had a child still watching {relay_ready:.1f} s after the "
            f"viewers started (every viewer attached after {attached} s; load "
            f"{os.getloadavg()[0]:.1f}): nothing killed")
        victims = relays[:kill] if ready else []
        load["kill"] = os.getloadavg()[0]
        watching = {w["peer"] for w in watchers if w["proc"].poll() is None}
        for w in victims:
            os.killpg(w["proc"].pid, signal.SIGKILL)
            w["killed"] = True
        killed = {w["peer"] for w in victims}
        kill_at = time.monotonic() - began
        # Survivors watch on two thirds of `duration` past the kill, and each at
        # least `duration` from its first parent, then all stop together.
        end = max([kill_at + 2 * duration / 3, *(t + duration for t in attach.values())])
        time.sleep(max(0.0, began + end - time.monotonic()))
        for w in watchers:
            if not w["killed"] and w["proc"].poll() is None:
                w["proc"].send_signal(signal.SIGTERM)
        rows = []
        for w in watchers:
            proc = w["proc"]
            report: dict[str, Any] = {}
            if not w["killed"]:
                stdout, _ = proc.communicate(timeout=120)
                lines = stdout.decode().strip().splitlines()
                report = json.loads(lines[-1]) if lines else {}
            else:
                proc.wait()
            row: dict[str, Any] = {"viewer": w["index"], "slots": w["slots"],
                                   "killed": w["killed"], "children": children[w["peer"]],
                                   "orphaned": now[w["peer"]] in killed
                                   and w["peer"] in watching,
                                   "attached_after": (round(attach[w["peer"]], 1)
                                                      if w["peer"] in attach else None),
                                   "parent_changes": report.get("parent_changes")}
            if not w["killed"] and proc.returncode != 0:  # say why (no announcement found...)
                row["exit"] = proc.returncode
                row["log_tail"] = w["log"].read_text(errors="replace").splitlines()[-3:]
            if not w["killed"]:
                try:
                    frames, seconds, gap = video_gaps(w["out"])
                except Exception as exc:
                    frames, seconds, gap = 0, 0.0, float("inf")
                    row["error"] = repr(exc)
                watched = float(report.get("watched", 0.0))
                row.update(frames=frames, seconds=round(seconds, 2), longest_gap=round(gap, 2),
                           lost=round(max(0.0, seconds - (frames - 1) / fps), 2),
                           behind=round(max(0.0, watched - seconds), 2),
                           stopped=bool(report.get("stopped", True)),
                           lost_chunks=report.get("lost_chunks"))
            rows.append(row)
        pub.send_signal(signal.SIGTERM)
        stdout, _ = pub.communicate(timeout=120)
        broadcaster = json.loads(stdout.decode().strip().splitlines()[-1])
        load["end"] = os.getloadavg()[0]
        survivors = [r for r in rows if not r["killed"]]
        ok = (error is None
              and all(r["frames"] > 0 and r["longest_gap"] <= MAX_GAP and r["lost"] <= MAX_GAP
                      and not r["stopped"] for r in survivors)
              and broadcaster["most_children"] <= broadcaster["slots"]
              and broadcaster["upload_streams"] <= broadcaster["slots"])
        times = sorted(attach.values())
        return {"viewers": viewers, "killed": kill, "duration": duration, "links": links,
                "stagger": stagger, "error": error,
                "victims_children": [children[w["peer"]] for w in victims],
                "broadcaster": broadcaster, "rows": rows,
                "orphans": sum(1 for r in survivors if r["orphaned"]),
                "worst_gap": max((r["longest_gap"] for r in survivors), default=None),
                "worst_lost": max((r["lost"] for r in survivors), default=None),
                "attached_after": None if attached is None else round(attached, 1),
                "attach_spread": round(times[-1] - times[0], 1) if times else None,
                "relay_ready_after": round(relay_ready, 1), "killed_after": round(kill_at, 1),
                "ended_after": round(time.monotonic() - began, 1),
                "load": {k: round(v, 2) for k, v in load.items()}, "ok": ok,
                "workdir": str(work)}
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
    parser.add_argument("--links", choices=["webrtc", "websocket"], default="webrtc")
    parser.add_argument("--stagger", type=float, default=0.0, metavar="S",
                        help="start the viewers S seconds apart (arrivals spread as on a "
                             "loaded host)")
    parser.add_argument("--workdir", help="keep the logs and files here")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="the processes log to their .log files (-v)")
    args = parser.parse_args()
    print(json.dumps(run(args.viewers, args.kill, args.duration, args.links,
                         workdir=args.workdir, verbose=args.verbose,
                         stagger=args.stagger)))


if __name__ == "__main__":
    main()
