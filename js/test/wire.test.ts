// Peer ids, keys, envelopes and framing against the shared conformance vectors.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { FrameTooLarge, InvalidEnvelope, InvalidPeerId, KeyFileError, LocalProtocolError, MalformedFrame, OversizedFrame, TruncatedFrame } from "../src/errors.js";
import { openEnvelope, sealEnvelope, signedBytes } from "../src/wire/envelope.js";
import { DEFAULT_MAX_FRAME_SIZE, FrameDecoder, decodeUvarint, encodeUvarint, frameWithPrefix } from "../src/wire/framing.js";
import { LINK_PROTOCOL, type LinkItem, decodeControl, decodeLinkFrame, encodeItem, joinItems, pingItem, pongItem } from "../src/wire/linkFrame.js";
import { Identity, verifySignature, verifyWithPublicKey } from "../src/wire/identity.js";
import { parsePeerId, parseUserPeerId, peerIdFromPublicKey, publicKeyOfPeerId } from "../src/wire/peerId.js";
import { hex, load, toHexString } from "./vectors.js";

const peerIds = load("peer_ids.json");
const envelopes = load("envelopes.json");
const frames = load("frames.json");
const signatures = load("signatures.json");
const ERRORS: Record<string, new (...args: never[]) => Error> = { MalformedFrame, TruncatedFrame, FrameTooLarge };
const errorClass = (name: string): new (...args: never[]) => Error => ERRORS[name] ?? Error;

describe("peer ids", () => {
  for (const c of peerIds.valid) {
    it(`derives ${c.peer_id} from its seed`, () => {
      const identity = Identity.fromSeed(hex(c.seed));
      assert.equal(toHexString(identity.publicKey), c.public_key);
      assert.equal(toHexString(identity.publicKeyProto), c.public_key_proto);
      assert.equal(toHexString(identity.privateKeyBytes()), c.key_file);
      assert.equal(identity.peerId, c.peer_id);
      assert.equal(parsePeerId(c.peer_id), c.peer_id);
      assert.equal(toHexString(publicKeyOfPeerId(parsePeerId(c.peer_id))), c.public_key);
      assert.equal(Identity.fromPrivateKeyBytes(hex(c.key_file)).peerId, c.peer_id);
    });
  }
  for (const c of peerIds.invalid) {
    it(`rejects ${c.name}`, () => assert.throws(() => parsePeerId(c.text), InvalidPeerId));
  }
  for (const c of peerIds.user_forms) {
    it(`reads the user form ${c.text.slice(0, 12)}...`, () => assert.equal(parseUserPeerId(c.text), c.peer_id));
  }
  it("rejects what is not text", () => {
    assert.throws(() => parsePeerId(42), InvalidPeerId);
    assert.throws(() => parsePeerId(undefined), InvalidPeerId);
  });
  it("rejects a key file whose public key is not its seed's", () => {
    const keyFile = hex(peerIds.valid[0].key_file);
    keyFile[67] = (keyFile[67] as number) ^ 1;
    assert.throws(() => Identity.fromPrivateKeyBytes(keyFile), KeyFileError);
    assert.throws(() => Identity.fromPrivateKeyBytes(keyFile.subarray(1)), KeyFileError);
  });
});

describe("envelopes", () => {
  for (const c of envelopes.valid) {
    it(`seals and opens for domain ${c.domain}`, () => {
      const identity = Identity.fromSeed(hex(c.seed));
      const payloadType = hex(c.payload_type);
      const payload = hex(c.payload);
      assert.equal(toHexString(signedBytes(c.domain, payloadType, payload)), c.signed_bytes);
      const sealed = sealEnvelope(identity, c.domain, payloadType, payload);
      assert.equal(toHexString(sealed), c.envelope);
      const opened = openEnvelope(hex(c.envelope), c.domain, { payloadType, peerId: c.peer_id });
      assert.equal(opened.peerId, c.peer_id);
      assert.deepEqual(opened.payload, payload);
      assert.deepEqual(opened.payloadType, payloadType);
    });
  }
  for (const c of envelopes.invalid) {
    it(`rejects: ${c.name}`, () => {
      assert.throws(() => openEnvelope(hex(c.envelope), c.domain, {
        ...(c.payload_type !== undefined ? { payloadType: hex(c.payload_type) } : {}),
        ...(c.peer_id !== undefined ? { peerId: c.peer_id } : {}),
        ...(c.max_size !== undefined ? { maxSize: c.max_size } : {}),
      }), InvalidEnvelope);
    });
  }
  it("refuses an empty domain and an oversized seal", () => {
    const identity = Identity.fromSeed(new Uint8Array(32));
    assert.throws(() => sealEnvelope(identity, "", new Uint8Array(), new Uint8Array()), LocalProtocolError);
    assert.throws(() => sealEnvelope(identity, "d", new Uint8Array(), new Uint8Array(200), 100), LocalProtocolError);
  });
  it("verifies a signature from the peer id alone", () => {
    const identity = Identity.generate();
    const data = new TextEncoder().encode("data");
    assert.ok(verifySignature(identity.peerId, data, identity.sign(data)));
    assert.ok(!verifySignature(identity.peerId, new Uint8Array(), identity.sign(data)));
  });
});

