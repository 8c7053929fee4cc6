"""aiortc's out-of-order TSN bookkeeping, mended for the wrap of the 32-bit TSN.

aiortc (1.16) keeps the TSNs received past a gap in ``_sack_misordered`` and
walks them with ``sorted()`` in three places: moving the cumulative TSN on
(``_mark_received``, ``_receive_forward_tsn_chunk``) and building a SACK's gap
blocks (``_send_sack``).  Sorted as plain integers, the TSNs after the wrap
(0, 1, ...) come before those just below 2**32, so once the TSNs held past a
gap straddle the wrap the cumulative TSN stops moving on: every later chunk is
held as out of order, the receive window fills and the link stalls, and the
SACK's gap blocks come out of the order RFC 9260 section 3.3.4 gives them
(by offset from the cumulative TSN).  An association's first TSN is drawn
at random, so any long-lived link can cross the wrap, and a loss just then
would end it.

``mend_tsn_wrap`` fixes one association: after aiortc's own bookkeeping the
cumulative TSN moves on through every TSN held, in serial-number order
(RFC 1982), and a SACK's gap blocks are built in that order.  Away from the
wrap both do exactly what aiortc does (a test compares them on drawn
sequences).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiortc.rtcsctptransport import SackChunk

__all__ = ["mend_tsn_wrap"]

_HOOKED = "_taiinet_tsn_wrap"
_MODULO = 1 << 32
_HALF = 1 << 31
_ATTRIBUTES = (
    "_mark_received", "_receive_forward_tsn_chunk", "_send_sack", "_send_chunk",
    "_sack_misordered", "_sack_duplicates", "_sack_needed", "_last_received_tsn",
    "_advertised_rwnd", "_inbound_streams",
)


def _after(tsn: int, last: int) -> bool:
    """``tsn`` comes after ``last`` in serial-number order (RFC 1982)."""
    return 0 < (tsn - last) % _MODULO < _HALF


def _move_on(sctp: Any) -> bool:
    """Move the cumulative TSN on through the TSNs held past it; True if it moved."""
    held = sctp._sack_misordered
    last = sctp._last_received_tsn
    following = (last + 1) % _MODULO
    if following not in held:
        return False
    while following in held:
        last = following
        following = (last + 1) % _MODULO
    sctp._last_received_tsn = last
    sctp._sack_misordered = {tsn for tsn in held if _after(tsn, last)}
    sctp._sack_duplicates = [tsn for tsn in sctp._sack_duplicates if _after(tsn, last)]
    return True


def gap_blocks(last: int, held: set[int]) -> list[tuple[int, int]]:
    """A SACK's gap blocks for the TSNs ``held`` past cumulative TSN ``last``:
    (start, end) offsets from ``last``, in ascending order, runs merged."""
    blocks: list[list[int]] = []
    for offset in sorted((tsn - last) % _MODULO for tsn in held):
        if blocks and blocks[-1][1] + 1 == offset:
            blocks[-1][1] = offset
        else:
            blocks.append([offset, offset])
    return [(start, end) for start, end in blocks]


def mend_tsn_wrap(sctp: Any) -> bool:
    """Make ``sctp`` (an aiortc ``RTCSctpTransport``) keep its cumulative TSN and
    SACK gap blocks right across the TSN wrap; False if aiortc lacks a hook.

    Install it before any hook that captures ``_send_sack``.
    """
    if getattr(sctp, _HOOKED, False) or not all(hasattr(sctp, a) for a in _ATTRIBUTES):
        return False
    aiortc_mark_received: Callable[[int], bool] = sctp._mark_received
    aiortc_forward_tsn: Callable[[Any], Awaitable[None]] = sctp._receive_forward_tsn_chunk

    def mark_received(tsn: int) -> bool:
        duplicate = aiortc_mark_received(tsn)
        if not duplicate:
            _move_on(sctp)
        return duplicate

    async def receive_forward_tsn_chunk(chunk: Any) -> None:
        await aiortc_forward_tsn(chunk)
        if _move_on(sctp):  # and prune what aiortc would have pruned had it moved on
            for stream in sctp._inbound_streams.values():
                sctp._advertised_rwnd += stream.prune_chunks(sctp._last_received_tsn)

    async def send_sack() -> None:
        sack = SackChunk()
        sack.cumulative_tsn = sctp._last_received_tsn
        sack.advertised_rwnd = max(0, sctp._advertised_rwnd)
        sack.duplicates = list(sctp._sack_duplicates)
        sack.gaps = gap_blocks(sctp._last_received_tsn, sctp._sack_misordered)
        await sctp._send_chunk(sack)
        sctp._sack_duplicates.clear()
        sctp._sack_needed = False

    sctp._mark_received = mark_received
    sctp._receive_forward_tsn_chunk = receive_forward_tsn_chunk
    sctp._send_sack = send_sack
    setattr(sctp, _HOOKED, True)
    return True
