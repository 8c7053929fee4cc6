"""aiortc's SCTP parameter reader, bounded (``taiinet.transport._asyncio_sctp_params``).

A parameter length under the 4-byte header made aiortc's ``decode_params``
append one empty parameter forever: one packet from a peer past the DTLS
handshake ran a node out of memory.
"""

from __future__ import annotations

import subprocess
import sys
from struct import pack

import pytest
from aiortc import rtcsctptransport as rsctp
from hypothesis import given
from hypothesis import strategies as st

from taiinet.transport._asyncio_sctp_params import (
    aiortc_decode_params,
    install_sound_params,
    sound_decode_params,
)

install_sound_params()


def sctp_packet(chunks: bytes, tag: int = 0) -> bytes:
    header = pack("!HHL", 5000, 5000, tag)
    return header + pack("<L", rsctp.crc32c(header + b"\x00\x00\x00\x00" + chunks)) + chunks


#: An ABORT chunk whose one cause has a length of 0.
ABORT_WITH_EMPTY_CAUSE = pack("!BBH", 6, 0, 8) + pack("!HH", 1, 0)

_PROBE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from aiortc import rtcsctptransport as rsctp
import taiinet.transport._asyncio_bridge  # what any WebRTC link imports first
try:
    rsctp.parse_packet(bytes.fromhex(sys.argv[1]))
except ValueError:
    print("dropped")
"""


def test_a_zero_length_parameter_ends_the_packet_not_the_process() -> None:
    # In a child process with 1 GiB of address space: aiortc's own reader runs
    # out of memory there (MemoryError, exit status 1) instead of taking the suite.
    packet = sctp_packet(ABORT_WITH_EMPTY_CAUSE)
    child = subprocess.run([sys.executable, "-c", _PROBE, packet.hex()],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip() == "dropped"


@pytest.mark.parametrize("chunk_type", [1, 2, 4, 5, 6, 9, 130])
@pytest.mark.parametrize("length", [1, 2, 3])  # 0 only in a child process (above)
def test_every_chunk_with_parameters_rejects_a_length_under_the_header(
        chunk_type: int, length: int) -> None:
    head = b"\x00" * 16 if chunk_type in (1, 2) else b""  # INIT's fixed fields
    body = head + pack("!HH", 7, length) + b"\x00" * 4
    chunk = pack("!BBH", chunk_type, 0, 4 + len(body)) + body
    with pytest.raises(ValueError, match="invalid length"):
        rsctp.parse_packet(sctp_packet(chunk))


@st.composite
def sound_bodies(draw: st.DrawFn, *, padded: bool = False, trailer: bool = True) -> bytes:
    """Parameters of length 4 and up (padded, or now and then not: the last
    one may go unpadded), then 0-3 bytes of trailer."""
    body = b""
    for value in draw(st.lists(st.binary(max_size=12), max_size=4)):
        body += pack("!HH", draw(st.integers(0, 0xFFFF)), 4 + len(value)) + value
        if padded or draw(st.booleans()):
            body += b"\x00" * (-len(value) % 4)
    return body + (draw(st.binary(max_size=3)) if trailer else b"")


@given(sound_bodies())
def test_sound_bodies_read_as_aiortc_reads_them(body: bytes) -> None:
    assert aiortc_decode_params is not sound_decode_params
    assert sound_decode_params(body) == aiortc_decode_params(body)


@given(sound_bodies(padded=True, trailer=False), st.integers(0, 3), sound_bodies())
# The function alone: a length of 0 here would never end in aiortc's reader.
def test_a_short_parameter_anywhere_is_refused(before: bytes, length: int, after: bytes) -> None:
    # ``before`` is whole padded parameters, so the short one is read as a header.
    with pytest.raises(ValueError, match="invalid length"):
        sound_decode_params(before + pack("!HH", 3, length) + after)
