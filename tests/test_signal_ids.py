"""DHT ids: base58btc decoding and SHA-256 of the binary multihash."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taiinet.signal.errors import InvalidPeerId
from taiinet.signal.ids import base58_decode, base58_encode, bucket_index, node_id

# The libp2p spec's example Ed25519 peer id and its multihash prefix.
SPEC_PEER_ID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


def test_spec_peer_id_decodes_to_an_identity_multihash() -> None:
    raw = base58_decode(SPEC_PEER_ID)
    assert raw[:6] == bytes.fromhex("002408011220")
    assert len(raw) == 38
    assert node_id(SPEC_PEER_ID) == int.from_bytes(hashlib.sha256(raw).digest(), "big")


@given(st.binary(min_size=1, max_size=64))
def test_base58_round_trip(data: bytes) -> None:
    assert base58_decode(base58_encode(data)) == data


@given(st.text(min_size=0, max_size=200))
def test_decode_rejects_or_accepts_any_text(text: str) -> None:
    try:
        raw = base58_decode(text)
    except InvalidPeerId:
        return
    assert base58_encode(raw) == text


@pytest.mark.parametrize("bad", ["", "0OIl", "x" * 200])
def test_bad_peer_ids_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidPeerId):
        node_id(bad)


@given(st.integers(0, 2**256 - 1), st.integers(0, 2**256 - 1))
def test_bucket_index_is_top_bit_of_distance(a: int, b: int) -> None:
    index = bucket_index(a, b)
    if a == b:
        assert index == -1
    else:
        assert 2**index <= a ^ b < 2 ** (index + 1)
