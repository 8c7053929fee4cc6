# taiinet: sans-io core
"""State records of the Kademlia core: its config, lookups, pending requests, stored records.

Split out of :mod:`taiinet.signal.dht` (one concern per file); only that
module uses the private records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from taiinet.signal.dht_types import Contact, DhtRecord, LookupFinished

K = 20
ALPHA = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class DhtConfig:
    """Tunables of the DHT.  Every table and queue bound is here."""

    k: int = K
    alpha: int = ALPHA
    request_timeout: float = 2.0
    maintenance_interval: float = 60.0
    refresh_interval: float = 3600.0
    republish_interval: float = 3600.0
    max_record_ttl: float = 86_400.0
    max_records: int = 10_000
    #: Records one remote signaller may have stored here at once: a source
    #: flooding STOREs of fresh identities fills at most this share of the
    #: store, and a full store evicts from the largest source first.
    max_records_per_source: int = 2_500
    max_record_bytes: int = 4096
    max_lookups: int = 64
    max_pending_requests: int = 512
    max_pings_per_tick: int = 20
    max_refresh_lookups_per_tick: int = 4


_UNASKED, _PENDING, _ANSWERED, _FAILED = range(4)


@dataclass(slots=True)
class _Candidate:
    contact: Contact
    distance: int
    hop: int
    state: int = _UNASKED


@dataclass(slots=True)
class _Lookup:
    lookup_id: int
    target: int
    want_value: bool
    put_record: DhtRecord | None
    report: bool
    min_seq: int = 0
    candidates: dict[str, _Candidate] = field(default_factory=dict)
    in_flight: int = 0
    requests: int = 0
    found_hop: int | None = None
    record: DhtRecord | None = None
    max_hop: int = 0


@dataclass(slots=True)
class _Pending:
    contact: Contact
    deadline: float
    lookup_id: int | None
    is_ping: bool
    put_id: int | None = None


@dataclass(slots=True)
class _PutWait:
    """A put whose STOREs are in flight; reported when none is left."""

    report: LookupFinished
    remaining: int


@dataclass(slots=True)
class _Stored:
    record: DhtRecord
    expires_at: float
    republish_at: float
    #: Peer id of the signaller whose STORE put it here (ours for local puts).
    source: str = ""
    #: When this version (``seq``) arrived: a record's publisher renews it
    #: with a new ``seq``, so this says how recently its peer was alive.
    stored_at: float = 0.0
