"""The asyncio loop thread shared by every aiortc bridge of the process, and ICE host addresses.

aiortc runs on asyncio, TaiiNet on trio.  Trio guest mode needs asyncio to be
the host loop, which a trio program cannot offer, and trio-asyncio (which does
work with trio 0.35) replaces the asyncio event loop policy process-wide.  So
aiortc runs on a plain asyncio loop in one dedicated thread, shared by every
``AiortcBridge`` of the process (the first one started starts it, the last
one closed stops it and joins the thread).  One thread rather than one per
bridge: with twenty nodes in a process, twenty loop threads spent their time
handing the GIL to each other (measured in ``bench/pubsub.py``, WebRTC, 40
documents/s: p50 175 ms and 1,800 us of CPU per delivery with a thread per
node, 21 ms and 1,470 us with one loop).

Loopback and ICE: aioice leaves 127.0.0.1 out of its host candidates;
``candidate_addresses`` replaces what aioice gathers for the peer connections
of one bridge (through a context variable read by a wrapper around
``aioice.ice.get_host_addresses``; unset, aioice's own answer is used).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable

import aioice.ice
import trio

# -- candidate addresses ------------------------------------------------------

_CANDIDATE_ADDRESSES: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "taiinet_candidate_addresses", default=None
)
_aioice_get_host_addresses = aioice.ice.get_host_addresses
_install_lock = threading.Lock()


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    override = _CANDIDATE_ADDRESSES.get()
    if override is None:
        return _aioice_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return [a for a in override if (use_ipv6 if ":" in a else use_ipv4)]


def _install_candidate_override() -> None:
    with _install_lock:
        if aioice.ice.get_host_addresses is not _get_host_addresses:
            aioice.ice.get_host_addresses = _get_host_addresses



# -- the loop thread ----------------------------------------------------------


def _notify(token: trio.lowlevel.TrioToken, fn: Callable[[], object]) -> None:
    """Run ``fn`` in the trio thread soon; a finished trio run has nobody to tell."""
    with contextlib.suppress(trio.RunFinishedError):
        token.run_sync_soon(fn)


class _LoopThread:
    """The asyncio loop and its thread, shared by the bridges of the process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="taiinet-aiortc", daemon=True)
        self.users = 0
        #: Called in the loop thread once the loop is closed (set by the last user).
        self.on_finished: Callable[[], None] | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()
            if self.on_finished is not None:
                self.on_finished()


_shared_lock = threading.Lock()
_shared: _LoopThread | None = None


def _acquire_loop() -> _LoopThread:
    """The running shared loop (started if there is none), with one more user."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = _LoopThread()
            _shared.thread.start()
        _shared.users += 1
        return _shared


def _release_loop(shared: _LoopThread) -> bool:
    """One user less; True for the last one, who must stop the loop."""
    global _shared
    with _shared_lock:
        shared.users -= 1
        if shared.users:
            return False
        if _shared is shared:
            _shared = None  # the next bridge starts a new loop
        return True
