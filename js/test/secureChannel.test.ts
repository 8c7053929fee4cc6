// The secure-link driver over an in-memory message channel, with node's mocked timers:
// frames both ways, a tampered message closes the link, and the frame deadline.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";

import { FRAME_TIMEOUT_MS, type MessageChannel, SecureLink } from "../src/io/secureChannel.js";
import { Identity } from "../src/wire/identity.js";

const A = Identity.fromSeed(new Uint8Array(32).fill(1));
const B = Identity.fromSeed(new Uint8Array(32).fill(2));

class MemoryChannel implements MessageChannel {
  onMessage: ((data: Uint8Array) => void) | null = null;
  onClose: ((reason: string) => void) | null = null;
  other: MemoryChannel | null = null;
  closed = false;

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

  it("closes the link on a transport message that fails authentication", async () => {
    const [left, , , b] = await pair();
    b.send(Uint8Array.of(0x00, 0x20, ...new Uint8Array(32)));
    assert.match(await left.closed, /DecryptionError/);
  });
});
