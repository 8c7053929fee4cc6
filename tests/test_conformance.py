"""The shared conformance vectors (conformance/*.json) hold for the Python implementation.

The browser peer (js/) reads the same files, so these tests are what keeps the
two implementations interoperable: the committed JSON must be exactly what
tools/conformance.py writes today (so it cannot drift from the reference),
and every vector is replayed here through the public Python code.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from taiinet import Envelope, Identity, InvalidEnvelope, InvalidPeerId, PeerId, Query
from taiinet.pubsub.query import (
    MalformedFilter,
    MalformedValue,
    document_to_value,
    value_to_document,
)
from taiinet.transport.noise import NoiseHandshake, SecureSession, with_length_prefix
from taiinet.wire.errors import FrameTooLarge, MalformedFrame, TruncatedFrame
from taiinet.wire.framing import FrameDecoder, decode_link_frame, decode_uvarint, encode_uvarint
from taiinet.wire.identity import (
    parse_peer_id,
    peer_id_from_public_key,
    verify_signature,
    verify_with_public_key,
)

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "conformance"


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("conformance_tool",
                                                  ROOT / "tools" / "conformance.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["conformance_tool"] = module
    spec.loader.exec_module(module)
    return module


TOOL = _load_tool()


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def test_committed_vectors_are_what_the_reference_writes() -> None:
    fresh = TOOL.generate()
    committed = sorted(p.name for p in VECTORS.glob("*.json"))
    assert committed == sorted(fresh), "run `make conformance`: the set of files differs"
    for name, text in fresh.items():
        assert (VECTORS / name).read_text() == text, f"conformance/{name} is stale: " \
            "run `make conformance`"


# ------------------------------------------------------------------ peer ids
@pytest.mark.parametrize("case", load("peer_ids.json")["valid"], ids=lambda c: c["peer_id"])
def test_valid_peer_ids(case: dict[str, str]) -> None:
    identity = Identity.from_seed(bytes.fromhex(case["seed"]))
    assert identity.public_key.hex() == case["public_key"]
    assert identity.public_key_proto.hex() == case["public_key_proto"]
    assert identity.private_key_bytes().hex() == case["key_file"]
    assert identity.peer_id == case["peer_id"]
    assert PeerId.parse(case["peer_id"]).public_key.hex() == case["public_key"]


@pytest.mark.parametrize("case", load("peer_ids.json")["invalid"], ids=lambda c: c["name"])
def test_invalid_peer_ids(case: dict[str, str]) -> None:
    with pytest.raises(InvalidPeerId):
        PeerId.parse(case["text"])


@pytest.mark.parametrize("case", load("peer_ids.json")["user_forms"], ids=lambda c: c["text"])
def test_peer_id_forms_a_user_may_type(case: dict[str, str]) -> None:
    assert parse_peer_id(case["text"]) == case["peer_id"]


# ------------------------------------------------------------------ envelopes
@pytest.mark.parametrize("case", load("envelopes.json")["valid"], ids=lambda c: c["domain"])
def test_valid_envelopes(case: dict[str, str]) -> None:
    identity = Identity.from_seed(bytes.fromhex(case["seed"]))
    payload_type, payload = bytes.fromhex(case["payload_type"]), bytes.fromhex(case["payload"])
    sealed = Envelope.seal(identity, case["domain"], payload_type, payload)
    assert sealed.hex() == case["envelope"]
    opened = Envelope.open(sealed, case["domain"], payload_type=payload_type,
                           peer_id=case["peer_id"])
    assert (opened.payload_type, opened.payload) == (payload_type, payload)


@pytest.mark.parametrize("case", load("envelopes.json")["invalid"], ids=lambda c: c["name"])
def test_invalid_envelopes(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidEnvelope):
        Envelope.open(bytes.fromhex(case["envelope"]), case["domain"],
                      payload_type=(bytes.fromhex(case["payload_type"])
                                    if "payload_type" in case else None),
                      peer_id=case.get("peer_id"), max_size=case.get("max_size", 256 * 1024))


# ------------------------------------------------------------------ signatures
@pytest.mark.parametrize("case", load("signatures.json")["cases"], ids=lambda c: c["name"])
def test_signature_validity_rule(case: dict[str, Any]) -> None:
    key, message, signature = (bytes.fromhex(case[k])
                               for k in ("public_key", "message", "signature"))
    assert verify_with_public_key(key, message, signature) is case["valid"]
    if len(key) == 32:
        signer = str(peer_id_from_public_key(key))
        assert verify_signature(signer, message, signature) is case["valid"]


# ------------------------------------------------------------------ frames
def test_uvarints() -> None:
    frames = load("frames.json")
    for case in frames["uvarint"]:
        encoded = bytes.fromhex(case["encoded"])
        assert encode_uvarint(case["value"]) == encoded
        assert decode_uvarint(encoded) == (case["value"], len(encoded))
    errors = {"MalformedFrame": MalformedFrame, "TruncatedFrame": TruncatedFrame}
    for case in frames["bad_uvarint"]:
        with pytest.raises(errors[case["error"]]):
            decode_uvarint(bytes.fromhex(case["encoded"]))


@pytest.mark.parametrize("case", load("frames.json")["link_frames"], ids=lambda c: c["name"])
def test_link_frames(case: dict[str, Any]) -> None:
    items = decode_link_frame(bytes.fromhex(case["frame"]), max_items=case["max_items"])
    assert [{"protocol": p, "body": b.hex()} for p, b in items] == case["items"]


@pytest.mark.parametrize("case", load("frames.json")["bad_link_frames"], ids=lambda c: c["name"])
def test_bad_link_frames(case: dict[str, Any]) -> None:
    assert case["error"] == "MalformedFrame"
    with pytest.raises(MalformedFrame):
        decode_link_frame(bytes.fromhex(case["frame"]), max_items=case["max_items"])


@pytest.mark.parametrize("case", load("frames.json")["streams"], ids=lambda c: c["name"])
def test_frame_streams(case: dict[str, Any]) -> None:
    errors = {"MalformedFrame": MalformedFrame, "TruncatedFrame": TruncatedFrame,
              "FrameTooLarge": FrameTooLarge}
    data = bytes.fromhex(case["stream"])
    # Fed one byte at a time: the split must not matter.
    decoder = FrameDecoder(case["max_frame_size"])
    if "error" in case:
        with pytest.raises(errors[case["error"]]):
            for index in range(len(data)):
                decoder.feed(data[index:index + 1])
            decoder.end_of_stream()
        return
    frames = [f for index in range(len(data)) for f in decoder.feed(data[index:index + 1])]
    decoder.end_of_stream()
    assert [f.hex() for f in frames] == case["frames"]


# ------------------------------------------------------------------ Noise XX
def test_noise_transcript() -> None:
    vector = load("noise_xx.json")

    def key(name: str) -> bytes:
        return bytes.fromhex(vector[name])

    initiator = NoiseHandshake(initiator=True,
                               identity=Identity.from_seed(key("initiator_identity_seed")),
                               static_private_key=key("initiator_static_private"),
                               ephemeral_private_key=key("initiator_ephemeral_private"),
                               expected_peer_id=vector["responder_peer_id"])
    responder = NoiseHandshake(initiator=False,
                               identity=Identity.from_seed(key("responder_identity_seed")),
                               static_private_key=key("responder_static_private"),
                               ephemeral_private_key=key("responder_ephemeral_private"))
    for index, (writer, reader) in enumerate(((initiator, responder), (responder, initiator),
                                              (initiator, responder))):
        message = writer.write_message()
        assert with_length_prefix(message).hex() == vector["messages"][index]
        reader.read_message(message)
    assert initiator.result is not None and responder.result is not None
    assert initiator.result.handshake_hash.hex() == vector["handshake_hash"]
    assert responder.result.remote_peer_id == vector["initiator_peer_id"]
    sessions = {"initiator": SecureSession(initiator.result),
                "responder": SecureSession(responder.result)}
    for case in vector["transport"]:
        frame = bytes(case["zeros"]) if "zeros" in case else bytes.fromhex(case["frame"])
        sent = sessions[case["from"]].encrypt_frame(frame)
        if "messages" in case:
            assert [m.hex() for m in sent] == case["messages"]
        else:
            assert [hashlib.sha256(m).hexdigest() for m in sent] == case["messages_sha256"]


# ------------------------------------------------------------------ documents
@pytest.mark.parametrize("case", load("values.json")["valid"], ids=lambda c: c["value"][:40])
def test_valid_values(case: dict[str, Any]) -> None:
    document = TOOL.untag(case["document"])
    assert document_to_value(document).hex() == case["value"]
    assert TOOL.tag(value_to_document(bytes.fromhex(case["value"]))) == case["document"]


@pytest.mark.parametrize("case", load("values.json")["invalid"], ids=lambda c: c["name"])
def test_malformed_values(case: dict[str, str]) -> None:
    with pytest.raises(MalformedValue):
        value_to_document(bytes.fromhex(case["value"]))


@pytest.mark.parametrize("case", load("values.json")["lenient"], ids=lambda c: c["name"])
def test_lenient_values(case: dict[str, Any]) -> None:
    assert TOOL.tag(value_to_document(bytes.fromhex(case["value"]))) == case["document"]


# ------------------------------------------------------------------ queries
def test_query_vectors_hold() -> None:
    assert TOOL.check_queries(load("queries.json")) == []


@pytest.mark.parametrize("case", load("queries.json")["malformed_filters"],
                         ids=lambda c: c["name"])
def test_malformed_filters(case: dict[str, str]) -> None:
    with pytest.raises(MalformedFilter):
        Query.from_filter_bytes(bytes.fromhex(case["filter"]))


def test_query_checker_catches_a_wrong_expectation() -> None:
    """The checker itself can fail: flip one expectation, one error path, one Filter byte."""
    data = load("queries.json")
    data["match"][0]["match"] = not data["match"][0]["match"]
    data["invalid"][0]["path"] = "elsewhere"
    data["match"][1]["filter"] = data["match"][-1]["filter"]
    assert len(TOOL.check_queries(data)) == 4


def test_query_cases_are_all_parsable_json_queries() -> None:
    for case in load("queries.json")["match"]:
        Query(TOOL.untag(case["query"]))


# ------------------------------------------------------------------ interest adverts
@pytest.mark.parametrize("case", load("adverts.json")["valid"], ids=lambda c: c["name"])
def test_valid_adverts(case: dict[str, Any]) -> None:
    from taiinet.pubsub.codec import decode

    advert = decode(bytes.fromhex(case["encoded"]))
    assert advert.version == int(case["version"])
    assert [q.to_json() for q in advert.filters] == case["filters"]
    assert (advert.tree_link, advert.root, advert.root_distance, advert.root_since_ms,
            advert.tree_size, list(advert.tree_members)) == (
        case["tree_link"], case["root"], case["root_distance"], case["root_since_ms"],
        case["tree_size"], case["tree_members"])


@pytest.mark.parametrize("case", load("adverts.json")["invalid"], ids=lambda c: c["name"])
def test_invalid_adverts(case: dict[str, str]) -> None:
    from taiinet.pubsub.codec import decode
    from taiinet.pubsub.errors import PubsubDecodeError

    with pytest.raises(PubsubDecodeError):
        decode(bytes.fromhex(case["encoded"]))
