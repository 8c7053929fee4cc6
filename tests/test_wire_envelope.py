"""Signed envelopes: round trips, tampering, domains, limits, fuzzing."""

from __future__ import annotations

import pytest
from hostile_cases import mutated
from hypothesis import example, given
from hypothesis import strategies as st

from taiinet import Envelope, Identity, InvalidEnvelope, TaiiNetError
from taiinet.errors import LocalProtocolError
from taiinet.v1 import envelope_pb2, keys_pb2
from taiinet.wire import codec
from taiinet.wire.envelope import (
    DEFAULT_MAX_ENVELOPE_SIZE,
    PayloadOpener,
    open_fields,
    open_payload,
)

ALICE = Identity.from_seed(bytes([1]) * 32)
MALLORY = Identity.from_seed(bytes([2]) * 32)
DOMAIN = "taiinet-test"


@given(st.text(min_size=1, max_size=30), st.binary(max_size=20), st.binary(max_size=300))
def test_round_trip(domain: str, payload_type: bytes, payload: bytes) -> None:
    sealed = Envelope.seal(ALICE, domain, payload_type, payload)
    opened = Envelope.open(sealed, domain)
    assert opened.peer_id == ALICE.peer_id
    assert opened.public_key == ALICE.public_key
    assert (opened.payload_type, opened.payload, opened.raw) == (payload_type, payload, sealed)


def test_invalid_envelope_is_a_taiinet_error() -> None:
    assert issubclass(InvalidEnvelope, TaiiNetError)


def test_wrong_domain() -> None:
    sealed = Envelope.seal(ALICE, DOMAIN, b"t", b"p")
    with pytest.raises(InvalidEnvelope):
        Envelope.open(sealed, "another-domain")


def _message(sealed: bytes) -> envelope_pb2.Envelope:
    message = envelope_pb2.Envelope()
    message.ParseFromString(sealed)
    return message


def test_key_swapped_for_another_signer() -> None:
    message = _message(Envelope.seal(ALICE, DOMAIN, b"t", b"p"))
    message.public_key.data = MALLORY.public_key
    with pytest.raises(InvalidEnvelope):
        Envelope.open(message.SerializeToString(), DOMAIN)


@pytest.mark.parametrize("key_type", [keys_pb2.KEY_TYPE_RSA, keys_pb2.KEY_TYPE_SECP256K1,
                                      keys_pb2.KEY_TYPE_ECDSA])
def test_wrong_key_type(key_type: int) -> None:
    message = _message(Envelope.seal(ALICE, DOMAIN, b"t", b"p"))
    message.public_key.type = key_type  # type: ignore[assignment]
    with pytest.raises(InvalidEnvelope, match="not Ed25519"):
        Envelope.open(message.SerializeToString(), DOMAIN)


def test_unknown_fields_are_rejected() -> None:
    sealed = Envelope.seal(ALICE, DOMAIN, b"t", b"p")
    with pytest.raises(InvalidEnvelope):
        Envelope.open(sealed + bytes([0x22, 0x00]), DOMAIN)  # field 4, empty bytes


def test_replayed_signature_on_other_payload() -> None:
    original = _message(Envelope.seal(ALICE, DOMAIN, b"t", b"pay 1 coin"))
    original.payload = b"pay 9 coins"
    with pytest.raises(InvalidEnvelope):
        Envelope.open(original.SerializeToString(), DOMAIN)


def test_size_limit() -> None:
    sealed = Envelope.seal(ALICE, DOMAIN, b"t", bytes(1000))
    with pytest.raises(InvalidEnvelope, match="exceeds"):
        Envelope.open(sealed, DOMAIN, max_size=len(sealed) - 1)
    assert Envelope.open(sealed, DOMAIN, max_size=len(sealed)).payload == bytes(1000)
    with pytest.raises(LocalProtocolError):
        Envelope.seal(ALICE, DOMAIN, b"t", bytes(DEFAULT_MAX_ENVELOPE_SIZE))
    with pytest.raises(InvalidEnvelope):
        Envelope.open(bytes(DEFAULT_MAX_ENVELOPE_SIZE + 1), DOMAIN)


def test_empty_domain_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        Envelope.seal(ALICE, "", b"t", b"p")
    with pytest.raises(LocalProtocolError):
        Envelope.open(b"", "")


