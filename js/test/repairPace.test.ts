// The repair's pace (docs/pubsub.md sections 7 and 10), as the reference's
// tests/test_pubsub_repair_pace.py: what a widened neighbour is owed goes out within
// a per-neighbour budget, newest first (each step's pushes in the order taken), and each document is
// pushed again to a neighbour at most `maxRepushes` times.  Pushing everything owed
// in one step overflowed a new link's send queue (256 items) at 250 documents/s: the
// link was dropped as too slow, the next one was owed it all again.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { toHex } from "../src/bytes.js";
import type { Advert } from "../src/pubsub/advert.js";
import { openDocument, sealDocument } from "../src/pubsub/document.js";
import { DEFAULT_ROUTER_CONFIG, type RouterAction, type RouterConfig, TreeRouter } from "../src/pubsub/tree/router.js";
import { Query } from "../src/query/query.js";
import type { Document } from "../src/query/values.js";
import { Identity } from "../src/wire/identity.js";
import type { PeerId } from "../src/wire/peerId.js";

const ids = Array.from({ length: 6 }, (_, i) => Identity.fromSeed(new Uint8Array(32).fill(200 + i)));
const P = ids.map((identity) => identity.peerId);
const [C, D] = P as [PeerId, PeerId];

function advert(version: number, topic: number): Advert {
  // D: the oldest root (since 1), so C's parent; wanting {t: topic}.
  return { version: BigInt(version), filters: [new Query({ t: topic })], treeLink: false, root: D, rootDistance: 0,
    rootSinceMs: 1, treeSize: 0, treeMembers: [] };
}

function publish(router: TreeRouter, identity: Identity, document: Document, now: number): [string, RouterAction[]] {
  const sealed = sealDocument(identity, document, now, BigInt(now + 1));
  return [toHex(sealed.messageId), router.publish(sealed.messageId, sealed.envelope, openDocument(sealed.messageId, sealed.envelope), now)];
}

/** Which of `docs` (by index) the pushes to `peer` in `actions` carry, in order. */
function pushed(actions: readonly RouterAction[], docs: readonly string[], peer: PeerId = D): number[] {
  return actions.flatMap((a) => (a.type === "push" && a.peer === peer ? [docs.indexOf(toHex(a.id))] : []));
}

/** C, with `count` documents of its own matching {t: 1} (oldest first), then D up as its parent wanting {t: 1}. */
function parentWantingT1(config: Partial<RouterConfig>, count: number): { router: TreeRouter; docs: string[]; first: RouterAction[] } {
  const router = new TreeRouter(C, { ...DEFAULT_ROUTER_CONFIG, retentionMs: 600_000, ...config });
  router.start(1_000);
  const docs = Array.from({ length: count }, (_, seq) => publish(router, ids[0] as Identity, { t: 1, seq }, 0)[0]);
  router.neighborUp(D, 0);
  const first = router.advert(D, advert(1, 1), 0);
  assert.equal(router.tree.parent, D);
  return { router, docs, first };
}

