/**
 * Content-based routing on the stable spanning tree (docs/pubsub.md), pure.
 *
 * Theory of operation.  `TreeRouter` composes the spanning tree
 * (`routes.ts`), the interest table (`interest.ts`) and the retained
 * documents (`retention.ts`), and keeps invariant (I) of section 7: every
 * retained document is held by every tree neighbour whose interest matches
 * it (and by the parent told so, for this node's own publications).  A new
 * document is pushed to whoever breaks (I) (forwarding); after every input a
 * neighbour whose side of (I) widened is owed what it now must hold, and
 * pushed it at a bounded pace (the rest on restore ticks), and one whose
 * side narrowed stops counting as a holder of what it no longer must hold
 * (`repair.ts`).  Adverts go out one advert delay after a change,
 * coalesced.  The membership layer (HyParView) feeds `neighborUp` /
 * `neighborDown`; documents travel as overlay `Gossip`, which this router
 * sends (`push`) and checks itself.  Inputs take `now` in ms.
 */

import { bytesEqual, fromHex, toHex } from "../../bytes.js";
import type { Query } from "../../query/query.js";
import type { PeerId } from "../../wire/peerId.js";
import { type Advert, MAX_ADVERT_FILTERS, MAX_VERSION, TREE_SIZE_CAP } from "../advert.js";
import { DEFAULT_BUDGET_CONFIG, INVALID_DOCUMENT_OFFENCES, PeerBudgets, type BudgetConfig, type Verdict } from "../budget.js";
import { MAX_DOCUMENT_ENVELOPE, type OpenedDocument, RejectedDocument, documentId, openDocument } from "../document.js";
import { InterestTable, type Keyed, keyed } from "./interest.js";
import { Repair, type Signature } from "./repair.js";
import { Retained, Retention } from "./retention.js";
import { SpanningTree } from "./routes.js";

export interface RouterConfig {
  /** D: how long documents are retained (ms); the contract's deadline under churn. */
  readonly retentionMs: number;
  readonly retentionSize: number;
  readonly retentionBytes: number;
  readonly seenSize: number;
  /** Coalescing window of adverts (ms). */
  readonly advertDelayMs: number;
  /** Filters an advert sends, at most. */
  readonly maxAdvertFilters: number;
  /** Adverts kept from peers that are not neighbours yet. */
  readonly maxPendingAdverts: number;
  readonly budget: BudgetConfig;
  /**
   * The repair's pace (docs/pubsub.md section 7, "Pace"; local policy): documents a widened
   * neighbour is owed are pushed at most `restoreRate` a second and `restoreBurst` at once,
   * per neighbour, the rest on ticks every `restoreIntervalMs`; restores push each document
   * to each neighbour at most `maxRepushes` times.
   */
  readonly restoreRate: number;
  readonly restoreBurst: number;
  readonly restoreIntervalMs: number;
  readonly maxRepushes: number;
}

export const DEFAULT_ROUTER_CONFIG: RouterConfig = Object.freeze({
  retentionMs: 30_000, retentionSize: 4096, retentionBytes: 16 << 20, seenSize: 10_000,
  advertDelayMs: 10, maxAdvertFilters: 8, maxPendingAdverts: 16, budget: DEFAULT_BUDGET_CONFIG,
  restoreRate: 200, restoreBurst: 128, restoreIntervalMs: 50, maxRepushes: 2,
});

/** Hops saturate here (the overlay's `Gossip.hops` bound). */
export const MAX_HOPS = 255;

export type RouterAction =
  /** Send `Gossip{message_id: id, hops, payload}` to `peer`. */
  | { readonly type: "push"; readonly peer: PeerId; readonly id: Uint8Array; readonly hops: number; readonly payload: Uint8Array }
  | { readonly type: "advert"; readonly peer: PeerId; readonly advert: Advert }
  /** Deliver to these local subscriptions (`via`: null when published here). */
  | { readonly type: "deliver"; readonly subscriptions: readonly number[]; readonly document: OpenedDocument; readonly via: PeerId | null; readonly hops: number }
  /** Disconnect `peer` (it broke its budget); the caller closes the link and tells membership. */
  | { readonly type: "drop"; readonly peer: PeerId; readonly reason: string };

interface Sent { readonly keys: string; readonly parent: boolean; readonly route: string; readonly members: string; readonly tree: boolean }