@given(st.binary(max_size=300))
def test_open_fuzz(data: bytes) -> None:
    """Random bytes never open (and never raise anything but InvalidEnvelope)."""
    with pytest.raises(InvalidEnvelope):
        Envelope.open(data, DOMAIN)


@given(st.data())
def test_mutations_of_a_valid_envelope(data: st.DataObject) -> None:
    """Any change to a sealed envelope (flip, cut, insert) is rejected."""
    sealed = Envelope.seal(ALICE, DOMAIN, b"/t", b"some payload")
    index = data.draw(st.integers(0, len(sealed) - 1))
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
    if kind == "flip":
        altered = bytearray(sealed)
        altered[index] ^= data.draw(st.integers(1, 255))
        mutated = bytes(altered)
    elif kind == "truncate":
        mutated = sealed[:index]
    elif kind == "insert":
        mutated = sealed[:index] + data.draw(st.binary(min_size=1, max_size=4)) + sealed[index:]
    else:
        mutated = sealed[:index] + sealed[index + 1:]
    with pytest.raises(InvalidEnvelope):
        Envelope.open(mutated, DOMAIN)


def test_expected_payload_type_and_signer() -> None:
    sealed = Envelope.seal(ALICE, DOMAIN, b"/record", b"p")
    opened = Envelope.open(sealed, DOMAIN, payload_type=b"/record", peer_id=ALICE.peer_id)
    assert opened.payload == b"p"
    with pytest.raises(InvalidEnvelope, match="payload type"):
        Envelope.open(sealed, DOMAIN, payload_type=b"/other")
    with pytest.raises(InvalidEnvelope, match="expected"):
        Envelope.open(sealed, DOMAIN, peer_id=MALLORY.peer_id)


def test_a_known_signer_still_has_every_signature_checked() -> None:
    """The signer cache holds decoded keys only: a tampered payload or signature
    from a signer seen a moment ago is rejected as before."""
    sealed = Envelope.seal(ALICE, DOMAIN, b"t", b"payload")
    assert Envelope.open(sealed, DOMAIN).peer_id == ALICE.peer_id  # ALICE now cached
    for field, value in (("payload", b"payloaD"), ("signature", bytes(64))):
        message = _message(sealed)
        setattr(message, field, value)
        with pytest.raises(InvalidEnvelope, match="bad signature"):
            Envelope.open(message.SerializeToString(), DOMAIN)
        with pytest.raises(InvalidEnvelope, match="bad signature"):
            open_fields(message.SerializeToString(), DOMAIN)


def test_a_bad_key_fails_every_time() -> None:
    message = _message(Envelope.seal(ALICE, DOMAIN, b"t", b"p"))
    message.public_key.data = b"\x01" * 31
    for _ in range(2):
        with pytest.raises(InvalidEnvelope, match="not 32"):
            Envelope.open(message.SerializeToString(), DOMAIN)


def test_open_fields_is_open_without_the_envelope() -> None:
    sealed = Envelope.seal(ALICE, DOMAIN, b"t", b"p")
    signer, key, fields = open_fields(sealed, DOMAIN, payload_type=b"t",
                                      peer_id=ALICE.peer_id)
    opened = Envelope.open(sealed, DOMAIN)
    assert (signer, key, fields.payload, fields.signature) == (
        opened.peer_id, opened.public_key, opened.payload, opened.signature)
    with pytest.raises(InvalidEnvelope, match="expected"):
        open_fields(sealed, DOMAIN, peer_id=MALLORY.peer_id)
    with pytest.raises(InvalidEnvelope, match="payload type"):
        open_fields(sealed, DOMAIN, payload_type=b"u")


def _field(number: int, value: bytes) -> bytes:
    return bytes([number << 3 | 2, len(value)]) + value


@pytest.mark.parametrize("how", ["unknown field in the key", "empty payload type written",
                                 "fields out of order", "key given twice"])
def test_non_canonical_encodings_are_rejected(how: str) -> None:
    key = ALICE.public_key_proto
    sig = ALICE.sign(b"whatever")
    canonical = _field(1, key) + _field(3, b"p") + _field(5, sig)
    assert codec.decode_envelope(canonical) is not None
    variants = {
        "unknown field in the key": _field(1, key + _field(9, b"x")) + _field(3, b"p")
        + _field(5, sig),
        "empty payload type written": _field(1, key) + _field(2, b"") + _field(3, b"p")
        + _field(5, sig),
        "fields out of order": _field(3, b"p") + _field(1, key) + _field(5, sig),
        "key given twice": _field(1, key) + _field(1, key) + _field(3, b"p") + _field(5, sig),
    }
    with pytest.raises(InvalidEnvelope, match="canonical"):
        Envelope.open(variants[how], DOMAIN)


