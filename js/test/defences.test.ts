// HyParView's defences against eviction by newcomers (docs/overlay.md, "Membership" and
// the defences table), in the browser peer's core: protected long-lived neighbours, the
// eviction budget and the per-identity join limit.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type NodeAction, NodeCore } from "../src/node/nodeCore.js";
import { DEFAULT_HYPARVIEW_CONFIG, HyParView, type MembershipAction } from "../src/overlay/hyparview.js";
import { DEFAULT_LINK_BUDGET_CONFIG } from "../src/overlay/linkBudget.js";
import { MAX_FRAME_ITEMS, joinItems, pingItem } from "../src/wire/linkFrame.js";
import { SeededRandom } from "../src/random.js";
import { Identity } from "../src/wire/identity.js";
import type { PeerId } from "../src/wire/peerId.js";

const P = Array.from({ length: 40 }, (_, i) => Identity.fromSeed(new Uint8Array(32).fill(i + 151)).peerId);
const peer = (i: number): PeerId => P[i] as PeerId;
const T0 = 1_000;
const SETTLED = T0 + DEFAULT_HYPARVIEW_CONFIG.protectAfterMs + 1_000;

/** A node whose five neighbours (1-5, in age order: 1 the oldest) joined at T0 + i ms. */
function fullNode(seed: number): HyParView {
  const node = new HyParView(peer(0), new SeededRandom(seed));
  node.start(null, T0);
  for (let i = 1; i <= 5; i++) node.receive(peer(i), { type: "neighbor", high: true }, T0 + i);
  return node;
}

function disconnected(actions: readonly MembershipAction[]): PeerId[] {
  return actions.flatMap((a) => (a.type === "send" && a.message.type === "disconnect" ? [a.peer] : []));
}

function walks(actions: readonly MembershipAction[]): number {
  return actions.filter((a) => a.type === "send" && a.message.type === "forwardJoin").length;
}

describe("HyParView defences", () => {
  it("a newcomer never displaces the four oldest settled neighbours, whatever the seed", () => {
    for (let seed = 1; seed <= 12; seed++) {
      const node = fullNode(seed);
      const actions = node.receive(peer(20), { type: "join" }, SETTLED);
      assert.deepEqual(disconnected(actions), [peer(5)], `seed ${seed}`);
      assert.deepEqual([...node.active.keys()], [peer(1), peer(2), peer(3), peer(4), peer(20)]);
    }
  });

  it("a young view still evicts at random, as the paper", () => {
    const victims = new Set<PeerId>();
    for (let seed = 1; seed <= 12; seed++) victims.add(disconnected(fullNode(seed).receive(peer(20), { type: "join" }, T0 + 10))[0] as PeerId);
    assert.ok(victims.size > 1);
  });

  it("takes joins into a full view only within the eviction budget; a refused Join starts no walk", () => {
    const node = fullNode(3);
    for (let i = 0; i < DEFAULT_HYPARVIEW_CONFIG.evictionBurst; i++) {
      const actions = node.receive(peer(10 + i), { type: "join" }, SETTLED);
      assert.ok(node.active.has(peer(10 + i)), `join ${i}`);
      assert.equal(walks(actions), 4);
    }
    const refused = node.receive(peer(30), { type: "join" }, SETTLED);
    assert.deepEqual(disconnected(refused), [peer(30)]);
    assert.ok(refused.some((a) => a.type === "close" && a.peer === peer(30)));
    assert.equal(walks(refused), 0);
    assert.ok(!node.active.has(peer(30)));
    node.receive(peer(31), { type: "join" }, SETTLED + DEFAULT_HYPARVIEW_CONFIG.evictionIntervalMs); // one token back
    assert.ok(node.active.has(peer(31)));
    // A high-priority Neighbor is outside the budget (refusing it could isolate a node).
    node.receive(peer(32), { type: "neighbor", high: true }, SETTLED + DEFAULT_HYPARVIEW_CONFIG.evictionIntervalMs);
    assert.ok(node.active.has(peer(32)));
  });

  it("a peer whose Join was taken cannot join again for the repeat interval", () => {
    const node = new HyParView(peer(0), new SeededRandom(1));
    node.start(null, T0);
    node.receive(peer(1), { type: "neighbor", high: true }, T0);
    assert.equal(walks(node.receive(peer(7), { type: "join" }, T0)), 1);
    assert.deepEqual(node.receive(peer(7), { type: "join" }, T0 + 10), []); // a neighbour repeating itself
    node.receive(peer(7), { type: "disconnect" }, T0 + 20);
    const again = node.receive(peer(7), { type: "join" }, T0 + 1_000);
    assert.deepEqual(disconnected(again), [peer(7)]);
    assert.ok(!node.active.has(peer(7)));
    const later = node.receive(peer(7), { type: "join" }, T0 + DEFAULT_HYPARVIEW_CONFIG.joinRepeatIntervalMs + 1);
    assert.equal(walks(later), 1);
    assert.ok(node.active.has(peer(7)));
  });

  it("a full view of protected neighbours refuses even a high-priority Neighbor", () => {
    const config = { ...DEFAULT_HYPARVIEW_CONFIG, protectedCount: 5 };
    const node = new HyParView(peer(0), new SeededRandom(1), config);
    node.start(null, T0);
    for (let i = 1; i <= 5; i++) node.receive(peer(i), { type: "neighbor", high: true }, T0 + i);
    const actions = node.receive(peer(9), { type: "neighbor", high: true }, SETTLED);
    assert.ok(actions.some((a) => a.type === "send" && a.message.type === "neighborReply" && !a.message.accepted));
    assert.equal(node.active.size, 5);
    assert.ok(!node.active.has(peer(9)));
  });
});