export class TreeRouter {
  readonly self: PeerId;
  readonly config: RouterConfig;
  readonly tree: SpanningTree;
  readonly interest: InterestTable;
  readonly retention: Retention;
  /** (I) restored after widenings, paced; `repair.repaired` / `repair.skipped` count its pushes and skips. */
  readonly repair: Repair<RouterAction>;
  /** Counters: published, delivered, accepted, duplicates, unwanted, adverts, rejections by reason... */
  readonly stats = new Map<string, number>();
  /** Documents rejected, by reason (docs/pubsub.md section 2: oversized, id_mismatch, ...). */
  readonly rejected = new Map<string, number>();
  readonly #subscriptions = new Map<number, Query>();
  readonly #budgets: PeerBudgets;
  /** Active neighbour -> epoch of the current link. */
  readonly #epochs = new Map<PeerId, number>();
  #epoch = 0;
  /** Neighbours whose last advert from us said "you are my parent". */
  readonly #told = new Set<PeerId>();
  readonly #sent = new Map<PeerId, Sent>();
  /** Neighbour -> the filters last advertised to it on the current link. */
  readonly #advertised = new Map<PeerId, Keyed[]>();
  #version = 0n;
  #advertAt: number | null = null;
  /** When the next restore tick is due (some neighbour is owed documents), or null. */
  #restoreAt: number | null = null;

  constructor(self: PeerId, config: RouterConfig = DEFAULT_ROUTER_CONFIG) {
    if (config.maxAdvertFilters > MAX_ADVERT_FILTERS) throw new RangeError(`at most ${MAX_ADVERT_FILTERS} filters an advert`);
    this.self = self;
    this.config = config;
    this.tree = new SpanningTree(self);
    this.interest = new InterestTable(config.maxAdvertFilters, config.maxPendingAdverts);
    this.retention = new Retention(config.retentionMs, config.retentionSize, config.retentionBytes, config.seenSize);
    this.#budgets = new PeerBudgets(config.budget);
    if (!(config.restoreIntervalMs > 0)) throw new RangeError("the restore interval must be positive");
    this.repair = new Repair<RouterAction>({
      epochs: this.#epochs, retention: this.retention,
      signature: (peer, epoch) => this.#signature(peer, epoch),
      mustHold: (doc, peer) => this.#mustHold(doc, peer),
      push: (key, doc, peer, epoch, out) => {
        this.#count("repaired");
        this.#push(fromHex(key), doc, peer, epoch, out);
      },
    }, { rate: config.restoreRate, burst: config.restoreBurst, maxRepushes: config.maxRepushes });
  }

  /** When `tick` is next due (ms: the advert delay or the restore tick), or null. */
  get timer(): number | null {
    const advert = this.#advertAt;
    const restore = this.#restoreAt;
    return advert === null ? restore : restore === null ? advert : Math.min(advert, restore);
  }

  /** Call once: `startedUnixMs` (the wall clock now) is this node's claim as a root. */
  start(startedUnixMs: number): void {
    this.tree.since = Math.max(0, Math.floor(startedUnixMs));
    this.tree.recompute();
  }

  subscribe(id: number, query: Query, now: number): RouterAction[] {
    this.#subscriptions.set(id, query);
    this.interest.own.set(id, keyed(query));
    return this.#settle(now, []);
  }

