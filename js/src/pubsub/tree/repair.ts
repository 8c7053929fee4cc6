/**
 * The repair (docs/pubsub.md section 7): when a neighbour's side of invariant
 * (I) widens, restore it, paced.  As the reference's `taiinet/pubsub/tree/repair.py`.
 *
 * Theory of operation.  A neighbour's side of (I) is its *signature*: the
 * link's epoch, whether it is a tree link, whether it is the parent told so,
 * and its filter keys.  After every input the router calls `run`, which
 * compares each neighbour's signature with the one (I) was last restored
 * for.  A widening (new link, link turned tree, neighbour became the parent
 * told so, a filter not in the old set) makes the retained documents it now
 * must hold and does not *owed* to it.  A narrowing
 * makes the documents pushed to it that it no longer must hold count as not
 * held: it may have dropped them.  The repair never reshapes the tree.
 *
 * The pace (`RestorePace`): owed documents go out within a token bucket per
 * neighbour (`rate` a second, at most `burst` at once, full when the link is
 * new); what the bucket leaves owed is pushed by `drain`, which the router
 * runs on its restore ticks (`pending` says whether it must), each document
 * checked again then (it may have expired, or come from the neighbour
 * meanwhile).  And restores push a document to the same neighbour at most
 * `maxRepushes` times; past that it is skipped and counted.  Pushing
 * thousands of owed documents in one step overflowed a new link's send
 * queue and the receiver's document budget; while links flap, every
 * narrowing and widening pushed everything again.  Both bounds are local
 * policy: a peer sees only documents arriving later, or not at all past the
 * re-push budget.  Pure: time is an argument, in ms.
 *
 * Newest first: each step takes the newest owed documents the bucket allows
 * and pushes them in the order this node took them (a backlog within the
 * burst, a one-shot publisher's above all, still goes out in order).  What a
 * neighbour whose parent changed lacks is what was in flight on the tree when
 * it changed, the newest; pushed oldest first, those came after the whole
 * backlog, once the retention's count bound had evicted them (docs/pubsub.md
 * section 7, "Pace").
 */

import { TokenBucket } from "../../budgets.js";
import type { PeerId } from "../../wire/peerId.js";
import type { Retained, Retention } from "./retention.js";

/** How fast one neighbour is pushed what a widening owes it (docs/pubsub.md section 7, "Pace"). */
export interface RestorePace {
  /** Documents a second (> 0). */
  readonly rate: number;
  /** Documents at once, at most (>= 1). */
  readonly burst: number;
  /** Times restores push one document to one neighbour, at most (>= 1). */
  readonly maxRepushes: number;
}

/** A neighbour's side of (I): link epoch, tree link, parent told so, filter keys. */
export interface Signature { readonly epoch: number; readonly tree: boolean; readonly told: boolean; readonly keys: ReadonlySet<string> }

/** What the repair needs of the router (the reference's `Forwarding`): links, documents, (I), the push. */
export interface Forwarding<Out> {
  /** Active neighbour -> epoch of the current link. */
  readonly epochs: ReadonlyMap<PeerId, number>;
  readonly retention: Retention;
  signature(peer: PeerId, epoch: number): Signature;
  /** Invariant (I): whether `peer` must hold `doc`. */
  mustHold(doc: Retained, peer: PeerId): boolean;
  /** Push `doc` (retained under `key`) to `peer` on link `epoch`, into `out`. */
  push(key: string, doc: Retained, peer: PeerId, epoch: number, out: Out[]): void;
}

function subset(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const k of a) if (!b.has(k)) return false;
  return true;
}

/** Whether `peer` must now hold more than (I) was last restored for. */
export function widened(old: Signature | undefined, now: Signature): boolean {
  if (old === undefined || old.epoch !== now.epoch) return true;
  return (now.tree && !old.tree) || (now.told && !old.told) || !subset(now.keys, old.keys);
}

/** Whether `peer`, on the same link, must now hold less (what it held may be dropped). */
export function narrowed(old: Signature, now: Signature): boolean {
  return (old.tree && !now.tree) || (old.told && !now.told) || !subset(old.keys, now.keys);
}

/** What one neighbour is still owed: retention keys in the order taken (pushed from the end), its bucket. */
interface Owed { readonly epoch: number; keys: string[]; readonly bucket: TokenBucket }