describe("link-frame budgets", () => {
  const pongs = (actions: readonly NodeAction[]): number => actions.filter((a) => a.type === "send").length;

  it("drops a frame over a neighbour's message budget unread, and the neighbour after 50 such frames", () => {
    const node = new NodeCore(Identity.fromSeed(new Uint8Array(32).fill(99)), new SeededRandom(1));
    node.start(null, T0);
    node.membership.receive(peer(1), { type: "neighbor", high: true }, T0);
    const flood = joinItems(Array.from({ length: MAX_FRAME_ITEMS }, (_, i) => pingItem(BigInt(i))));
    const fits = Math.floor(DEFAULT_LINK_BUDGET_CONFIG.messageBurst / MAX_FRAME_ITEMS);
    for (let i = 0; i < fits; i++) assert.equal(pongs(node.receive(peer(1), flood, T0)), MAX_FRAME_ITEMS, `frame ${i}`);
    for (let i = 0; i < DEFAULT_LINK_BUDGET_CONFIG.offenceBurst; i++) assert.deepEqual(node.receive(peer(1), flood, T0), [], `refused ${i}`);
    assert.equal(node.linkBudgets.framesRefused, DEFAULT_LINK_BUDGET_CONFIG.offenceBurst);
    const last = node.receive(peer(1), flood, T0);
    assert.ok(last.some((a) => a.type === "close" && a.peer === peer(1) && a.failed));
    assert.ok(!node.membership.active.has(peer(1)));
    // The budget outlives the link: back as a neighbour, it has no offence to spare...
    node.membership.receive(peer(1), { type: "neighbor", high: true }, T0);
    assert.ok(node.receive(peer(1), flood, T0).some((a) => a.type === "close" && a.peer === peer(1)));
    // ...and refills with time: two seconds on, a frame of 512 pings fits again (2,000/s).
    node.membership.receive(peer(1), { type: "neighbor", high: true }, T0 + 2_500);
    assert.equal(pongs(node.receive(peer(1), flood, T0 + 2_500)), MAX_FRAME_ITEMS);
  });
});
