/**
 * Retained documents, their holders, and the seen ids (docs/pubsub.md section 6).
 *
 * A document the node published or took *and had a use for* is kept for
 * `retentionMs` (bounded in number and bytes, oldest first) with its holders:
 * the neighbours it came from and those it was pushed to, each tagged with
 * the link (epoch) it happened on.  Message ids are remembered longer, with
 * whether the document was delivered here: a copy of a retained or delivered
 * one is a duplicate (exactly once); a copy of one seen but not kept, younger
 * than `retentionMs`, is taken again.  Evictions younger than `retentionMs`
 * void the contract for that document and are counted.
 */

import type { OpenedDocument } from "../document.js";
import type { PeerId } from "../../wire/peerId.js";

/** What a retained document counts besides its envelope and values. */
export const RECORD_BYTES = 512;
/** What each decoded value counts (docs/pubsub.md section 6). */
export const DECODED_VALUE_BYTES = 72;

export class Retained {
  readonly payload: Uint8Array;
  readonly opened: OpenedDocument;
  /** When this node first had it (ms). */
  readonly at: number;
  /** Links it had crossed here (0 at the publisher). */
  readonly hops: number;
  /** Published by this node. */
  readonly own: boolean;
  readonly cost: number;
  /** Neighbour -> epoch of the link on which it sent us this document. */
  readonly holders = new Map<PeerId, number>();
  /** Neighbour -> epoch of the link on which we pushed it this document. */
  readonly pushed = new Map<PeerId, number>();
  /** Neighbour -> times restores pushed it this document (each at most `RestorePace.maxRepushes`); null until the first restore. */
  repushes: Map<PeerId, number> | null = null;

  constructor(payload: Uint8Array, opened: OpenedDocument, at: number, hops: number, own: boolean, values: number) {
    this.payload = payload;
    this.opened = opened;
    this.at = at;
    this.hops = hops;
    this.own = own;
    this.cost = RECORD_BYTES + payload.length + values * DECODED_VALUE_BYTES;
  }

  heldBy(peer: PeerId, epoch: number): boolean {
    return this.holders.get(peer) === epoch || this.pushed.get(peer) === epoch;
  }
}

interface Seen { readonly at: number; delivered: boolean }

export class Retention {
  readonly retentionMs: number;
  readonly maxSize: number;
  readonly maxBytes: number;
  readonly seenSize: number;
  readonly #docs = new Map<string, Retained>();
  readonly #seen = new Map<string, Seen>();
  #bytes = 0;
  #now = 0;
  /** Documents / seen ids evicted by a bound before `retentionMs` had passed. */
  evictedYoung = 0;
  seenEvictedYoung = 0;

  constructor(retentionMs: number, maxSize: number, maxBytes: number, seenSize: number) {
    this.retentionMs = retentionMs;
    this.maxSize = maxSize;
    this.maxBytes = maxBytes;
    this.seenSize = seenSize;
  }

  /** A copy of `id` changes nothing: retained, delivered here, or older than the retention. */
  duplicate(id: string): boolean {
    const seen = this.#seen.get(id);
    if (seen === undefined) return false;
    return this.#docs.has(id) || seen.delivered || seen.at <= this.#now - this.retentionMs;
  }

  delivered(id: string): boolean {
    return this.#seen.get(id)?.delivered === true;
  }

  get(id: string): Retained | undefined {
    return this.#docs.get(id);
  }

  /** Remember `id` (first sight kept; delivered once stays delivered). */
  see(id: string, now: number, delivered: boolean): void {
    this.#now = now;
    const old = this.#seen.get(id);
    if (old !== undefined) {
      old.delivered ||= delivered;
      return;
    }
    this.#seen.set(id, { at: now, delivered });
    while (this.#seen.size > this.seenSize) {
      const [first, seen] = this.#seen.entries().next().value as [string, Seen];
      this.#seen.delete(first);
      if (seen.at > now - this.retentionMs) this.seenEvictedYoung++;
    }
  }

  /** Retain `doc`, evicting the oldest past either bound. */
  add(id: string, doc: Retained, now: number): void {
    this.expire(now);
    this.#docs.delete(id);
    this.#docs.set(id, doc);
    this.#bytes += doc.cost;
    while (this.#docs.size > this.maxSize || this.#bytes > this.maxBytes) {
      const [first, old] = this.#docs.entries().next().value as [string, Retained];
      this.#docs.delete(first);
      this.#bytes -= old.cost;
      if (old.at > now - this.retentionMs) this.evictedYoung++;
    }
  }

  /** Drop documents older than the retention (their ids stay seen). */
  expire(now: number): void {
    this.#now = now;
    for (const [id, doc] of this.#docs) {
      if (doc.at >= now - this.retentionMs) break;
      this.#docs.delete(id);
      this.#bytes -= doc.cost;
    }
  }

  entries(): [string, Retained][] {
    return [...this.#docs];
  }

  get size(): number {
    return this.#docs.size;
  }

  get bytes(): number {
    return this.#bytes;
  }
}
