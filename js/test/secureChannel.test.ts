// The secure-link driver over an in-memory message channel, with node's mocked timers:
// frames both ways, a tampered message closes the link, the frame deadline, and the
// handshake's deadlines (3 s per message of the peer, 5 s in all).
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";

import { HandshakeTimeout } from "../src/errors.js";
import { FRAME_TIMEOUT_MS, HANDSHAKE_MESSAGE_TIMEOUT_MS, type MessageChannel, SecureLink } from "../src/io/secureChannel.js";
import { SecureLinkCore } from "../src/link/secureLink.js";
import { Identity } from "../src/wire/identity.js";

const A = Identity.fromSeed(new Uint8Array(32).fill(1));
const B = Identity.fromSeed(new Uint8Array(32).fill(2));

class MemoryChannel implements MessageChannel {
  onMessage: ((data: Uint8Array) => void) | null = null;
  onClose: ((reason: string) => void) | null = null;
  other: MemoryChannel | null = null;
  closed = false;
  drained?: () => Promise<void>;

  send(data: Uint8Array): void {
    const other = this.other;
    if (!this.closed && other !== null) queueMicrotask(() => other.onMessage?.(Uint8Array.from(data)));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const other = this.other;
    queueMicrotask(() => other?.closeFromPeer());
  }

  closeFromPeer(): void {
    this.closed = true;
    this.onClose?.("closed by the peer");
  }
}

async function pair(): Promise<[SecureLink, SecureLink, MemoryChannel, MemoryChannel]> {
  const a = new MemoryChannel();
  const b = new MemoryChannel();
  a.other = b;
  b.other = a;
  const [left, right] = await Promise.all([
    SecureLink.open(a, { initiator: true, identity: A, expectedPeerId: B.peerId }),
    SecureLink.open(b, { initiator: false, identity: B }),
  ]);
  return [left, right, a, b];
}

describe("secure link driver", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => mock.timers.reset());

  it("carries frames both ways and proves both peer ids", async () => {
    const [left, right] = await pair();
    assert.equal(left.remotePeerId, B.peerId);
    assert.equal(right.remotePeerId, A.peerId);
    await left.send(Uint8Array.of(1, 2, 3));
    const got = await right[Symbol.asyncIterator]().next();
    assert.deepEqual(got.value, Uint8Array.of(1, 2, 3));
    await right.send(new Uint8Array(100_000));
    assert.equal((await left[Symbol.asyncIterator]().next()).value?.length, 100_000);
  });

  it("closes a link whose frame does not complete within the frame deadline", async () => {
    const [left, , , b] = await pair();
    b.send(Uint8Array.of(0x01)); // the first byte of a Noise message's length prefix
    await new Promise((resolve) => setImmediate(resolve));
    mock.timers.tick(FRAME_TIMEOUT_MS - 1);
    assert.equal(left.isClosed, false);
    mock.timers.tick(1);
    assert.match(await left.closed, /FrameTimeout/);
  });

  it("flush resolves once the channel drained what was sent, false once the link closed", async () => {
    const [left, , a] = await pair();
    let drain: () => void = () => undefined;
    a.drained = () => new Promise<void>((resolve) => { drain = resolve; });
    let flushed: boolean | null = null;
    void left.send(Uint8Array.of(9));
    void left.flush().then((sent) => { flushed = sent; });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(flushed, null);
    drain();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(flushed, true);
    left.close();
    assert.equal(await left.flush(), false);
  });

  it("closes the link on a transport message that fails authentication", async () => {
    const [left, , , b] = await pair();
    b.send(Uint8Array.of(0x00, 0x20, ...new Uint8Array(32)));
    assert.match(await left.closed, /DecryptionError/);
  });
});

/** Lets promise callbacks and queued microtasks run (setImmediate is not mocked). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The outcome of `opening` so far: "pending", "open" or the error's class name. */
function watch(opening: Promise<SecureLink>): () => string {
  let state = "pending";
  opening.then(() => { state = "open"; }, (error: Error) => { state = error.name; });
  return () => state;
}

describe("handshake deadlines", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => mock.timers.reset());

  it("drops an initiator's handshake when message 2 does not come within 3 s", async () => {
    const a = new MemoryChannel();
    a.other = new MemoryChannel(); // a peer that reads message 1 and never answers
    const state = watch(SecureLink.open(a, { initiator: true, identity: A, expectedPeerId: B.peerId }));
    await settle();
    mock.timers.tick(HANDSHAKE_MESSAGE_TIMEOUT_MS - 1);
    await settle();
    assert.equal(state(), "pending");
    mock.timers.tick(1);
    await settle();
    assert.equal(state(), HandshakeTimeout.name);
    assert.ok(a.closed);
  });

  it("gives the responder's wait for message 3 its own 3 s, from when it wrote message 2", async () => {
    const dialer = new SecureLinkCore({ initiator: true, identity: A, staticPrivateKey: new Uint8Array(32).fill(7), ephemeralPrivateKey: new Uint8Array(32).fill(8) });
    const b = new MemoryChannel();
    const fromResponder: Uint8Array[] = [];
    const a = new MemoryChannel();
    a.onMessage = (data) => fromResponder.push(data);
    b.other = a;
    const state = watch(SecureLink.open(b, { initiator: false, identity: B }));
    mock.timers.tick(1_500); // message 1 comes late but in time
    await settle();
    for (const message of dialer.start()) b.onMessage?.(message);
    await settle();
    assert.equal(fromResponder.length, 1); // message 2 went out; message 3 never comes
    mock.timers.tick(HANDSHAKE_MESSAGE_TIMEOUT_MS - 1); // 4.499 s in all: past message 1's 3 s
    await settle();
    assert.equal(state(), "pending");
    mock.timers.tick(1);
    await settle();
    assert.equal(state(), HandshakeTimeout.name);
    assert.ok(b.closed);
  });

  it("completes a handshake whose every wait is under 3 s and whose whole is under 5 s", async () => {
    const a = new MemoryChannel();
    const b = new MemoryChannel();
    const held: [MemoryChannel, Uint8Array][] = [];
    // Each channel holds what it sends until the test lets it through.
    a.send = (data) => { held.push([b, Uint8Array.from(data)]); };
    b.send = (data) => { held.push([a, Uint8Array.from(data)]); };
    const left = watch(SecureLink.open(a, { initiator: true, identity: A, expectedPeerId: B.peerId }));
    const right = watch(SecureLink.open(b, { initiator: false, identity: B }));
    // Each message is 1.4-1.5 s on the way: the initiator waits 2.9 s for message 2, the
    // responder 1.5 s for message 1 and 2.9 s for message 3; 4.4 s in all.
    for (const wait of [1_500, 1_400, 1_500]) {
      mock.timers.tick(wait);
      await settle();
      for (const [to, data] of held.splice(0)) to.onMessage?.(data);
      await settle();
    }
    assert.deepEqual([left(), right()], ["open", "open"]);
  });
});
