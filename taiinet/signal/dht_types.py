# taiinet: sans-io core
"""Domain types of the Kademlia DHT: contacts, records, messages and actions.

These are what the core consumes and produces; the protobuf forms live only
in :mod:`taiinet.signal.dht_codec`.  All are frozen, slotted, keyword-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.core.actions import Send, SetTimer
from taiinet.wire.peer_id import PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    """A signaller in the DHT: its peer id and the address to dial it at.

    The address (a ``ws://`` URL for real signallers) is opaque to the core.
    """

    peer_id: PeerId
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DhtRecord:
    """A stored value.  ``value`` is opaque to the core (a signed envelope).

    ``seq`` orders versions (higher replaces lower); ``ttl`` is the seconds of
    life left when the record was sent, so clocks need not agree.
    """

    key: bytes
    value: bytes
    seq: int
    ttl: float


# -- messages (each request carries an id echoed by its response) -------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FindNode:
    request_id: int
    target: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class FindValue:
    request_id: int
    key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Store:
    request_id: int
    record: DhtRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Nodes:
    """Answer to FindNode, and to FindValue when the value is not held."""

    request_id: int
    contacts: tuple[Contact, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueFound:
    request_id: int
    record: DhtRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreResult:
    request_id: int
    stored: bool


DhtRequest = Ping | FindNode | FindValue | Store
DhtResponse = Pong | Nodes | ValueFound | StoreResult
DhtMessage = DhtRequest | DhtResponse


# -- actions (outputs of the core) --------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTimeout:
    """A request to ``peer_id`` must have been answered by now (stale once it was)."""

    peer_id: PeerId
    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceTick:
    """The periodic maintenance: expire, republish, ping stale contacts, refresh buckets."""


DhtTimer = RequestTimeout | MaintenanceTick


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupFinished:
    """An iterative lookup ended.

    ``closest`` are the (at most k) closest nodes that answered, nearest
    first.  ``record`` is set when a FIND_VALUE lookup found the value.
    ``hops`` is the number of sequential request rounds after which the
    target node (or the value) was learned: 0 when it was already in the
    routing table; for a lookup that never found it, the deepest round.
    ``found`` says whether the target id or value was found.
    """

    lookup_id: int
    target: bytes
    closest: tuple[Contact, ...]
    record: DhtRecord | None
    found: bool
    hops: int
    requests: int


#: ``Send.address`` is the contact's address (dial it if there is no link yet).
DhtAction = Send[DhtMessage] | SetTimer[DhtTimer] | LookupFinished