export class Repair<Out> {
  readonly forwarding: Forwarding<Out>;
  readonly pace: RestorePace;
  /** Documents pushed by restores (not by ordinary forwarding). */
  repaired = 0;
  /** Owed documents not pushed: past their re-push budget for that neighbour. */
  skipped = 0;
  readonly #signatures = new Map<PeerId, Signature>();
  readonly #owed = new Map<PeerId, Owed>();

  constructor(forwarding: Forwarding<Out>, pace: RestorePace) {
    if (!(pace.rate > 0)) throw new RangeError("the restore rate must be positive");
    if (!(pace.burst >= 1) || !(pace.maxRepushes >= 1)) throw new RangeError("the restore burst and max re-pushes must be at least 1");
    this.forwarding = forwarding;
    this.pace = pace;
  }

  /** Some neighbour is still owed documents (the router ticks `drain`). */
  get pending(): boolean {
    return this.#owed.size > 0;
  }

  /** Owe every neighbour whose signature widened since last time what it now must hold, and push it what its budget allows now. */
  run(out: Out[], now: number): void {
    const fwd = this.forwarding;
    this.#forgetGone();
    for (const [peer, epoch] of fwd.epochs) {
      const current = fwd.signature(peer, epoch);
      const old = this.#signatures.get(peer);
      if (old !== undefined && old.epoch === current.epoch && old.tree === current.tree && old.told === current.told
        && old.keys.size === current.keys.size && subset(old.keys, current.keys)) continue;
      this.#signatures.set(peer, current);
      if (old !== undefined && old.epoch === current.epoch && narrowed(old, current)) this.#narrowed(peer);
      if (widened(old, current)) {
        this.#owe(peer, epoch, now);
        this.#pushOwed(peer, now, out);
      }
    }
  }

  /** Push every neighbour what its budget allows of what it is owed. */
  drain(out: Out[], now: number): void {
    this.#forgetGone();
    for (const peer of [...this.#owed.keys()]) this.#pushOwed(peer, now, out);
  }

  /** Forget the signatures of neighbours gone and what links gone were owed. */
  #forgetGone(): void {
    const epochs = this.forwarding.epochs;
    for (const peer of [...this.#signatures.keys()]) if (!epochs.has(peer)) this.#signatures.delete(peer);
    for (const [peer, owed] of [...this.#owed]) if (epochs.get(peer) !== owed.epoch) this.#owed.delete(peer);
  }

  /** `peer` narrowed: what it no longer must hold no longer counts as pushed to it. */
  #narrowed(peer: PeerId): void {
    const fwd = this.forwarding;
    for (const [, doc] of fwd.retention.entries()) {
      if (doc.pushed.has(peer) && !fwd.mustHold(doc, peer)) doc.pushed.delete(peer);
    }
  }

  #owe(peer: PeerId, epoch: number, now: number): void {
    const fwd = this.forwarding;
    const keys: string[] = [];
    for (const [key, doc] of fwd.retention.entries()) {
      if (!doc.heldBy(peer, epoch) && fwd.mustHold(doc, peer)) keys.push(key);
    }
    const owed = this.#owed.get(peer);
    if (owed !== undefined && owed.epoch === epoch) { // the same link: its bucket goes on
      owed.keys = keys;
    } else {
      this.#owed.set(peer, { epoch, keys, bucket: new TokenBucket(this.pace.rate, this.pace.burst, now) });
    }
  }

  #pushOwed(peer: PeerId, now: number, out: Out[]): void {
    const owed = this.#owed.get(peer);
    if (owed === undefined) return;
    const fwd = this.forwarding;
    const { keys, bucket, epoch } = owed;
    const limit = this.pace.maxRepushes;
    const picked: [string, Retained][] = [];
    while (keys.length > 0 && bucket.available(now) >= 1) {
      const key = keys.pop() as string; // the newest first
      const doc = fwd.retention.get(key);
      if (doc === undefined || doc.heldBy(peer, epoch) || !fwd.mustHold(doc, peer)) continue; // expired, got it meanwhile, or no longer owed
      doc.repushes ??= new Map();
      const done = doc.repushes.get(peer) ?? 0;
      if (done >= limit) {
        this.skipped++;
        continue;
      }
      doc.repushes.set(peer, done + 1);
      bucket.take(1);
      picked.push([key, doc]);
    }
    for (let i = picked.length - 1; i >= 0; i--) { // one step's pushes in the order taken
      const [key, doc] = picked[i] as [string, Retained];
      fwd.push(key, doc, peer, epoch, out);
    }
    this.repaired += picked.length;
    if (keys.length === 0) this.#owed.delete(peer);
  }
}
