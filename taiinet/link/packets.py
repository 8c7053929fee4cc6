"""Where a busy link's frame ends: at a packet boundary of its transport.

A transport that cuts each frame into packets of its own (WebRTC: every data
channel message becomes SCTP DATA chunks of 1,200 bytes, one per UDP
datagram) sends a frame's last packet part empty, and every packet costs a
datagram, its DTLS record and half a SACK at both ends.  When a link is busy
(items queued while its previous frame was written) the next frame follows a
few scheduler rounds later anyway, so the items that would only part-fill a
last packet can wait for it.  The link manager asks this module how many of
the items it took go now; the connection says how it cuts frames
(``Connection.packets``, ``None`` for stream transports: nothing changes).
"""

from __future__ import annotations

from taiinet.transport.connection import Packets


def whole_packets(items: list[bytes], packets: Packets, keep: int = 0) -> int:
    """How many of ``items`` (at least ``keep``, and one) a busy link's frame takes
    so that it ends at or just below a packet boundary.

    A transport that cuts each frame into packets of its own (WebRTC: SCTP
    DATA chunks of 1,200 bytes) sends the frame's last packet part empty; the
    items that lie wholly in that last packet (with the one it starts in) are
    left for the next frame, which a busy link writes a few scheduler rounds
    later, when the frame that is left wastes less of its last packet than the
    whole one would.  A frame of one packet is never cut.
    """
    overhead, payload = packets.overhead, packets.payload
    size = sum(map(len, items))
    tail = (size + overhead) % payload  # bytes in the last, partly empty packet
    boundary = size + overhead - tail  # where the whole packets before it end
    if tail == 0 or boundary == 0:
        return len(items)
    send, least = len(items), max(1, keep)
    while send > least and size + overhead > boundary:
        send -= 1
        size -= len(items[send])
    spare = boundary - size - overhead  # unused bytes of the cut frame's last packet
    if spare < 0 or spare >= payload - tail:
        return len(items)
    return send
