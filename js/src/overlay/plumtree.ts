/**
 * Plumtree broadcast for the browser peer (docs/overlay.md, "Broadcast").
 *
 * Theory of operation.  Neighbours are *eager* (they get the payload: `Gossip`)
 * or *lazy* (they get an announcement: `IHave`); a new neighbour is eager.  A
 * duplicate from an eager neighbour prunes it to lazy, so the eager links
 * settle into a tree.  An announced id that does not arrive within
 * `ihaveTimeoutMs` is grafted from its announcers, one every
 * `graftTimeoutMs`.  A payload is checked by the layer above (`accept`)
 * before it is delivered, marked seen or forwarded: a payload that fails is
 * dropped and counted against its sender.  Pure: inputs take `now` (ms).
 *
 * Departures from docs/overlay.md: one shared tree, no per-origin trees
 * (`origin_trees = 0`, which the spec allows: a `Prune(o)` or `Graft(id, o)`
 * for an origin we keep no tree for applies to the shared sets), no flood
 * prefix, no tree optimisation, no lazy batching of `IHave`s (they leave at
 * once), no per-neighbour rate budgets (a sender of bad documents is dropped
 * after `maxBadDocuments`).
 */

import { fromHex, toHex } from "../bytes.js";
import type { PeerId } from "../wire/peerId.js";
import type { OverlayMsg } from "./codec.js";

export interface PlumtreeConfig {
  readonly ihaveTimeoutMs: number;
  readonly graftTimeoutMs: number;
  /** Delivered ids remembered (FIFO). */
  readonly seenCacheSize: number;
  /** Bytes of delivered payloads kept to answer grafts (oldest out first). */
  readonly payloadCacheBytes: number;
  /** Announced-but-missing ids tracked, and announcers per id. */
  readonly maxMissing: number;
  readonly maxAnnouncers: number;
  /** A new neighbour hears of the messages delivered this recently (at most `catchUpMessages`). */
  readonly catchUpMs: number;
  readonly catchUpMessages: number;
  /** Bad documents a neighbour may send before its link is dropped. */
  readonly maxBadDocuments: number;
}

export const DEFAULT_PLUMTREE_CONFIG: PlumtreeConfig = Object.freeze({
  ihaveTimeoutMs: 400, graftTimeoutMs: 200, seenCacheSize: 10_000, payloadCacheBytes: 16 << 20,
  maxMissing: 1024, maxAnnouncers: 16, catchUpMs: 5_000, catchUpMessages: 8, maxBadDocuments: 6,
});

export type BroadcastAction =
  | { readonly type: "send"; readonly peer: PeerId; readonly message: OverlayMsg }
  | { readonly type: "deliver"; readonly id: Uint8Array; readonly payload: Uint8Array; readonly hops: number; readonly from: PeerId | null }
  | { readonly type: "drop"; readonly peer: PeerId; readonly reason: string };

interface Cached { readonly id: Uint8Array; readonly payload: Uint8Array; readonly hops: number; readonly origin: PeerId | ""; readonly at: number }
interface Missing { readonly announcers: [PeerId, number][]; at: number }

export class Plumtree {
  readonly self: PeerId;
  readonly config: PlumtreeConfig;
  readonly eager = new Set<PeerId>();
  readonly lazy = new Set<PeerId>();
  readonly #accept: (id: Uint8Array, payload: Uint8Array) => boolean;
  readonly #seen = new Map<string, number>(); // id -> hops
  readonly #payloads = new Map<string, Cached>();
  #payloadBytes = 0;
  readonly #missing = new Map<string, Missing>();
  readonly #bad = new Map<PeerId, number>();

  /** `accept(id, payload)`: the layer above's check of a payload (false: drop it). */
  constructor(self: PeerId, accept: (id: Uint8Array, payload: Uint8Array) => boolean, config: PlumtreeConfig = DEFAULT_PLUMTREE_CONFIG) {
    this.self = self;
    this.config = config;
    this.#accept = accept;
  }

