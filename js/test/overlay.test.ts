// The overlay codec against the bytes docs/overlay.md gives, the HyParView core
// alone, and many NodeCores joined in memory (seeded, no I/O, time as a number).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";

import { concatBytes, toHex, utf8 } from "../src/bytes.js";
import { MalformedFrame } from "../src/errors.js";
import { encodeItem } from "../src/wire/linkFrame.js";
import { OverlayMessageSchema } from "../src/gen/taiinet/v1/overlay_pb.js";
import { decodeLinkFrame, encodeOverlayFrame } from "../src/link/frames.js";
import { type NodeAction, NodeCore } from "../src/node/nodeCore.js";
import { MalformedOverlayMessage, type OverlayMsg, fromOverlayProto, toOverlayProto } from "../src/overlay/codec.js";
import { DEFAULT_HYPARVIEW_CONFIG, HyParView, type MembershipAction } from "../src/overlay/hyparview.js";
import { RefillPacing } from "../src/overlay/refill.js";
import { sealDocument } from "../src/pubsub/document.js";
import { Query } from "../src/query/query.js";
import { SeededRandom } from "../src/random.js";
import { Identity } from "../src/wire/identity.js";
import type { PeerId } from "../src/wire/peerId.js";

const ids = Array.from({ length: 40 }, (_, i) => Identity.fromSeed(new Uint8Array(32).fill(i + 1)));
const P = ids.map((identity) => identity.peerId);
const peer = (i: number): PeerId => P[i] as PeerId;

function frameOf(message: OverlayMsg): string {
  return toHex(encodeOverlayFrame(toOverlayProto(message)));
}

function decode(bytes: Uint8Array): OverlayMsg {
  const [frame] = decodeLinkFrame(bytes);
  assert.equal(frame?.kind, "overlay");
  return fromOverlayProto((frame as { message: Parameters<typeof fromOverlayProto>[0] }).message);
}

describe("overlay codec", () => {
  it("encodes the examples of docs/overlay.md", () => {
    // One item of protocol 10 (0a len 08 0a 12 len <OverlayMessage>).
    assert.equal(frameOf({ type: "join" }), "0a06080a12020a00");
    assert.equal(frameOf({ type: "prune", origin: "" }), "0a06080a12026a00");
    assert.equal(frameOf({ type: "neighbor", high: false }), "0a06080a12021a00");
    const origin = peer(0);
    assert.equal(frameOf({ type: "graft", id: new Uint8Array(0), origin }), `0a3c080a123862361234${toHex(utf8(origin))}`);
  });

  it("round-trips every message", () => {
    const messages: OverlayMsg[] = [
      { type: "join" }, { type: "forwardJoin", peer: peer(1), ttl: 6 }, { type: "neighbor", high: true },
      { type: "neighborReply", accepted: true }, { type: "disconnect" },
      { type: "shuffle", origin: peer(2), ttl: 3, peers: [peer(3), peer(4)] }, { type: "shuffleReply", peers: [peer(5)] },
      { type: "gossip", id: new Uint8Array(32).fill(7), hops: 2, payload: utf8("x"), origin: peer(6), entry: 0n },
      { type: "ihave", id: new Uint8Array(32).fill(8), hops: 1 }, { type: "graft", id: new Uint8Array(32), origin: "" },
    ];
    for (const message of messages) {
      assert.deepEqual(decode(encodeOverlayFrame(toOverlayProto(message))), message);
    }
  });

  it("refuses what breaks a limit", () => {
    const raw = (body: object): Uint8Array => encodeItem(10, toBinary(OverlayMessageSchema,
      create(OverlayMessageSchema, body)));
    const bad = [
      { body: { case: "forwardJoin", value: { peerId: "12D3KooWnope", ttl: 1 } } },
      { body: { case: "shuffleReply", value: { peers: Array(65).fill(peer(1)) } } },
      { body: { case: "ihave", value: { messageId: new Uint8Array(65), hops: 1 } } },
      { body: { case: "gossip", value: { messageId: new Uint8Array(0), hops: 1 } } },
      { body: { case: "gossip", value: { messageId: new Uint8Array(1), hops: 1, payload: new Uint8Array(61_441) } } },
      { body: { case: "forwardJoin", value: { peerId: peer(1), ttl: 256 } } },
      {},
    ];
    for (const body of bad) assert.throws(() => decode(raw(body)), MalformedOverlayMessage, JSON.stringify(body).slice(0, 80));
    assert.throws(() => decodeLinkFrame(concatBytes(Uint8Array.of(0x0a, 0x06, 0x08, 0x0a, 0x12, 0x02, 0x0a))), MalformedFrame);
  });
});

