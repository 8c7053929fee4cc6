"""Run an asyncio coroutine at once, in the caller's loop callback, until it first waits.

aiortc's packet paths are coroutines (``await`` from the data channel down to
the socket) that almost never wait: on the hot paths only the receive
back-pressure of ``_asyncio_channel`` suspends one.  Started as a task, each
such coroutine costs a task, a scheduled callback and a loop iteration before
its first line runs.  ``run_eagerly`` runs it in the caller's callback instead
and, if it does wait, hands the suspended coroutine to a task that carries it
on (what Python 3.12's eager task factory does, for 3.11 too, for one call).
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import Any


def run_eagerly(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coro`` now; None if it finished, else the task that finishes it.

    Call from inside the running loop (a callback or a task).  An exception
    the coroutine raises before it first waits propagates to the caller.
    """
    try:
        first = coro.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_carry_on(coro, first))


async def _carry_on(coro: Coroutine[Any, Any, None], first: Any) -> None:
    await _resume(coro, first)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], first: Any) -> Generator[Any, Any, None]:
    """Pass what ``coro`` yields (the future it waits on) to the task, and back."""
    yielded = first
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:  # thrown in by the task: cancellation
            try:
                yielded = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            yielded = coro.send(sent)
        except StopIteration:
            return
