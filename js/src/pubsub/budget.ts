/**
 * Per-neighbour budgets for pushed documents and adverts (docs/pubsub.md
 * sections 2 and 3): token buckets per peer id, kept for at most `maxPeers`
 * peers (least recently active forgotten), surviving disconnections.  Over
 * budget is one offence, an invalid document `INVALID_DOCUMENT_OFFENCES`;
 * a peer whose offence bucket runs dry is to be disconnected.
 */

import { activeEntry, TokenBucket } from "../budgets.js";
import type { PeerId } from "../wire/peerId.js";

export interface BudgetConfig {
  readonly documentsPerSecond: number;
  readonly documentBurst: number;
  readonly bytesPerSecond: number;
  readonly byteBurst: number;
  readonly offencesPerSecond: number;
  readonly offenceBurst: number;
  readonly advertsPerSecond: number;
  readonly advertBurst: number;
  /** Peers with a budget, at most. */
  readonly maxPeers: number;
}

export const DEFAULT_BUDGET_CONFIG: BudgetConfig = Object.freeze({
  documentsPerSecond: 1000, documentBurst: 2000, bytesPerSecond: 2 << 20, byteBurst: 8 << 20,
  offencesPerSecond: 1, offenceBurst: 50, advertsPerSecond: 50, advertBurst: 200, maxPeers: 1024,
});

/** An invalid document costs this many offences. */
export const INVALID_DOCUMENT_OFFENCES = 10;

export type Verdict = "admit" | "drop" | "disconnect";

interface Budget {
  readonly documents: TokenBucket; readonly bytes: TokenBucket; readonly adverts: TokenBucket; readonly offences: TokenBucket;
}

export class PeerBudgets {
  readonly config: BudgetConfig;
  readonly #budgets = new Map<PeerId, Budget>();

  constructor(config: BudgetConfig = DEFAULT_BUDGET_CONFIG) {
    this.config = config;
  }

  /** A pushed document of `size` bytes. */
  admit(peer: PeerId, size: number, now: number): Verdict {
    const b = this.#budget(peer, now);
    if (b.documents.tryTake(1, now) && b.bytes.tryTake(size, now)) return "admit";
    return this.offend(peer, 1, now);
  }

  /** A pubsub frame, before it is decoded. */
  admitAdvert(peer: PeerId, now: number): Verdict {
    return this.#budget(peer, now).adverts.tryTake(1, now) ? "admit" : this.offend(peer, 1, now);
  }

  /** `count` offences: "drop" (the thing at fault only) or "disconnect". */
  offend(peer: PeerId, count: number, now: number): Verdict {
    return this.#budget(peer, now).offences.tryTake(count, now) ? "drop" : "disconnect";
  }

  #budget(peer: PeerId, now: number): Budget {
    const c = this.config;
    return activeEntry(this.#budgets, peer, () => ({
      documents: new TokenBucket(c.documentsPerSecond, c.documentBurst, now),
      bytes: new TokenBucket(c.bytesPerSecond, c.byteBurst, now),
      adverts: new TokenBucket(c.advertsPerSecond, c.advertBurst, now),
      offences: new TokenBucket(c.offencesPerSecond, c.offenceBurst, now),
    }), c.maxPeers);
  }
}
