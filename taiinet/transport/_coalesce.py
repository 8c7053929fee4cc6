"""Joining queued channel messages for transports that carry a byte stream."""

from __future__ import annotations


def coalesce(messages: list[bytes], limit: int) -> list[bytes]:
    """Join neighbouring messages into as few as possible of at most ``limit`` bytes.

    A message longer than ``limit`` stays whole (callers never queue one).
    """
    joined: list[bytes] = []
    run: list[bytes] = []
    size = 0
    for message in messages:
        if run and size + len(message) > limit:
            joined.append(run[0] if len(run) == 1 else b"".join(run))
            run, size = [], 0
        run.append(message)
        size += len(message)
    if run:
        joined.append(run[0] if len(run) == 1 else b"".join(run))
    return joined
