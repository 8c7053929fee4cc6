/**
 * Per-neighbour budgets of link frames (docs/overlay.md "Per-neighbour
 * budgets"): every item of every protocol counts as a message (`Ping`s and
 * `Pong`s too), and every byte of the frame.  A frame over budget is dropped
 * unread and is one offence; offences refill at 1 a second up to 50, and a
 * neighbour that runs out is to be treated as failed.  Buckets are kept per
 * peer id (the last `maxPeers` active) and outlive the link, so a peer that
 * reconnects starts with no offences to spare.  `Graft` and `IHave` budgets
 * are not needed: a browser peer ignores both.  Pure: time is an argument.
 */

import { activeEntry, TokenBucket } from "../budgets.js";
import type { PeerId } from "../wire/peerId.js";

export interface LinkBudgetConfig {
  readonly messagesPerSecond: number;
  readonly messageBurst: number;
  readonly bytesPerSecond: number;
  readonly byteBurst: number;
  readonly offencesPerSecond: number;
  readonly offenceBurst: number;
  /** Peers with a budget, at most (least recently active forgotten). */
  readonly maxPeers: number;
}

export const DEFAULT_LINK_BUDGET_CONFIG: LinkBudgetConfig = Object.freeze({
  messagesPerSecond: 2_000, messageBurst: 4_000, bytesPerSecond: 4 << 20, byteBurst: 16 << 20,
  offencesPerSecond: 1, offenceBurst: 50, maxPeers: 1024,
});

export type FrameVerdict = "admit" | "drop" | "disconnect";

interface Budget { readonly messages: TokenBucket; readonly bytes: TokenBucket; readonly offences: TokenBucket }

export class LinkBudgets {
  readonly config: LinkBudgetConfig;
  /** Frames dropped unread for being over budget. */
  framesRefused = 0;
  readonly #budgets = new Map<PeerId, Budget>();

  constructor(config: LinkBudgetConfig = DEFAULT_LINK_BUDGET_CONFIG) {
    this.config = config;
  }

  /** A link frame of `size` bytes holding `messages` items came from `peer`. */
  admitFrame(peer: PeerId, size: number, messages: number, now: number): FrameVerdict {
    const budget = this.#budget(peer, now);
    const count = Math.max(1, messages);
    if (budget.messages.available(now) >= count && budget.bytes.available(now) >= size) {
      budget.messages.take(count);
      budget.bytes.take(size);
      return "admit";
    }
    this.framesRefused++;
    if (budget.offences.available(now) < 1) return "disconnect";
    budget.offences.take(1);
    return "drop";
  }

  #budget(peer: PeerId, now: number): Budget {
    const c = this.config;
    return activeEntry(this.#budgets, peer, () => ({
      messages: new TokenBucket(c.messagesPerSecond, c.messageBurst, now),
      bytes: new TokenBucket(c.bytesPerSecond, c.byteBurst, now),
      offences: new TokenBucket(c.offencesPerSecond, c.offenceBurst, now),
    }), c.maxPeers);
  }
}
