// dist/taiinet.js (written by `npm run build`, which `npm test` runs first) is one ES module
// that a page can load with a plain import(): no bare specifiers, the public API present.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";

import { hex, load } from "./vectors.js";

const BUNDLE = new URL("../dist/taiinet.js", import.meta.url);
/** What a page downloads, at most: the bundle gzipped (docs/browser.md gives the figures). */
const GZIPPED_BUDGET = 150 * 1024;

describe("the bundle", () => {
  it("imports nothing", () => {
    const text = readFileSync(BUNDLE, "utf8");
    assert.doesNotMatch(text, /\bimport\s*[\w{*][^;]*?from\s*["']/);
    assert.doesNotMatch(text, /\bimport\s*\(\s*["']/);
    assert.doesNotMatch(text, /\brequire\s*\(/);
  });

  it("stays within its download budget", () => {
    const gzipped = gzipSync(readFileSync(BUNDLE), { level: 9 }).length;
    assert.ok(gzipped < GZIPPED_BUDGET, `${gzipped} bytes gzipped`);
  });

  it("loads with import() and works", async () => {
    const taiinet = await import(BUNDLE.href);
    const vector = load("peer_ids.json").valid[0];
    const identity = taiinet.Identity.fromSeed(hex(vector.seed));
    assert.equal(identity.peerId, vector.peer_id);
    assert.ok(new taiinet.Query({ age: { $gt: 4 } }).matches({ age: 5 }));
    assert.throws(() => taiinet.parsePeerId("nope"), taiinet.InvalidPeerId);
    // Minified, error classes keep their names: callers and logs tell them apart by name.
    assert.equal(new taiinet.PeerUnreachable("x").name, "PeerUnreachable");
    assert.equal(new taiinet.InvalidPeerId("x").name, "InvalidPeerId");
    for (const name of ["SignalClient", "SignalClientCore", "SecureLink", "SecureLinkCore", "dialWebSocket", "NoiseHandshake", "SecureSession", "FrameDecoder", "openEnvelope", "sealEnvelope", "documentToValue", "valueToDocument", "InvalidQuery"]) {
      assert.equal(typeof taiinet[name], "function", name);
    }
  });
});
