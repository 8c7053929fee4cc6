// Healing (docs/pubsub.md section 8) among browser peers alone: two groups of pages whose
// active views are full of each other (cliques of 4, active views of 3) never look outside;
// with the component check, a node that knows a passive peer outside its component reaches
// out, the groups join and a document crosses.  Without it (the control) they stay apart.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { encodeOverlayFrame } from "../src/link/frames.js";
import { DEFAULT_NODE_CORE_CONFIG, type NodeAction, NodeCore, type NodeCoreConfig } from "../src/node/nodeCore.js";
import { toOverlayProto } from "../src/overlay/codec.js";
import { DEFAULT_HYPARVIEW_CONFIG } from "../src/overlay/hyparview.js";
import { Healing } from "../src/pubsub/tree/healing.js";
import { SpanningTree } from "../src/pubsub/tree/routes.js";
import { Query } from "../src/query/query.js";
import { SeededRandom } from "../src/random.js";
import { Identity } from "../src/wire/identity.js";
import type { PeerId } from "../src/wire/peerId.js";

const ids = Array.from({ length: 8 }, (_, i) => Identity.fromSeed(new Uint8Array(32).fill(i + 101)));
const P = ids.map((identity) => identity.peerId);
const peer = (i: number): PeerId => P[i] as PeerId;
const HIGH_NEIGHBOR = encodeOverlayFrame(toOverlayProto({ type: "neighbor", high: true }));

function config(componentCheckIntervalMs: number | null): NodeCoreConfig {
  return { ...DEFAULT_NODE_CORE_CONFIG, membership: { ...DEFAULT_HYPARVIEW_CONFIG, activeSize: 3 }, componentCheckIntervalMs };
}

/** NodeCores in memory: frames delivered in order, a close takes the link down at both ends. */
class Mesh {
  readonly nodes: NodeCore[];
  readonly delivered = new Map<number, unknown[]>();
  readonly #queue: [number, number, Uint8Array][] = [];
  now = 0;

  constructor(seed: number, nodeConfig: NodeCoreConfig) {
    this.nodes = ids.map((identity, i) => new NodeCore(identity, new SeededRandom(seed * 100 + i), nodeConfig));
  }

  apply(from: number, actions: readonly NodeAction[]): void {
    for (const action of actions) {
      if (action.type === "send") this.#queue.push([from, P.indexOf(action.peer), action.frame]);
      else if (action.type === "close") {
        const other = P.indexOf(action.peer);
        this.apply(other, (this.nodes[other] as NodeCore).linkDown(peer(from), this.now));
      } else if (action.type === "deliver") {
        this.delivered.set(from, [...(this.delivered.get(from) ?? []), action.document.document]);
      }
    }
  }

  /** Both ends take each other as neighbours (a high-priority `Neighbor` each way). */
  link(i: number, j: number): void {
    this.apply(j, (this.nodes[j] as NodeCore).receive(peer(i), HIGH_NEIGHBOR, this.now));
    this.apply(i, (this.nodes[i] as NodeCore).receive(peer(j), HIGH_NEIGHBOR, this.now));
  }

  run(ms: number): void {
    const end = this.now + ms;
    while (this.now <= end) {
      while (this.#queue.length > 0) {
        const [from, to, frame] = this.#queue.shift() as [number, number, Uint8Array];
        this.apply(to, (this.nodes[to] as NodeCore).receive(peer(from), frame, this.now));
      }
      this.now += 50;
      this.nodes.forEach((node, i) => {
        if (node.timer !== null && node.timer <= this.now) this.apply(i, node.tick(this.now));
      });
    }
  }

  component(i: number): Set<number> {
    const seen = new Set([i]);
    const todo = [i];
    while (todo.length > 0) {
      for (const neighbour of (this.nodes[todo.pop() as number] as NodeCore).neighbors) {
        const j = P.indexOf(neighbour);
        if (!seen.has(j)) {
          seen.add(j);
          todo.push(j);
        }
      }
    }
    return seen;
  }
}

/** Two cliques of 4 (nodes 0-3 and 4-7) with full views; node 0 knows node 4 as a passive peer. */
function twoClosedGroups(seed: number, componentCheckIntervalMs: number | null): Mesh {
  const mesh = new Mesh(seed, config(componentCheckIntervalMs));
  mesh.nodes.forEach((node, i) => mesh.apply(i, node.start(null, mesh.now)));
  for (const group of [[0, 1, 2, 3], [4, 5, 6, 7]]) {
    for (const [a, i] of group.entries()) for (const j of group.slice(a + 1)) mesh.link(i, j);
  }
  mesh.apply(6, (mesh.nodes[6] as NodeCore).subscribe(new Query({ topic: "x" }), mesh.now)[1]);
  (mesh.nodes[0] as NodeCore).membership.passive.set(peer(4), "");
  mesh.run(1_000);
  return mesh;
}

describe("healing", () => {
  for (const seed of [1, 2, 3]) {
    it(`two groups of pages closed on themselves join, and a document crosses (seed ${seed})`, () => {
      const mesh = twoClosedGroups(seed, 2_000);
      assert.deepEqual([...mesh.component(0)].sort(), [0, 1, 2, 3]); // closed off at first
      mesh.run(15_000);
      assert.equal(mesh.component(0).size, 8);
      assert.ok(mesh.nodes.some((node) => node.healing.reachedOut > 0));
      mesh.apply(2, (mesh.nodes[2] as NodeCore).publish({ topic: "x", n: 1 }, mesh.now)[1]);
      mesh.run(5_000);
      assert.deepEqual(mesh.delivered.get(6), [{ topic: "x", n: 1 }]);
    });
  }

  it("without the component check the groups stay apart (the control)", () => {
    const mesh = twoClosedGroups(1, null);
    mesh.run(15_000);
    assert.deepEqual([...mesh.component(0)].sort(), [0, 1, 2, 3]);
    mesh.apply(2, (mesh.nodes[2] as NodeCore).publish({ topic: "x", n: 1 }, mesh.now)[1]);
    mesh.run(5_000);
    assert.equal(mesh.delivered.get(6), undefined);
  });

  it("reaches out only to an outsider seen at two checks in a row, and only with a full view", () => {
    const tree = new SpanningTree(peer(0));
    const healing = new Healing();
    assert.equal(healing.check(tree, [peer(5), peer(4)], false), null);
    assert.equal(healing.suspect, null);
    const outsider = [peer(4), peer(5)].sort()[0] as PeerId;
    assert.equal(healing.check(tree, [peer(5), peer(4)], true), null);
    assert.equal(healing.suspect, outsider);
    assert.equal(healing.check(tree, [peer(5), peer(4)], true), outsider);
    assert.equal(healing.reachedOut, 1);
    assert.equal(healing.check(tree, [], true), null);
    assert.equal(healing.suspect, null);
  });
});