@given(st.integers(0, 3), st.binary(max_size=200), st.binary(max_size=20),
       st.binary(max_size=300), st.binary(max_size=70))
@example(1, bytes(32), b"t", b"p", bytes(64))
@example(1, bytes(150), b"t", b"p", bytes(64))  # the key's length takes two bytes
def test_decoded_public_key_is_the_key_as_encoded(key_type: int, key: bytes, payload_type: bytes,
                                                  payload: bytes, signature: bytes) -> None:
    # Keys of any size (a 128-byte or longer one has a two-byte length) and type.
    message = envelope_pb2.Envelope(
        public_key=keys_pb2.PublicKey(type=key_type, data=key),  # type: ignore[arg-type]
        payload_type=payload_type, payload=payload, signature=signature)
    data = message.SerializeToString()
    fields = codec.decode_envelope(data)
    assert fields is not None
    assert fields.public_key == message.public_key.SerializeToString()
    assert (fields.payload_type, fields.payload, fields.signature) == (
        payload_type, payload, signature)
    assert codec.encode_envelope(fields) == data


@given(st.data())
def test_envelope_parts_are_protobufs_round_trip(data: st.DataObject) -> None:
    """``envelope_parts`` slices an envelope as signers write it without protobuf; for
    those and any change to them it says what protobuf's parse and re-encoding say."""
    payload = data.draw(st.binary(max_size=300))
    payload_type = data.draw(st.binary(max_size=3))
    sealed = bytearray(Envelope.seal(ALICE, DOMAIN, payload_type, payload))
    for _ in range(data.draw(st.integers(0, 2))):
        index = data.draw(st.integers(0, len(sealed)))
        kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        if kind == "flip" and index < len(sealed):
            sealed[index] ^= data.draw(st.integers(1, 255))
        elif kind == "truncate":
            del sealed[index:]
        elif kind == "insert":
            sealed.insert(index, data.draw(st.integers(0, 255)))
        elif index < len(sealed):
            del sealed[index]
    raw = bytes(sealed)
    assert codec.envelope_parts(raw) == codec._parsed_envelope_parts(raw)


@given(st.binary(max_size=200))
def test_envelope_parts_of_random_bytes(data: bytes) -> None:
    assert codec.envelope_parts(data) == codec._parsed_envelope_parts(data)


def test_a_sealed_envelope_opens_without_a_protobuf_message(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What every relay opens (an Ed25519 key, every field set) is read from its bytes."""
    sealed = Envelope.seal(ALICE, DOMAIN, b"/t", b"x" * 1000)

    class Refused:
        def __init__(self) -> None:
            raise AssertionError("a protobuf Envelope was built")

    monkeypatch.setattr(codec.envelope_pb2, "Envelope", Refused)
    signer, key, fields = open_fields(sealed, DOMAIN)
    assert (signer, key, fields.payload) == (ALICE.peer_id, ALICE.public_key, b"x" * 1000)


def _opened_or_error(open_: object, data: bytes) -> object:
    try:
        return open_(data)  # type: ignore[operator]
    except InvalidEnvelope as exc:
        return str(exc)


@given(st.sampled_from([ALICE, MALLORY]), st.sampled_from([DOMAIN, "other-domain"]),
       st.sampled_from([b"/t", b"/u", b""]), st.binary(max_size=300), st.data())
def test_a_payload_opener_opens_as_open_payload(identity: Identity, domain: str,
                                                payload_type: bytes, payload: bytes,
                                                data: st.DataObject) -> None:
    """``PayloadOpener(DOMAIN, b"/t").open`` is ``open_payload(..., max_size=len(data),
    payload_type=b"/t")``: the same signer and payload, or the same error, for envelopes
    of either domain and of other types, and any change to one."""
    sealed = mutated(Envelope.seal(identity, domain, payload_type, payload), data)
    opener = PayloadOpener(DOMAIN, b"/t")
    assert _opened_or_error(opener.open, sealed) == _opened_or_error(
        lambda raw: open_payload(raw, DOMAIN, max_size=len(raw), payload_type=b"/t"), sealed)


def test_a_payload_opener_checks_its_domain_once() -> None:
    with pytest.raises(LocalProtocolError):
        PayloadOpener("", b"/t")
