"""Run an asyncio coroutine at once, in the caller's loop callback, until it first waits.

aiortc's packet paths are coroutines (``await`` from the data channel down to
the socket) that almost never wait: on the hot paths only the receive
back-pressure of ``_asyncio_channel`` suspends one.  Started as a task, each
such coroutine costs a task, a scheduled callback and a loop iteration before
its first line runs.  ``run_eagerly`` runs it in the caller's callback instead
and, if it does wait, hands the suspended coroutine to a task that carries it
on (what Python 3.12's eager task factory does, for 3.11 too, for one call).

Plain calls.  Even run eagerly, every ``await`` of the chain costs a
coroutine object, its frame and its return (about 0.2 us each), and a usual
DATA packet crossed seven of them (the SCTP packet, its chunk twice, the
message, the data channel, the SACK twice).  A hook of ours may therefore
be made from a plain function (``hook_with_plain_variant``), which it carries
as its ``_taiinet_now`` attribute: same arguments, does the work at once and
returns None, or returns the coroutine that does the rest (awaited before
anything after it); awaiting the hook itself does the same.  ``call_now``
calls a hook that way when it has one, else returns the hook's coroutine: a
hook installed over ours (a test's counter, say) has no such attribute and
keeps seeing every call.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, ParamSpec

P = ParamSpec("P")

#: What a hook's plain variant returns: None (all done) or the coroutine that finishes.
Pending = Coroutine[Any, Any, None] | None

_NOW = "_taiinet_now"
#: The attribute a hook's plain variant is kept in: the hottest callers read it
#: themselves (``call_now``'s two lines, inline) and save a call per packet.
PLAIN_VARIANT = _NOW


def hook_with_plain_variant(now: Callable[P, Pending]) -> Callable[P, Coroutine[Any, Any, None]]:
    """The hook (a coroutine function) doing what ``now`` does, with ``now`` as its
    plain variant: ``call_now`` calls ``now``; awaiting the hook awaits what ``now``
    leaves pending."""

    async def awaiting_plain_variant(*args: P.args, **kwargs: P.kwargs) -> None:
        pending = now(*args, **kwargs)
        if pending is not None:
            await pending

    setattr(awaiting_plain_variant, _NOW, now)
    return awaiting_plain_variant


def call_now(hook: Callable[..., Any], *args: Any) -> Pending:
    """``hook(*args)`` through its plain variant if it has one; else its coroutine, unstarted."""
    now: Callable[..., Pending] | None = getattr(hook, _NOW, None)
    if now is not None:
        return now(*args)
    coro: Coroutine[Any, Any, None] = hook(*args)
    return coro


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
