// The hand-off behind `await sub.send(doc)`: a document published by a peer with no
// neighbour yet is waited for until its parent holds it on a live link and the link
// flushed the frame; no neighbour in time is a HandOffTimeout, a close a NodeClosed.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";

import { HandOffTimeout, NodeClosed } from "../src/errors.js";
import { type Flushable, type HandOffSource, waitHandOff } from "../src/io/handOff.js";
import { type NodeAction, NodeCore } from "../src/node/nodeCore.js";
import { Query } from "../src/query/query.js";
import { SeededRandom } from "../src/random.js";
import { Identity } from "../src/wire/identity.js";
import type { PeerId } from "../src/wire/peerId.js";

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A link whose `flush` resolves when the test says so. */
class HeldLink implements Flushable {
  #release: ((sent: boolean) => void)[] = [];
  flushes = 0;

  flush(): Promise<boolean> {
    this.flushes++;
    return new Promise((resolve) => this.#release.push(resolve));
  }

  release(sent: boolean): void {
    for (const resolve of this.#release.splice(0)) resolve(sent);
  }
}

/** Two NodeCores in memory (`parent` started first, so it is the tree's root) and the
 * publisher's side of the hand-off over them. */
class Pair implements HandOffSource {
  readonly parent = new NodeCore(Identity.fromSeed(new Uint8Array(32).fill(1)), new SeededRandom(1));
  readonly publisher = new NodeCore(Identity.fromSeed(new Uint8Array(32).fill(2)), new SeededRandom(2));
  readonly link = new HeldLink();
  readonly #queue: [NodeCore, NodeCore, Uint8Array][] = [];
  #waiters: (() => void)[] = [];
  linked = false;
  closed = false;
  now = 0;
  delivered = 0;

  handedTo(id: string): readonly PeerId[] {
    return this.publisher.handedTo(id);
  }

  linksTo(peer: PeerId): readonly Flushable[] {
    return this.linked && peer === this.parent.identity.peerId ? [this.link] : [];
  }

  changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  isClosed(): boolean {
    return this.closed;
  }

  apply(from: NodeCore, actions: readonly NodeAction[]): void {
    const to = from === this.parent ? this.publisher : this.parent;
    for (const action of actions) {
      if (action.type === "send" && this.linked) this.#queue.push([from, to, action.frame]);
      if (action.type === "deliver") this.delivered++;
    }
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  /** Deliver queued frames and fire timers for `ms` of simulated time. */
  run(ms: number): void {
    const end = this.now + ms;
    while (this.now <= end) {
      while (this.#queue.length > 0) {
        const [from, to, frame] = this.#queue.shift() as [NodeCore, NodeCore, Uint8Array];
        this.apply(to, to.receive(from.identity.peerId, frame, this.now));
      }
      this.now += 50;
      for (const node of [this.parent, this.publisher]) if (node.timer !== null && node.timer <= this.now) this.apply(node, node.tick(this.now));
    }
  }
}

function outcome(promise: Promise<void>): () => string {
  let state = "pending";
  promise.then(() => { state = "handed"; }, (error: Error) => { state = error.name; });
  return () => state;
}

describe("hand-off", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => mock.timers.reset());

  it("waits for a parent to hold the document and for the link to flush the frame", async () => {
    const pair = new Pair();
    pair.apply(pair.parent, pair.parent.start(null, 0));
    pair.apply(pair.parent, pair.parent.subscribe(new Query({ n: 1 }), 0)[1]);
    pair.linked = true;
    pair.now = 1_000;
    pair.apply(pair.publisher, pair.publisher.start(pair.parent.identity.peerId, pair.now));
    const [id, actions] = pair.publisher.publish({ n: 1 }, pair.now); // its Join is not even read yet
    pair.apply(pair.publisher, actions);
    const state = outcome(waitHandOff(pair, id));
    await settle();
    assert.equal(state(), "pending");
    assert.equal(pair.link.flushes, 0);

    pair.run(2_000); // join, adverts, the retained document pushed to the parent
    await settle();
    assert.deepEqual(pair.handedTo(id), [pair.parent.identity.peerId]);
    assert.equal(pair.delivered, 1);
    assert.ok(pair.link.flushes >= 1);
    assert.equal(state(), "pending"); // held until the frame left the link
    pair.link.release(true);
    await settle();
    assert.equal(state(), "handed");
  });

  it("keeps waiting when the link closed before it flushed", async () => {
    const pair = new Pair();
    pair.apply(pair.parent, pair.parent.start(null, 0));
    pair.linked = true;
    pair.now = 1_000;
    pair.apply(pair.publisher, pair.publisher.start(pair.parent.identity.peerId, pair.now));
    pair.run(2_000);
    const [id, actions] = pair.publisher.publish({ n: 2 }, pair.now);
    pair.apply(pair.publisher, actions);
    pair.run(100);
    const state = outcome(waitHandOff(pair, id));
    await settle();
    pair.link.release(false);
    await settle();
    assert.equal(state(), "pending");
    pair.apply(pair.publisher, []); // a change: it looks again
    await settle();
    pair.link.release(true);
    await settle();
    assert.equal(state(), "handed");
  });

  it("gives up with HandOffTimeout when no neighbour takes it in time", async () => {
    const pair = new Pair();
    pair.apply(pair.publisher, pair.publisher.start(null, 0));
    const [id, actions] = pair.publisher.publish({ n: 3 }, 0);
    pair.apply(pair.publisher, actions);
    const state = outcome(waitHandOff(pair, id, 5_000));
    await settle();
    mock.timers.tick(4_999);
    await settle();
    assert.equal(state(), "pending");
    mock.timers.tick(1);
    await settle();
    assert.equal(state(), HandOffTimeout.name);
  });

  it("fails with NodeClosed when the node closes first", async () => {
    const pair = new Pair();
    pair.apply(pair.publisher, pair.publisher.start(null, 0));
    const [id, actions] = pair.publisher.publish({ n: 4 }, 0);
    pair.apply(pair.publisher, actions);
    const state = outcome(waitHandOff(pair, id));
    await settle();
    pair.closed = true;
    pair.apply(pair.publisher, []);
    await settle();
    assert.equal(state(), NodeClosed.name);
  });
});
