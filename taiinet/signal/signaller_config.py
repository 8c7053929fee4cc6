# taiinet: sans-io core
"""Limits of one signaller: every queue, table and rate bound, with its default."""

from __future__ import annotations

from dataclasses import dataclass, field

from taiinet.signal.address_budget import AddressLimits
from taiinet.signal.dht import DhtConfig

#: Seconds a link closed for a protocol violation has to send what was queued
#: for it (a ``registered{ok=false}`` saying why).
FLUSH_TIMEOUT = 1.0
#: Non-DHT messages kept from a link whose SIGNALLER claim is being checked.
MAX_HELD_WHILE_VERIFYING = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class SignallerConfig:
    """Limits of one signaller; every queue and table bound is here."""

    max_peers: int = 10_000
    max_links: int = 20_000
    send_queue: int = 256
    peer_rate: float = 20.0
    peer_burst: float = 60.0
    signaller_rate: float = 500.0
    signaller_burst: float = 2000.0
    max_concurrent_dials: int = 32
    max_pending_per_dial: int = 64
    max_inflight_relays: int = 256
    #: Relays of one peer being looked up at once; past it the peer gets
    #: ``relay_failed`` ("busy"), so one link cannot hold the lookup slots.
    max_inflight_relays_per_link: int = 4
    #: Signaller claims being verified (dialed back) at once; past it a claim
    #: is refused and its link closed.
    max_verifications: int = 16
    #: Peer ids remembered as proven signallers (id -> URL), oldest forgotten.
    max_verified: int = 4096
    lookup_timeout: float = 10.0
    contacts_fanout: int = 2
    contacts_timeout: float = 2.0
    #: Signallers asked for a ``GetContacts`` naming a service, while this one
    #: holds fewer matching records than asked.  Up to 20 signallers each hold
    #: every record (k = 20); beyond that each asked one holds a given record
    #: with probability 20/N, besides the peers linked to it.
    service_fanout: int = 6
    #: Held DHT keys indexed by the services their records name (oldest forgotten).
    max_service_records: int = 1024
    #: Seconds since its last renewal reached us within which a peer record held
    #: for the DHT may be handed out as a contact (after the linked peers): a
    #: little more than a peer's renewal interval (``RECORD_LIFETIME /
    #: RECORD_RENEWALS`` = 30 s).
    contact_freshness: float = 40.0
    hello_timeout: float = 10.0
    #: Bytes per second a peer link is read at past ``peer_byte_burst`` (frames of all layers).
    peer_byte_rate: float = 64 * 1024
    peer_byte_burst: float = 512 * 1024
    #: The same for links to other signallers.
    signaller_byte_rate: float = 1024 * 1024
    signaller_byte_burst: float = 4 * 1024 * 1024
    #: Seconds of sending nothing on a link before the signaller sends a ``Ping``; the
    #: peer's ``Pong`` keeps the link within the listener's idle deadline (60 s).
    keepalive_interval: float = 20.0
    #: Seconds a link may be read at its rate limit without a break before it is
    #: dropped as a flood (a legitimate burst drains well within it).
    flood_timeout: float = 30.0
    #: Relay lookups and contact fan-outs per remote address, across its links.
    address_limits: AddressLimits = field(default_factory=AddressLimits)
    dht: DhtConfig = field(default_factory=DhtConfig)
