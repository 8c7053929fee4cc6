"""The link layer's limits, in one frozen config (docs/node.md, "Links")."""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.errors import LocalProtocolError
from taiinet.transport.limits import DEFAULT_IDLE_TIMEOUT
from taiinet.wire.framing import MAX_FRAME_ITEMS

#: Items queued per peer before the link is declared too slow and dropped.
DEFAULT_SEND_QUEUE = 256
#: Seconds a lazy item (Plumtree's ``IHave``) may wait for other items to the
#: same peer to go with it (the Plumtree paper's lazy queue).
DEFAULT_LAZY_DELAY = 0.05
#: Seconds between two link frames that only lazy items set off, per link.
DEFAULT_LAZY_INTERVAL = 0.25
#: Lazy items held for one peer that make the sender go without waiting.
DEFAULT_LAZY_BATCH = 128
#: Largest link frame (bytes after the length prefix) sent or accepted on a
#: node link: the overlay's largest message (61,440 bytes of payload and its
#: fields, 62,464 bytes) fits with its item header (at most 16 bytes).
DEFAULT_LINK_FRAME_SIZE = 61_440 + 1024 + 16
#: Seconds after the last write on a connection that stays open by which the
#: peer has read it (``taiinet.link.manager``): the listeners' idle deadline,
#: so that the idle deadline closing a connection both ends stopped writing on
#: (two peers that dialed each other at once) does not fail the link.
DEFAULT_READ_WITHIN = DEFAULT_IDLE_TIMEOUT


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkConfig:
    """Bounds of every node link.

    * ``send_queue`` (>= 2): items queued per peer; one more means the peer
      is too slow and its link is dropped.
    * ``lazy_delay`` (>= 0; 0 sends lazy items at once), ``lazy_interval``
      (>= 0), ``lazy_batch`` (>= 1, at most half of ``send_queue``): pacing of
      lazy items (see ``taiinet.link.manager``).
    * ``max_frame_size`` (>= 64): bytes of one link frame, either way.
    * ``max_items`` (1..``MAX_FRAME_ITEMS``): items in one link frame, either way.
    * ``read_within`` (> 0): seconds after our last write on a connection by
      which the peer has read it if the connection is still open; one that
      ends sooner after a write with no frame back fails the link.
    """

    send_queue: int = DEFAULT_SEND_QUEUE
    lazy_delay: float = DEFAULT_LAZY_DELAY
    lazy_interval: float = DEFAULT_LAZY_INTERVAL
    lazy_batch: int = DEFAULT_LAZY_BATCH
    max_frame_size: int = DEFAULT_LINK_FRAME_SIZE
    max_items: int = MAX_FRAME_ITEMS
    read_within: float = DEFAULT_READ_WITHIN

    def __post_init__(self) -> None:
        if self.send_queue < 2:
            raise LocalProtocolError("send_queue must be >= 2")
        if self.lazy_delay < 0 or self.lazy_interval < 0:
            raise LocalProtocolError("lazy_delay and lazy_interval must be >= 0")
        if not self.lazy_batch >= 1:
            raise LocalProtocolError("lazy_batch must be >= 1")
        if self.max_frame_size < 64:
            raise LocalProtocolError("max_frame_size must be >= 64")
        if not self.read_within > 0:
            raise LocalProtocolError("read_within must be > 0")
        if not 1 <= self.max_items <= MAX_FRAME_ITEMS:
            raise LocalProtocolError(f"max_items must be in 1..{MAX_FRAME_ITEMS}")

    @property
    def held_lazy(self) -> int:
        """Lazy items held before the sender goes (within half the queue)."""
        return max(1, min(self.lazy_batch, self.send_queue // 2))
