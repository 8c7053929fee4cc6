/**
 * The interest table (docs/pubsub.md section 5): what each neighbour wants,
 * and what to advertise to it.
 *
 * A neighbour's interest is the filters of its last accepted advert (none
 * sent: nothing).  Over a tree link a node advertises the summary of its own
 * subscriptions and of its *other* tree links' interest (split horizon);
 * over any other link, no filter.  Adverts from peers that are not
 * neighbours yet are kept, at most `maxPending`, until they are.
 *
 * The summary (`summarize`): `{}` if `{}` is among the filters; else the
 * distinct filters (by canonical encoding) with the equalities on each path
 * merged into one `$in` (`../summary.ts`), in key order; `{}` when more than
 * `maxFilters` remain (the reference would widen them first; section 5
 * allows any covering summary).
 */

import { toHex } from "../../bytes.js";
import { MATCH_ALL } from "../../query/nodes.js";
import { Query } from "../../query/query.js";
import type { Document } from "../../query/values.js";
import type { PeerId } from "../../wire/peerId.js";
import type { Advert } from "../advert.js";
import { mergeEqualities } from "../summary.js";

/** A filter and its key: the hex of its canonical encoding. */
export interface Keyed { readonly key: string; readonly query: Query }

export const MATCH_ALL_QUERY = new Query({});
export const MATCH_ALL_KEY = toHex(MATCH_ALL_QUERY.toFilterBytes());

export function keyed(query: Query): Keyed {
  return { key: toHex(query.toFilterBytes()), query };
}

function isMatchAll(query: Query): boolean {
  return query.ast.kind === MATCH_ALL.kind && "children" in query.ast && query.ast.children.length === 0;
}

/** A neighbour's last accepted advert, compiled. */
export class RemoteInterest {
  readonly advert: Advert;
  readonly filters: readonly Keyed[];
  readonly keys: ReadonlySet<string>;
  readonly matchAll: boolean;

  constructor(advert: Advert) {
    this.advert = advert;
    this.filters = advert.filters.map(keyed);
    this.keys = new Set(this.filters.map((f) => f.key));
    this.matchAll = advert.filters.some(isMatchAll);
  }

  matches(document: Document): boolean {
    return this.matchAll || this.advert.filters.some((q) => q.matches(document));
  }
}

/** A covering summary of `unique` (key -> filter) in at most `maxFilters` filters. */
export function summarize(unique: ReadonlyMap<string, Query>, maxFilters: number): Keyed[] {
  if (unique.size === 0) return [];
  const all = [{ key: MATCH_ALL_KEY, query: MATCH_ALL_QUERY }];
  if (unique.has(MATCH_ALL_KEY)) return all;
  const merged = new Map(mergeEqualities([...unique.values()]).map((query) => [keyed(query).key, query]));
  if (merged.size > maxFilters) return all;
  return [...merged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, query]) => ({ key, query }));
}

export class InterestTable {
  /** Local subscriptions by id. */
  readonly own = new Map<number, Keyed>();
  /** Active neighbour -> its last accepted advert. */
  readonly remote = new Map<PeerId, RemoteInterest>();
  readonly #pending = new Map<PeerId, RemoteInterest>();
  readonly maxFilters: number;
  readonly maxPending: number;

  constructor(maxFilters: number, maxPending: number) {
    this.maxFilters = maxFilters;
    this.maxPending = maxPending;
  }

  /** Record `advert` unless stale (version not above the last accepted); false if ignored. */
  accept(peer: PeerId, advert: Advert, neighbour: boolean): boolean {
    const table = neighbour ? this.remote : this.#pending;
    const known = table.get(peer);
    if (known !== undefined && advert.version <= known.advert.version) return false;
    if (neighbour) {
      this.remote.set(peer, new RemoteInterest(advert));
      return true;
    }
    if (this.maxPending <= 0) return false;
    this.#pending.delete(peer);
    this.#pending.set(peer, new RemoteInterest(advert));
    while (this.#pending.size > this.maxPending) this.#pending.delete(this.#pending.keys().next().value as PeerId);
    return true;
  }

  /** `peer` became a neighbour: adopt the advert it sent before, if any. */
  neighbourUp(peer: PeerId): RemoteInterest | null {
    const pending = this.#pending.get(peer);
    if (pending === undefined) return null;
    this.#pending.delete(peer);
    this.remote.set(peer, pending);
    return pending;
  }

  neighbourDown(peer: PeerId): void {
    this.remote.delete(peer);
  }

  wants(peer: PeerId, document: Document): boolean {
    return this.remote.get(peer)?.matches(document) === true;
  }

  keysOf(peer: PeerId): ReadonlySet<string> {
    return this.remote.get(peer)?.keys ?? new Set();
  }

  /** What to advertise to `peer`: split horizon over tree links, else nothing. */
  filtersFor(peer: PeerId, treeLink: boolean, treeLinks: readonly PeerId[]): Keyed[] {
    if (!treeLink) return [];
    const unique = new Map<string, Query>();
    for (const { key, query } of this.own.values()) unique.set(key, query);
    for (const other of treeLinks) {
      if (other === peer) continue;
      for (const { key, query } of this.remote.get(other)?.filters ?? []) unique.set(key, query);
    }
    return summarize(unique, this.maxFilters);
  }
}
