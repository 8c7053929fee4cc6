"""Running a subcommand's trio program, and turning its failures into exit codes.

trio wraps what escapes a nursery in exception groups (a ``KeyboardInterrupt``
on Ctrl-C too).  The CLI must answer each with one line and a conventional
exit code, never a traceback, so ``run_trio`` takes the meaningful exception
out of the groups, and ``exit_code`` maps it:

* ``KeyboardInterrupt`` (SIGINT, Ctrl-C): ``interrupted``, exit 130 (128 + 2);
* ``BrokenPipeError`` (stdout closed, ``taiinet sub ... | head -1``): nothing,
  exit 141 (128 + SIGPIPE), as a shell tool killed by SIGPIPE;
* a ``TaiiNetError`` (bad input, nothing reachable): its message, exit 2.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from taiinet.errors import TaiiNetError

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: Exceptions taken out of groups, most telling first: an interrupt explains
#: every other error of the same run (tasks cancelled under it).
_UNWRAPPED: tuple[type[BaseException], ...] = (KeyboardInterrupt, BrokenPipeError, TaiiNetError)


def run_trio(main: Callable[[], Awaitable[T]]) -> T:
    """``trio.run(main)``, re-raising an interrupt, a closed pipe or a
    ``TaiiNetError`` out of the exception groups that carry it."""
    import trio  # here: ``taiinet --help`` and ``taiinet keygen`` do not need it

    try:
        return trio.run(main)
    except BaseExceptionGroup as group:
        for kind in _UNWRAPPED:
            found = first_in_group(group, kind)
            if found is not None:
                raise found from None
        raise


def first_in_group(exc: BaseException, kind: type[E]) -> E | None:
    """``exc`` itself or the first exception of type ``kind`` nested in its groups."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_in_group(inner, kind)
            if found is not None:
                return found
    return None


def exit_code(command: str, handler: Callable[[], int]) -> int:
    """Run ``handler``; print a failure as one line on stderr and return its exit code."""
    try:
        return handler()
    except TaiiNetError as exc:
        print(f"taiinet {command}: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"taiinet {command}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        silence_stdout()
        return EXIT_BROKEN_PIPE


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of a closed
    pipe does not print "Exception ignored ... BrokenPipeError"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass


class CommandError(TaiiNetError):
    """A subcommand could not start (e.g. its listen address is taken)."""


def warnings_as_lines(command: str, *loggers: str) -> None:
    """Print the warnings of ``loggers`` as ``taiinet COMMAND: message`` lines on
    stderr (without ``-v``, the only log lines a user sees)."""
    handler = _LineHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"taiinet {command}: %(message)s"))
    handler.setLevel(logging.WARNING)
    for name in loggers:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _LineHandler)]:
            logger.removeHandler(old)  # main() run again in one process (tests)
        logger.addHandler(handler)


#: Format of ``-vv`` log lines: wall clock (seconds since the epoch, to the
#: millisecond, so the lines of several processes merge by time), logger, message.
DEBUG_FORMAT = "%(created).3f %(process)d %(name)s %(message)s"


def log_to_stderr(verbosity: int) -> None:
    """``-v``: log INFO and above to stderr; ``-vv``: DEBUG too, every line stamped
    with the wall clock and process id (the steps of a link, a join or a delivery;
    see docs/node.md, "Debug output")."""
    if verbosity >= 2:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format=DEBUG_FORMAT)
        for noisy in ("aiortc", "asyncio", "trio-websocket"):
            logging.getLogger(noisy).setLevel(logging.INFO)
    elif verbosity == 1:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)


class _LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler of ``warnings_as_lines`` (with it, logging's last-resort
    handler stays silent; records still propagate to any other handler)."""
