/**
 * The spanning tree (docs/pubsub.md section 4): distance-vector routes to the
 * oldest root.
 *
 * Theory of operation.  For each active neighbour the node keeps the route
 * that neighbour last advertised and whether it says "you are my parent"
 * (`child`).  Its own route is the smallest, as `(since, root, distance)`
 * and then by the neighbour's id, of `(own start, own id, 0)` and
 * `(since_q, root_q, distance_q + 1)` over the neighbours that offer a root,
 * are not its children and are within `MAX_ROOT_DISTANCE`; its parent is the
 * neighbour of that route.  A link is a tree link iff one end is the other's
 * parent.  The tree changes only when an active view changes.
 */

import { MAX_ROOT_DISTANCE, TREE_SIZE_CAP } from "../advert.js";
import type { PeerId } from "../../wire/peerId.js";

/** A route: the root's start (Unix ms), the root's id, the distance in links. */
export interface Route { readonly since: number; readonly root: string; readonly distance: number }

/** What a neighbour last advertised about the tree. */
export interface Offer extends Route {
  /** The neighbour says we are its parent. */
  readonly child: boolean;
  /** Its side of a tree link, when fewer than `TREE_SIZE_CAP` nodes (else null). */
  readonly members: ReadonlySet<string> | null;
}

/** Peer ids and roots compare as strings, by code point (docs/pubsub.md section 3). */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareRoutes(a: Route, b: Route): number {
  return a.since !== b.since ? (a.since < b.since ? -1 : 1) : compareIds(a.root, b.root) || a.distance - b.distance;
}

export class SpanningTree {
  readonly self: PeerId;
  /** This node's start, Unix ms: its claim as a root. */
  since: number;
  /** Active neighbour -> its last offer (null: no advert on this link yet). */
  readonly offers = new Map<PeerId, Offer | null>();
  parent: PeerId | null = null;
  route: Route;

  constructor(self: PeerId, since = 0) {
    this.self = self;
    this.since = since;
    this.route = { since, root: self, distance: 0 };
  }

  add(peer: PeerId): void {
    if (!this.offers.has(peer)) this.offers.set(peer, null);
  }

  remove(peer: PeerId): void {
    this.offers.delete(peer);
  }

  offer(peer: PeerId, route: Route, child: boolean, members: readonly string[]): void {
    if (!this.offers.has(peer)) return;
    const known = members.length > 0 && members.length < TREE_SIZE_CAP ? new Set(members) : null;
    this.offers.set(peer, { since: route.since, root: route.root, distance: route.distance, child, members: known });
  }

  /** Choose the route and parent again; true if either changed. */
  recompute(): boolean {
    let best: Route = { since: this.since, root: this.self, distance: 0 };
    let parent: PeerId | null = null;
    for (const [peer, offer] of this.offers) {
      if (offer === null || offer.root === "" || offer.child) continue;
      const distance = offer.distance + 1;
      if (distance > MAX_ROOT_DISTANCE) continue;
      const mine: Route = { since: offer.since, root: offer.root, distance };
      const order = compareRoutes(mine, best);
      if (order < 0 || (order === 0 && parent !== null && compareIds(peer, parent) < 0)) {
        best = mine;
        parent = peer;
      }
    }
    const changed = compareRoutes(best, this.route) !== 0 || parent !== this.parent;
    this.route = best;
    this.parent = parent;
    return changed;
  }

  isTreeLink(peer: PeerId): boolean {
    if (peer === this.parent) return true;
    return this.offers.get(peer)?.child === true;
  }

  treeLinks(): PeerId[] {
    return [...this.offers.keys()].filter((peer) => this.isTreeLink(peer));
  }

  /** Whether `peer` says we are its parent, or may have made us its parent already: our route,
   * one link on, beats the one it last offered (its "you are my parent" can still be on the link,
   * behind a push it made meanwhile). */
  mayBeChild(peer: PeerId): boolean {
    const offer = this.offers.get(peer);
    if (offer === undefined || offer === null) return false;
    if (offer.child || offer.root === "") return true;
    const { since, root, distance } = this.route;
    return distance < MAX_ROOT_DISTANCE && compareRoutes({ since, root, distance: distance + 1 }, offer) < 0;
  }

  /** This side of the tree link to `peer` (split horizon; `null`: the whole component, every
   * tree link); null at `TREE_SIZE_CAP` or when a tree link's side is not known yet. */
  membersFor(peer: PeerId | null): Set<string> | null {
    const members = new Set<string>([this.self]);
    for (const [other, offer] of this.offers) {
      if (other === peer || !this.isTreeLink(other)) continue;
      if (offer === null || offer.members === null) return null;
      for (const m of offer.members) members.add(m);
      if (members.size >= TREE_SIZE_CAP) return null;
    }
    return members;
  }
}
