# taiinet: sans-io core
"""The seam between a subscription's stored documents and its live ones.

Theory of operation
-------------------
A subscription with history registers its query first, then fetches the
stored documents, so a document published meanwhile is both live and maybe
stored.  While the history is being read, live documents are *held*
(bounded, ``max_held``: past it the oldest held is dropped and counted, as a
full subscription queue does); each history document is passed on and its
id remembered.  When the history ends, the held live documents whose ids
were not in it are passed on, in arrival order, and from then on a live
document is passed on unless its id came through the history.  So each
document comes out once: the history in publication order, then the live
ones, with no gap (the query was live before the first page was asked for)
and no duplicate at the seam.

The remembered ids are bounded (``max_ids``, the latest in publication
order kept): a live copy of a stored document can only arrive around the
time the subscription started, so only the newest stored ids can meet one.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from taiinet.history.errors import HistoryUsageError

T = TypeVar("T")

#: History ids remembered to drop live duplicates.
DEFAULT_MAX_IDS = 65_536


class Seam(Generic[T]):
    """Order history then live items of one subscription, each id once."""

    def __init__(self, *, max_held: int, max_ids: int = DEFAULT_MAX_IDS) -> None:
        if max_held < 1 or max_ids < 1:
            raise HistoryUsageError("a seam holds at least one item and one id")
        self.max_held = max_held
        self.max_ids = max_ids
        self.live = False
        self._held: deque[tuple[Hashable, T]] = deque()
        self._ids: OrderedDict[Hashable, None] = OrderedDict()
        #: Live items dropped because ``max_held`` were held.
        self.dropped = 0
        #: Live items dropped because the history had them.
        self.duplicates = 0

    def history(self, item_id: Hashable, item: T) -> list[T]:
        """A stored item (in publication order): pass it on, unless already seen."""
        if self.live or item_id in self._ids:
            return []
        self._ids[item_id] = None
        if len(self._ids) > self.max_ids:
            self._ids.popitem(last=False)
        return [item]

    def arrived(self, item_id: Hashable, item: T) -> list[T]:
        """A live item: held during the history, then passed on unless the history had it."""
        if item_id in self._ids:
            self.duplicates += 1
            return []
        if self.live:
            return [item]
        self._held.append((item_id, item))
        if len(self._held) > self.max_held:
            self._held.popleft()
            self.dropped += 1
        return []

    def finish(self) -> list[T]:
        """The history ended: the held live items it did not have, in arrival order."""
        if self.live:
            return []
        self.live = True
        out: list[T] = []
        for item_id, item in self._held:
            if item_id in self._ids:
                self.duplicates += 1
            else:
                out.append(item)
        self._held.clear()
        return out
