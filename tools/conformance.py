"""Write the shared conformance vectors in ``conformance/`` from the Python implementation.

Every peer implementation (the Python package, the browser peer in ``js/``)
checks itself against these JSON files.  Byte vectors (peer ids, envelopes,
frames, the Noise transcript, ``Value`` encodings) are computed here by the
Python implementation, the reference; the query cases are written by hand
(MongoDB's semantics and TaiiNet's documented departures) and
``tests/test_conformance.py`` checks the Python matcher agrees with each.
That test also regenerates every file and fails when the committed JSON is
stale: run ``make conformance`` (``.venv/bin/python tools/conformance.py``).

Values that JSON cannot carry are tagged (conformance/README.md):
``{"@bytes": hex}``, ``{"@int": "decimal"}`` (beyond 2**53 - 1) and
``{"@float": "inf" | "-inf" | "2.0"}`` (infinities and integral floats).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from taiinet.errors import TaiiNetError  # noqa: E402
from taiinet.pubsub.query import InvalidQuery, Query, document_to_value  # noqa: E402
from taiinet.pubsub.query.codec import value_to_document  # noqa: E402
from taiinet.transport.noise import (  # noqa: E402
    NoiseHandshake,
    SecureSession,
    make_handshake_payload,
    with_length_prefix,
)
from taiinet.wire.envelope import Envelope, signed_bytes  # noqa: E402
from taiinet.wire.framing import (  # noqa: E402
    DEFAULT_MAX_FRAME_SIZE,
    MAX_FRAME_ITEMS,
    MAX_PROTOCOL_ID,
    FrameDecoder,
    decode_link_frame,
    encode_item,
    encode_uvarint,
    join_items,
)
from taiinet.wire.identity import (  # noqa: E402
    Identity,
    parse_peer_id,
    verify_with_public_key,
)
from taiinet.wire.keepalive import encode_ping, encode_pong  # noqa: E402
from taiinet.wire.peer_id import PeerId  # noqa: E402

OUT = ROOT / "conformance"
#: Ints beyond this are not exact as a JavaScript number: they are tagged, and read as bigints.
_MAX_SAFE = 2**53 - 1


# ------------------------------------------------------------------ tagged JSON
def tag(value: Any) -> Any:
    """A document value as JSON, with the tags of the module docstring."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"@int": str(value)} if abs(value) > _MAX_SAFE else value
    if isinstance(value, float):
        if math.isinf(value):
            return {"@float": "inf" if value > 0 else "-inf"}
        return {"@float": repr(value)} if value.is_integer() else value
    if isinstance(value, bytes):
        return {"@bytes": value.hex()}
    if isinstance(value, list | tuple):
        return [tag(v) for v in value]
    return {k: tag(v) for k, v in value.items()}


_TAGS = {"@bytes": bytes.fromhex, "@int": int, "@float": float}


