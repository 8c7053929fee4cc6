// Decoders fed arbitrary input either decode or throw their own typed error, never anything
// else (fast-check, seeded so a failure reproduces; the Python side uses hypothesis the same way).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";

import { HandshakeError, InvalidEnvelope, InvalidPeerId, InvalidQuery, MalformedFilter, MalformedFrame, MalformedValue, RemoteProtocolError } from "../src/errors.js";
import { filterFromBytes } from "../src/query/filterCodec.js";
import { NoiseHandshake, SecureSession, verifyHandshakePayload } from "../src/noise/noise.js";
import { Query } from "../src/query/query.js";
import { documentToValue, valueToDocument } from "../src/query/valueCodec.js";
import { type Document, valueEquals } from "../src/query/values.js";
import { openEnvelope } from "../src/wire/envelope.js";
import { FrameDecoder } from "../src/wire/framing.js";
import { decodeLinkFrame, encodeItem, joinItems } from "../src/wire/linkFrame.js";
import { Identity } from "../src/wire/identity.js";
import { parsePeerId } from "../src/wire/peerId.js";
import { hex, load } from "./vectors.js";

const RUNS = { numRuns: 300, seed: 20261205 };

function onlyThrows(errorClass: new (...args: never[]) => Error, run: () => unknown): void {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof errorClass, `${String(error)} is not a ${errorClass.name}`);
  }
}

/** Valid bytes with a few bytes changed, inserted or cut: closer to the decoder's edges than noise. */
function mutated(base: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.nat(base.length), fc.nat(255), fc.constantFrom("flip", "insert", "cut")).map(([at, byte, how]) => {
    const out = Array.from(base);
    if (how === "flip") out[Math.min(at, out.length - 1)] = byte;
    else if (how === "insert") out.splice(at, 0, byte);
    else out.splice(at);
    return Uint8Array.from(out);
  });
}

const documents: fc.Arbitrary<Document> = fc.letrec<{ doc: Document }>((tie) => ({
  doc: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    fc.string(), fc.uint8Array({ maxLength: 8 }),
    fc.array(tie("doc"), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 4 }), tie("doc"), { maxKeys: 4 }),
  ),
})).doc;

