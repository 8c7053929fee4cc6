# taiinet: sans-io core
"""Budgets of the signaller's costly requests per network address, across links.

A relay to a peer homed elsewhere costs a DHT lookup, and a ``GetContacts``
fans out to other signallers.  Per-link caps do not stop one host that opens
many links under many free identities, so these requests are also budgeted
per remote address (``Connection.remote_address``: an IPv4 address or an
IPv6 /64):

* a token bucket per address (``rate`` per second, ``burst`` at most), taken
  by every relay lookup and every contacts fan-out;
* at most ``max_inflight`` relay lookups of one address at once, so one
  address holds at most that share of the global lookup slots.

Links with no known address, and those from the host's own loopback address
(``127.0.0.1``, ``::1``: every node of a one-machine run shares it) while
``exempt_loopback``, are budgeted per link only; other 127.x.y.z addresses
stand for other hosts and are budgeted.  The bucket table holds at most ``max_addresses``
entries: the least recently used is forgotten (it comes back with a full
bucket, so cycling through more addresses than that only buys the burst of
each).  In-flight counts exist only while lookups run.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.signal.errors import SignalUsageError

#: Relay lookups and contact fan-outs per second one address may start, past its burst.
DEFAULT_ADDRESS_RATE = 2.0
#: Relay lookups and contact fan-outs one address may start at once.
DEFAULT_ADDRESS_BURST = 32.0
#: Relay lookups of one address in flight at once (of ``max_inflight_relays``, 256).
DEFAULT_ADDRESS_INFLIGHT = 32
#: Addresses whose buckets are remembered.
DEFAULT_MAX_ADDRESSES = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressLimits:
    """Per-address budgets of relay lookups and contact fan-outs (see the module)."""

    rate: float = DEFAULT_ADDRESS_RATE
    burst: float = DEFAULT_ADDRESS_BURST
    max_inflight: int = DEFAULT_ADDRESS_INFLIGHT
    max_addresses: int = DEFAULT_MAX_ADDRESSES
    #: The host's own loopback address (127.0.0.1, ::1) is budgeted per link only.
    exempt_loopback: bool = True

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst >= 1):
            raise SignalUsageError("AddressLimits needs rate > 0 and burst >= 1")
        if self.max_inflight < 1 or self.max_addresses < 1:
            raise SignalUsageError("AddressLimits needs max_inflight and max_addresses >= 1")


#: The addresses every node of a one-machine run shares (normalised forms).
_LOCAL_HOST_ADDRESSES = frozenset({"127.0.0.1", "::1"})


class AddressBudget:
    """Token buckets and in-flight counts of request costs, per address."""

    __slots__ = ("_buckets", "_inflight", "limits")

    def __init__(self, limits: AddressLimits) -> None:
        self.limits = limits
        #: Address -> (tokens, when counted); least recently used first.
        self._buckets: dict[str, tuple[float, float]] = {}
        self._inflight: dict[str, int] = {}

    def key(self, address: str | None) -> str | None:
        """The budget ``address`` counts against, or ``None`` if it is not budgeted."""
        if address is None or (self.limits.exempt_loopback
                                   and address in _LOCAL_HOST_ADDRESSES):
            return None
        return address

    def take(self, address: str | None, now: float) -> bool:
        """Take one token of ``address``'s bucket; ``False`` (nothing taken) if empty."""
        key = self.key(address)
        if key is None:
            return True
        limits = self.limits
        tokens, at = self._buckets.pop(key, (limits.burst, now))
        tokens = min(limits.burst, tokens + max(0.0, now - at) * limits.rate)
        taken = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if taken else tokens, now)
        while len(self._buckets) > limits.max_addresses:
            del self._buckets[next(iter(self._buckets))]
        return taken

    def start_lookup(self, address: str | None, now: float) -> bool:
        """Admit a relay lookup of ``address``: an in-flight slot and a token.

        ``False`` changes nothing.  An admitted lookup must be ``finish_lookup``-ed.
        """
        key = self.key(address)
        if key is None:
            return True
        if self._inflight.get(key, 0) >= self.limits.max_inflight or not self.take(key, now):
            return False
        self._inflight[key] = self._inflight.get(key, 0) + 1
        return True

    def finish_lookup(self, address: str | None) -> None:
        key = self.key(address)
        if key is None:
            return
        left = self._inflight.get(key, 0) - 1
        if left > 0:
            self._inflight[key] = left
        else:
            self._inflight.pop(key, None)

    def inflight(self, address: str) -> int:
        """Relay lookups of ``address`` running now."""
        return self._inflight.get(address, 0)
