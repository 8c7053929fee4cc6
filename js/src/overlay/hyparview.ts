/**
 * HyParView membership for the browser peer (docs/overlay.md, "Membership").
 *
 * Theory of operation.  An active view of at most `activeSize` neighbours
 * (the links) and a passive view of known peers.  A node joins through a
 * contact (`Join`); the contact walks `ForwardJoin` through its neighbours,
 * and the walk's end asks the newcomer to be its neighbour (`Neighbor(high)`).
 * A neighbour that leaves, fails or goes silent (probed with a link `Ping` after
 * a quiet keep-alive interval, failed `probeTimeout` after an unanswered
 * probe) is replaced by a passive peer.  Silence counts only for time this
 * node could read: a keep-alive tick that comes late (the page was paused,
 * its timers throttled, or it was short of CPU, and read nothing meanwhile)
 * moves the pending probes on by its lateness, so a busy node does not fail
 * neighbours whose frames wait unread in its own buffers; a neighbour really
 * silent fails one tick later (docs/overlay.md, "Failure detection").  Each keep-alive tick asks the
 * neighbour asked longest ago whether it still holds us (`Neighbor(low)`): a
 * refusal from a neighbour drops it, an acceptance nobody asked for is
 * answered with `Disconnect`, so the two ends of every link agree (docs/overlay.md,
 * "Confirmations").  Shuffles exchange samples of the views: the walk's end merges the
 * origin's sample and answers with as many passive peers only over a link it has to the
 * origin (a neighbour, or a peer asked to be one); otherwise the exchange is one-way, since
 * a link set up for one reply costs far more than the reply (`exchangeReplyBurst` > 0
 * allows that many replies over a link of their own, the paper's temporary connection,
 * one more every `exchangeReplyIntervalMs`).  A short view asks passive peers to fill it
 * after each change and at keep-alive ticks, backing off while every peer asked refuses
 * (`RefillPacing`, ./refill.ts).  Pure: inputs take `now` (ms); outputs are actions; a
 * `SeededRandom` makes every choice.
 *
 * Defences of docs/overlay.md kept: walks only from neighbours (and for
 * `walkGraceMs` after), TTLs capped at ARWL, shuffle replies only to our last
 * shuffle and truncated, at most `passivePerSource` passive entries heard
 * from one neighbour, unanswered `Neighbor` requests failed after
 * `probeTimeout`; the `protectedCount` oldest neighbours, once neighbours for
 * `protectAfterMs`, are never displaced by a newcomer (a full view drops a
 * random one of the younger ones); admitting a newcomer (`Join`, a walk's
 * end) into a full view takes a token of the eviction budget (from
 * `protectAfterMs` after the start); a peer whose `Join` was taken cannot
 * join again for `joinRepeatIntervalMs`.  Departure (a local choice peers
 * cannot observe as a protocol error): no per-address caps (WebRTC links
 * have no address).
 */

import { TokenBucket } from "../budgets.js";
import type { SeededRandom } from "../random.js";
import type { PeerId } from "../wire/peerId.js";
import type { OverlayMsg } from "./codec.js";
import { RefillPacing } from "./refill.js";

export interface HyParViewConfig {
  readonly activeSize: number;
  readonly passiveSize: number;
  /** Active and passive random walk lengths. */
  readonly arwl: number;
  readonly prwl: number;
  /** Active and passive peers sent in a shuffle. */
  readonly shuffleActive: number;
  readonly shufflePassive: number;
  readonly shuffleIntervalMs: number;
  readonly keepaliveIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly walkGraceMs: number;
  readonly passivePerSource: number;
  /** The oldest neighbours (at most this many) that a newcomer never displaces... */
  readonly protectedCount: number;
  /** ...once neighbours for this long; also when the eviction budget starts. */
  readonly protectAfterMs: number;
  /** Eviction budget: tokens at most, and one more every `evictionIntervalMs`. */
  readonly evictionBurst: number;
  readonly evictionIntervalMs: number;
  /** A peer whose `Join` was taken cannot join again for this long; peers remembered. */
  readonly joinRepeatIntervalMs: number;
  readonly joinMemory: number;
  /** Refused `Neighbor` requests a keep-alive tick's refill may take (one while backing off)... */
  readonly rejectionsPerInterval: number;
  /** ...and the longest pause of the ticks' refill after ticks whose every request was refused. */
  readonly refillBackoffMs: number;
  /**
   * Shuffle replies to an origin neither a neighbour nor asked to be one (each would dial it
   * for one message): a bucket of `exchangeReplyBurst`, one more every
   * `exchangeReplyIntervalMs`.  0, the default: never; the exchange is one-way.
   */
  readonly exchangeReplyBurst: number;
  readonly exchangeReplyIntervalMs: number;
}

