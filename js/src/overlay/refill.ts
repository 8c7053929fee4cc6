/**
 * How often a short active view asks passive peers to fill it (HyParView's refill), as
 * `taiinet/overlay/refill.py` does (docs/overlay.md, "Refill").
 *
 * A view below `activeSize` sends `Neighbor` requests to random passive peers, one per
 * free slot, after every change and at each keep-alive tick; at most
 * `rejectionsPerInterval` refusals per tick.  When every peer it asks is full (a small
 * overlay whose other nodes all hold full views: 20 nodes of view 5 can settle with one
 * node at 4), asking again every tick only opens and closes links: 3 a tick, each a dial
 * (a WebRTC link with its Noise handshake).  So a tick that finds the refusal allowance
 * spent starts a backoff: the tick refills are skipped for `keepaliveIntervalMs` x 2, 4,
 * 8, ... up to `refillBackoffMs`, and while it lasts the allowance of a refilling tick is
 * one refusal (one dial per pause).  Any change of the active view (a neighbour lost or
 * gained, which is when room may have opened elsewhere) ends the backoff, and a node with
 * no neighbour never backs off (the caller refills regardless).  Pure: time is an
 * argument, in ms.
 */

/** Longest backoff, in keep-alive intervals doubled: 2^STRIKES_MAX. */
export const STRIKES_MAX = 16;

/** Refusals this tick, and the backoff of tick refills after refused ticks. */
export class RefillPacing {
  /** Requests refused since the last keep-alive tick. */
  rejections = 0;
  /** Consecutive ticks whose refusal allowance was spent. */
  strikes = 0;
  /** Tick refills wait until then (ms). */
  resumeAt = 0;

  refused(): void {
    this.rejections++;
  }

  /** Whether no more requests go out until the next tick (`allowance`: the refusals a tick may take, one while backing off). */
  spent(allowance: number): boolean {
    return this.rejections >= (this.strikes > 0 ? 1 : allowance);
  }

  /** A keep-alive tick: whether it refills (and a new allowance of refusals). */
  tick(now: number, intervalMs: number, allowance: number, longestMs: number): boolean {
    if (this.spent(allowance)) {
      this.strikes = Math.min(this.strikes + 1, STRIKES_MAX);
      this.resumeAt = now + Math.min(intervalMs * 2 ** this.strikes, longestMs);
    }
    this.rejections = 0;
    return now >= this.resumeAt;
  }

  /** A neighbour came or went: room may have opened; refill on the next tick. */
  viewChanged(): void {
    this.strikes = 0;
    this.resumeAt = 0;
  }
}
