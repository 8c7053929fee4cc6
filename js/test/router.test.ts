// The stable-tree router's parts (docs/pubsub.md): the advert codec against the shared
// vectors (conformance/adverts.json, also read by the Python suite), routes, and two or
// three routers driven by hand (forwarding, repair, duplicates, unwanted documents).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { toHex } from "../src/bytes.js";
import { decodeLinkFrame } from "../src/link/frames.js";
import { PubsubMessageSchema } from "../src/gen/taiinet/v1/pubsub_pb.js";
import { type Advert, MalformedAdvert, advertFromProto, encodeAdvertFrame } from "../src/pubsub/advert.js";
import { openDocument, sealDocument } from "../src/pubsub/document.js";
import { SpanningTree } from "../src/pubsub/tree/routes.js";
import { type RouterAction, TreeRouter } from "../src/pubsub/tree/router.js";
import { Query } from "../src/query/query.js";
import { Identity } from "../src/wire/identity.js";
import type { PeerId } from "../src/wire/peerId.js";
import { hex, load, untag } from "./vectors.js";

const ids = Array.from({ length: 4 }, (_, i) => Identity.fromSeed(new Uint8Array(32).fill(50 + i)));
const [A, B, C] = ids.map((identity) => identity.peerId) as [PeerId, PeerId, PeerId];

interface AdvertCase {
  name: string; version: string; filters: unknown[]; tree_link: boolean; root: string; root_distance: number;
  root_since_ms: number; tree_size: number; tree_members: string[]; encoded: string; frame: string;
}

describe("InterestAdvert codec (conformance/adverts.json)", () => {
  const vectors = load<{ valid: AdvertCase[]; invalid: { name: string; encoded: string }[] }>("adverts.json");
  for (const c of vectors.valid) {
    it(`encodes and decodes: ${c.name}`, () => {
      const advert: Advert = {
        version: BigInt(c.version), filters: c.filters.map((q) => new Query(untag(q))), treeLink: c.tree_link,
        root: c.root as PeerId | "", rootDistance: c.root_distance, rootSinceMs: c.root_since_ms,
        treeSize: c.tree_size, treeMembers: c.tree_members as PeerId[],
      };
      const frame = encodeAdvertFrame(advert);
      assert.equal(toHex(frame), c.frame);
      const [decoded] = decodeLinkFrame(frame);
      assert.equal(decoded?.kind, "pubsub");
      const back = advertFromProto(fromBinary(PubsubMessageSchema, hex(c.encoded)));
      assert.deepEqual({ ...back, filters: back.filters.map((q) => q.toJson()) },
        { ...advert, filters: advert.filters.map((q) => q.toJson()) });
    });
  }
  for (const c of vectors.invalid) {
    it(`rejects: ${c.name}`, () => {
      assert.throws(() => {
        // Bytes that are not a PubsubMessage fail the frame decoder instead (also a RemoteProtocolError).
        let message;
        try { message = fromBinary(PubsubMessageSchema, hex(c.encoded)); } catch { throw new MalformedAdvert("not protobuf"); }
        advertFromProto(message);
      }, MalformedAdvert);
    });
  }
  it("the docs example's link frame is one protocol-12 item (0a9101 080c 128c01 ...)", () => {
    const c = vectors.valid[0] as AdvertCase;
    assert.ok(c.frame.startsWith("0a9101080c128c01"));
    const items = decodeLinkFrame(hex(c.frame));
    assert.equal(items.length, 1);
    assert.equal(items[0]?.kind, "pubsub");
  });
});

interface RouteCase {
  name: string; self: string; since: number;
  offers: { peer: string; since?: number; root?: string; distance?: number; child?: boolean; members?: string[] }[];
  route: [number, string, number]; parent: string; tree_links: string[]; members: Record<string, string[] | null>;
}

describe("routes (conformance/routes.json)", () => {
  for (const c of load<{ cases: RouteCase[] }>("routes.json").cases) {
    it(c.name, () => {
      const tree = new SpanningTree(c.self as PeerId, c.since);
      for (const o of c.offers) {
        tree.add(o.peer as PeerId);
        if (o.root !== undefined) {
          tree.offer(o.peer as PeerId, { since: o.since as number, root: o.root, distance: o.distance as number }, o.child === true, o.members ?? []);
        }
      }
      tree.recompute();
      assert.deepEqual([tree.route.since, tree.route.root, tree.route.distance], c.route);
      assert.equal(tree.parent ?? "", c.parent);
      assert.deepEqual(tree.treeLinks().sort(), c.tree_links);
      const members = Object.fromEntries(tree.treeLinks().map((p) => {
        const m = tree.membersFor(p);
        return [p, m === null ? null : [...m].sort()];
      }));
      assert.deepEqual(members, c.members);
    });
  }
});