describe("the repair's pace", () => {
  it("a widened neighbour is pushed what it is owed within its budget, newest first", () => {
    const { router, docs, first } = parentWantingT1({ restoreRate: 2, restoreBurst: 3, maxRepushes: 1 }, 10);
    assert.deepEqual(pushed(first, docs), [7, 8, 9]); // the burst: the newest, in order
    assert.ok(router.repair.pending && router.timer !== null);
    assert.deepEqual(pushed(router.tick(250), docs), []); // adverts go out; half a token is not a push
    assert.deepEqual(pushed(router.tick(500), docs), [6]); // one token a half-second
    assert.deepEqual(pushed(router.tick(60_000), docs), [3, 4, 5]); // a full bucket again, no more
    assert.deepEqual(pushed(router.tick(120_000), docs), [0, 1, 2]);
    assert.ok(!router.repair.pending);
    assert.equal(router.repair.repaired, 10);
    assert.equal(router.stats.get("repaired"), 10);
  });

  it("a backlog within the burst goes out in order", () => {
    const { router, docs, first } = parentWantingT1({ restoreRate: 2, restoreBurst: 16, maxRepushes: 1 }, 10);
    assert.deepEqual(pushed(first, docs), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(!router.repair.pending);
  });

  it("each document is pushed again to a neighbour at most maxRepushes times", () => {
    const { router, docs, first } = parentWantingT1({ restoreRate: 1e9, restoreBurst: 1e9, maxRepushes: 2 }, 1);
    const out = [...first]; // widened a first time (the new link)
    for (let version = 2; version < 6; version += 2) { // and twice more
      out.push(...router.advert(D, advert(version, 2), version)); // narrowed: it may drop it
      out.push(...router.advert(D, advert(version + 1, 1), version)); // widened again
    }
    assert.deepEqual(pushed(out, docs), [0, 0]);
    assert.equal(router.repair.skipped, 1);
    assert.ok(!router.repair.pending);
  });

  it("the defaults are the reference's: 200 a second, 128 at once, ticks every 50 ms, twice per document", () => {
    const { restoreRate, restoreBurst, restoreIntervalMs, maxRepushes } = DEFAULT_ROUTER_CONFIG;
    assert.deepEqual([restoreRate, restoreBurst, restoreIntervalMs, maxRepushes], [200, 128, 50, 2]);
    assert.throws(() => new TreeRouter(C, { ...DEFAULT_ROUTER_CONFIG, maxRepushes: 0 }), RangeError);
    assert.throws(() => new TreeRouter(C, { ...DEFAULT_ROUTER_CONFIG, restoreIntervalMs: 0 }), RangeError);
  });
});

/** Routers linked by hand; every frame takes `DELAY_MS` (links are FIFO); timers run as a driver runs them. */
const DELAY_MS = 5;

class Mesh {
  readonly routers: TreeRouter[];
  /** (router, message id) delivered. */
  readonly delivered = new Set<string>();
  /** Router index -> the most pushes one step sent to it. */
  readonly mostPerStep = new Map<number, number>();
  now = 0;
  #queue: { at: number; seq: number; from: number; to: number; action: RouterAction }[] = [];
  #seq = 0;

  constructor(config: RouterConfig) {
    this.routers = P.map((peer, i) => {
      const router = new TreeRouter(peer, config);
      router.start(1_000 + i);
      return router;
    });
  }

  link(a: number, b: number): void {
    this.apply(a, (this.routers[a] as TreeRouter).neighborUp(P[b] as PeerId, this.now));
    this.apply(b, (this.routers[b] as TreeRouter).neighborUp(P[a] as PeerId, this.now));
  }

  apply(from: number, actions: readonly RouterAction[]): void {
    const pushes = new Map<number, number>();
    for (const action of actions) {
      if (action.type === "deliver") {
        this.delivered.add(`${from}/${toHex(action.document.messageId)}`);
      } else if (action.type === "push" || action.type === "advert") {
        const to = P.indexOf(action.peer);
        if (action.type === "push") pushes.set(to, (pushes.get(to) ?? 0) + 1);
        this.#queue.push({ at: this.now + DELAY_MS, seq: this.#seq++, from, to, action });
      }
    }
    for (const [to, count] of pushes) this.mostPerStep.set(to, Math.max(this.mostPerStep.get(to) ?? 0, count));
  }

  run(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next = end;
      let timerOf = -1;
      this.routers.forEach((router, i) => {
        const t = router.timer;
        if (t !== null && t < next) { next = Math.max(t, this.now); timerOf = i; }
      });
      const head = this.#queue[0];
      if (head !== undefined && head.at <= next) {
        this.#queue.shift();
        this.now = head.at;
        const to = this.routers[head.to] as TreeRouter;
        const a = head.action;
        const from = P[head.from] as PeerId;
        if (a.type === "advert") this.apply(head.to, to.advert(from, a.advert, this.now));
        else if (a.type === "push") this.apply(head.to, to.gossip(from, a.id, a.hops, a.payload, this.now));
      } else if (timerOf >= 0) {
        this.now = next;
        this.apply(timerOf, (this.routers[timerOf] as TreeRouter).tick(this.now));
      } else {
        this.now = end;
        return;
      }
    }
  }
}

describe("the repair's pace, on a mesh", () => {
  it("a late subscriber gets the retained documents a burst at a time, and every one", () => {
    // One step never pushes a neighbour more than restoreBurst owed documents; the rest
    // follow on the restore ticks.
    const mesh = new Mesh({ ...DEFAULT_ROUTER_CONFIG, restoreBurst: 16, restoreRate: 100 });
    const LATE = 5;
    for (const [a, b] of [[0, 1], [1, 2], [2, 3], [3, 4], [4, 0]] as const) mesh.link(a, b);
    for (let i = 0; i < LATE; i++) mesh.apply(i, (mesh.routers[i] as TreeRouter).subscribe(1, new Query({ t: 1 }), mesh.now));
    mesh.run(5_000);
    const docs: string[] = [];
    for (let seq = 0; seq < 200; seq++) {
      const [id, actions] = publish(mesh.routers[0] as TreeRouter, ids[0] as Identity, { t: 1, seq }, mesh.now);
      docs.push(id);
      mesh.apply(0, actions);
      mesh.run(5);
    }
    mesh.run(2_000);
    assert.equal(docs.filter((id) => mesh.delivered.has(`2/${id}`)).length, 200);
    mesh.link(2, LATE); // a page joins late, next to a node far from the publisher
    mesh.apply(LATE, (mesh.routers[LATE] as TreeRouter).subscribe(1, new Query({ t: 1 }), mesh.now));
    mesh.run(10_000);
    const most = mesh.mostPerStep.get(LATE) ?? 0;
    assert.ok(most > 0 && most <= 16, `at most 16 pushes a step to the late node, saw ${most}`);
    assert.equal(docs.filter((id) => mesh.delivered.has(`${LATE}/${id}`)).length, 200);
  });
});