describe("signature validity (docs/protocol.md 2.4)", () => {
  for (const c of signatures.cases) {
    it(`${c.name}: ${c.valid ? "valid" : "invalid"}`, () => {
      const [key, message, signature] = [hex(c.public_key), hex(c.message), hex(c.signature)];
      assert.equal(verifyWithPublicKey(key, message, signature), c.valid);
      if (key.length === 32) assert.equal(verifySignature(peerIdFromPublicKey(key), message, signature), c.valid);
    });
  }
});

describe("framing", () => {
  for (const c of frames.uvarint) {
    it(`uvarint ${c.value}`, () => {
      assert.equal(toHexString(encodeUvarint(c.value)), c.encoded);
      assert.deepEqual(decodeUvarint(hex(c.encoded)), [c.value, c.encoded.length / 2]);
    });
  }
  for (const c of frames.bad_uvarint) {
    it(`rejects a uvarint: ${c.name}`, () => assert.throws(() => decodeUvarint(hex(c.encoded)), errorClass(c.error)));
  }
  for (const c of frames.streams) {
    for (const chunk of [1, 3, 1 << 20]) {
      it(`stream "${c.name}" fed in chunks of ${chunk}`, () => {
        const data = hex(c.stream);
        const decoder = new FrameDecoder(c.max_frame_size);
        const run = (): string[] => {
          const got: string[] = [];
          for (let i = 0; i < data.length; i += chunk) got.push(...decoder.feed(data.subarray(i, i + chunk)).map(toHexString));
          decoder.endOfStream();
          return got;
        };
        if (c.error !== undefined) {
          assert.throws(run, errorClass(c.error));
          assert.throws(() => decoder.feed(new Uint8Array(1)), LocalProtocolError); // broken for good
        } else {
          assert.deepEqual(run(), c.frames);
        }
      });
    }
  }
  it("refuses to send an oversized frame", () => {
    assert.throws(() => frameWithPrefix(new Uint8Array(5), 4), OversizedFrame);
    assert.deepEqual(frameWithPrefix(new Uint8Array(4), 4).length, 5);
  });
  for (const c of frames.link_frames) {
    it(`link frame "${c.name}"`, () => {
      const items = decodeLinkFrame(hex(c.frame), DEFAULT_MAX_FRAME_SIZE, c.max_items);
      assert.deepEqual(items.map(([protocol, body]) => ({ protocol, body: toHexString(body) })), c.items);
      // Re-encoded item by item: the same bytes, unless the frame had fields this version skips.
      const again = joinItems(items.map(([protocol, body]) => encodeItem(protocol, body)));
      if (!c.name.includes("unknown field")) assert.equal(toHexString(again), c.frame);
    });
  }
  for (const c of frames.bad_link_frames) {
    it(`rejects a link frame: ${c.name}`, () => {
      assert.throws(() => decodeLinkFrame(hex(c.frame), DEFAULT_MAX_FRAME_SIZE, c.max_items), errorClass(c.error));
    });
  }
  it("keep-alive items", () => {
    assert.equal(toHexString(pingItem(300n)), "0a09080112050a0308ac02");
    const [[protocol, body]] = decodeLinkFrame(pongItem(7n)) as [LinkItem];
    assert.equal(protocol, LINK_PROTOCOL);
    assert.deepEqual(decodeControl(body), ["pong", 7n]);
    assert.throws(() => encodeItem(0, new Uint8Array()), LocalProtocolError);
    assert.throws(() => decodeLinkFrame(new Uint8Array(10), 5), FrameTooLarge);
  });
  it("holds at most one frame and says how much", () => {
    const decoder = new FrameDecoder(16);
    assert.deepEqual(decoder.feed(Uint8Array.of(10, 1, 2, 3)), []);
    assert.equal(decoder.heldBytes, 3);
    assert.ok(decoder.hasPartialFrame);
  });
});
