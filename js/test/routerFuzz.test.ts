// A seeded stateful model of the stable-tree router, like the Python one
// (tests/test_pubsub_tree_stateful.py): NodeCores (HyParView + router, every
// message through the codecs) on a simulated network whose links are FIFO
// with widely spread delays.  Steps interleave subscriptions,
// unsubscriptions, publications, link failures, isolations, crashes and late
// joiners that publish at once; a check lets the network be quiet for
// T_quiet and asserts the contract (docs/pubsub.md section 1): every
// subscription open from a publication to the check, at a live node of the
// publisher's component, whose query matches, got the document exactly
// once; and nothing is ever delivered twice or to a subscription that does
// not match.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DEFAULT_NODE_CORE_CONFIG, type NodeAction, NodeCore, type NodeCoreConfig } from "../src/node/nodeCore.js";
import { DEFAULT_ROUTER_CONFIG, type RouterConfig } from "../src/pubsub/tree/router.js";
import { Query } from "../src/query/query.js";
import type { Document } from "../src/query/values.js";
import { SeededRandom } from "../src/random.js";
import { Identity } from "../src/wire/identity.js";
import type { PeerId } from "../src/wire/peerId.js";

const NODES = 8;
const LATE = 3;
const QUIET_MS = 10_000;
const MAX_CHURN_MS = 8_000;
const SUBSCRIPTIONS: Record<string, unknown> = {
  A: { topic: "a" }, AB: { topic: { $in: ["a", "b"] } }, big: { size: { $gte: 5 } }, all: {},
};
const NAMES = Object.keys(SUBSCRIPTIONS);
const ids = Array.from({ length: NODES + LATE }, (_, i) => Identity.fromSeed(new Uint8Array(32).fill(100 + i)));
const P = ids.map((identity) => identity.peerId);

interface InFlight { readonly at: number; readonly seq: number; readonly from: number; readonly to: number; readonly epoch: number; readonly frame: Uint8Array }

/**
 * NodeCores on a seeded network: per-pair FIFO, log-spread delays.  A link is reliable while
 * it is up; a failure loses the frames in flight and tells both ends (as a closed Noise
 * channel does), and a frame to or from a node that is gone fails its link.
 */
class Net {
  readonly nodes: NodeCore[];
  readonly started: boolean[];
  readonly crashed = new Set<number>();
  /** Nodes cut off for a while: they run, but every frame to or from them is lost. */
  readonly isolated = new Set<number>();
  readonly random: SeededRandom;
  /** node -> subscription name -> (core id, opened at). */
  readonly subs: Map<string, { id: number; at: number }>[] = [];
  /** (node, message id) -> subscription names delivered. */
  readonly deliveries = new Map<string, string[]>();
  readonly #names: Map<number, string>[] = [];
  #queue: InFlight[] = [];
  readonly #last = new Map<string, number>();
  readonly #epochs = new Map<string, number>();
  #seq = 0;
  now = 0;

  constructor(seed: number, routing: RouterConfig) {
    this.random = new SeededRandom(seed);
    const config: NodeCoreConfig = { ...DEFAULT_NODE_CORE_CONFIG, routing };
    this.nodes = ids.map((identity, i) => new NodeCore(identity, new SeededRandom(seed * 100 + i), config));
    this.started = ids.map(() => false);
    for (let i = 0; i < ids.length; i++) { this.subs.push(new Map()); this.#names.push(new Map()); }
    for (let i = 0; i < NODES; i++) this.start(i);
  }

  start(i: number): void {
    this.started[i] = true;
    const live = this.started.flatMap((s, j) => (s && j !== i && !this.crashed.has(j) ? [j] : []));
    const contact = live.length === 0 ? null : P[live[this.random.below(live.length)] as number] as PeerId;
    this.apply(i, (this.nodes[i] as NodeCore).start(contact, this.now));
  }

  live(i: number): boolean {
    return this.started[i] === true && !this.crashed.has(i);
  }

  #pair(a: number, b: number): string {
    return a < b ? `${a}-${b}` : `${b}-${a}`;
  }

  /** The link between a and b fails: both ends are told, frames in flight are lost. */
  fail(a: number, b: number): void {
    const pair = this.#pair(a, b);
    this.#epochs.set(pair, (this.#epochs.get(pair) ?? 0) + 1);
    if (this.live(a)) this.apply(a, (this.nodes[a] as NodeCore).linkDown(P[b] as PeerId, this.now));
    if (this.live(b)) this.apply(b, (this.nodes[b] as NodeCore).linkDown(P[a] as PeerId, this.now));
  }

