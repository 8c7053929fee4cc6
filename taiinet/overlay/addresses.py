# taiinet: sans-io core
"""Which network address each peer's link comes from, and what one address may hold.

Identities are free, addresses are not: one host can make any number of peer
ids but has one IPv4 address (or one IPv6 /64).  The driver reports the
address of each link (``Connection.remote_address``, already normalised); the
HyParView core asks this book whether a newcomer's address already holds
``max_neighbors_per_address`` of its active neighbours, and whether that
address displaced a neighbour less than ``address_eviction_interval`` ago.

A peer whose address is unknown (a WebRTC link, a walk's newcomer not yet
linked) is not limited until its link reports one.  The host's own loopback
address (``127.0.0.1``, ``::1``) is exempt while ``exempt_loopback``: all
nodes of a one-machine run share it.  Other loopback addresses (127.x.y.z)
are used only on purpose, to stand for other hosts, and count as addresses.
Memory: one entry per peer with a live link and per recently evicting
address, each table at most ``join_memory`` entries (the oldest forgotten).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from taiinet.overlay.config import HyParViewConfig
from taiinet.wire.peer_id import PeerId

#: The addresses every node of a one-machine run shares (normalised forms).
LOCAL_HOST_ADDRESSES = frozenset({"127.0.0.1", "::1"})


def is_loopback(address: str) -> bool:
    """Whether a normalised address (``"127.0.0.1"``, ``"::1"``, an IPv6 ``/64``) is loopback."""
    try:
        if "/" in address:
            return ipaddress.ip_network(address, strict=False).is_loopback
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def is_local_host(address: str) -> bool:
    """Whether ``address`` is the host's own loopback address, exempt from the limits."""
    return address in LOCAL_HOST_ADDRESSES


class AddressBook:
    """The link address of each peer, and the per-address limits of the active view."""

    __slots__ = ("_addresses", "_evictions", "config")

    def __init__(self, config: HyParViewConfig) -> None:
        self.config = config
        #: Peer -> address of its link (insertion order: the oldest forgotten first).
        self._addresses: dict[PeerId, str] = {}
        #: Address -> when a newcomer from it last displaced a neighbour (time order).
        self._evictions: dict[str, float] = {}

    def note(self, peer: PeerId, address: str) -> None:
        """Remember that ``peer``'s link comes from ``address``."""
        addresses = self._addresses
        addresses.pop(peer, None)
        addresses[peer] = address
        limit = max(1, self.config.join_memory)
        while len(addresses) > limit:
            del addresses[next(iter(addresses))]

    def forget(self, peer: PeerId) -> None:
        """``peer``'s link is gone."""
        self._addresses.pop(peer, None)

    def limited_address(self, peer: PeerId) -> str | None:
        """``peer``'s address if the per-address limits apply to it, else ``None``."""
        address = self._addresses.get(peer)
        if address is None or (self.config.exempt_loopback and is_local_host(address)):
            return None
        return address

    def over_cap(self, peer: PeerId, active: Iterable[PeerId]) -> bool:
        """Whether ``active`` neighbours other than ``peer`` already fill ``peer``'s address."""
        address = self.limited_address(peer)
        if address is None:
            return False
        addresses = self._addresses
        same = sum(1 for other in active if other != peer and addresses.get(other) == address)
        return same >= self.config.max_neighbors_per_address

    def may_evict(self, peer: PeerId, now: float) -> bool:
        """Whether ``peer``'s address may displace a neighbour now."""
        address = self.limited_address(peer)
        if address is None:
            return True
        last = self._evictions.get(address)
        return last is None or now - last >= self.config.address_eviction_interval

    def evicted(self, peer: PeerId, now: float) -> None:
        """Record that ``peer`` displaced a neighbour at ``now``."""
        address = self.limited_address(peer)
        if address is None:
            return
        evictions = self._evictions
        evictions.pop(address, None)
        evictions[address] = now
        horizon = now - self.config.address_eviction_interval
        limit = max(1, self.config.join_memory)
        while evictions:
            oldest = next(iter(evictions))
            if len(evictions) <= limit and evictions[oldest] > horizon:
                break
            del evictions[oldest]
