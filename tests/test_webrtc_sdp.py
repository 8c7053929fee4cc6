"""Fuzzing the SDP check: any text is either accepted as is or an ``InvalidSdp``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.transport.webrtc import MAX_SDP_CANDIDATES, MAX_SDP_SIZE, InvalidSdp, validate_sdp

# An offer as aiortc 1.16 writes it (127.0.0.1 candidate), kept verbatim.
OFFER = "\r\n".join([
    "v=0",
    "o=- 4004624459 4004624459 IN IP4 0.0.0.0",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "a=msid-semantic:WMS *",
    "m=application 35708 UDP/DTLS/SCTP webrtc-datachannel",
    "c=IN IP4 127.0.0.1",
    "a=mid:0",
    "a=sctp-port:5000",
    "a=max-message-size:262144",
    "a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 127.0.0.1 35708 typ host",
    "a=end-of-candidates",
    "a=ice-ufrag:ToD3",
    "a=ice-pwd:ysXgWLPdsqnI3qiWHg8bAP",
    "a=fingerprint:sha-256 F3:EF:E0:A1:01:85:68:18:02:D2:AC:DD:CE:6E:39:8C:D0:D4:91:1B:17:9E:"
    "6D:C9:86:11:F4:13:99:8A:41:C2",
    "a=setup:actpass",
]) + "\r\n"
LINES = OFFER.split("\r\n")[:-1]


def check(sdp: str) -> None:
    try:
        accepted = validate_sdp(sdp, "offer")
    except InvalidSdp:
        return
    assert accepted is sdp


def test_a_real_offer_is_accepted() -> None:
    assert validate_sdp(OFFER, "offer") is OFFER
    assert validate_sdp(OFFER.replace("\r\n", "\n"), "answer")


@pytest.mark.parametrize("sdp", [
    OFFER + "a=x:" + "y" * MAX_SDP_SIZE,
    OFFER + "".join(f"a=candidate:{i} 1 udp 1 127.0.0.1 {i + 1} typ host\r\n"
                    for i in range(MAX_SDP_CANDIDATES)),
    OFFER.replace("a=ice-ufrag:ToD3\r\n", ""),
    OFFER.replace("a=setup:actpass\r\n", ""),
    OFFER + "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n",
    OFFER.replace("c=IN IP4", "C=IN IP4"),
    OFFER.replace("a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp", "a=candidate:x 1 udp z"),
], ids=["too-big", "too-many-candidates", "no-ufrag", "no-setup", "two-media", "bad-line",
        "bad-candidate"])
def test_bad_offers_are_refused(sdp: str) -> None:
    with pytest.raises(InvalidSdp):
        validate_sdp(sdp, "offer")


@settings(max_examples=150)
@given(st.text(max_size=400))
def test_any_text_is_accepted_or_invalid_sdp(text: str) -> None:
    check(text)
    check("v=0\r\n" + text)


@settings(max_examples=200)
@given(st.data())
def test_mutated_offers_are_accepted_or_invalid_sdp(data: st.DataObject) -> None:
    lines = list(LINES)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "duplicate", "garble", "cut", "insert"]))
        if action == "drop" and len(lines) > 1:
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "garble":
            line = lines[index]
            at = data.draw(st.integers(0, len(line)))
            lines[index] = line[:at] + data.draw(st.text(max_size=12)) + line[at:]
        elif action == "cut":
            lines[index] = lines[index][: data.draw(st.integers(0, len(lines[index])))]
        else:
            lines.insert(index, data.draw(st.from_regex(r"[a-z]=[ -~]{0,40}", fullmatch=True)))
    check("\r\n".join(lines) + "\r\n")
