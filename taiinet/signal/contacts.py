# taiinet: sans-io core
"""Contact sampling of the signaller core: which live peers a ``GetContacts`` gets.

From a peer, ``GetContacts`` is answered with a random sample of the peers
linked here plus samples from up to ``contacts_fanout`` random signallers of
the routing table (each asked ``local_only``, answered within
``contacts_timeout``).  With a ``service`` (``"seeder"``), only peers whose
record names it: linked ones first, then held DHT copies (found through a
bounded index of the held keys whose records name services), then, while
fewer than asked, samples from up to ``service_fanout`` other signallers, so
a rare service is found at any mesh size.  Records from other signallers are
verified, and the asker's own record, tombstones and records not naming the
service are left out.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from taiinet.core.actions import LinkId
from taiinet.signal.errors import RecordRejected
from taiinet.signal.ids import id_bytes, node_id
from taiinet.signal.records import PeerRecord, open_peer_record
from taiinet.wire.peer_id import PeerId

if TYPE_CHECKING:
    from taiinet.signal.signaller_core import SignallerCore


@dataclass(slots=True)
class ContactsJob:
    """A ``GetContacts`` from a peer, waiting for the signallers it fanned out to."""

    job: int
    link: LinkId
    exclude: PeerId
    request_id: int
    count: int
    service: str
    local: list[bytes]
    waiting: set[int] = field(default_factory=set)
    replies: list[tuple[bytes, ...]] = field(default_factory=list)


def local_sample(core: SignallerCore, count: int, exclude: str, service: str) -> list[bytes]:
    """Up to ``count`` records of live peers (not ``exclude``), linked ones first.

    With ``service``, only records naming it; the held copies are then drawn
    from ``core.service_keys`` (records naming some service), not from every
    held key, so a rare service costs no scan of the whole store.

    First the peers linked to this signaller right now (a peer whose link
    dropped left ``homed`` at once).  Then, to fill up, records held as a DHT
    node (keys are hashes, so a uniform sample of the mesh) whose current
    version arrived within ``contact_freshness``: their peers were renewing a
    moment ago.  Withdrawn and expired records never.
    """
    now_ms = core.unix_ms()
    peers = [h.raw for p, h in core.homed.items()
             if p != exclude and h.record.expires_unix_ms > now_ms
             and (not service or service in h.record.services)]
    chosen = core.rng.sample(peers, min(count, len(peers)))
    if len(chosen) >= count:
        return chosen
    now = core.now
    skip = {id_bytes(node_id(p)) for p in (*core.homed, exclude) if p}
    if service:
        held = [k for k, names in core.service_keys.items()
                if service in names and k not in skip]
    else:
        held = [k for k in core.dht.records if k not in skip]
    for key in core.rng.sample(held, min(2 * count, len(held))):
        age = core.dht.stored_since(key, now)
        record = core.dht.get_local(key, now)
        if record is None:
            core.service_keys.pop(key, None)
            continue
        if age is None or age > core.config.contact_freshness:
            continue
        try:
            opened = open_peer_record(record.value, now_ms)
        except RecordRejected:
            continue
        if not opened.withdrawn and (not service or service in opened.services):
            chosen.append(record.value)
        if len(chosen) >= count:
            break
    return chosen


def merge_contacts(job: ContactsJob, now_unix_ms: int, rng: random.Random,
                   vouched_homes: Collection[PeerId]) -> list[bytes]:
    """The answer: local records and the verified ones other signallers sent,
    those whose home is in ``vouched_homes`` first.

    ``vouched_homes`` are this signaller and the signallers it has a verified
    link to: a record naming one of them as its home is a peer a signaller we
    reached vouches for (or can be asked about at once).  Any key pair can sign
    a record naming a made-up home whose URL is a tarpit; shuffled in with the
    rest, such records crowd the live peers out of a small answer (a joiner
    then needs round after round of backoff), so they only fill up the answer.
    """
    remote: list[bytes] = []
    opened: dict[bytes, PeerRecord] = {}
    for records in job.replies:
        for raw in records:
            try:
                record = open_peer_record(raw, now_unix_ms)
            except RecordRejected:
                continue
            if (record.peer_id != job.exclude and not record.withdrawn
                    and (not job.service or job.service in record.services)):
                remote.append(raw)
                opened[raw] = record
    local = [raw for raw in job.local if _open_into(opened, raw, now_unix_ms)]
    if job.service:  # scarce: ours (linked first) before the mesh's
        rng.shuffle(remote)
        unique = newest_per_peer(local + remote, opened)
    else:
        unique = newest_per_peer(local + remote, opened)
        rng.shuffle(unique)
    vouched = [raw for raw in unique if opened[raw].signaller_peer_id in vouched_homes]
    taken = set(vouched)
    return (vouched + [raw for raw in unique if raw not in taken])[:job.count]


def newest_per_peer(raws: list[bytes], opened: dict[bytes, PeerRecord]) -> list[bytes]:
    """One record per peer, its highest ``seq``, at the place of that peer's first record.

    Two signallers may hold different versions of a peer's record (a renewal
    crossing the fan-out): listing both would spend two of a small answer's
    places, and a joiner's dials, on one peer.
    """
    best: dict[PeerId, bytes] = {}
    for raw in raws:
        peer = opened[raw].peer_id
        kept = best.get(peer)
        if kept is None or opened[raw].seq > opened[kept].seq:
            best[peer] = raw
    seen: set[PeerId] = set()
    unique: list[bytes] = []
    for raw in raws:
        peer = opened[raw].peer_id
        if peer not in seen:
            seen.add(peer)
            unique.append(best[peer])
    return unique


def _open_into(opened: dict[bytes, PeerRecord], raw: bytes, now_unix_ms: int) -> bool:
    """Open one of this signaller's own records into ``opened``; False if it no longer opens."""
    if raw in opened:
        return True
    try:
        opened[raw] = open_peer_record(raw, now_unix_ms)
    except RecordRejected:
        return False
    return True