  unsubscribe(id: number, now: number): RouterAction[] {
    if (!this.#subscriptions.delete(id)) return [];
    this.interest.own.delete(id);
    return this.#settle(now, []);
  }

  /** A document sealed here: deliver it locally and route it. */
  publish(id: Uint8Array, payload: Uint8Array, opened: OpenedDocument, now: number): RouterAction[] {
    this.#count("published");
    const out: RouterAction[] = [];
    this.#accept(toHex(id), id, new Retained(payload, opened, now, 0, true, opened.values), now, out, null);
    return out;
  }

  neighborUp(peer: PeerId, now: number): RouterAction[] {
    this.#epochs.set(peer, ++this.#epoch);
    this.#sent.delete(peer);
    this.#advertised.delete(peer);
    this.#told.delete(peer);
    this.tree.add(peer);
    const pending = this.interest.neighbourUp(peer);
    if (pending !== null) this.#offer(peer, pending.advert);
    return this.#settle(now, []);
  }

  neighborDown(peer: PeerId, now: number): RouterAction[] {
    if (!this.#epochs.delete(peer)) return [];
    this.#sent.delete(peer);
    this.#advertised.delete(peer);
    this.#told.delete(peer);
    this.tree.remove(peer);
    this.interest.neighbourDown(peer);
    return this.#settle(now, []);
  }

  /** A pubsub frame from `peer`, before it is decoded: "admit" to decode it. */
  admitAdvert(peer: PeerId, now: number): Verdict {
    const verdict = this.#budgets.admitAdvert(peer, now);
    if (verdict !== "admit") this.#count("adverts_over_budget");
    return verdict;
  }

  /** An advert from `peer` (decoded and valid). */
  advert(peer: PeerId, advert: Advert, now: number): RouterAction[] {
    this.#count("adverts_received");
    const neighbour = this.#epochs.has(peer);
    if (!this.interest.accept(peer, advert, neighbour)) {
      this.#count("adverts_ignored");
      return [];
    }
    if (!neighbour) return [];
    this.#offer(peer, advert);
    return this.#settle(now, []);
  }

  /** A `Gossip` pushed by `peer`. */
  gossip(peer: PeerId, id: Uint8Array, hops: number, payload: Uint8Array, now: number): RouterAction[] {
    const admitted = this.#budgets.admit(peer, payload.length, now);
    if (admitted !== "admit") {
      this.#count("over_budget");
      return admitted === "disconnect" ? this.#disconnect(peer, "over budget") : [];
    }
    const key = toHex(id);
    let opened: OpenedDocument;
    try {
      if (payload.length > MAX_DOCUMENT_ENVELOPE) throw new RejectedDocument("oversized", `a document of ${payload.length} bytes`);
      if (!bytesEqual(documentId(payload), id)) throw new RejectedDocument("id_mismatch", "the message id is not the envelope's SHA-256");
      if (this.retention.duplicate(key)) return this.#duplicate(peer, key);
      opened = openDocument(id, payload);
    } catch (error) {
      if (!(error instanceof RejectedDocument)) throw error;
      this.rejected.set(error.reason, (this.rejected.get(error.reason) ?? 0) + 1);
      return this.#budgets.offend(peer, INVALID_DOCUMENT_OFFENCES, now) === "drop" ? [] : this.#disconnect(peer, `invalid documents (${error.reason})`);
    }
    this.#count("accepted");
    const doc = new Retained(payload, opened, now, hops, false, opened.values);
    const epoch = this.#epochs.get(peer);
    if (epoch !== undefined) doc.holders.set(peer, epoch);
    const out: RouterAction[] = [];
    this.#accept(key, id, doc, now, out, peer);
    return out;
  }

  /** The timers due at `now`: owed documents pushed (restore tick), adverts sent. */
  tick(now: number): RouterAction[] {
    const out: RouterAction[] = [];
    if (this.#restoreAt !== null && now >= this.#restoreAt) {
      this.#restoreAt = null;
      this.#restore(now, out, true);
    }
    if (this.#advertAt !== null && now >= this.#advertAt) {
      this.#advertAt = null;
      this.#sendAdverts(now, out);
    }
    return out;
  }

  /** The neighbours holding this document on their current links (a publisher's hand-off). */
  handedTo(id: Uint8Array): PeerId[] {
    const doc = this.retention.get(toHex(id));
    if (doc === undefined) return [];
    const peers = new Set<PeerId>();
    for (const [peer, epoch] of [...doc.holders, ...doc.pushed]) if (this.#epochs.get(peer) === epoch) peers.add(peer);
    return [...peers].sort();
  }

  /** The filters `peer` last advertised to us (null: none on this link). */
  interestOf(peer: PeerId): readonly Query[] | null {
    return this.interest.remote.get(peer)?.advert.filters ?? null;
  }

  // -- documents ----------------------------------------------------------------------------

  #duplicate(peer: PeerId, key: string): RouterAction[] {
    this.#count("duplicates");
    const doc = this.retention.get(key);
    const epoch = this.#epochs.get(peer);
    if (doc !== undefined && epoch !== undefined) doc.holders.set(peer, epoch);
    return [];
  }

  #accept(key: string, id: Uint8Array, doc: Retained, now: number, out: RouterAction[], sender: PeerId | null): void {
    const matched: number[] = [];
    for (const [sub, query] of this.#subscriptions) if (query.matches(doc.opened.document)) matched.push(sub);
    if (matched.length > 0 && !this.retention.delivered(key)) {
      this.#count("delivered");
      out.push({ type: "deliver", subscriptions: matched, document: doc.opened, via: sender, hops: doc.hops });
    }
    for (const [peer, epoch] of this.#epochs) {
      if (!doc.heldBy(peer, epoch) && this.#mustHold(doc, peer)) this.#push(id, doc, peer, epoch, out);
    }
    this.retention.see(key, now, matched.length > 0);
    if (matched.length > 0 || this.#keeps(doc, sender)) this.retention.add(key, doc, now);
    else this.#count("unwanted");
  }

  /** Invariant (I): whether `peer` must hold `doc`. */
  #mustHold(doc: Retained, peer: PeerId): boolean {
    if (doc.own && peer === this.tree.parent && this.#told.has(peer)) return true;
    return this.tree.isTreeLink(peer) && this.interest.wants(peer, doc.opened.document);
  }

  /** Whether to retain a document no local subscription wants (docs/pubsub.md section 6, "use"). */
  #keeps(doc: Retained, sender: PeerId | null): boolean {
    if (doc.own) return true;
    for (const peer of this.#epochs.keys()) if (peer !== sender && this.#mustHold(doc, peer)) return true;
    if (sender === null) return false;
    if ((this.#advertised.get(sender) ?? []).some((f) => f.query.matches(doc.opened.document))) return true;
    return doc.opened.publisher === sender && this.tree.mayBeChild(sender);
  }

  #push(id: Uint8Array, doc: Retained, peer: PeerId, epoch: number, out: RouterAction[]): void {
    doc.pushed.set(peer, epoch);
    this.#count("pushed");
    out.push({ type: "push", peer, id, hops: Math.min(doc.hops + 1, MAX_HOPS), payload: doc.payload });
  }

  #disconnect(peer: PeerId, reason: string): RouterAction[] {
    this.#count("disconnected");
    return [{ type: "drop", peer, reason }];
  }

  // -- the tree, repair and adverts -----------------------------------------------------------

  #offer(peer: PeerId, advert: Advert): void {
    this.tree.offer(peer, { since: advert.rootSinceMs, root: advert.root, distance: advert.rootDistance }, advert.treeLink, advert.treeMembers);
  }

  /** After any change: routes, then (I) restored, then adverts (coalesced). */
  #settle(now: number, out: RouterAction[]): RouterAction[] {
    if (this.tree.recompute()) this.#count("route_changes");
    this.retention.expire(now);
    this.#restore(now, out);
    if (this.#advertAt === null) this.#advertAt = now + this.config.advertDelayMs;
    return out;
  }

  #signature(peer: PeerId, epoch: number): Signature {
    return {
      epoch, tree: this.tree.isTreeLink(peer), told: peer === this.tree.parent && this.#told.has(peer),
      keys: this.interest.keysOf(peer),
    };
  }

  /**
   * (I): owe widened neighbours their documents and push what their pace allows (first what
   * they were owed already, with `drain`); tick again while some are owed.
   */
  #restore(now: number, out: RouterAction[], drain = false): void {
    if (drain) this.repair.drain(out, now);
    this.repair.run(out, now);
    if (this.repair.pending && this.#restoreAt === null) this.#restoreAt = now + this.config.restoreIntervalMs;
  }

  #sendAdverts(now: number, out: RouterAction[]): void {
    const tree = this.tree;
    const links = tree.treeLinks();
    const route = tree.route;
    for (const peer of this.#epochs.keys()) {
      const isTree = tree.isTreeLink(peer);
      const filters = this.interest.filtersFor(peer, isTree, links);
      const parent = peer === tree.parent;
      const members = isTree ? tree.membersFor(peer) : null;
      const memberList = members === null ? [] : [...members].sort();
      const sent: Sent = {
        keys: filters.map((f) => f.key).join(","), parent, route: `${route.since}/${route.root}/${route.distance}`,
        members: members === null ? "" : memberList.join(","), tree: isTree,
      };
      const last = this.#sent.get(peer);
      if (last !== undefined && last.keys === sent.keys && last.parent === sent.parent && last.route === sent.route
        && last.members === sent.members && last.tree === sent.tree) continue;
      this.#sent.set(peer, sent);
      this.#advertised.set(peer, filters);
      if (parent) this.#told.add(peer);
      else this.#told.delete(peer);
      if (this.#version < MAX_VERSION) this.#version++;
      this.#count("adverts_sent");
      out.push({ type: "advert", peer, advert: {
        version: this.#version, filters: filters.map((f) => f.query), treeLink: parent, root: route.root as PeerId,
        rootDistance: route.distance, rootSinceMs: route.since,
        treeSize: isTree ? (members === null ? TREE_SIZE_CAP : members.size) : 0, treeMembers: memberList as PeerId[],
      } });
    }
    this.#restore(now, out); // after the adverts: a parent just told gets our publications
  }

  #count(what: string): void {
    this.stats.set(what, (this.stats.get(what) ?? 0) + 1);
  }
}

