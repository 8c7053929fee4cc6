"""What every ``taiinet sim <name>`` command shares.

``--seed`` and ``--json`` (every one), ``--latency`` and the link model it
makes, ``--no-progress`` and the progress bar, ``--plot`` and matplotlib,
and one error for a configuration the simulation refuses (its config's own
range checks, reported in one line with a non-zero exit, never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from taiinet.errors import TaiiNetError
from taiinet.sim.network import LinkModel

C = TypeVar("C")
#: ``progress(done, total)``, as the simulators take it.
Progress = Callable[[float, float], None]


class BadSimArguments(TaiiNetError):
    """The simulation was asked for something impossible."""


def add_common(parser: argparse.ArgumentParser, *, seed: int) -> None:
    """``--seed`` (default ``seed``) and ``--json``."""
    parser.add_argument("--seed", type=int, default=seed,
                        help=f"seed of the whole run (default {seed})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def add_latency(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latency", type=float, default=0.05,
                        help="median link delay in seconds (default 0.05)")


def link_model(latency: float, loss: float = 0.0) -> LinkModel:
    """The link model of ``--latency``: delays from 5 ms (or less) to 20 medians (or 1 s)."""
    return checked(lambda: LinkModel(median_delay=latency, min_delay=min(0.005, latency),
                                     max_delay=max(1.0, 20 * latency), loss=loss))


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_plot(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--plot", metavar="PATH",
                        help=f"write a PNG of {what} (needs matplotlib)")


def checked(build: Callable[[], C]) -> C:
    """``build()``; a value its checks refuse becomes ``BadSimArguments`` (one line)."""
    try:
        return build()
    except TaiiNetError as exc:
        if isinstance(exc, BadSimArguments):
            raise
        raise BadSimArguments(str(exc)) from None
    except ValueError as exc:
        raise BadSimArguments(str(exc)) from None


@contextmanager
def progress_bar(args: argparse.Namespace, label: str) -> Iterator[Progress | None]:
    """A progress callback drawing a bar on stderr, or ``None`` (``--no-progress``,
    or stderr is not a terminal)."""
    if args.no_progress or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress as Bar

    with Bar(transient=True) as bar:
        task = bar.add_task(label, total=1.0)
        yield lambda done, total: bar.update(task, completed=done / total)


def pyplot() -> Any:
    """matplotlib's ``pyplot`` on the file-only Agg backend (for ``--plot``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise TaiiNetError("--plot needs matplotlib: pip install 'taiinet[plot]'") from None
    return plt