describe("routes", () => {
  it("the oldest root wins whatever its id; a child is never a parent; distance is bounded", () => {
    const tree = new SpanningTree(A, 100);
    tree.add(B);
    tree.add(C);
    tree.offer(B, { since: 50, root: C, distance: 1 }, false, []);
    tree.offer(C, { since: 50, root: C, distance: 0 }, false, []);
    tree.recompute();
    assert.deepEqual([tree.parent, tree.route], [C, { since: 50, root: C, distance: 1 }]);
    tree.offer(C, { since: 50, root: C, distance: 0 }, true, []); // C says A is its parent
    tree.recompute();
    assert.deepEqual([tree.parent, tree.route.distance], [B, 2]);
    tree.offer(B, { since: 50, root: C, distance: 64 }, false, []);
    tree.recompute();
    assert.deepEqual([tree.parent, tree.route], [null, { since: 100, root: A, distance: 0 }]);
    assert.deepEqual(tree.treeLinks(), [C]);
  });

  it("a neighbour may be our child before it says so: our route, one link on, beats its offer", () => {
    // Its "you are my parent" can be behind a push of its own publication (delivery sweep seed 8640).
    const tree = new SpanningTree(A, 500);
    tree.add(B);
    tree.add(C);
    tree.offer(B, { since: 100, root: B, distance: 0 }, false, []);
    tree.recompute();
    assert.deepEqual(tree.route, { since: 100, root: B, distance: 1 });
    tree.offer(C, { since: 900, root: C, distance: 0 }, false, []); // a younger root of its own
    assert.deepEqual([tree.mayBeChild(B), tree.mayBeChild(C)], [false, true]);
    tree.offer(C, { since: 100, root: B, distance: 1 }, false, []); // as near as we are
    assert.equal(tree.mayBeChild(C), false);
    tree.offer(C, { since: 100, root: B, distance: 1 }, true, []); // says we are its parent
    assert.equal(tree.mayBeChild(C), true);
  });

  it("equal routes are broken by the neighbour's id", () => {
    const tree = new SpanningTree(A, 100);
    const [first, second] = [B, C].sort();
    tree.add(second as PeerId);
    tree.add(first as PeerId);
    for (const p of [B, C]) tree.offer(p, { since: 1, root: ids[3]?.peerId as string, distance: 0 }, false, []);
    tree.recompute();
    assert.equal(tree.parent, first);
  });

  it("members: itself plus its other tree links' sides, none once a side is unknown", () => {
    const tree = new SpanningTree(A, 100);
    tree.add(B);
    tree.add(C);
    tree.offer(B, { since: 1, root: B, distance: 0 }, false, [B]);
    tree.offer(C, { since: 5, root: B, distance: 1 }, true, [C]);
    tree.recompute();
    assert.deepEqual([...(tree.membersFor(B) ?? [])].sort(), [A, C].sort());
    assert.deepEqual([...(tree.membersFor(C) ?? [])].sort(), [A, B].sort());
    tree.offer(C, { since: 5, root: B, distance: 1 }, true, []);
    assert.equal(tree.membersFor(B), null);
  });
});

/** Routers wired by hand: adverts and pushes are delivered when `flush` is called. */
class Trio {
  readonly routers = new Map<PeerId, TreeRouter>();
  readonly delivered: [PeerId, string][] = [];
  readonly pushes: [PeerId, PeerId][] = [];
  now = 0;
  #queue: [PeerId, RouterAction][] = [];

  constructor(peers: readonly PeerId[]) {
    peers.forEach((p, i) => {
      const router = new TreeRouter(p);
      router.start(i);
      this.routers.set(p, router);
    });
  }

  r(p: PeerId): TreeRouter {
    return this.routers.get(p) as TreeRouter;
  }

  apply(from: PeerId, actions: readonly RouterAction[]): void {
    for (const a of actions) {
      if (a.type === "deliver") this.delivered.push([from, JSON.stringify(a.document.document)]);
      else this.#queue.push([from, a]);
    }
  }

