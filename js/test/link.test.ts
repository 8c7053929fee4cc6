// Two secure-link cores joined in memory: the handshake and frames both ways survive any
// cutting of the byte stream, and a tampered byte ends the link with a RemoteProtocolError.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import fc from "fast-check";

import { concatBytes } from "../src/bytes.js";
import { PeerIdMismatch, RemoteProtocolError } from "../src/errors.js";
import { SecureLinkCore } from "../src/link/secureLink.js";
import { Identity } from "../src/wire/identity.js";

const A = Identity.fromSeed(new Uint8Array(32).fill(1));
const B = Identity.fromSeed(new Uint8Array(32).fill(2));
const key = (n: number): Uint8Array => new Uint8Array(32).fill(n);

function pair(expected = B.peerId): [SecureLinkCore, SecureLinkCore] {
  return [
    new SecureLinkCore({ initiator: true, identity: A, staticPrivateKey: key(11), ephemeralPrivateKey: key(12), expectedPeerId: expected }),
    new SecureLinkCore({ initiator: false, identity: B, staticPrivateKey: key(21), ephemeralPrivateKey: key(22) }),
  ];
}

/** Deliver `bytes` to `core` cut at `cuts` (offsets); collect what it sends and the frames. */
function deliver(core: SecureLinkCore, bytes: Uint8Array, cuts: number[]): { send: Uint8Array[]; frames: Uint8Array[] } {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
  const send: Uint8Array[] = [];
  const frames: Uint8Array[] = [];
  let start = 0;
  for (const end of [...points, bytes.length]) {
    if (end < start) continue;
    const out = core.receive(bytes.subarray(start, end));
    send.push(...out.send);
    frames.push(...out.frames);
    start = end;
  }
  return { send, frames };
}

describe("secure link core", () => {
  it("handshakes and carries frames both ways whatever the cutting", () => {
    fc.assert(fc.property(fc.array(fc.nat(400), { maxLength: 8 }), fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 5 }),
      (cuts, payloads) => {
        const [dialer, listener] = pair();
        const m2 = deliver(listener, concatBytes(...dialer.start()), cuts).send;
        const m3 = deliver(dialer, concatBytes(...m2), cuts).send;
        assert.ok(dialer.established);
        // The initiator may send frames right after message 3, in the same channel message.
        const early = payloads.flatMap((p) => dialer.sendFrame(p));
        const got = deliver(listener, concatBytes(...m3, ...early), cuts);
        assert.ok(listener.established);
        assert.equal(listener.remotePeerId, A.peerId);
        assert.equal(dialer.remotePeerId, B.peerId);
        assert.deepEqual(got.frames, payloads);
        const back = deliver(dialer, concatBytes(...payloads.flatMap((p) => listener.sendFrame(p))), cuts);
        assert.deepEqual(back.frames, payloads);
      }), { seed: 3, numRuns: 60 });
  });

  it("a dialer that reaches another peer than it expected stops before revealing itself", () => {
    const [dialer, listener] = pair(A.peerId);
    const m2 = listener.receive(concatBytes(...dialer.start())).send;
    assert.throws(() => dialer.receive(concatBytes(...m2)), PeerIdMismatch);
  });

  it("a flipped byte in a transport message is a RemoteProtocolError", () => {
    const [dialer, listener] = pair();
    const m2 = listener.receive(concatBytes(...dialer.start())).send;
    listener.receive(concatBytes(...dialer.receive(concatBytes(...m2)).send));
    const [message] = dialer.sendFrame(Uint8Array.of(1, 2, 3));
    const tampered = Uint8Array.from(message as Uint8Array);
    tampered[5] = (tampered[5] as number) ^ 1;
    assert.throws(() => listener.receive(tampered), RemoteProtocolError);
  });
});
