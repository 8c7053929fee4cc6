"""Identities, peer ids and key files."""

from __future__ import annotations

import stat
from pathlib import Path

import ed25519_zebra
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet import Identity, TaiiNetError
from taiinet.errors import LocalProtocolError, RemoteProtocolError
from taiinet.wire import codec
from taiinet.wire import identity as identity_module
from taiinet.wire.base58 import b58decode, b58encode
from taiinet.wire.errors import InvalidPeerId, KeyFileError
from taiinet.wire.identity import (
    parse_peer_id,
    peer_id_from_public_key,
    public_key_from_peer_id,
    verify_signature,
    verify_with_public_key,
)
from tools import conformance_signatures as ed

seeds = st.binary(min_size=32, max_size=32)


@given(st.binary(max_size=64))
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


@given(seeds)
def test_peer_id_embeds_the_key(seed: bytes) -> None:
    identity = Identity.from_seed(seed)
    assert identity.peer_id.startswith("12D3KooW") and len(identity.peer_id) == 52
    assert public_key_from_peer_id(identity.peer_id) == identity.public_key
    assert parse_peer_id(identity.peer_id) == identity.peer_id
    assert peer_id_from_public_key(identity.public_key) == identity.peer_id


@given(seeds, st.binary(max_size=200))
def test_signatures_verify_from_the_peer_id_alone(seed: bytes, data: bytes) -> None:
    identity = Identity.from_seed(seed)
    signature = identity.sign(data)
    assert verify_signature(identity.peer_id, data, signature)
    assert not verify_signature(identity.peer_id, data + b"x", signature)
    other = Identity.from_seed(bytes(b ^ 0xFF for b in seed))
    assert not verify_signature(other.peer_id, data, signature)
    assert not verify_signature(identity.peer_id, data, signature[:-1])
    assert not verify_signature("not a peer id", data, signature)


@given(st.text(max_size=80))
def test_parse_peer_id_fuzz(text: str) -> None:
    """Any text is either a canonical peer id or an InvalidPeerId."""
    try:
        parsed = parse_peer_id(text)
    except InvalidPeerId:
        return
    assert parsed == text


@given(st.binary(max_size=60))
def test_parse_peer_id_of_arbitrary_bytes(data: bytes) -> None:
    try:
        parsed = parse_peer_id(b58encode(data))
    except InvalidPeerId:
        return
    assert b58decode(parsed) == data


@pytest.mark.parametrize("text", [
    "", "12D3KooW", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
    "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeS0",  # 0 is not base58
    "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSBB",  # one character too many
    "1" * 1000,
])
def test_malformed_peer_ids(text: str) -> None:
    with pytest.raises(InvalidPeerId):
        parse_peer_id(text)
    assert issubclass(InvalidPeerId, RemoteProtocolError)


def test_generate_is_random() -> None:
    assert Identity.generate().peer_id != Identity.generate().peer_id


def test_from_seed_rejects_wrong_length() -> None:
    with pytest.raises(LocalProtocolError):
        Identity.from_seed(bytes(31))


def test_key_file_round_trip(tmp_path: Path) -> None:
    identity = Identity.from_seed(bytes(range(32)))
    path = tmp_path / "node.key"
    identity.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Identity.load(path) == identity
    assert Identity.load(str(path)).peer_id == identity.peer_id


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.write_bytes(b"precious")
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        Identity.generate().save(path)
    assert path.read_bytes() == b"precious"