function sends(actions: readonly MembershipAction[]): [PeerId, string][] {
  return actions.flatMap((a) => (a.type === "send" ? [[a.peer, a.message.type] as [PeerId, string]] : []));
}

describe("HyParView core", () => {
  const T0 = 1_000;

  it("joins through a contact, which walks the newcomer to its other neighbours", () => {
    const joiner = new HyParView(peer(0), new SeededRandom(1));
    assert.deepEqual(sends(joiner.start(peer(1), T0)), [[peer(1), "join"]]);
    assert.deepEqual([...joiner.active.keys()], [peer(1)]);
    const contact = new HyParView(peer(1), new SeededRandom(2));
    contact.start(null, T0);
    contact.receive(peer(2), { type: "neighbor", high: true }, T0);
    contact.receive(peer(3), { type: "neighbor", high: true }, T0);
    assert.deepEqual(sends(contact.receive(peer(0), { type: "join" }, T0)).sort(),
      [[peer(2), "forwardJoin"], [peer(3), "forwardJoin"]].sort());
  });

  it("keeps its other contacts as passive entries and asks them while its view has room", () => {
    const joiner = new HyParView(peer(0), new SeededRandom(1), { ...DEFAULT_HYPARVIEW_CONFIG, activeSize: 3 });
    joiner.start(peer(1), T0, [peer(1), peer(2), peer(3), peer(4)]);
    assert.deepEqual([...joiner.passive.keys()].sort(), [peer(2), peer(3), peer(4)].sort());
    const asked = sends(joiner.tick(T0 + DEFAULT_HYPARVIEW_CONFIG.keepaliveIntervalMs))
      .filter(([to, type]) => type === "neighbor" && to !== peer(1)).map(([to]) => to);
    assert.equal(asked.length, 2); // two free slots
    assert.ok(asked.every((to) => [peer(2), peer(3), peer(4)].includes(to)));
  });

  it("the walk's end admits the newcomer; a walk from a stranger is dropped", () => {
    const node = new HyParView(peer(0), new SeededRandom(1));
    node.start(null, T0);
    assert.deepEqual(node.receive(peer(9), { type: "forwardJoin", peer: peer(5), ttl: 0 }, T0), []);
    node.receive(peer(1), { type: "neighbor", high: true }, T0);
    const actions = node.receive(peer(1), { type: "forwardJoin", peer: peer(5), ttl: 0 }, T0);
    assert.deepEqual(sends(actions), [[peer(5), "neighbor"]]);
    assert.ok(node.active.has(peer(5)));
  });

  it("probes a quiet neighbour and fails it when the probe goes unanswered; refills from the passive view", () => {
    const node = new HyParView(peer(0), new SeededRandom(1));
    node.start(null, T0);
    node.receive(peer(1), { type: "neighbor", high: true }, T0);
    node.receive(peer(2), { type: "neighbor", high: true }, T0);
    node.receive(peer(2), { type: "disconnect" }, T0); // peer 2 goes to the passive view
    assert.ok(node.passive.has(peer(2)));
    const probe = node.tick(T0 + 2_000);
    assert.ok(probe.some((a) => a.type === "probe" && a.peer === peer(1)));
    node.heardFrom(peer(1), T0 + 2_500); // answered: no failure
    assert.ok(!node.tick(T0 + 4_000).some((a) => a.type === "close" && a.peer === peer(1)));
    assert.ok(node.tick(T0 + 6_000).some((a) => a.type === "probe" && a.peer === peer(1))); // probed again, never answered
    assert.ok(!node.tick(T0 + 8_000).some((a) => a.type === "close"));
    const failed = node.tick(T0 + 10_000); // probe_timeout after the probe, every tick on time
    assert.ok(failed.some((a) => a.type === "close" && a.peer === peer(1) && a.failed));
    assert.ok(!node.active.has(peer(1)));
  });

  /** Neighbours a = 1 and b = 2 (joined at 0), passive peer p = 3; keep-alive every 2 s, probe timeout 4 s. */
  function silentBSetup(): HyParView {
    const node = new HyParView(peer(0), new SeededRandom(1), { ...DEFAULT_HYPARVIEW_CONFIG, activeSize: 2 });
    node.start(null, 0);
    node.receive(peer(1), { type: "neighbor", high: true }, 0);
    node.receive(peer(3), { type: "neighbor", high: true }, 0);
    node.receive(peer(3), { type: "disconnect" }, 0);
    node.receive(peer(2), { type: "neighbor", high: true }, 0);
    assert.deepEqual([[...node.active.keys()], [...node.passive.keys()]], [[peer(1), peer(2)], [peer(3)]]);
    return node;
  }
  const closed = (actions: readonly MembershipAction[], who: PeerId): boolean =>
    actions.some((a) => a.type === "close" && a.peer === who && a.failed);

  // tests/test_overlay_cores.py: a late tick does not count the time this node read nothing as silence.
  it("a late keep-alive tick moves the pending probe on by its lateness; a really silent neighbour fails one tick later", () => {
    // A page paused (or throttled, or short of CPU) for 5 s read nothing meanwhile: its
    // neighbours' frames wait in its buffers.
    const node = silentBSetup();
    assert.ok(node.tick(2_000).some((a) => a.type === "probe" && a.peer === peer(2)));
    node.heardFrom(peer(1), 3_000);
    const late = node.tick(9_000); // due at 4 s: 5 s late
    assert.deepEqual([...node.active.keys()], [peer(1), peer(2)]);
    assert.ok(!closed(late, peer(2)));
    node.heardFrom(peer(1), 9_500); // the backlog read after the pause (nothing from b)
    const onTime = node.tick(11_000); // b silent for 4 s of reading
    assert.deepEqual([...node.active.keys()], [peer(1)]);
    assert.ok(closed(onTime, peer(2)));
  });

  it("a frame read after a late keep-alive tick keeps the neighbour", () => {
    const node = silentBSetup();
    node.tick(2_000);
    node.tick(9_000); // 5 s late
    node.heardFrom(peer(1), 9_500);
    node.heardFrom(peer(2), 9_500); // its Pong, read once the page runs again
    node.tick(11_000);
    node.tick(13_000);
    assert.deepEqual([...node.active.keys()], [peer(1), peer(2)]);
  });

  it("a neighbour that does not hold us refuses the tick's confirmation and is dropped (docs/overlay.md, Confirmations)", () => {
    // a holds b; b, full, does not hold a (its link failure overtook a's Join).
    const a = new HyParView(peer(0), new SeededRandom(1), { ...DEFAULT_HYPARVIEW_CONFIG, activeSize: 3 });
    const b = new HyParView(peer(1), new SeededRandom(2), { ...DEFAULT_HYPARVIEW_CONFIG, activeSize: 3 });
    b.start(null, T0);
    for (const other of [2, 3, 4]) b.receive(peer(other), { type: "neighbor", high: true }, T0);
    a.start(peer(1), T0);
    const ask = a.tick(T0 + 2_000);
    assert.deepEqual(sends(ask), [[peer(1), "neighbor"]]);
    const reply = b.receive(peer(0), { type: "neighbor", high: false }, T0 + 2_100);
    assert.deepEqual(reply.filter((x) => x.type === "send").map((x) => x.type === "send" && x.message),
      [{ type: "neighborReply", accepted: false }]);
    const out = a.receive(peer(1), { type: "neighborReply", accepted: false }, T0 + 2_200);
    assert.ok(!a.active.has(peer(1)) && a.passive.has(peer(1)));
    assert.ok(out.some((x) => x.type === "neighborDown" && x.peer === peer(1)));
    // With no neighbour left it asks again, with high priority (b must take it).
    assert.deepEqual(out.filter((x) => x.type === "send").map((x) => x.type === "send" && x.message),
      [{ type: "neighbor", high: true }]);
  });

  it("an acceptance nobody asked for is answered with Disconnect; confirmations go round the view", () => {
    const node = new HyParView(peer(0), new SeededRandom(1));
    node.start(null, T0);
    assert.deepEqual(sends(node.receive(peer(5), { type: "neighborReply", accepted: true }, T0)), [[peer(5), "disconnect"]]);
    assert.ok(!node.active.has(peer(5)));
    for (const other of [1, 2, 3]) node.receive(peer(other), { type: "neighbor", high: true }, T0);
    const asked: PeerId[] = [];
    for (let tick = 1; tick <= 6; tick += 1) {
      for (const action of node.tick(T0 + tick * 2_000)) {
        if (action.type === "send" && action.message.type === "neighbor") asked.push(action.peer);
      }
      for (const other of [1, 2, 3]) node.heardFrom(peer(other), T0 + tick * 2_000 + 100);
    }
    assert.deepEqual(asked, [1, 2, 3, 1, 2, 3].map(peer));
    assert.deepEqual(node.receive(peer(1), { type: "neighborReply", accepted: true }, T0 + 13_000), []);
  });

  it("reads only the first reply to its own shuffle, truncated", () => {
    const node = new HyParView(peer(0), new SeededRandom(1));
    node.start(null, T0);
    assert.deepEqual(node.receive(peer(1), { type: "shuffleReply", peers: [peer(7)] }, T0), []);
    assert.ok(!node.passive.has(peer(7)), "an unsolicited reply is ignored");
    node.receive(peer(1), { type: "neighbor", high: true }, T0);
    const shuffle = node.tick(T0 + 10_000).find((a) => a.type === "send" && a.message.type === "shuffle");
    assert.ok(shuffle);
    const sent = (shuffle as unknown as { message: { peers: PeerId[] } }).message.peers.length;
    node.receive(peer(1), { type: "shuffleReply", peers: P.slice(10, 30) }, T0 + 10_100);
    assert.equal(node.passive.size, Math.min(sent + 1, 8));
    node.receive(peer(1), { type: "shuffleReply", peers: P.slice(30, 40) }, T0 + 10_200);
    assert.equal(node.passive.size, Math.min(sent + 1, 8));
  });
});

