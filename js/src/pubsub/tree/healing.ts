/**
 * Healing (docs/pubsub.md section 8): a component that cut itself off from
 * the overlay rejoins it.
 *
 * HyParView can close a small group whose active views are full of each
 * other; nothing fails inside it, so it never looks outside again.  In a
 * component of fewer than `TREE_SIZE_CAP` nodes the tree's adverts list the
 * members of each side of a tree link, so every node knows its whole
 * component (`SpanningTree.membersFor(null)`).  A passive peer that is not a
 * member lies outside the component (or is dead): reaching out to it (a
 * high-priority `Neighbor`, which cannot be refused) can only join two
 * components.  Only a node whose active view is full reaches out (one with a
 * free slot refills from its passive view anyway), and only to an outsider
 * seen at two checks in a row, so a member list still converging after a
 * change does not move a view.  Pure: the caller runs `check` every
 * component check interval.
 */

import type { PeerId } from "../../wire/peerId.js";
import { type SpanningTree, compareIds } from "./routes.js";

/** Every this many ms, times a uniform random factor in [1, 2) (docs/pubsub.md section 11). */
export const COMPONENT_CHECK_INTERVAL_MS = 2_000;

export class Healing {
  /** The outsider seen at the last check (null: none). */
  suspect: PeerId | null = null;
  /** Times this node reached out. */
  reachedOut = 0;

  /** The passive peer to reach out to now, or null; `full`: the active view is. */
  check(tree: SpanningTree, passive: readonly PeerId[], full: boolean): PeerId | null {
    const members = full ? tree.membersFor(null) : null;
    const outside = members === null ? [] : passive.filter((peer) => !members.has(peer)).sort(compareIds);
    const suspect = this.suspect;
    if (suspect !== null && outside.includes(suspect)) {
      this.suspect = null;
      this.reachedOut++;
      return suspect;
    }
    this.suspect = outside[0] ?? null;
    return null;
  }
}