def test_save_into_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        Identity.generate().save(tmp_path / "missing" / "node.key")


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "bad.key"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data", [
    b"",
    b"garbage that is not protobuf \xff\xff",
    codec.encode_private_key(bytes(32), bytes(32)),  # public key does not match the seed
    bytes.fromhex("0800") + bytes.fromhex("1240") + bytes(64),  # RSA type
    bytes.fromhex("08011220") + bytes(32),  # only 32 bytes of data
    Identity.from_seed(bytes(32)).private_key_bytes() + b"\x20\x01",  # unknown trailing field
    bytes(5000),
])
def test_load_rejects_bad_key_files(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(KeyFileError):
        Identity.load(_write(tmp_path, data))


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        Identity.load(tmp_path / "nope")


@given(st.binary(max_size=120))
def test_private_key_decoder_fuzz(data: bytes) -> None:
    """Random bytes are a valid key file or a KeyFileError, nothing else."""
    try:
        identity = Identity.from_private_key_bytes(data)
    except KeyFileError:
        return
    assert identity.private_key_bytes() == data


@given(st.binary(max_size=60))
def test_public_key_decoder_fuzz(data: bytes) -> None:
    try:
        raw = codec.decode_public_key(data)
    except RemoteProtocolError:
        return
    assert codec.encode_public_key(raw) == data


def test_key_file_error_is_a_taiinet_error() -> None:
    assert issubclass(KeyFileError, TaiiNetError)


def peer_id_as_cid(peer_id: str) -> str:
    import base64

    cid = bytes([0x01, 0x72]) + b58decode(peer_id)
    return "b" + base64.b32encode(cid).decode().lower().rstrip("=")


@given(seeds)
def test_cid_form_of_peer_ids(seed: bytes) -> None:
    identity = Identity.from_seed(seed)
    cid_text = peer_id_as_cid(identity.peer_id)
    assert cid_text.startswith("bafzaa")
    assert parse_peer_id(cid_text) == identity.peer_id


@pytest.mark.parametrize("text", [
    "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe",  # sha256 multihash (RSA key)
    "b", "b====", "bafzaa!", "bAFZAAIAS",
])
def test_malformed_cid_peer_ids(text: str) -> None:
    with pytest.raises(InvalidPeerId):
        parse_peer_id(text)


# ------------------------------------------------------------------ the validity rule
# docs/protocol.md section 2.4; the edge cases are in conformance/signatures.json, these
# cover every point of small order and draw keys with each torsion component.
def _refused_forms() -> list[tuple[str, bytes]]:
    """Every encoding of a point of small order, canonical or not, by name."""
    forms = []
    for index, point in enumerate(ed.TORSION):
        forms.append((f"[{index}]T", ed.encode(point)))
        if point[0] == 0:  # x = 0: the sign bit set is the other, non-canonical, form
            forms.append((f"[{index}]T, sign bit", ed.encoding(point[1], 1)))
        if point[1] < 19:  # y + p still fits in 255 bits
            forms.append((f"[{index}]T, y + p", ed.encode((point[0], point[1] + ed.P))))
    return forms


@pytest.mark.parametrize(("name", "point"), _refused_forms(), ids=[n for n, _ in _refused_forms()])
def test_points_of_small_order_are_refused_as_key_and_nonce(name: str, point: bytes) -> None:
    a, _ = ed.secret_scalar(bytes(32))
    public = ed.encode(ed.mul(a, ed.B))
    as_key = ed.forge(0, point, 5, ed.encode(ed.mul(5, ed.B)), b"m")
    as_nonce = ed.forge(a, public, 0, point, b"m")
    # ZIP-215 alone accepts both (the cofactored equation holds): the rule must not.
    assert ed25519_zebra.ed_verify(as_key, b"m", point)
    assert ed25519_zebra.ed_verify(as_nonce, b"m", public)
    assert not verify_with_public_key(point, b"m", as_key)
    assert not verify_with_public_key(public, b"m", as_nonce)


@settings(max_examples=16)
@given(seeds, st.integers(1, 7), st.integers(0, 7), st.binary(max_size=40))
def test_keys_and_nonces_with_torsion_verify(seed: bytes, key_torsion: int, nonce_torsion: int,
                                             data: bytes) -> None:
    a, _ = ed.secret_scalar(seed)
    public = ed.encode(ed.add(ed.mul(a, ed.B), ed.TORSION[key_torsion]))
    r_point = ed.add(ed.mul(7, ed.B), ed.TORSION[nonce_torsion])
    signature = ed.forge(a, public, 7, ed.encode(r_point), data)
    assert verify_with_public_key(public, data, signature)
    assert not verify_with_public_key(public, data + b"x", signature)



def test_refused_points_are_the_unreduced_and_small_order_encodings() -> None:
    ys = [*range(ed.P, 2**255), *(point[1] for point in ed.TORSION)]
    expected = {ed.encoding(y, sign) for y in ys for sign in (0, 1)}
    refused = identity_module._REFUSED_POINTS
    assert refused == expected
