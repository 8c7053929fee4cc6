# taiinet: sans-io core
"""The links one relay tree holds, least recently used first, and which to close.

Part of ``RelayTree`` (``taiinet.stream.tree``, *Links* in its theory of
operation): every tree message sent or received marks its peer's link used;
a link the tree does not need (``needs``: the parent, a child, a peer of the
pending join) is closed once idle for ``link_idle_timeout``, and at once
when more than ``max_links`` are held.
"""

from __future__ import annotations

from collections.abc import Callable

from taiinet.core.actions import CloseLink, Send
from taiinet.stream.actions import Action
from taiinet.wire.peer_id import PeerId

Needs = Callable[[PeerId], bool]


class TreeLinks:
    """Peer -> last tree message either way; yields the ``CloseLink``s to make."""

    __slots__ = ("_last", "idle_timeout", "max_links")

    def __init__(self, idle_timeout: float, max_links: int) -> None:
        self.idle_timeout = idle_timeout
        self.max_links = max_links
        self._last: dict[PeerId, float] = {}

    def __contains__(self, peer: PeerId) -> bool:
        return peer in self._last

    def touch(self, peer: PeerId, now: float) -> None:
        """A tree message went to or came from ``peer``."""
        last = self._last
        last.pop(peer, None)
        last[peer] = now

    def forget(self, peer: PeerId) -> None:
        """The link is gone (failed, or closed by the tree)."""
        self._last.pop(peer, None)

    def note(self, out: list[Action], now: float, needs: Needs) -> None:
        """Note the links ``out`` sends on or closes; past ``max_links``, close
        (append to ``out``) the least recently used ones the tree does not need."""
        for action in out:
            if isinstance(action, Send):
                self.touch(action.peer, now)
            elif isinstance(action, CloseLink):
                self.forget(action.peer)
        excess = len(self._last) - self.max_links
        if excess > 0:
            for peer in [p for p in self._last if not needs(p)][:excess]:
                self.close(peer, out)

    def close(self, peer: PeerId, out: list[Action]) -> None:
        self.forget(peer)
        out.append(CloseLink(peer=peer))

    def close_idle(self, now: float, needs: Needs, out: list[Action]) -> None:
        """Close the links unused for ``idle_timeout`` that the tree does not need."""
        before = now - self.idle_timeout
        for peer, at in list(self._last.items()):
            if at >= before:
                break  # least recently used first: the rest are fresher
            if not needs(peer):
                self.close(peer, out)

    def close_all(self, out: list[Action]) -> None:
        out.extend(CloseLink(peer=peer) for peer in self._last)
        self._last.clear()