export const DEFAULT_HYPARVIEW_CONFIG: HyParViewConfig = Object.freeze({
  activeSize: 5, passiveSize: 30, arwl: 6, prwl: 3, shuffleActive: 3, shufflePassive: 4,
  shuffleIntervalMs: 10_000, keepaliveIntervalMs: 2_000, probeTimeoutMs: 4_000, walkGraceMs: 2_000, passivePerSource: 8,
  protectedCount: 4, protectAfterMs: 30_000, evictionBurst: 10, evictionIntervalMs: 1_000, joinRepeatIntervalMs: 60_000, joinMemory: 1024,
  rejectionsPerInterval: 3, refillBackoffMs: 32_000, exchangeReplyBurst: 0, exchangeReplyIntervalMs: 1_000,
});

export type MembershipAction =
  | { readonly type: "send"; readonly peer: PeerId; readonly message: OverlayMsg }
  /** Close the link to `peer` (after what is queued, unless `failed`). */
  | { readonly type: "close"; readonly peer: PeerId; readonly failed: boolean }
  /** Send a link-level `Ping` to `peer`. */
  | { readonly type: "probe"; readonly peer: PeerId }
  | { readonly type: "neighborUp"; readonly peer: PeerId }
  | { readonly type: "neighborDown"; readonly peer: PeerId };

/** `since`: when it became a neighbour (the view is in age order: the oldest may be protected). */
interface Neighbour { readonly since: number; heardAt: number; probedAt: number | null; confirmedAt: number }

export class HyParView {
  readonly self: PeerId;
  readonly config: HyParViewConfig;
  /** Shuffles that ended here unanswered (the origin not linked; `exchangeReplyBurst`). */
  exchangeRepliesRefused = 0;
  readonly active = new Map<PeerId, Neighbour>();
  /** Passive peers, each with the neighbour it was heard from ("" when trusted). */
  readonly passive = new Map<PeerId, PeerId | "">();
  readonly #requests = new Map<PeerId, number>(); // peer -> when asked
  readonly #leftAt = new Map<PeerId, number>();
  readonly #random: SeededRandom;
  #lastShuffle: PeerId[] | null = null;
  #nextShuffle: number | null = null;
  /** When the next keep-alive tick is due (how late a tick comes is measured from it). */
  #nextKeepalive: number | null = null;
  #born = 0;
  #evictionTokens: number;
  #tokensAt = 0;
  /** Peers whose `Join` we took -> when, oldest first. */
  readonly #recentJoins = new Map<PeerId, number>();
  readonly #refillPacing = new RefillPacing();
  readonly #exchanges: TokenBucket;

  constructor(self: PeerId, random: SeededRandom, config: HyParViewConfig = DEFAULT_HYPARVIEW_CONFIG) {
    this.self = self;
    this.config = config;
    this.#random = random;
    this.#evictionTokens = config.evictionBurst;
    this.#exchanges = new TokenBucket(1_000 / config.exchangeReplyIntervalMs, config.exchangeReplyBurst, 0);
  }

