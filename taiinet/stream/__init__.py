"""Live streams over relay trees: one broadcaster, many viewers, each relaying to a few.

A layer beside pubsub: ``tree`` is the sans-I/O relay-tree core, ``codec``
its wire form, ``announce`` the broadcaster's signed announcement.  The
media relay (chunks over data channels) is not built yet; the simulator
(``taiinet.sim.stream``) drives the core with modelled chunks.
"""

from taiinet.stream.config import TreeConfig
from taiinet.stream.tree import RelayTree

__all__ = ["RelayTree", "TreeConfig"]