  crash(i: number): void {
    this.crashed.add(i);
    for (let j = 0; j < ids.length; j++) if (j !== i && this.live(j)) this.fail(i, j);
  }

  apply(from: number, actions: readonly NodeAction[]): void {
    for (const action of actions) {
      const to = action.type === "send" || action.type === "close" ? P.indexOf(action.peer) : -1;
      if (action.type === "send") {
        if (to < 0) continue;
        const pair = this.#pair(from, to);
        const key = `${from}>${to}`;
        const delay = 2 + 20 * Math.exp(2 * (this.random.random() - 0.5) * 2); // ~3 ms .. ~150 ms
        const at = Math.max(this.now + Math.min(delay, 300), this.#last.get(key) ?? 0);
        this.#last.set(key, at);
        this.#queue.push({ at, seq: this.#seq++, from, to, epoch: this.#epochs.get(pair) ?? 0, frame: action.frame });
      } else if (action.type === "close") {
        if (to >= 0) this.fail(from, to);
      } else if (action.type === "deliver") {
        const name = this.#names[from]?.get(action.subscription) as string;
        const key = `${from}/${Buffer.from(action.document.messageId).toString("hex")}`;
        const list = this.deliveries.get(key) ?? [];
        assert.ok(!list.includes(name), `delivered twice: ${key} ${name}`);
        assert.ok(new Query(SUBSCRIPTIONS[name]).matches(action.document.document), `${name} does not match`);
        list.push(name);
        this.deliveries.set(key, list);
      }
    }
  }

  run(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next = end;
      let timerOf = -1;
      this.nodes.forEach((node, i) => {
        const t = node.timer;
        if (this.live(i) && t !== null && t < next) { next = Math.max(t, this.now); timerOf = i; }
      });
      this.#queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const head = this.#queue[0];
      if (head !== undefined && head.at <= next) {
        this.#queue.shift();
        this.now = Math.max(this.now, head.at);
        if ((this.#epochs.get(this.#pair(head.from, head.to)) ?? 0) !== head.epoch) continue; // sent on a link that failed
        if (!this.live(head.to) || !this.live(head.from) || this.isolated.has(head.to) || this.isolated.has(head.from)) {
          this.fail(head.from, head.to); // a frame to (or from) a node that is gone: the link fails at both ends
          continue;
        }
        this.apply(head.to, (this.nodes[head.to] as NodeCore).receive(P[head.from] as PeerId, head.frame, this.now));
      } else if (timerOf >= 0) {
        this.now = next;
        this.apply(timerOf, (this.nodes[timerOf] as NodeCore).tick(this.now));
      } else {
        this.now = end;
        return;
      }
    }
  }

  subscribe(i: number, name: string): void {
    const node = this.nodes[i] as NodeCore;
    const old = this.subs[i]?.get(name);
    if (old !== undefined) return;
    const [id, actions] = node.subscribe(new Query(SUBSCRIPTIONS[name]), this.now);
    this.subs[i]?.set(name, { id, at: this.now });
    this.#names[i]?.set(id, name);
    this.apply(i, actions);
  }

  unsubscribe(i: number, name: string): void {
    const old = this.subs[i]?.get(name);
    if (old === undefined) return;
    this.subs[i]?.delete(name);
    this.apply(i, (this.nodes[i] as NodeCore).unsubscribe(old.id, this.now));
  }

  publish(i: number, document: Document): string {
    const [id, actions] = (this.nodes[i] as NodeCore).publish(document, this.now);
    this.apply(i, actions);
    return id;
  }

  component(i: number): Set<number> {
    const seen = new Set([i]);
    const todo = [i];
    while (todo.length > 0) {
      for (const peer of (this.nodes[todo.pop() as number] as NodeCore).neighbors) {
        const j = P.indexOf(peer);
        if (!seen.has(j) && this.live(j)) { seen.add(j); todo.push(j); }
      }
    }
    return seen;
  }
}

const node = fc.integer({ min: 0, max: NODES + LATE - 1 });
const pause = fc.constantFrom(0, 10, 50, 200, 500);
const topic = fc.constantFrom("a", "b", "c");
const step = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("subscribe" as const), node, name: fc.constantFrom(...NAMES), pause }) },
  fc.record({ kind: fc.constant("unsubscribe" as const), node, name: fc.constantFrom(...NAMES), pause }),
  fc.record({ kind: fc.constant("fail" as const), node, pick: fc.nat(10), pause }),
  fc.record({ kind: fc.constant("isolate" as const), node, pause: fc.constantFrom(500, 2000) }),
  fc.record({ kind: fc.constant("crash" as const), node, pause }),
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("publish" as const), node, topic, size: fc.nat(9), pause }) },
  fc.record({ kind: fc.constant("joinAndPublish" as const), topic, size: fc.nat(9), pause }),
  fc.record({ kind: fc.constant("check" as const) }),
);
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