  get timer(): number | null {
    const times = [this.#nextShuffle, this.#nextKeepalive].filter((t): t is number => t !== null);
    return times.length === 0 ? null : Math.min(...times);
  }

  /**
   * Start the timers; join through `contact` if there is one (else wait to be joined).
   * `known`: the other peers the signaller named, kept as heard-of passive entries (their
   * source is this node: no neighbour's `passivePerSource`), so that nodes that joined each
   * other find the rest of the mesh at the next refill (docs/overlay.md, "The joiner's
   * other contacts").
   */
  start(contact: PeerId | null, now: number, known: readonly PeerId[] = []): MembershipAction[] {
    this.#nextShuffle = now + this.config.shuffleIntervalMs;
    this.#nextKeepalive = now + this.config.keepaliveIntervalMs;
    this.#born = this.#tokensAt = now;
    if (contact === null || contact === this.self) return [];
    const actions: MembershipAction[] = [...this.#addActive(contact, now), { type: "send", peer: contact, message: { type: "join" } }];
    for (const peer of known) if (peer !== contact) this.#addPassive(peer, this.self);
    return actions;
  }

  /**
   * Ask passive peer `peer` to be a neighbour with high priority: for the layer above when
   * it finds this node's component cut off from `peer` (healing, docs/pubsub.md section 8).
   * The request cannot be refused; taking the reply makes room by dropping a random
   * neighbour.  Ignored unless `peer` is in the passive view and not already asked.
   */
  reachOut(peer: PeerId, now: number): MembershipAction[] {
    if (!this.passive.has(peer) || this.#requests.has(peer) || this.active.has(peer)) return [];
    this.#requests.set(peer, now);
    return [{ type: "send", peer, message: { type: "neighbor", high: true } }];
  }

  /** Any frame from `peer` (of any layer): a sign of life. */
  heardFrom(peer: PeerId, now: number): void {
    const neighbour = this.active.get(peer);
    if (neighbour !== undefined) {
      neighbour.heardAt = now;
      neighbour.probedAt = null;
    }
  }

  receive(from: PeerId, message: OverlayMsg, now: number): MembershipAction[] {
    switch (message.type) {
      case "join": return this.#onJoin(from, now);
      case "forwardJoin": return this.#walkAllowed(from, now) ? this.#onForwardJoin(from, message.peer, Math.min(message.ttl, this.config.arwl), now) : [];
      case "neighbor": return this.#onNeighbor(from, message.high, now);
      case "neighborReply": return this.#onNeighborReply(from, message.accepted, now);
      case "disconnect": {
        if (!this.active.has(from)) return [];
        const actions = this.#removeActive(from, now, true);
        return [...actions, { type: "close", peer: from, failed: false }, ...this.#refill(now)];
      }
      case "shuffle": return this.#walkAllowed(from, now) ? this.#onShuffle(from, message.origin, Math.min(message.ttl, this.config.arwl), message.peers, now) : [];
      case "shuffleReply": return this.#onShuffleReply(from, message.peers);
      default: return [];
    }
  }

  /** The link to `peer` failed or closed. */
  linkDown(peer: PeerId, now: number): MembershipAction[] {
    if (this.#requests.delete(peer)) {
      this.passive.delete(peer);
      return this.#refill(now);
    }
    if (!this.active.has(peer)) return [];
    return [...this.#removeActive(peer, now, false), ...this.#refill(now)];
  }

  tick(now: number): MembershipAction[] {
    const actions: MembershipAction[] = [];
    if (this.#nextKeepalive !== null && this.#nextKeepalive <= now) {
      const late = now - this.#nextKeepalive;
      this.#nextKeepalive = now + this.config.keepaliveIntervalMs;
      actions.push(...this.#keepalive(now, late));
    }
    if (this.#nextShuffle !== null && this.#nextShuffle <= now) {
      this.#nextShuffle = now + this.config.shuffleIntervalMs;
      actions.push(...this.#shuffle());
    }
    return actions;
  }

  /** Leave: tell every neighbour. */
  leave(): MembershipAction[] {
    const actions: MembershipAction[] = [];
    for (const peer of this.active.keys()) {
      actions.push({ type: "send", peer, message: { type: "disconnect" } }, { type: "close", peer, failed: false });
    }
    this.active.clear();
    this.#nextKeepalive = this.#nextShuffle = null;
    return actions;
  }

  // -- internals ----------------------------------------------------------------------------

  #walkAllowed(from: PeerId, now: number): boolean {
    if (this.active.has(from)) return true;
    const left = this.#leftAt.get(from);
    return left !== undefined && now - left < this.config.walkGraceMs;
  }

  #pick<T>(items: Iterable<T>, except: readonly T[] = []): T | null {
    const pool = [...items].filter((item) => !except.includes(item));
    return pool.length === 0 ? null : (pool[this.#random.below(pool.length)] as T);
  }

  /** How many neighbours, the oldest ones, a newcomer cannot displace. */
  #protected(now: number): number {
    let count = 0;
    for (const neighbour of this.active.values()) {
      if (count >= this.config.protectedCount || neighbour.since > now - this.config.protectAfterMs) break;
      count++;
    }
    return count;
  }

  /**
   * Take `peer`, a newcomer that asked (or was walked) here, into the active view: a full
   * view makes room by displacing an unprotected neighbour, within the eviction budget if
   * `budget` (which applies from `protectAfterMs` after the start); null if it cannot.
   */
  #admit(peer: PeerId, now: number, budget = true): MembershipAction[] | null {
    if (this.active.has(peer)) return [];
    const config = this.config;
    if (this.active.size >= config.activeSize) {
      const tokens = Math.min(config.evictionBurst, this.#evictionTokens + (now - this.#tokensAt) / config.evictionIntervalMs);
      this.#tokensAt = now;
      const charged = budget && now - this.#born >= config.protectAfterMs;
      this.#evictionTokens = tokens;
      if ((charged && tokens < 1) || this.#protected(now) >= this.active.size) return null;
      if (charged) this.#evictionTokens = tokens - 1;
    }
    return this.#addActive(peer, now);
  }

  #addActive(peer: PeerId, now: number): MembershipAction[] {
    if (peer === this.self || this.active.has(peer)) return [];
    const actions: MembershipAction[] = [];
    if (this.active.size >= this.config.activeSize) {
      const protectedCount = Math.min(this.#protected(now), this.active.size - 1);
      const victim = [...this.active.keys()][protectedCount + this.#random.below(this.active.size - protectedCount)] as PeerId;
      actions.push({ type: "send", peer: victim, message: { type: "disconnect" } }, ...this.#removeActive(victim, now, true),
        { type: "close", peer: victim, failed: false });
    }
    this.passive.delete(peer);
    this.#requests.delete(peer);
    this.active.set(peer, { since: now, heardAt: now, probedAt: null, confirmedAt: now });
    this.#refillPacing.viewChanged();
    actions.push({ type: "neighborUp", peer });
    return actions;
  }

  #removeActive(peer: PeerId, now: number, keepPassive: boolean): MembershipAction[] {
    this.active.delete(peer);
    this.#refillPacing.viewChanged();
    this.#leftAt.set(peer, now);
    if (this.#leftAt.size > 256) this.#leftAt.delete(this.#leftAt.keys().next().value as PeerId);
    if (keepPassive) this.#addPassive(peer, "");
    return [{ type: "neighborDown", peer }];
  }

  #addPassive(peer: PeerId, source: PeerId | ""): void {
    if (peer === this.self || this.active.has(peer) || this.passive.has(peer)) return;
    if (source !== "") {
      const fromSource = [...this.passive].filter(([, s]) => s === source).map(([p]) => p);
      if (fromSource.length >= this.config.passivePerSource) this.passive.delete(this.#pick(fromSource) as PeerId);
    }
    if (this.passive.size >= this.config.passiveSize) {
      const heard = [...this.passive].filter(([, s]) => s !== "").map(([p]) => p);
      this.passive.delete(this.#pick(heard.length > 0 ? heard : this.passive.keys()) as PeerId);
    }
    this.passive.set(peer, source);
  }

  #onJoin(from: PeerId, now: number): MembershipAction[] {
    const joins = this.#recentJoins;
    for (const [peer, at] of joins) { // oldest first: forget joins past the repeat interval
      if (at > now - this.config.joinRepeatIntervalMs) break;
      joins.delete(peer);
    }
    if (joins.has(from) && this.active.has(from)) return []; // a neighbour repeating its Join: no more walks
    const admitted = joins.has(from) ? null : this.#admit(from, now);
    if (admitted === null) { // a repeated join, or no room: not taken, and no walk for it
      return [{ type: "send", peer: from, message: { type: "disconnect" } }, { type: "close", peer: from, failed: false }];
    }
    if (this.config.joinMemory > 0) {
      joins.set(from, now);
      if (joins.size > this.config.joinMemory) joins.delete(joins.keys().next().value as PeerId);
    }
    const actions = admitted;
    for (const peer of this.active.keys()) {
      if (peer !== from) actions.push({ type: "send", peer, message: { type: "forwardJoin", peer: from, ttl: this.config.arwl } });
    }
    return actions;
  }

  #onForwardJoin(from: PeerId, newcomer: PeerId, ttl: number, now: number): MembershipAction[] {
    if (newcomer === this.self) return [];
    if (ttl === 0 || this.active.size <= 1) return this.#acceptNewcomer(newcomer, from, now);
    if (ttl === this.config.prwl) this.#addPassive(newcomer, from);
    const next = this.#pick(this.active.keys(), [from, newcomer]);
    if (next === null) return this.#acceptNewcomer(newcomer, from, now);
    return [{ type: "send", peer: next, message: { type: "forwardJoin", peer: newcomer, ttl: ttl - 1 } }];
  }

  /** A walk ended here: take the newcomer if there is room (else keep it as a passive peer). */
  #acceptNewcomer(newcomer: PeerId, from: PeerId, now: number): MembershipAction[] {
    if (this.active.has(newcomer)) return [];
    const admitted = this.#admit(newcomer, now);
    if (admitted === null) {
      this.#addPassive(newcomer, from);
      return [];
    }
    return [...admitted, { type: "send", peer: newcomer, message: { type: "neighbor", high: true } }];
  }

  #onNeighbor(from: PeerId, high: boolean, now: number): MembershipAction[] {
    // A high-priority request (from a node with no neighbour left, or healing) may displace an
    // unprotected neighbour, outside the eviction budget: refusing it could isolate a node.
    const mayTake = high || this.active.size < this.config.activeSize;
    const admitted = this.active.has(from) ? [] : mayTake ? this.#admit(from, now, false) : null;
    if (admitted !== null) {
      return [...admitted, { type: "send", peer: from, message: { type: "neighborReply", accepted: true } }];
    }
    const actions: MembershipAction[] = [{ type: "send", peer: from, message: { type: "neighborReply", accepted: false } }];
    if (!this.#requests.has(from)) actions.push({ type: "close", peer: from, failed: false });
    return actions;
  }

  #onNeighborReply(from: PeerId, accepted: boolean, now: number): MembershipAction[] {
    if (!this.#requests.delete(from)) return this.#onUnaskedReply(from, accepted, now);
    if (accepted) return this.#addActive(from, now);
    this.#refillPacing.refused();
    this.#addPassive(from, "");
    return [{ type: "close", peer: from, failed: false }, ...this.#refill(now)];
  }

  /** The answer to a confirmation (or to a request that timed out): make the views agree. */
  #onUnaskedReply(from: PeerId, accepted: boolean, now: number): MembershipAction[] {
    if (!accepted && this.active.has(from)) {
      // It does not hold us: it leaves the active view (it is alive: to the passive view).
      return [...this.#removeActive(from, now, true), { type: "close", peer: from, failed: false }, ...this.#refill(now)];
    }
    if (accepted && !this.active.has(from)) {
      // It holds us and we do not hold it: tell it.
      return [{ type: "send", peer: from, message: { type: "disconnect" } }, { type: "close", peer: from, failed: false }];
    }
    return [];
  }

  /** Ask the neighbour asked longest ago whether it still holds us (one per keep-alive tick). */
  #confirmOne(now: number): MembershipAction[] {
    let oldest: [PeerId, Neighbour] | null = null;
    for (const entry of this.active) {
      if (oldest === null || entry[1].confirmedAt < oldest[1].confirmedAt) oldest = entry;
    }
    if (oldest === null) return [];
    oldest[1].confirmedAt = now;
    return [{ type: "send", peer: oldest[0], message: { type: "neighbor", high: false } }];
  }

  /** Ask passive peers to fill the free active slots (one request per slot), within the refusal allowance. */
  #refill(now: number): MembershipAction[] {
    const actions: MembershipAction[] = [];
    if (this.#refillPacing.spent(this.config.rejectionsPerInterval)) return actions;
    while (this.active.size + this.#requests.size < this.config.activeSize) {
      const peer = this.#pick([...this.passive.keys()].filter((p) => !this.#requests.has(p)));
      if (peer === null) break;
      const high = this.active.size === 0 && this.#requests.size === 0;
      this.#requests.set(peer, now);
      actions.push({ type: "send", peer, message: { type: "neighbor", high } });
    }
    return actions;
  }

  /** `late`: how late this tick is (ms); pending probes move that much later (nothing was read meanwhile). */
  #keepalive(now: number, late: number): MembershipAction[] {
    const actions: MembershipAction[] = [];
    for (const [peer, neighbour] of [...this.active]) {
      if (neighbour.probedAt !== null && late > 0) neighbour.probedAt += late;
      if (neighbour.probedAt !== null && now - neighbour.probedAt >= this.config.probeTimeoutMs) {
        actions.push(...this.#removeActive(peer, now, false), { type: "close", peer, failed: true });
      } else if (neighbour.probedAt === null && now - neighbour.heardAt >= this.config.keepaliveIntervalMs) {
        neighbour.probedAt = now;
        actions.push({ type: "probe", peer });
      }
    }
    for (const [peer, askedAt] of [...this.#requests]) {
      if (now - askedAt >= this.config.probeTimeoutMs) {
        this.#requests.delete(peer);
        this.passive.delete(peer);
        actions.push({ type: "close", peer, failed: true });
      }
    }
    const config = this.config;
    const refill = this.#refillPacing.tick(now, config.keepaliveIntervalMs, config.rejectionsPerInterval, config.refillBackoffMs)
      || this.active.size === 0;
    return [...actions, ...this.#confirmOne(now), ...(refill ? this.#refill(now) : [])];
  }

  #sample(items: Iterable<PeerId>, count: number): PeerId[] {
    return this.#random.shuffled([...items]).slice(0, count);
  }

  #shuffle(): MembershipAction[] {
    const target = this.#pick(this.active.keys());
    if (target === null) return [];
    const peers = [...this.#sample([...this.active.keys()].filter((p) => p !== target), this.config.shuffleActive),
      ...this.#sample(this.passive.keys(), this.config.shufflePassive)];
    this.#lastShuffle = peers;
    return [{ type: "send", peer: target, message: { type: "shuffle", origin: this.self, ttl: this.config.arwl, peers } }];
  }

  #onShuffle(from: PeerId, origin: PeerId, ttl: number, received: readonly PeerId[], now: number): MembershipAction[] {
    const peers = received.slice(0, this.config.shuffleActive + this.config.shufflePassive);
    if (ttl - 1 > 0 && this.active.size > 1) {
      const next = this.#pick(this.active.keys(), [from, origin]);
      if (next !== null) return [{ type: "send", peer: next, message: { type: "shuffle", origin, ttl: ttl - 1, peers } }];
    }
    if (origin === this.self) return [];
    const actions: MembershipAction[] = [];
    // Over a link we have; one of its own only within `exchangeReplyBurst` (then closed again).
    const linked = this.active.has(origin) || this.#requests.has(origin);
    if (linked || this.#exchanges.tryTake(1, now)) {
      const reply = this.#sample(this.passive.keys(), peers.length + 1);
      actions.push({ type: "send", peer: origin, message: { type: "shuffleReply", peers: reply } });
      if (!linked) actions.push({ type: "close", peer: origin, failed: false });
    } else { // and a burst of shuffles naming many origins cannot make us dial them all
      this.exchangeRepliesRefused++;
    }
    for (const peer of [origin, ...peers]) this.#addPassive(peer, from);
    return actions;
  }

  #onShuffleReply(from: PeerId, peers: readonly PeerId[]): MembershipAction[] {
    if (this.#lastShuffle === null) return [];
    const keep = peers.slice(0, this.#lastShuffle.length + 1);
    this.#lastShuffle = null;
    for (const peer of keep) this.#addPassive(peer, from);
    return [];
  }
}