describe("HyParView link churn (docs/overlay.md, Transport and Refill)", () => {
  const T0 = 1_000;
  const tickMs = DEFAULT_HYPARVIEW_CONFIG.keepaliveIntervalMs;

  it("a walk ending here from an unlinked origin is merged without a dial", () => {
    const node = new HyParView(peer(0), new SeededRandom(1));
    node.start(peer(1), T0);
    const actions = node.receive(peer(1), { type: "shuffle", origin: peer(2), ttl: 1, peers: [peer(3), peer(4), peer(5)] }, T0 + 500);
    // Nothing at all for the origin (a send would dial it), no link to close.
    assert.deepEqual(actions.filter((a) => a.peer === peer(2)), []);
    for (const i of [2, 3, 4, 5]) assert.ok(node.passive.has(peer(i)));
    assert.equal(node.exchangeRepliesRefused, 1);
  });

  it("a linked origin still gets its reply, over its link", () => {
    const node = new HyParView(peer(0), new SeededRandom(1));
    node.start(peer(1), T0);
    node.receive(peer(1), { type: "shuffle", origin: peer(2), ttl: 1, peers: [peer(3), peer(4), peer(5), peer(6)] }, T0 + 500);
    const actions = node.receive(peer(1), { type: "shuffle", origin: peer(1), ttl: 1, peers: [] }, T0 + 600);
    assert.deepEqual(sends(actions), [[peer(1), "shuffleReply"]]);
    assert.ok(!actions.some((a) => a.type === "close"));
    assert.equal(node.exchangeRepliesRefused, 1);
  });

  it("exchangeReplyBurst > 0 dials unlinked origins for the reply, closes the link, and is a bucket", () => {
    const config = { ...DEFAULT_HYPARVIEW_CONFIG, exchangeReplyBurst: 2 };
    const node = new HyParView(peer(0), new SeededRandom(1), config);
    node.start(peer(1), T0);
    const ends = [2, 3, 4].map((i) => node.receive(peer(1), { type: "shuffle", origin: peer(i), ttl: 1, peers: [peer(9)] }, T0 + 500));
    for (const [k, i] of [2, 3].entries()) {
      assert.deepEqual(ends[k]?.map((a) => [a.type, a.peer]), [["send", peer(i)], ["close", peer(i)]]);
    }
    assert.deepEqual(ends[2], []);
    assert.equal(node.exchangeRepliesRefused, 1);
    const later = node.receive(peer(1), { type: "shuffle", origin: peer(5), ttl: 1, peers: [] }, T0 + 500 + config.exchangeReplyIntervalMs);
    assert.deepEqual(sends(later), [[peer(5), "shuffleReply"]]); // one more token a second
  });

  /** Every `Neighbor` request (not a confirmation of `peer(1)`) is refused at once, as by full peers; how many were sent. */
  function refuseAll(node: HyParView, actions: MembershipAction[], now: number): number {
    const isRequest = (a: MembershipAction): boolean => a.type === "send" && a.message.type === "neighbor" && a.peer !== peer(1);
    const todo = actions.filter(isRequest);
    let sent = 0;
    for (let request = todo.shift(); request !== undefined; request = todo.shift()) {
      sent++;
      assert.ok(sent <= 50, "a refused request is followed by another without end");
      todo.push(...node.receive(request.peer, { type: "neighborReply", accepted: false }, now).filter(isRequest));
    }
    return sent;
  }

  it("refused ticks back off (4, 8, 16, then 32 s) until the view changes", () => {
    const node = new HyParView(peer(0), new SeededRandom(4), { ...DEFAULT_HYPARVIEW_CONFIG, activeSize: 2 });
    node.start(peer(1), T0, P.slice(2, 12));
    const askedAt: number[] = [];
    for (let tick = 1; tick <= 30; tick++) { // one minute of keep-alive ticks
      const now = T0 + tick * tickMs;
      node.heardFrom(peer(1), now);
      const sent = refuseAll(node, node.tick(now), now);
      for (let i = 0; i < sent; i++) askedAt.push(now - T0);
    }
    // The first refilling tick spends its 3 refusals; the tick after it pauses the refill
    // for 4, 8, 16, then 32 s, with one request a pause (90 requests without the backoff).
    assert.deepEqual([...new Set(askedAt)], [2_000, 8_000, 18_000, 36_000]);
    assert.equal(askedAt.length, 3 + 1 + 1 + 1);
    assert.deepEqual([...node.active.keys()], [peer(1)]);
    // The neighbour goes: the view changed, so the refill asks at once and the next tick too.
    const now = T0 + 62_000;
    assert.ok(refuseAll(node, node.linkDown(peer(1), now), now) >= 1);
    assert.ok(refuseAll(node, node.tick(now + tickMs), now + tickMs) >= 1); // (an empty view never backs off either)
  });

  it("the backoff is capped at refillBackoffMs and ends with a change of the view", () => {
    const pacing = new RefillPacing();
    const due: number[] = [];
    let now = 0;
    for (let round = 0; round < 12; round++) {
      for (let i = 0; i < (pacing.strikes === 0 ? 3 : 1); i++) {
        assert.ok(!pacing.spent(3));
        pacing.refused();
      }
      assert.ok(pacing.spent(3));
      assert.ok(!pacing.tick(now, 2_000, 3, 32_000));
      due.push(pacing.resumeAt - now);
      now = pacing.resumeAt;
      assert.ok(pacing.tick(now, 2_000, 3, 32_000)); // nothing refused meanwhile: it refills
    }
    assert.deepEqual(due.slice(0, 5), [4_000, 8_000, 16_000, 32_000, 32_000]);
    assert.equal(Math.max(...due), 32_000);
    pacing.refused();
    pacing.viewChanged();
    assert.ok(pacing.tick(now, 2_000, 3, 32_000));
    assert.equal(pacing.strikes, 0);
  });
});

