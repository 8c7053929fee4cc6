"""UDP datagrams sent during a measured step, by what they carry (``--datagram-stats``).

Every datagram a link sends costs a ``sendto`` and, at the other end, a read,
a DTLS record and an SCTP parse: the count per delivery, by kind, says which
of them a change could save.  Opt-in: it wraps asyncio's datagram
``sendto`` (every UDP datagram: DTLS records and STUN) and the DTLS record
writer of ``taiinet.transport._asyncio_dtls`` (every SCTP packet on the
direct path, read before it is encrypted) for the whole process, and counts
while started.  SCTP packets are named by their chunks in order
(``SACK+DATA`` is a SACK bundled in front of DATA).  Standard library only.
"""

from __future__ import annotations

import asyncio.selector_events
from collections import Counter
from struct import unpack_from
from typing import Any

from taiinet.transport import _asyncio_dtls

#: SCTP chunk types by number (RFC 9260 section 3.2, RFC 6525, RFC 3758).
CHUNK_NAMES = {0: "DATA", 1: "INIT", 2: "INIT-ACK", 3: "SACK", 4: "HEARTBEAT",
               5: "HEARTBEAT-ACK", 6: "ABORT", 7: "SHUTDOWN", 10: "COOKIE-ECHO",
               11: "COOKIE-ACK", 130: "RE-CONFIG", 192: "FORWARD-TSN"}
_IMMEDIATE_ACK = 0x08


class DatagramStats:
    """Datagrams and SCTP packets sent between ``start`` and ``stop``, by kind."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._on = False
        transport = asyncio.selector_events._SelectorDatagramTransport
        sendto = transport.sendto
        write_record = _asyncio_dtls._write_record

        def counting_sendto(this: Any, data: Any, addr: Any = None) -> None:
            if self._on:
                self.counts["datagrams"] += 1
                if not (data and 19 < data[0] < 64):  # not DTLS (RFC 7983): STUN
                    self.counts["not DTLS (STUN)"] += 1
            sendto(this, data, addr)

        def counting_write_record(ssl: Any, data: bytes) -> None:
            if self._on:
                self._count_packet(bytes(data))
            write_record(ssl, data)

        transport.sendto = counting_sendto  # type: ignore[method-assign]
        _asyncio_dtls._write_record = counting_write_record

    def _count_packet(self, packet: bytes) -> None:
        names = []
        pos = 12  # the common header
        while pos + 4 <= len(packet):
            kind, flags, length = unpack_from("!BBH", packet, pos)
            names.append(CHUNK_NAMES.get(kind, str(kind)))
            if kind == 0:
                self.counts["DATA chunks"] += 1
                self.counts["I bit"] += bool(flags & _IMMEDIATE_ACK)
            pos += max(length, 4) + (-length % 4)
        self.counts["SCTP " + "+".join(names)] += 1

    def start(self) -> None:
        self.counts.clear()
        self._on = True

    def stop(self) -> None:
        self._on = False

    def report(self, deliveries: int) -> str:
        per = max(deliveries, 1)
        total = self.counts["datagrams"]
        kinds = sorted((k for k in self.counts if k != "datagrams"),
                       key=lambda k: -self.counts[k])
        return f"datagrams sent {total / per:.3f}/delivery: " + ", ".join(
            f"{k} {self.counts[k] / per:.3f}" for k in kinds)