  get timer(): number | null {
    let at = Infinity;
    for (const missing of this.#missing.values()) at = Math.min(at, missing.at);
    return at === Infinity ? null : at;
  }

  broadcast(id: Uint8Array, payload: Uint8Array, now: number): BroadcastAction[] {
    const key = toHex(id);
    if (this.#seen.has(key)) return [];
    this.#remember(key, { id, payload, hops: 0, origin: this.self, at: now });
    return [{ type: "deliver", id, payload, hops: 0, from: null }, ...this.#push(id, payload, 1, this.self, null)];
  }

  neighborUp(peer: PeerId, now: number): BroadcastAction[] {
    this.lazy.delete(peer);
    this.eager.add(peer);
    const recent = [...this.#payloads.values()].filter((c) => now - c.at <= this.config.catchUpMs).slice(-this.config.catchUpMessages);
    return recent.map((c) => ({ type: "send", peer, message: { type: "ihave", id: c.id, hops: c.hops + 1 } }));
  }

  neighborDown(peer: PeerId): void {
    this.eager.delete(peer);
    this.lazy.delete(peer);
    for (const [key, missing] of this.#missing) {
      const kept = missing.announcers.filter(([announcer]) => announcer !== peer);
      if (kept.length === 0) this.#missing.delete(key);
      else missing.announcers.splice(0, missing.announcers.length, ...kept);
    }
  }

  receive(from: PeerId, message: OverlayMsg, now: number): BroadcastAction[] {
    switch (message.type) {
      case "gossip": return this.#onGossip(from, message.id, message.hops, message.payload, message.origin, now);
      case "ihave": return this.#onIHave(from, message.id, message.hops, now);
      case "graft": return this.#onGraft(from, message.id);
      case "prune":
        if (this.eager.delete(from)) this.lazy.add(from);
        return [];
      default: return [];
    }
  }

  tick(now: number): BroadcastAction[] {
    const actions: BroadcastAction[] = [];
    for (const [key, missing] of this.#missing) {
      if (missing.at > now) continue;
      const [announcer] = missing.announcers.shift() ?? [];
      if (missing.announcers.length === 0) this.#missing.delete(key);
      else missing.at = now + this.config.graftTimeoutMs;
      if (announcer === undefined) continue;
      this.#makeEager(announcer);
      actions.push({ type: "send", peer: announcer, message: { type: "graft", id: fromHex(key), origin: "" } });
    }
    return actions;
  }

  // -- internals ----------------------------------------------------------------------------

  #neighbour(peer: PeerId): boolean {
    return this.eager.has(peer) || this.lazy.has(peer);
  }

  #makeEager(peer: PeerId): void {
    if (!this.#neighbour(peer)) return;
    this.lazy.delete(peer);
    this.eager.add(peer);
  }

  #push(id: Uint8Array, payload: Uint8Array, hops: number, origin: PeerId | "", except: PeerId | null): BroadcastAction[] {
    const actions: BroadcastAction[] = [];
    for (const peer of this.eager) {
      if (peer !== except) actions.push({ type: "send", peer, message: { type: "gossip", id, hops, payload, origin, entry: 0n } });
    }
    for (const peer of this.lazy) {
      if (peer !== except) actions.push({ type: "send", peer, message: { type: "ihave", id, hops } });
    }
    return actions;
  }

  #onGossip(from: PeerId, id: Uint8Array, hops: number, payload: Uint8Array, origin: PeerId | "", now: number): BroadcastAction[] {
    const key = toHex(id);
    if (this.#seen.has(key)) {
      if (!this.eager.has(from)) return [];
      this.eager.delete(from);
      this.lazy.add(from);
      return [{ type: "send", peer: from, message: { type: "prune", origin } }];
    }
    if (!this.#accept(id, payload)) {
      const bad = (this.#bad.get(from) ?? 0) + 1;
      this.#bad.set(from, bad);
      if (this.#bad.size > 1024) this.#bad.delete(this.#bad.keys().next().value as PeerId);
      return bad >= this.config.maxBadDocuments ? [{ type: "drop", peer: from, reason: `${bad} bad documents` }] : [];
    }
    this.#missing.delete(key);
    this.#remember(key, { id, payload, hops, origin, at: now });
    this.#makeEager(from);
    return [{ type: "deliver", id, payload, hops, from }, ...this.#push(id, payload, Math.min(hops + 1, 255), origin, from)];
  }

  #onIHave(from: PeerId, id: Uint8Array, hops: number, now: number): BroadcastAction[] {
    const key = toHex(id);
    if (this.#seen.has(key) || !this.#neighbour(from)) return [];
    const missing = this.#missing.get(key);
    if (missing !== undefined) {
      if (missing.announcers.length < this.config.maxAnnouncers && !missing.announcers.some(([p]) => p === from)) missing.announcers.push([from, hops]);
      return [];
    }
    if (this.#missing.size >= this.config.maxMissing) return [];
    this.#missing.set(key, { announcers: [[from, hops]], at: now + this.config.ihaveTimeoutMs });
    return [];
  }

  #onGraft(from: PeerId, id: Uint8Array): BroadcastAction[] {
    this.#makeEager(from);
    if (id.length === 0) return [];
    const cached = this.#payloads.get(toHex(id));
    if (cached === undefined) return [];
    return [{ type: "send", peer: from, message: {
      type: "gossip", id: cached.id, hops: Math.min(cached.hops + 1, 255), payload: cached.payload, origin: cached.origin, entry: 0n,
    } }];
  }

  #remember(key: string, cached: Cached): void {
    this.#seen.set(key, cached.hops);
    if (this.#seen.size > this.config.seenCacheSize) this.#seen.delete(this.#seen.keys().next().value as string);
    this.#payloads.set(key, cached);
    this.#payloadBytes += cached.payload.length;
    while (this.#payloadBytes > this.config.payloadCacheBytes && this.#payloads.size > 1) {
      const [oldest, entry] = this.#payloads.entries().next().value as [string, Cached];
      this.#payloads.delete(oldest);
      this.#payloadBytes -= entry.payload.length;
    }
  }
}