/** NodeCores joined in memory: frames are delivered in order, closes reach both ends. */
class Mesh {
  readonly nodes: NodeCore[];
  readonly delivered: Map<number, string[]> = new Map();
  readonly #queue: [number, number, Uint8Array][] = [];
  now = 0;

  constructor(count: number, seed: number) {
    this.nodes = ids.slice(0, count).map((identity, i) => new NodeCore(identity, new SeededRandom(seed * 1000 + i)));
  }

  index(peerId: PeerId): number {
    return P.indexOf(peerId);
  }

  apply(from: number, actions: readonly NodeAction[]): void {
    for (const action of actions) {
      if (action.type === "send") this.#queue.push([from, this.index(action.peer), action.frame]);
      else if (action.type === "close") {
        const other = this.index(action.peer);
        this.apply(other, (this.nodes[other] as NodeCore).linkDown(peer(from), this.now));
      } else if (action.type === "deliver") {
        const list = this.delivered.get(from) ?? [];
        list.push(JSON.stringify(action.document.document));
        this.delivered.set(from, list);
      }
    }
  }

  run(untilMs: number): void {
    while (this.now <= untilMs) {
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
}

describe("NodeCores in memory", () => {
  for (const seed of [1, 2, 3]) {
    it(`20 peers join one by one and every subscriber gets each matching document once (seed ${seed})`, () => {
      const mesh = new Mesh(20, seed);
      const random = new SeededRandom(seed);
      mesh.nodes.forEach((node, i) => {
        mesh.apply(i, node.start(i === 0 ? null : peer(random.below(i)), mesh.now));
        mesh.apply(i, node.subscribe(new Query(i % 2 === 0 ? { topic: "even" } : {}), mesh.now)[1]);
        mesh.run(mesh.now + 500);
      });
      mesh.run(mesh.now + 15_000);
      for (const node of mesh.nodes) assert.ok(node.neighbors.length >= 1, "every peer has a neighbour");
      const [, publish] = (mesh.nodes[7] as NodeCore).publish({ topic: "even", n: 1 }, mesh.now);
      mesh.apply(7, publish);
      mesh.apply(3, (mesh.nodes[3] as NodeCore).publish({ topic: "odd", n: 2 }, mesh.now)[1]);
      mesh.run(mesh.now + 5_000);
      mesh.nodes.forEach((_, i) => {
        const expected = i % 2 === 0 ? ['{"topic":"even","n":1}'] : ['{"topic":"even","n":1}', '{"topic":"odd","n":2}'];
        assert.deepEqual((mesh.delivered.get(i) ?? []).sort(), expected.sort(), `peer ${i}`);
      });
    });
  }

  it("a tampered document is delivered to nobody and its sender loses its link after six", () => {
    const mesh = new Mesh(3, 9);
    mesh.nodes.forEach((node, i) => {
      mesh.apply(i, node.start(i === 0 ? null : peer(0), mesh.now));
      mesh.apply(i, node.subscribe(new Query({}), mesh.now)[1]);
      mesh.run(mesh.now + 300);
    });
    const victim = mesh.nodes[0] as NodeCore;
    const { messageId, envelope } = sealDocument(ids[1] as Identity, { a: 1 }, 0, 1n);
    const tampered = Uint8Array.from(envelope);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    let actions: NodeAction[] = [];
    for (let i = 0; i < 6; i++) {
      const frame = encodeOverlayFrame(toOverlayProto({ type: "gossip", id: Uint8Array.of(i + 1), hops: 1, payload: tampered, origin: "", entry: 0n }));
      actions = victim.receive(peer(1), frame, mesh.now);
    }
    assert.ok(actions.some((a) => a.type === "close" && a.peer === peer(1)));
    assert.equal(victim.rejected.get("id_mismatch"), 6);
    void messageId;
    assert.equal(mesh.delivered.size, 0);
  });
});

describe("overlay decoding, fuzzed", () => {
  it("any bytes either decode to frames or raise a RemoteProtocolError; a NodeCore never throws on them", async () => {
    const { RemoteProtocolError } = await import("../src/errors.js");
    const node = new NodeCore(ids[0] as Identity, new SeededRandom(5));
    node.start(null, 0);
    const prefixes = [Uint8Array.of(), Uint8Array.of(0x52), Uint8Array.of(0x1a), Uint8Array.of(0x52, 0x10, 0x52)];
    fc.assert(fc.property(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 120 }), (prefix, tail) => {
      const data = concatBytes(prefix, tail);
      try {
        for (const frame of decodeLinkFrame(data)) if (frame.kind === "overlay") fromOverlayProto(frame.message);
      } catch (error) {
        assert.ok(error instanceof RemoteProtocolError, String(error));
      }
      for (const action of node.receive(peer(1), data, 1)) assert.ok(["send", "close", "neighbors", "deliver"].includes(action.type));
    }), { seed: 11, numRuns: 500 });
  });
});

