"""aiortc's SCTP parameter reader, bounded: a parameter shorter than its header ends the packet.

aiortc (1.16) reads the parameters of INIT, INIT ACK, HEARTBEAT, HEARTBEAT
ACK, ABORT, ERROR and RE-CONFIG chunks with ``decode_params``, which moves on
by each parameter's length field.  A length of 0 never moves on: it appends
the same empty parameter until the process runs out of memory.  One 24-byte
packet (an ABORT with a zero-length cause) from any peer past the DTLS
handshake ended a node that way; ``parse_packet`` reads every chunk before
the verification tag is checked.

RFC 9260 section 3.2.1: a parameter's length counts its 4-byte header, so a
length under 4 is malformed.  ``sound_decode_params`` raises ``ValueError``
there, which every caller of ``parse_packet`` in aiortc already treats as a
malformed packet (``_handle_data`` drops it).  Any other body reads exactly
as aiortc reads it (a test compares them on drawn bodies).

Installed in aiortc's module when this module is imported (the WebRTC
bridge and the SCTP receive path import it), before any association exists:
a module-wide function is the one place every reader of parameters goes
through, whichever of our per-association hooks is installed.
"""

from __future__ import annotations

import threading
from struct import Struct

from aiortc import rtcsctptransport

__all__ = ["install_sound_params", "sound_decode_params"]

_HEADER = Struct("!HH")
_HEADER_LENGTH = _HEADER.size
_install_lock = threading.Lock()
#: aiortc's own reader, as it was before ``install_sound_params`` (for the tests'
#: comparison; never given a body it would not end on).
aiortc_decode_params = rtcsctptransport.decode_params


def sound_decode_params(body: bytes) -> list[tuple[int, bytes]]:
    """``(type, value)`` of each parameter in ``body``, as aiortc's ``decode_params``;
    ``ValueError`` for a parameter length under its 4-byte header."""
    params: list[tuple[int, bytes]] = []
    pos = 0
    last = len(body) - _HEADER_LENGTH
    while pos <= last:
        param_type, param_length = _HEADER.unpack_from(body, pos)
        if param_length < _HEADER_LENGTH:
            raise ValueError(f"SCTP parameter has an invalid length of {param_length} bytes")
        params.append((param_type, body[pos + _HEADER_LENGTH:pos + param_length]))
        pos += param_length + (-param_length % 4)
    return params


def install_sound_params() -> None:
    """Make aiortc's chunks read their parameters with ``sound_decode_params``."""
    with _install_lock:
        if rtcsctptransport.decode_params is not sound_decode_params:
            rtcsctptransport.decode_params = sound_decode_params


install_sound_params()