  link(a: PeerId, b: PeerId): void {
    this.apply(a, this.r(a).neighborUp(b, this.now));
    this.apply(b, this.r(b).neighborUp(a, this.now));
  }

  flush(): void {
    for (let round = 0; round < 100; round++) {
      this.now += 20;
      for (const [p, router] of this.routers) this.apply(p, router.tick(this.now));
      const queue = this.#queue;
      this.#queue = [];
      for (const [from, a] of queue) {
        if (a.type === "advert") this.apply(a.peer, this.r(a.peer).advert(from, a.advert, this.now));
        else if (a.type === "push") {
          this.pushes.push([from, a.peer]);
          this.apply(a.peer, this.r(a.peer).gossip(from, a.id, a.hops, a.payload, this.now));
        }
      }
    }
  }

  publish(p: PeerId, document: { [key: string]: number | string }): Uint8Array {
    const identity = ids.find((i) => i.peerId === p) as Identity;
    const sealed = sealDocument(identity, document, this.now, BigInt(this.now + 1));
    this.apply(p, this.r(p).publish(sealed.messageId, sealed.envelope, openDocument(sealed.messageId, sealed.envelope), this.now));
    return sealed.messageId;
  }
}

describe("TreeRouter", () => {
  it("a chain A - B - C: C's interest reaches A through B; only matching documents travel, once", () => {
    const net = new Trio([A, B, C]);
    net.link(A, B);
    net.link(B, C);
    net.apply(C, net.r(C).subscribe(1, new Query({ topic: "a" }), net.now));
    net.flush();
    assert.equal(net.r(B).tree.parent, A);
    assert.equal(net.r(C).tree.parent, B);
    assert.deepEqual(net.r(A).interestOf(B)?.map((q) => q.toJson()), [new Query({ topic: "a" }).toJson()]);
    net.publish(A, { topic: "a" });
    net.publish(A, { topic: "b" });
    net.flush();
    assert.deepEqual(net.delivered, [[C, '{"topic":"a"}']]);
    assert.equal(net.pushes.length, 2, "A -> B -> C, the unwanted document goes nowhere");
  });

  it("a subscription opened just before a publication still gets it (the repair after a widening)", () => {
    const net = new Trio([A, B, C]);
    net.link(A, B);
    net.link(B, C);
    net.flush();
    net.apply(C, net.r(C).subscribe(1, new Query({}), net.now));
    net.publish(A, { n: 1 }); // before C's advert has reached anyone
    net.flush();
    assert.deepEqual(net.delivered, [[C, '{"n":1}']]);
    assert.ok((net.r(B).stats.get("repaired") ?? 0) + (net.r(A).stats.get("repaired") ?? 0) >= 1);
  });

  it("a copy is a duplicate; a tampered copy is rejected and counted against its sender", () => {
    const net = new Trio([A, B]);
    net.link(A, B);
    net.apply(B, net.r(B).subscribe(1, new Query({}), net.now));
    net.flush();
    const sealed = sealDocument(ids[0] as Identity, { x: 1 }, 0, 9n);
    assert.equal(net.r(B).gossip(A, sealed.messageId, 1, sealed.envelope, net.now).filter((a) => a.type === "deliver").length, 1);
    assert.deepEqual(net.r(B).gossip(A, sealed.messageId, 1, sealed.envelope, net.now), []);
    assert.equal(net.r(B).stats.get("duplicates"), 1);
    const tampered = Uint8Array.from(sealed.envelope);
    tampered[10] = (tampered[10] as number) ^ 1;
    const forged = sealDocument(ids[0] as Identity, { x: 2 }, 0, 10n);
    assert.deepEqual(net.r(B).gossip(A, forged.messageId, 1, tampered, net.now), []);
    assert.equal(net.r(B).rejected.get("id_mismatch"), 1);
    const drops = [1, 2, 3, 4, 5].flatMap(() => net.r(B).gossip(A, forged.messageId, 1, tampered, net.now));
    assert.deepEqual(drops.map((a) => a.type), ["drop"], "the sixth invalid document drops the neighbour");
  });

  it("a one-shot publisher's document is kept by its parent, which wants nothing", () => {
    const net = new Trio([A, B]);
    net.link(A, B);
    net.flush();
    const id = net.publish(B, { only: "B" });
    net.flush();
    assert.deepEqual(net.r(B).handedTo(id), [A]);
    assert.ok(net.r(A).retention.get(toHex(id)) !== undefined);
  });
});
