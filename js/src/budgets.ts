/**
 * What the per-neighbour budgets share (docs/overlay.md "Per-neighbour
 * budgets", docs/pubsub.md sections 2 and 3): token buckets and the bounded
 * table of the peers that have one.  Pure: time is an argument, in ms.
 */

/** A token bucket that starts full. */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(readonly perSecond: number, readonly burst: number, now: number) {
    this.#tokens = burst;
    this.#at = now;
  }

  /** The tokens there are at `now` (refilled since the last call). */
  available(now: number): number {
    this.#tokens = Math.min(this.burst, this.#tokens + Math.max(0, now - this.#at) / 1000 * this.perSecond);
    this.#at = Math.max(this.#at, now);
    return this.#tokens;
  }

  /** Spend `amount` (after `available` said there were enough). */
  take(amount: number): void {
    this.#tokens -= amount;
  }

  /** Spend `amount` if there are that many at `now`; false (nothing spent) if not. */
  tryTake(amount: number, now: number): boolean {
    if (this.available(now) < amount) return false;
    this.#tokens -= amount;
    return true;
  }
}

/**
 * `peer`'s entry of `table` (made by `make` if it has none), now the most
 * recently active; the least recently active beyond `maxPeers` are forgotten.
 */
export function activeEntry<K, V>(table: Map<K, V>, peer: K, make: () => V, maxPeers: number): V {
  const entry = table.get(peer) ?? make();
  table.delete(peer);
  table.set(peer, entry);
  while (table.size > maxPeers) table.delete(table.keys().next().value as K);
  return entry;
}
