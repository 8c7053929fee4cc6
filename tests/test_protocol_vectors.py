"""Every test vector printed in docs/protocol.md, checked against the code.

The vectors are parsed out of the document (blocks after a
``<!-- vector: NAME -->`` marker), so the document cannot drift from the
implementation.  The Noise vectors are also replayed through the independent
``noiseprotocol`` package.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from noise.connection import Keypair, NoiseConnection

from taiinet import Envelope, Identity, InvalidEnvelope
from taiinet.overlay import codec as overlay_codec
from taiinet.overlay.messages import Join
from taiinet.pubsub.documents import DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE, SignedDocuments
from taiinet.pubsub.query import document_to_value
from taiinet.transport.noise import (
    PROTOCOL_NAME,
    NoiseHandshake,
    SecureSession,
    make_handshake_payload,
    with_length_prefix,
    x25519_public_key,
)
from taiinet.v1 import frame_pb2, pubsub_pb2
from taiinet.wire.base58 import b58decode
from taiinet.wire.envelope import signed_bytes
from taiinet.wire.framing import (
    decode_link_frame,
    decode_uvarint,
    encode_uvarint,
    frame_with_prefix,
    join_items,
)
from taiinet.wire.identity import peer_id_bytes_from_public_key
from taiinet.wire.keepalive import LINK_PROTOCOL, decode_control, encode_ping

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
_BLOCK = re.compile(r"<!-- vector: (\S+) -->\n```text\n(.*?)```", re.DOTALL)


def load_vectors() -> dict[str, dict[str, str]]:
    vectors: dict[str, dict[str, str]] = {}
    for name, body in _BLOCK.findall(DOC.read_text()):
        values: dict[str, str] = {}
        key = None
        for line in body.splitlines():
            if line.startswith(" ") and key is not None:
                values[key] += line.strip()
            elif line.strip():
                key, _, value = line.partition(":")
                values[key] = value.strip()
        vectors[name] = values
    return vectors


VECTORS = load_vectors()


def hexval(block: str, key: str) -> bytes:
    return bytes.fromhex(VECTORS[block][key])


def test_the_document_has_all_vectors() -> None:
    assert set(VECTORS) == {"uvarint", "identity", "libp2p-ed25519", "envelope", "frame",
                            "frame-items", "noise-xx", "document"}


@pytest.mark.parametrize("number", list(VECTORS["uvarint"]))
def test_uvarint_vectors(number: str) -> None:
    encoded = hexval("uvarint", number)
    assert encode_uvarint(int(number)) == encoded
    assert decode_uvarint(encoded) == (int(number), len(encoded))


def test_identity_vector() -> None:
    identity = Identity.from_seed(hexval("identity", "seed"))
    assert identity.public_key == hexval("identity", "public_key")
    assert identity.public_key_proto == hexval("identity", "public_key_proto")
    assert identity.private_key_bytes() == hexval("identity", "key_file")
    assert peer_id_bytes_from_public_key(identity.public_key) == hexval("identity",
                                                                        "peer_id_bytes")
    assert identity.peer_id == VECTORS["identity"]["peer_id"]
    assert Identity.from_private_key_bytes(hexval("identity", "key_file")) == identity


def test_libp2p_spec_vector() -> None:
    identity = Identity.from_private_key_bytes(hexval("libp2p-ed25519", "key_file"))
    assert identity.public_key_proto == hexval("libp2p-ed25519", "public_key_proto")
    assert identity.private_key_bytes() == hexval("libp2p-ed25519", "key_file")
    assert identity.peer_id.startswith("12D3KooW")


def test_base58_against_the_libp2p_cid_example() -> None:
    """The two text forms of one peer id in the libp2p spec carry the same multihash."""
    legacy = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    cid_text = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"[1:].upper()
    cid = base64.b32decode(cid_text + "=" * (-len(cid_text) % 8))
    assert cid[:2] == bytes([0x01, 0x72])  # CIDv1, libp2p-key
    assert b58decode(legacy) == cid[2:]


def test_envelope_vector() -> None:
    vector = VECTORS["envelope"]
    identity = Identity.from_seed(hexval("envelope", "seed"))
    payload_type, payload = hexval("envelope", "payload_type"), hexval("envelope", "payload")
    assert signed_bytes(vector["domain"], payload_type, payload) == hexval("envelope",
                                                                         "signed_bytes")
    sealed = Envelope.seal(identity, vector["domain"], payload_type, payload)
    assert sealed == hexval("envelope", "envelope")
    opened = Envelope.open(sealed, vector["domain"])
    assert (opened.peer_id, opened.payload_type, opened.payload) == (identity.peer_id,
                                                                    payload_type, payload)


def test_every_byte_of_the_envelope_vector_is_protected() -> None:
    sealed = hexval("envelope", "envelope")
    domain = VECTORS["envelope"]["domain"]
    for index in range(len(sealed)):
        for flip in (0x01, 0x80):
            altered = bytearray(sealed)
            altered[index] ^= flip
            with pytest.raises(InvalidEnvelope):
                Envelope.open(bytes(altered), domain)


def test_frame_vector() -> None:
    frame = encode_ping(300)
    assert frame == frame_pb2.LinkFrame(items=[frame_pb2.LinkItem(
        protocol=1, body=frame_pb2.LinkControl(ping=frame_pb2.Ping(nonce=300))
        .SerializeToString())]).SerializeToString()
    assert frame == hexval("frame", "frame")
    assert frame_with_prefix(frame) == hexval("frame", "on_the_link")
    [(protocol, body)] = decode_link_frame(frame)
    assert (protocol, decode_control(body)) == (LINK_PROTOCOL, ("ping", 300))


def test_frame_items_vector() -> None:
    frame = join_items([overlay_codec.encode_frame(Join()), encode_ping(1)])
    assert frame == hexval("frame-items", "frame")
    assert decode_link_frame(frame) == [(overlay_codec.PROTOCOL_ID, overlay_codec.encode(Join())),
                                        (LINK_PROTOCOL, decode_link_frame(encode_ping(1))[0][1])]


def test_the_protocol_id_table_matches_the_codecs() -> None:
    from taiinet.history.codec import PROTOCOL_ID as HISTORY
    from taiinet.node.codec import PUBSUB_PROTOCOL_ID
    from taiinet.signal.codec import PROTOCOL_ID as SIGNAL
    from taiinet.stream.codec import PROTOCOL_ID as STREAM

    table = dict(re.findall(r"^\| (\d+) \| ([a-z]+)", DOC.read_text(), re.MULTILINE))
    assert {int(k): v for k, v in table.items() if k != "0"} == {
        LINK_PROTOCOL: "link", overlay_codec.PROTOCOL_ID: "overlay", SIGNAL: "signalling",
        PUBSUB_PROTOCOL_ID: "pubsub", HISTORY: "history", STREAM: "stream"}


def test_document_vector() -> None:
    vector = VECTORS["document"]
    identity = Identity.from_seed(hexval("document", "seed"))
    assert identity.peer_id == vector["publisher"]
    value = document_to_value({"topic": "a"})
    assert value == hexval("document", "value")
    payload = pubsub_pb2.PublishedDocument(
        value=value, published_unix_ms=int(vector["published_unix_ms"]),
        nonce=int(vector["nonce"], 16)).SerializeToString()
    assert payload == hexval("document", "payload")
    envelope = Envelope.seal(identity, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE, payload)
    assert envelope == hexval("document", "envelope")
    sealed = SignedDocuments(identity).seal(
        {"topic": "a"}, 1 << 16, published_unix_ms=int(vector["published_unix_ms"]),
        nonce=int(vector["nonce"], 16))
    assert sealed == envelope
    assert hashlib.sha256(envelope).digest() == hexval("document", "message_id")
    opened = SignedDocuments().open(envelope)
    assert (opened.publisher, opened.document, opened.published_unix_ms) == (
        vector["publisher"], {"topic": "a"}, int(vector["published_unix_ms"]))


def _vector_handshakes() -> tuple[NoiseHandshake, NoiseHandshake]:
    initiator = NoiseHandshake(
        initiator=True, identity=Identity.from_seed(hexval("noise-xx", "initiator_identity_seed")),
        static_private_key=hexval("noise-xx", "initiator_static_private"),
        ephemeral_private_key=hexval("noise-xx", "initiator_ephemeral_private"))
    responder = NoiseHandshake(
        initiator=False,
        identity=Identity.from_seed(hexval("noise-xx", "responder_identity_seed")),
        static_private_key=hexval("noise-xx", "responder_static_private"),
        ephemeral_private_key=hexval("noise-xx", "responder_ephemeral_private"))
    return initiator, responder


def test_noise_vector_with_our_implementation() -> None:
    vector = VECTORS["noise-xx"]
    initiator, responder = _vector_handshakes()
    assert initiator.static_public_key == hexval("noise-xx", "initiator_static_public")
    assert responder.static_public_key == hexval("noise-xx", "responder_static_public")
    responder_identity = Identity.from_seed(hexval("noise-xx", "responder_identity_seed"))
    assert responder_identity.peer_id == vector["responder_peer_id"]
    assert make_handshake_payload(responder_identity, responder.static_public_key) == hexval(
        "noise-xx", "responder_payload")
    for number, writer, reader in ((1, initiator, responder), (2, responder, initiator),
                                   (3, initiator, responder)):
        message = writer.write_message()
        assert with_length_prefix(message) == hexval("noise-xx", f"message_{number}")
        reader.read_message(message)
    assert initiator.result is not None and responder.result is not None
    assert initiator.result.handshake_hash == hexval("noise-xx", "handshake_hash")
    assert responder.result.remote_peer_id == Identity.from_seed(
        hexval("noise-xx", "initiator_identity_seed")).peer_id
    sent = SecureSession(initiator.result).encrypt_frame(b"hello")
    assert sent == [hexval("noise-xx", "transport_hello")]
    assert SecureSession(responder.result).receive_data(sent[0]) == [b"hello"]


@pytest.mark.filterwarnings("ignore:One of ephemeral keypairs is already set")
def test_noise_vector_with_noiseprotocol() -> None:
    """The independent implementation, given the same keys and payloads, writes the same bytes."""
    def party(role: str) -> NoiseConnection:
        connection = NoiseConnection.from_name(PROTOCOL_NAME)
        if role == "initiator":
            connection.set_as_initiator()
        else:
            connection.set_as_responder()
        connection.set_keypair_from_private_bytes(
            Keypair.STATIC, hexval("noise-xx", f"{role}_static_private"))
        connection.set_keypair_from_private_bytes(
            Keypair.EPHEMERAL, hexval("noise-xx", f"{role}_ephemeral_private"))
        connection.start_handshake()
        return connection

    initiator, responder = party("initiator"), party("responder")
    initiator_identity = Identity.from_seed(hexval("noise-xx", "initiator_identity_seed"))
    initiator_payload = make_handshake_payload(
        initiator_identity, x25519_public_key(hexval("noise-xx", "initiator_static_private")))
    message_1 = initiator.write_message(b"")
    assert with_length_prefix(message_1) == hexval("noise-xx", "message_1")
    assert responder.read_message(message_1) == b""
    message_2 = responder.write_message(hexval("noise-xx", "responder_payload"))
    assert with_length_prefix(message_2) == hexval("noise-xx", "message_2")
    assert initiator.read_message(message_2) == hexval("noise-xx", "responder_payload")
    message_3 = initiator.write_message(initiator_payload)
    assert with_length_prefix(message_3) == hexval("noise-xx", "message_3")
    assert responder.read_message(message_3) == initiator_payload
    assert initiator.get_handshake_hash() == hexval("noise-xx", "handshake_hash")
    transport = initiator.encrypt(bytes([5]) + b"hello")
    assert with_length_prefix(transport) == hexval("noise-xx", "transport_hello")