describe("HyParView core, stateful fuzz", () => {
  it("any sequence of inputs keeps the views bounded, disjoint and without self", () => {
    const who = fc.integer({ min: 0, max: 12 }).map((i) => peer(i));
    const message: fc.Arbitrary<OverlayMsg> = fc.oneof(
      fc.constant<OverlayMsg>({ type: "join" }),
      fc.record({ peer: who, ttl: fc.integer({ min: 0, max: 8 }) }).map((m): OverlayMsg => ({ type: "forwardJoin", ...m })),
      fc.boolean().map((high): OverlayMsg => ({ type: "neighbor", high })),
      fc.boolean().map((accepted): OverlayMsg => ({ type: "neighborReply", accepted })),
      fc.constant<OverlayMsg>({ type: "disconnect" }),
      fc.record({ origin: who, ttl: fc.integer({ min: 0, max: 8 }), peers: fc.array(who, { maxLength: 10 }) })
        .map((m): OverlayMsg => ({ type: "shuffle", ...m })),
      fc.array(who, { maxLength: 10 }).map((peers): OverlayMsg => ({ type: "shuffleReply", peers })),
    );
    const step = fc.oneof(
      fc.record({ kind: fc.constant("receive" as const), from: who, message }),
      fc.record({ kind: fc.constant("down" as const), from: who }),
      fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 5_000 }) }),
    );
    fc.assert(fc.property(fc.integer(), fc.array(step, { maxLength: 80 }), (seed, steps) => {
      const node = new HyParView(peer(0), new SeededRandom(seed));
      let now = 0;
      node.start(peer(1), now);
      for (const s of steps) {
        if (s.kind === "receive") node.receive(s.from, s.message, now);
        else if (s.kind === "down") node.linkDown(s.from, now);
        else node.tick(now += s.ms);
        assert.ok(node.active.size <= node.config.activeSize);
        assert.ok(node.passive.size <= node.config.passiveSize);
        assert.ok(!node.active.has(peer(0)) && !node.passive.has(peer(0)));
        for (const p of node.active.keys()) assert.ok(!node.passive.has(p), "active and passive are disjoint");
      }
    }), { seed: 21, numRuns: 300 });
  });
});