def untag(value: Any) -> Any:
    """The document value a tagged JSON value stands for."""
    if isinstance(value, list):
        return [untag(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (key, inner), = value.items()
            if key in _TAGS:
                return _TAGS[key](inner)
        return {k: untag(v) for k, v in value.items()}
    return value


def _seed(first: int) -> bytes:
    return bytes(range(first, first + 32))


# ------------------------------------------------------------------ peer ids
def peer_ids() -> dict[str, Any]:
    identities = [Identity.from_seed(_seed(n)) for n in (0, 32, 64)]
    identities.append(Identity.from_seed(bytes(32)))
    valid = [{"seed": ident.private_key_bytes()[4:36].hex(),
              "public_key": ident.public_key.hex(),
              "public_key_proto": ident.public_key_proto.hex(),
              "key_file": ident.private_key_bytes().hex(),
              "peer_id": str(ident.peer_id)} for ident in identities]
    good = str(identities[0].peer_id)
    # A CID form (``bafz...``) is accepted from users (parse_peer_id), never on the wire.
    cid = "bafzaajaiaejcaa5ba67g7tqqxyoxbxdhjpaithzg2yyjxjjnl4o5zbtecjktdoaa"
    invalid = {
        "empty": "",
        "too long": "1" * 129,
        "not base58 (0)": "0" + good[1:],
        "not base58 (l)": good[:-1] + "l",
        "one character more": good + "1",
        "one character less": good[:-1],
        "leading 1 (a zero byte more)": "1" + good,
        "sha256 multihash (Qm..., RSA-style)": "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
        "secp256k1 key": "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY",
        "cid form on the wire": cid,
        "whitespace": " " + good,
        "non-ascii": good[:-1] + "é",
    }
    for name, text in invalid.items():
        try:
            PeerId.parse(text)
        except TaiiNetError:
            continue
        raise AssertionError(f"peer id case {name!r} is accepted by PeerId.parse")
    user = [{"text": cid, "peer_id": str(parse_peer_id(cid))},
            {"text": good, "peer_id": good}]
    return {"valid": valid,
            "invalid": [{"name": k, "text": v} for k, v in invalid.items()],
            "user_forms": user}


# ------------------------------------------------------------------ envelopes
def envelopes() -> dict[str, Any]:
    signer = Identity.from_seed(_seed(0))
    other = Identity.from_seed(_seed(32))
    valid = []
    for domain, payload_type, payload in (("taiinet-test", b"/taiinet/test", b"hello, world"),
                                          ("taiinet-pubsub-document", b"taiinet/document/v2", b""),
                                          ("d", b"", bytes(range(256)) * 2)):
        sealed = Envelope.seal(signer, domain, payload_type, payload)
        valid.append({"seed": _seed(0).hex(), "domain": domain,
                      "payload_type": payload_type.hex(), "payload": payload.hex(),
                      "signed_bytes": signed_bytes(domain, payload_type, payload).hex(),
                      "envelope": sealed.hex(), "peer_id": str(signer.peer_id)})
    base = bytes.fromhex(valid[0]["envelope"])
    domain = valid[0]["domain"]
    invalid: list[dict[str, Any]] = []

    def reject(name: str, data: bytes, **expect: Any) -> None:
        try:
            Envelope.open(data, expect.get("domain", domain),
                          payload_type=(bytes.fromhex(expect["payload_type"])
                                        if "payload_type" in expect else None),
                          peer_id=expect.get("peer_id"),
                          max_size=expect.get("max_size", 256 * 1024))
        except TaiiNetError:
            invalid.append({"name": name, "envelope": data.hex(),
                            "domain": expect.get("domain", domain),
                            **{k: v for k, v in expect.items() if k != "domain"}})
            return
        raise AssertionError(f"envelope case {name!r} opens")

    for index in range(len(base)):
        altered = bytearray(base)
        altered[index] ^= 0x01
        reject(f"byte {index} flipped", bytes(altered))
    reject("wrong domain", base, domain="taiinet-other")
    reject("unexpected payload type", base, payload_type=b"/other".hex())
    reject("unexpected signer", base, peer_id=str(other.peer_id))
    reject("over max_size", base, max_size=len(base) - 1)
    reject("unknown field appended", base + bytes([0x30, 0x01]))
    reject("field repeated", base + base[-66:])
    reject("truncated", base[:-1])
    reject("empty", b"")
    reject("no public key", base[38:])
    reject("signature of another key", base[:-64] + other.sign(
        signed_bytes(domain, b"/taiinet/test", b"hello, world")))
    return {"valid": valid, "invalid": invalid}


# ------------------------------------------------------------------ signatures
def signatures() -> dict[str, Any]:
    """Edge-case Ed25519 signatures (docs/protocol.md section 2.4), made by an
    independent Edwards25519 (tools/conformance_signatures.py)."""
    from tools.conformance_signatures import signatures as make

    return make(verify_with_public_key)


# ------------------------------------------------------------------ frames
def frames() -> dict[str, Any]:
    uvarints = [{"value": n, "encoded": encode_uvarint(n).hex()}
                for n in (0, 1, 127, 128, 300, 16383, 16384, 65535, 1 << 20, (1 << 35) - 1)]
    bad_uvarints = [{"name": "not minimal", "encoded": "8000", "error": "MalformedFrame"},
                    {"name": "not minimal (3 bytes)", "encoded": "ff8000",
                     "error": "MalformedFrame"},
                    {"name": "longer than 5 bytes", "encoded": "808080808001",
                     "error": "MalformedFrame"},
                    {"name": "truncated", "encoded": "80", "error": "TruncatedFrame"}]
    streams: list[dict[str, Any]] = []

    def stream(name: str, data: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        decoder = FrameDecoder(max_frame_size)
        case: dict[str, Any] = {"name": name, "stream": data.hex(),
                                "max_frame_size": max_frame_size}
        try:
            case["frames"] = [f.hex() for f in decoder.feed(data)]
            decoder.end_of_stream()
        except TaiiNetError as exc:
            case.pop("frames", None)
            case["error"] = type(exc).__name__
        streams.append(case)

    stream("one ping frame", bytes.fromhex("0b0a09080112050a0308ac02"))
    stream("empty frame", b"\x00")
    stream("three frames", b"\x01a\x00\x02bc")
    stream("a 300-byte frame", encode_uvarint(300) + bytes(300))
    stream("at the maximum", b"\x04abcd", max_frame_size=4)
    stream("over the maximum", b"\x05abcde", max_frame_size=4)
    stream("prefix over the maximum, no body", encode_uvarint((1 << 20) + 1))
    stream("non-minimal prefix", b"\x80\x00")
    stream("prefix longer than 5 bytes", bytes.fromhex("808080808001"))
    stream("ends inside a frame", b"\x05abc")
    stream("ends inside a prefix", b"\x80")
    return {"uvarint": uvarints, "bad_uvarint": bad_uvarints, "streams": streams,
            **link_frames()}


def link_frames() -> dict[str, Any]:
    """``LinkFrame``s (docs/protocol.md section 4.1): bytes -> items, or the error."""
    valid: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []

    def case(name: str, data: bytes, max_items: int = MAX_FRAME_ITEMS) -> None:
        entry: dict[str, Any] = {"name": name, "frame": data.hex(), "max_items": max_items}
        try:
            items = decode_link_frame(data, max_items=max_items)
        except TaiiNetError as exc:
            invalid.append(entry | {"error": type(exc).__name__})
            return
        valid.append(entry | {"items": [{"protocol": p, "body": b.hex()} for p, b in items]})

    case("a ping", encode_ping(300))
    case("a pong", encode_pong(7))
    case("an overlay join and a ping", join_items([encode_item(10, bytes.fromhex("0a00")),
                                                   encode_ping(1)]))
    case("an empty body", encode_item(12, b""))
    case("the largest protocol id", encode_item(MAX_PROTOCOL_ID, b"x"))
    case("an unknown field is skipped", encode_item(13, b"ab") + bytes.fromhex("7801"))
    case("three items, at max_items", join_items([encode_item(1, b"")] * 3), max_items=3)
    case("no item", b"")
    case("not protobuf", bytes.fromhex("ffffff"))
    case("a truncated item", bytes.fromhex("0a0508"))
    case("protocol 0", bytes.fromhex("0a020800"))
    case("an item with no protocol", bytes.fromhex("0a00"))
    case("only an unknown field", bytes.fromhex("7801"))
    case("over max_items", join_items([encode_item(1, b"")] * 3), max_items=2)
    return {"link_frames": valid, "bad_link_frames": invalid}


# ------------------------------------------------------------------ Noise XX
def noise_xx() -> dict[str, Any]:
    keys = {"initiator_identity_seed": _seed(0), "responder_identity_seed": _seed(32),
            "initiator_static_private": bytes([0x11]) * 32,
            "initiator_ephemeral_private": bytes([0x12]) * 32,
            "responder_static_private": bytes([0x21]) * 32,
            "responder_ephemeral_private": bytes([0x22]) * 32}
    initiator_identity = Identity.from_seed(keys["initiator_identity_seed"])
    responder_identity = Identity.from_seed(keys["responder_identity_seed"])
    initiator = NoiseHandshake(initiator=True, identity=initiator_identity,
                               static_private_key=keys["initiator_static_private"],
                               ephemeral_private_key=keys["initiator_ephemeral_private"],
                               expected_peer_id=str(responder_identity.peer_id))
    responder = NoiseHandshake(initiator=False, identity=responder_identity,
                               static_private_key=keys["responder_static_private"],
                               ephemeral_private_key=keys["responder_ephemeral_private"])
    out: dict[str, Any] = {k: v.hex() for k, v in keys.items()}
    out |= {"initiator_peer_id": str(initiator_identity.peer_id),
            "responder_peer_id": str(responder_identity.peer_id),
            "initiator_static_public": initiator.static_public_key.hex(),
            "responder_static_public": responder.static_public_key.hex(),
            "initiator_payload": make_handshake_payload(
                initiator_identity, initiator.static_public_key).hex(),
            "responder_payload": make_handshake_payload(
                responder_identity, responder.static_public_key).hex()}
    messages = []
    for writer, reader in ((initiator, responder), (responder, initiator),
                           (initiator, responder)):
        message = writer.write_message()
        reader.read_message(message)
        messages.append(with_length_prefix(message).hex())
    out["messages"] = messages
    assert initiator.result is not None and responder.result is not None
    out["handshake_hash"] = initiator.result.handshake_hash.hex()
    sender, receiver = SecureSession(initiator.result), SecureSession(responder.result)
    transport = []
    for frame in (b"hello", b""):
        sent = sender.encrypt_frame(frame)
        assert receiver.receive_data(b"".join(sent)) == [frame]
        transport.append({"from": "initiator", "frame": frame.hex(),
                          "messages": [m.hex() for m in sent]})
    # A frame whose prefixed plaintext (65,520 bytes) takes two Noise messages; it is
    # all zeros and its messages are given by their SHA-256, to keep the file small.
    zeros = 65517
    sent = sender.encrypt_frame(bytes(zeros))
    assert receiver.receive_data(b"".join(sent)) == [bytes(zeros)]
    transport.append({"from": "initiator", "zeros": zeros,
                      "messages_sha256": [hashlib.sha256(m).hexdigest() for m in sent],
                      "message_lengths": [len(m) for m in sent]})
    back = SecureSession(responder.result).encrypt_frame(b"world")
    transport.append({"from": "responder", "frame": b"world".hex(),
                      "messages": [m.hex() for m in back]})
    out["transport"] = transport
    return out


# ------------------------------------------------------------------ documents (Value)
def values() -> dict[str, Any]:
    documents: list[Any] = [
        None, True, False, 0, 1, -1, 5, 2**53, 2**53 + 1, -(2**63), 2**63 - 1, 1.5, -0.25,
        2.0, 1e300, float("inf"), float("-inf"), "", "a", "héllo", "😀", b"", b"\x00\xff",
        [], [1, "a", None], {}, {"age": 5}, {"topic": "a"},
        {"b": 1, "a": [True, {"c": b"\x01"}], "z": {"y": {"x": []}}},
    ]
    valid = []
    for document in documents:
        raw = document_to_value(document)
        assert _same(value_to_document(raw), document)
        valid.append({"document": tag(document), "value": raw.hex()})
    malformed = {
        "no kind set": "",
        "NaN": "21" + "000000000000f87f",
        "map entry without value": "42050a030a0161",
        "not protobuf": "ff",
        "truncated": "2a0561",
        "invalid UTF-8 string": "2a01ff",
    }
    # Build the repeated-key and deep cases from parts, so they are well-formed protobuf.
    entry = bytes.fromhex("0a0161") + bytes.fromhex("12020800")  # key "a", value null
    entries = bytes([0x0a, len(entry)]) + entry
    malformed["repeated map key"] = (bytes([0x42, 2 * len(entries)]) + entries * 2).hex()
    deep = bytes.fromhex("0800")
    for _ in range(24):
        deep = bytes([0x3a, len(deep) + 2, 0x0a, len(deep)]) + deep
    malformed["nested deeper than 24"] = deep.hex()
    many = bytes.fromhex("0a020800") * 4096  # a list of 4,096 nulls: 4,097 values
    malformed["more than 4,096 values"] = (bytes([0x3a]) + encode_uvarint(len(many))
                                           + many).hex()
    invalid = []
    for name, hexed in malformed.items():
        try:
            value_to_document(bytes.fromhex(hexed))
        except TaiiNetError:
            invalid.append({"name": name, "value": hexed})
            continue
        raise AssertionError(f"value case {name!r} decodes")
    # Accepted though not canonical: they decode, but re-encode differently.
    lenient = []
    for name, hexed in (("null_value of another enum number", "0801"),
                        ("unknown field ignored", "0800980101")):
        lenient.append({"name": name, "value": hexed,
                        "document": tag(value_to_document(bytes.fromhex(hexed)))})
    return {"valid": valid, "invalid": invalid, "lenient": lenient}


def _same(a: Any, b: Any) -> bool:
    return json.dumps(tag(a), sort_keys=True) == json.dumps(tag(b), sort_keys=True)


# ------------------------------------------------------------------ queries
def queries() -> dict[str, Any]:
    from tools.conformance_queries import INVALID_QUERIES, MATCH_CASES

    cases = []
    for note, query, document, expected in MATCH_CASES:
        cases.append({"note": note, "query": tag(query), "document": tag(document),
                      "match": expected, "filter": Query(query).to_filter_bytes().hex()})
    invalid = []
    for note, query, path in INVALID_QUERIES:
        invalid.append({"note": note, "query": tag(query), "path": path})
    return {"match": cases, "invalid": invalid, "malformed_filters": malformed_filters()}


def malformed_filters() -> list[dict[str, str]]:
    """``Filter`` bytes every peer must reject (``MalformedFilter``)."""
    from taiinet.pubsub.query import MalformedFilter
    from taiinet.v1 import query_pb2, value_pb2

    def field(path: str, *ops: query_pb2.Operator) -> query_pb2.Filter:
        return query_pb2.Filter(field=query_pb2.FieldFilter(path=path, ops=list(ops)))

    one = value_pb2.Value(int_value=1)
    nested = field("a", query_pb2.Operator(eq=one))
    for _ in range(20):
        nested = query_pb2.Filter(all_of=query_pb2.FilterList(filters=[nested]))
    cases = {
        "no node set": query_pb2.Filter(),
        "field without operators": field("a"),
        "operator with none set": field("a", query_pb2.Operator()),
        "operator kind repeated": field("a", query_pb2.Operator(gt=one),
                                        query_pb2.Operator(gt=one)),
        "empty any_of": query_pb2.Filter(any_of=query_pb2.FilterList()),
        "empty none_of": query_pb2.Filter(none_of=query_pb2.FilterList()),
        "bad path": field("a..b", query_pb2.Operator(eq=one)),
        "empty path": field("", query_pb2.Operator(eq=one)),
        "size beyond int64": field("a", query_pb2.Operator(size=2**63)),
        "elem_match without form": field("a", query_pb2.Operator(
            elem_match=query_pb2.ElemMatchOperator())),
        "empty not": field("a", query_pb2.Operator(not_ops=query_pb2.OperatorList())),
        "regex not RE2": field("a", query_pb2.Operator(
            regex=query_pb2.RegexOperator(pattern="(a)\\1"))),
        "regex option x": field("a", query_pb2.Operator(
            regex=query_pb2.RegexOperator(pattern="a", options="x"))),
        "literal without kind": field("a", query_pb2.Operator(eq=value_pb2.Value())),
        "NaN literal": field("a", query_pb2.Operator(eq=value_pb2.Value(float_value=math.nan))),
        "range of a list": field("a", query_pb2.Operator(
            gt=value_pb2.Value(list_value=value_pb2.ListValue()))),
        "nested deeper than 20": nested,
    }
    out = [{"name": name, "filter": message.SerializeToString().hex()}
           for name, message in cases.items()]
    out.append({"name": "not protobuf", "filter": "ff"})
    for case in out:
        try:
            Query.from_filter_bytes(bytes.fromhex(case["filter"]))
        except MalformedFilter:
            continue
        raise AssertionError(f"filter case {case['name']!r} decodes")
    return out


def check_queries(data: dict[str, Any]) -> list[str]:
    """Disagreements of the Python implementation with the query vectors."""
    problems = []
    for case in data["match"]:
        got = Query(untag(case["query"])).matches(untag(case["document"]))
        if got is not case["match"]:
            problems.append(f"{case['note']}: {case['query']} on {case['document']} gave {got}")
    for case in data["match"]:
        query = Query(untag(case["query"]))
        if query.to_filter_bytes().hex() != case["filter"]:
            problems.append(f"{case['note']}: Filter bytes differ")
        if Query.from_filter_bytes(bytes.fromhex(case["filter"])) != query:
            problems.append(f"{case['note']}: Filter bytes decode to another query")
    for case in data["invalid"]:
        try:
            Query(untag(case["query"]))
        except InvalidQuery as exc:
            if exc.path != case["path"]:
                problems.append(f"{case['note']}: error at {exc.path}, expected {case['path']}")
            continue
        problems.append(f"{case['note']}: {case['query']} was accepted")
    return problems

# ------------------------------------------------------------------ adverts
def adverts() -> dict[str, Any]:
    """InterestAdverts (docs/pubsub.md section 3): fields -> PubsubMessage and Frame bytes;
    bytes every decoder must reject."""
    from taiinet.pubsub.codec import decode, encode
    from taiinet.pubsub.errors import PubsubDecodeError
    from taiinet.pubsub.messages import InterestAdvert
    from taiinet.v1 import pubsub_pb2, query_pb2

    root = "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB"
    other = str(Identity.from_seed(_seed(0)).peer_id)
    cases: list[dict[str, Any]] = [
        {"name": "docs/pubsub.md example", "version": 3, "filters": [{"topic": "a"}],
         "tree_link": False, "root": root, "root_distance": 0, "root_since_ms": 1767225600000,
         "tree_size": 1, "tree_members": [root]},
        {"name": "no filter, no route", "version": 1, "filters": [], "tree_link": False,
         "root": "", "root_distance": 0, "root_since_ms": 0, "tree_size": 0, "tree_members": []},
        {"name": "to the parent, everything", "version": 18446744073709551615, "filters": [{}],
         "tree_link": True, "root": root, "root_distance": 64, "root_since_ms": 1,
         "tree_size": 32, "tree_members": []},
        {"name": "several filters, two members", "version": 7,
         "filters": [{"age": {"$gt": 4}}, {"tags": {"$all": ["x", "y"]}, "n": {"$in": [1, 2.5]}}],
         "tree_link": True, "root": other, "root_distance": 2, "root_since_ms": 1767225600123,
         "tree_size": 2, "tree_members": sorted([root, other])},
    ]
    valid = []
    for case in cases:
        advert = InterestAdvert(
            version=case["version"], filters=tuple(Query(q) for q in case["filters"]),
            tree_link=case["tree_link"], root=case["root"], root_distance=case["root_distance"],
            root_since_ms=case["root_since_ms"], tree_size=case["tree_size"],
            tree_members=tuple(case["tree_members"]))
        data = encode(advert)
        frame = encode_item(12, data)  # a LinkFrame of one protocol-12 item
        assert decode(data) == advert, case["name"]
        valid.append({**case, "version": str(case["version"]),
                      "filters": [Query(q).to_json() for q in case["filters"]],
                      "encoded": data.hex(), "frame": frame.hex()})

    def message(**fields: Any) -> bytes:
        pb = pubsub_pb2.PubsubMessage()
        pb.interest.SetInParent()
        for key, value in fields.items():
            if key == "tree_members":
                pb.interest.tree_members.extend(value)
            elif key == "filters":
                pb.interest.filters.extend(value)
            else:
                setattr(pb.interest, key, value)
        return pb.SerializeToString()

    topic = query_pb2.Filter.FromString(Query({"topic": "a"}).to_filter_bytes())
    bad_filter = query_pb2.Filter.FromString(bytes.fromhex("0a020a00"))
    invalid_cases = {
        "no body": b"",
        "not protobuf": b"\xff\xff\xff",
        "17 filters": message(version=1, filters=[topic] * 17),
        "root distance 65": message(version=1, root=root, root_distance=65),
        "root not a peer id": message(version=1, root="12D3KooWnotapeerid"),
        "tree size 33": message(version=1, tree_size=33),
        "33 members": message(version=1, tree_members=[root] * 33),
        "member not a peer id": message(version=1, tree_members=["bob"]),
        "malformed filter": message(version=1, filters=[bad_filter]),
        "over 32 KiB": message(version=1, root=root, tree_members=[root] * 32)
        + bytes([0x0A, 0x80, 0x80, 0x02]) + bytes(32768),
    }
    invalid = []
    for name, data in invalid_cases.items():
        try:
            decode(data)
        except PubsubDecodeError:
            invalid.append({"name": name, "encoded": data.hex()})
            continue
        raise AssertionError(f"advert case {name!r} decodes")
    return {"valid": valid, "invalid": invalid}


# ------------------------------------------------------------------ routes
def routes() -> dict[str, Any]:
    """The spanning tree's rules (docs/pubsub.md section 4): a node's start and id and its
    neighbours' last offers -> its route, parent, tree links and members per tree link."""
    from taiinet.pubsub.tree.routes import SpanningTree

    ids = sorted(str(Identity.from_seed(_seed(i)).peer_id) for i in range(0, 160, 32))
    me, a, b, c, d = ids[2], ids[0], ids[1], ids[3], ids[4]

    def offer(peer: str, since: int, root: str, distance: int, child: bool = False,
              members: list[str] | None = None) -> dict[str, Any]:
        return {"peer": peer, "since": since, "root": root, "distance": distance,
                "child": child, "members": members or []}

    cases: list[dict[str, Any]] = [
        {"name": "alone: its own root", "since": 100, "offers": []},
        {"name": "a neighbour with no advert yet offers nothing", "since": 100,
         "offers": [{"peer": a}]},
        {"name": "the oldest root wins, whatever its id", "since": 100,
         "offers": [offer(a, 50, d, 3), offer(b, 60, a, 0)]},
        {"name": "same root: the shorter distance", "since": 100,
         "offers": [offer(a, 50, d, 3), offer(b, 50, d, 1)]},
        {"name": "same root and distance: the smaller neighbour id", "since": 100,
         "offers": [offer(c, 50, d, 1), offer(a, 50, d, 1)]},
        {"name": "same start: the smaller root id", "since": 100,
         "offers": [offer(a, 50, d, 0), offer(b, 50, c, 0)]},
        {"name": "a child is never the parent", "since": 100,
         "offers": [offer(a, 50, d, 1, child=True, members=[a]), offer(b, 70, b, 0)]},
        {"name": "distance 64 is too far", "since": 100, "offers": [offer(a, 50, d, 63),
                                                                   offer(b, 60, d, 64)]},
        {"name": "younger neighbours: its own root, they its children", "since": 10,
         "offers": [offer(a, 10, me, 1, child=True, members=[a, d]),
                    offer(b, 10, me, 1, child=True, members=[b])]},
        {"name": "members unknown on one side: none over the other links", "since": 100,
         "offers": [offer(a, 50, a, 0, members=[a]), offer(b, 50, a, 1, child=True),
                    offer(c, 50, a, 1, child=True, members=[c])]},
        {"name": "no root offered", "since": 100, "offers": [offer(a, 0, "", 0)]},
    ]
    for case in cases:
        tree = SpanningTree(PeerId(me), case["since"])
        for o in case["offers"]:
            tree.add(PeerId(o["peer"]))
            if "root" in o:
                tree.offer(PeerId(o["peer"]), o["since"], o["root"], o["distance"], o["child"],
                           tuple(o["members"]))
        tree.recompute()
        links = tree.links()
        members = {str(p): (None if (m := tree.members_for(p)) is None else sorted(m))
                   for p in links}
        case.update(self=me, route=list(tree.route), parent=tree.parent or "",
                    tree_links=sorted(str(p) for p in links), members=members)
    return {"cases": cases}


FILES = {"peer_ids.json": peer_ids, "envelopes.json": envelopes,
         "signatures.json": signatures, "frames.json": frames,
         "noise_xx.json": noise_xx, "values.json": values, "queries.json": queries,
         "adverts.json": adverts, "routes.json": routes}


def render(data: Any) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """File name -> JSON text of every conformance file."""
    return {name: render(make()) for name, make in FILES.items()}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, text in generate().items():
        (OUT / name).write_text(text)
        print(f"wrote conformance/{name}")
    problems = check_queries(json.loads((OUT / "queries.json").read_text()))
    if problems:
        raise SystemExit("\n".join(problems))


if __name__ == "__main__":
    main()
