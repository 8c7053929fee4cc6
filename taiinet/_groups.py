"""Context managers whose own nurseries do not wrap the user's exception.

A context manager that runs background tasks (``open_node``,
``open_signaller``) holds trio nurseries, and trio wraps every exception that
leaves a nursery in an ``ExceptionGroup``.  An error raised in the body of
``async with open_node(...)`` would come out under one group per nursery the
node holds, so ``except KeyError`` in the caller would miss it.

``unwrap_own_groups`` undoes exactly that wrapping and nothing more:

* on exit, if the group that leaves the context manager is a chain of
  one-element groups ending at the exception the body raised, that exception
  comes out alone (the very object, its traceback and ``__cause__`` as the
  body raised it).  A group the body raised itself is recognised by its
  leaves, which are the same objects: trio's cancel scopes ``split`` groups,
  which copies every group but never a leaf;
* on entry (no user code has run yet), a chain of one-element groups ending
  at one error is that error (e.g. ``NodeError`` when no signaller answers);
* anything else - the context manager failed too, so the group holds two
  errors or a different one - comes out as the group, untouched: a second,
  real error is never swallowed.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


def _same(error: BaseException, original: BaseException) -> bool:
    """``error`` is ``original`` or a copy of it made by ``BaseExceptionGroup.derive``."""
    if error is original:
        return True
    if not (isinstance(error, BaseExceptionGroup) and isinstance(original, BaseExceptionGroup)):
        return False
    return (type(error) is type(original) and error.message == original.message
            and len(error.exceptions) == len(original.exceptions)
            and all(_same(e, o) for e, o in zip(error.exceptions, original.exceptions,
                                                    strict=True)))


def _single_leaf(error: BaseException, stop_at: BaseException | None = None) -> BaseException:
    """Follow one-element groups down from ``error``; stop at ``stop_at`` or a non-group."""
    while (isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1
           and not (stop_at is not None and _same(error, stop_at))):
        error = error.exceptions[0]
    return error


class _Unwrapped(AbstractAsyncContextManager[T]):
    def __init__(self, inner: AbstractAsyncContextManager[T]) -> None:
        self._inner = inner

    async def __aenter__(self) -> T:
        leaf: BaseException | None = None
        try:
            return await self._inner.__aenter__()
        except BaseExceptionGroup as group:
            leaf = _single_leaf(group)
            if isinstance(leaf, BaseExceptionGroup):
                raise
        raise leaf  # outside the except: its own __context__ stays as it was

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        try:
            return await self._inner.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            if exc is None or not _same(_single_leaf(group, stop_at=exc), exc):
                raise
        # Only our own wrapping around the body's error: returning False makes
        # ``async with`` re-raise that error as the body raised it.
        exc.__traceback__ = tb
        return False


def unwrap_own_groups(
        function: Callable[P, AsyncIterator[T]]) -> Callable[P, AbstractAsyncContextManager[T]]:
    """``asynccontextmanager`` that collapses the groups its own nurseries add."""
    factory = asynccontextmanager(function)

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> AbstractAsyncContextManager[T]:
        return _Unwrapped(factory(*args, **kwargs))

    return wrapper