interface Publication { readonly id: string; readonly publisher: number; readonly document: Document; readonly at: number }

function play(seed: number, warmMs: number, steps: readonly Step[], routing: RouterConfig = DEFAULT_ROUTER_CONFIG): number {
  const net = new Net(seed, routing);
  // Some interest from the start (half the nodes), so most publications promise deliveries.
  for (let i = 0; i < NODES; i += 2) net.subscribe(i, NAMES[(i / 2 + seed) % NAMES.length] as string);
  net.run(warmMs);
  let pending: Publication[] = [];
  let churn = 0;
  let checked = 0;
  let promised = 0;
  const check = (): void => {
    net.run(QUIET_MS);
    for (const { id, publisher, document, at } of pending) {
      if (!net.live(publisher)) continue;
      for (const x of net.component(publisher)) {
        for (const [name, { at: opened }] of net.subs[x] ?? []) {
          if (opened > at || !new Query(SUBSCRIPTIONS[name]).matches(document)) continue;
          promised++;
          assert.ok((net.deliveries.get(`${x}/${id}`) ?? []).includes(name),
            `seed ${seed}: node ${x} (${name}) missed ${JSON.stringify(document)} from ${publisher}`);
        }
      }
    }
    pending = [];
    churn = 0;
    checked++;
  };
  const run = (ms: number): void => {
    net.run(ms);
    churn += ms;
    if (churn >= MAX_CHURN_MS) check();
  };
  let seq = 0;
  for (const s of steps) {
    if (s.kind === "check") { check(); continue; }
    if (s.kind === "joinAndPublish") {
      const late = net.started.indexOf(false);
      if (late < 0) continue;
      net.start(late);
      const document = { topic: s.topic, size: s.size, seq: seq++ };
      pending.push({ id: net.publish(late, document), publisher: late, document, at: net.now });
      run(s.pause);
      continue;
    }
    if (!net.live(s.node)) continue;
    switch (s.kind) {
      case "subscribe": net.subscribe(s.node, s.name); break;
      case "unsubscribe": net.unsubscribe(s.node, s.name); break;
      case "fail": {
        const active = (net.nodes[s.node] as NodeCore).neighbors;
        if (active.length > 0) net.fail(s.node, P.indexOf(active[s.pick % active.length] as PeerId));
        break;
      }
      case "isolate": {
        for (const peer of (net.nodes[s.node] as NodeCore).neighbors) net.fail(s.node, P.indexOf(peer));
        // Cut off for a while (everything to or from it is lost), then HyParView heals the views.
        net.isolated.add(s.node);
        run(s.pause);
        net.isolated.delete(s.node);
        run(50);
        continue;
      }
      case "crash": if (net.crashed.size < 2) net.crash(s.node); break;
      case "publish": {
        const document = { topic: s.topic, size: s.size, seq: seq++ };
        pending.push({ id: net.publish(s.node, document), publisher: s.node, document, at: net.now });
        break;
      }
    }
    run(s.pause);
  }
  if (pending.length > 0) check();
  void checked;
  return promised;
}

describe("stable-tree router, stateful fuzz", () => {
  it("every contracted delivery happens exactly once, and only to matching subscriptions", () => {
    let promised = 0;
    fc.assert(fc.property(fc.integer({ min: 0, max: 1 << 16 }), fc.constantFrom(0, 5_000), fc.array(step, { maxLength: 40 }),
      (seed, warm, steps) => { promised += play(seed, warm, steps); }), { seed: 7, numRuns: 40 });
    assert.ok(promised > 100, `the model promised only ${promised} deliveries`);
  });

  it("the same with a tight repair pace (2 at once, 20 a second): the pace only delays", () => {
    const routing = { ...DEFAULT_ROUTER_CONFIG, restoreBurst: 2, restoreRate: 20 };
    let promised = 0;
    fc.assert(fc.property(fc.integer({ min: 0, max: 1 << 16 }), fc.constantFrom(0, 5_000), fc.array(step, { maxLength: 40 }),
      (seed, warm, steps) => { promised += play(seed, warm, steps, routing); }), { seed: 8, numRuns: 40 });
    assert.ok(promised > 100, `the model promised only ${promised} deliveries`);
  });
});