describe("fuzz", () => {
  it("Value: documents round-trip, any bytes decode or throw MalformedValue", () => {
    fc.assert(fc.property(documents, (doc) => {
      assert.ok(valueEquals(valueToDocument(documentToValue(doc)), doc));
    }), RUNS);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (data) => onlyThrows(MalformedValue, () => valueToDocument(data))), RUNS);
    const base = documentToValue({ a: [1, "x", { b: null }], c: 2.5 });
    fc.assert(fc.property(mutated(base), (data) => onlyThrows(MalformedValue, () => valueToDocument(data))), RUNS);
  });

  it("frames: any stream gives frames or a RemoteProtocolError", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(40), (data, max) => {
      onlyThrows(RemoteProtocolError, () => {
        new FrameDecoder(max).feed(data);
      });
    }), RUNS);
  });

  it("link frames: any bytes give items or MalformedFrame; items round trip", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (data) => {
      onlyThrows(MalformedFrame, () => {
        for (const [protocol] of decodeLinkFrame(data)) assert.ok(protocol >= 1);
      });
    }), RUNS);
    const items = fc.array(fc.tuple(fc.integer({ min: 1, max: 2 ** 32 - 1 }), fc.uint8Array({ maxLength: 20 })),
      { minLength: 1, maxLength: 8 });
    fc.assert(fc.property(items, (pairs) => {
      const frame = joinItems(pairs.map(([protocol, body]) => encodeItem(protocol, body)));
      assert.deepEqual(decodeLinkFrame(frame).map(([p, b]) => [p, [...b]]), pairs.map(([p, b]) => [p, [...b]]));
    }), RUNS);
  });

  it("envelopes: altered bytes never open", () => {
    const vector = load("envelopes.json").valid[0];
    const base = hex(vector.envelope);
    fc.assert(fc.property(mutated(base), (data) => {
      onlyThrows(InvalidEnvelope, () => openEnvelope(data, vector.domain));
    }), RUNS);
  });

  it("peer ids: any text parses or throws InvalidPeerId", () => {
    fc.assert(fc.property(fc.string({ maxLength: 60 }), (text) => onlyThrows(InvalidPeerId, () => parsePeerId(text))), RUNS);
  });

  it("Noise: any handshake message or payload throws HandshakeError", () => {
    const v = load("noise_xx.json");
    const responder = () => new NoiseHandshake({
      initiator: false, identity: Identity.fromSeed(hex(v.responder_identity_seed)),
      staticPrivateKey: hex(v.responder_static_private), ephemeralPrivateKey: hex(v.responder_ephemeral_private),
    });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (payload) => {
      onlyThrows(HandshakeError, () => verifyHandshakePayload(payload, new Uint8Array(32)));
    }), RUNS);
    const message3 = hex(v.messages[2]).subarray(2);
    fc.assert(fc.property(mutated(message3), (data) => {
      const r = responder();
      r.readMessage(hex(v.messages[0]).subarray(2));
      r.writeMessage();
      onlyThrows(HandshakeError, () => r.readMessage(data));
    }), { ...RUNS, numRuns: 100 });
  });

  it("secure session: altered transport messages throw RemoteProtocolError", () => {
    const v = load("noise_xx.json");
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (data) => {
      const initiator = new NoiseHandshake({ initiator: true, identity: Identity.fromSeed(hex(v.initiator_identity_seed)),
        staticPrivateKey: hex(v.initiator_static_private), ephemeralPrivateKey: hex(v.initiator_ephemeral_private) });
      const responder = new NoiseHandshake({ initiator: false, identity: Identity.fromSeed(hex(v.responder_identity_seed)),
        staticPrivateKey: hex(v.responder_static_private), ephemeralPrivateKey: hex(v.responder_ephemeral_private) });
      responder.readMessage(initiator.writeMessage());
      initiator.readMessage(responder.writeMessage());
      responder.readMessage(initiator.writeMessage());
      const session = new SecureSession(responder.result!);
      onlyThrows(RemoteProtocolError, () => session.receiveData(data));
    }), { ...RUNS, numRuns: 50 });
  });

  it("queries: any JSON-like value parses or throws InvalidQuery, and matching never throws", () => {
    const keys = fc.constantFrom("a", "b", "a.b", "a.0", "$and", "$or", "$nor", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte",
      "$in", "$nin", "$all", "$exists", "$size", "$elemMatch", "$not", "$regex", "$options", "$contains", "$x", "");
    const queries = fc.letrec<{ q: unknown }>((tie) => ({
      q: fc.oneof({ depthSize: "small" }, fc.constant(null), fc.boolean(), fc.integer({ min: -2, max: 3 }), fc.constantFrom("a", "^a", "i", "(", ""),
        fc.array(tie("q"), { maxLength: 3 }), fc.dictionary(keys, tie("q"), { maxKeys: 3 })),
    })).q;
    fc.assert(fc.property(queries, documents, (q, doc) => {
      let query: Query;
      try {
        query = new Query(q);
      } catch (error) {
        assert.ok(error instanceof InvalidQuery, String(error));
        return;
      }
      assert.equal(typeof query.matches(doc), "boolean");
      // Its Filter round-trips to the same query, and altered Filter bytes decode or throw MalformedFilter.
      const bytes = query.toFilterBytes();
      assert.deepEqual(Query.fromFilterBytes(bytes).ast, query.ast);
      fc.assert(fc.property(mutated(bytes), (data) => onlyThrows(MalformedFilter, () => filterFromBytes(data))), { numRuns: 3, seed: 1 });
    }), { ...RUNS, numRuns: 1000 });
  });
});
