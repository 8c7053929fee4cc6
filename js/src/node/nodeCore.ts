/**
 * A browser peer's protocol core: HyParView membership, the stable-tree
 * content router and the local subscriptions, composed (docs/peer.md, steps
 * 9-14; docs/pubsub.md).
 *
 * Theory of operation.  Frames from a neighbour are decoded here (a `Ping`
 * is answered, a malformed frame, overlay message or advert drops its link,
 * other layers' frames are ignored); membership messages go to HyParView,
 * `Gossip` and `InterestAdvert`s to the router (Plumtree's `IHave`, `Graft`
 * and `Prune` are not part of the stable tree and are ignored).
 * Membership's neighbour events feed the router, which sends interest
 * adverts, pushes documents along the tree and delivers them to the local
 * subscriptions that match.  A published document is sealed here and
 * handed to the router.  Every component check interval, healing
 * (docs/pubsub.md section 8) looks at the tree's members and the passive
 * view and may ask membership to reach out of a closed-off component.
 */

import { RemoteProtocolError } from "../errors.js";
import { fromHex, toHex } from "../bytes.js";
import { decodeLinkFrame, encodeOverlayFrame, encodePing, encodePong } from "../link/frames.js";
import { type OverlayMsg, fromOverlayProto, toOverlayProto } from "../overlay/codec.js";
import { DEFAULT_HYPARVIEW_CONFIG, HyParView, type HyParViewConfig, type MembershipAction } from "../overlay/hyparview.js";
import { DEFAULT_LINK_BUDGET_CONFIG, type LinkBudgetConfig, LinkBudgets } from "../overlay/linkBudget.js";
import { decodeLinkFrame as splitItems } from "../wire/linkFrame.js";
import { advertFromProto, encodeAdvertFrame } from "../pubsub/advert.js";
import { type OpenedDocument, openDocument, sealDocument } from "../pubsub/document.js";
import { COMPONENT_CHECK_INTERVAL_MS, Healing } from "../pubsub/tree/healing.js";
import { DEFAULT_ROUTER_CONFIG, type RouterAction, type RouterConfig, TreeRouter } from "../pubsub/tree/router.js";
import type { Query } from "../query/query.js";
import type { Document } from "../query/values.js";
import type { SeededRandom } from "../random.js";
import type { Identity } from "../wire/identity.js";
import type { PeerId } from "../wire/peerId.js";

export type NodeAction =
  | { readonly type: "send"; readonly peer: PeerId; readonly frame: Uint8Array }
  | { readonly type: "close"; readonly peer: PeerId; readonly failed: boolean }
  /** `via`: the neighbour the document came from (null: published here). */
  | { readonly type: "deliver"; readonly subscription: number; readonly document: OpenedDocument; readonly via: PeerId | null }
  | { readonly type: "neighbors"; readonly peers: readonly PeerId[] };

export interface NodeCoreConfig {
  readonly membership: HyParViewConfig;
  readonly routing: RouterConfig;
  /** Local subscriptions, at most. */
  readonly maxSubscriptions: number;
  /** Healing's check, every this many ms times a uniform factor in [1, 2); null: never (tests). */
  readonly componentCheckIntervalMs: number | null;
  /** What each neighbour may send, in link frames (docs/overlay.md "Per-neighbour budgets"). */
  readonly linkBudget: LinkBudgetConfig;
}

export const DEFAULT_NODE_CORE_CONFIG: NodeCoreConfig = Object.freeze({
  membership: DEFAULT_HYPARVIEW_CONFIG, routing: DEFAULT_ROUTER_CONFIG, maxSubscriptions: 64,
  componentCheckIntervalMs: COMPONENT_CHECK_INTERVAL_MS, linkBudget: DEFAULT_LINK_BUDGET_CONFIG,
});

export class NodeCore {
  readonly identity: Identity;
  readonly membership: HyParView;
  readonly router: TreeRouter;
  readonly healing = new Healing();
  readonly linkBudgets: LinkBudgets;
  readonly config: NodeCoreConfig;
  /** Frames dropped as malformed, by error. */
  readonly #malformed = new Map<string, number>();
  readonly #random: SeededRandom;
  readonly #subscriptions = new Set<number>();
  #nextSubscription = 1;
  #nextComponentCheck: number | null = null;

  constructor(identity: Identity, random: SeededRandom, config: NodeCoreConfig = DEFAULT_NODE_CORE_CONFIG) {
    this.identity = identity;
    this.config = config;
    this.#random = random;
    this.membership = new HyParView(identity.peerId, random, config.membership);
    this.router = new TreeRouter(identity.peerId, config.routing);
    this.linkBudgets = new LinkBudgets(config.linkBudget);
  }

  /** What this node dropped as a peer's fault: malformed frames (`malformed: <error>`) and documents by reason. */
  get rejected(): Map<string, number> {
    return new Map([...this.#malformed, ...this.router.rejected]);
  }

  get timer(): number | null {
    const times = [this.membership.timer, this.router.timer, this.#nextComponentCheck].filter((t): t is number => t !== null);
    return times.length === 0 ? null : Math.min(...times);
  }

  get neighbors(): PeerId[] {
    return [...this.membership.active.keys()];
  }

  /** `now`: the wall clock in Unix ms (this node's start is its claim as the tree's root);
   * `known`: the other contacts, kept as passive entries (`HyParView.start`). */
  start(contact: PeerId | null, now: number, known: readonly PeerId[] = []): NodeAction[] {
    this.router.start(now);
    this.#armComponentCheck(now);
    return this.#membershipActions(this.membership.start(contact, now, known), now);
  }

  subscribe(query: Query, now: number): [number, NodeAction[]] {
    if (this.#subscriptions.size >= this.config.maxSubscriptions) throw new RangeError(`at most ${this.config.maxSubscriptions} subscriptions`);
    const id = this.#nextSubscription++;
    this.#subscriptions.add(id);
    return [id, this.#routerActions(this.router.subscribe(id, query, now), now)];
  }

  unsubscribe(id: number, now: number): NodeAction[] {
    this.#subscriptions.delete(id);
    return this.#routerActions(this.router.unsubscribe(id, now), now);
  }

  /** Sign and route `document`; its message id (hex). `InvalidDocument` if it is not one. */
  publish(document: Document, now: number): [string, NodeAction[]] {
    const sealed = sealDocument(this.identity, document, Math.floor(now), this.#random.nextU64());
    const opened = openDocument(sealed.messageId, sealed.envelope);
    return [toHex(sealed.messageId), this.#routerActions(this.router.publish(sealed.messageId, sealed.envelope, opened, now), now)];
  }

  /** The neighbours holding a document published here (the hand-off of docs/pubsub.md section 7). */
  handedTo(id: string): PeerId[] {
    return this.router.handedTo(fromHex(id));
  }

  /** A link frame from `peer`. */
  receive(peer: PeerId, data: Uint8Array, now: number): NodeAction[] {
    this.membership.heardFrom(peer, now);
    const actions: NodeAction[] = [];
    try {
      // Charged before anything is parsed: a frame over budget is dropped unread.
      const verdict = this.linkBudgets.admitFrame(peer, data.length, splitItems(data).length, now);
      if (verdict === "disconnect") {
        this.#count("link frames over budget");
        return this.#drop(peer, now);
      }
      if (verdict === "drop") return [];
      for (const frame of decodeLinkFrame(data)) {
        if (frame.kind === "ping") actions.push({ type: "send", peer, frame: encodePong(frame.nonce) });
        else if (frame.kind === "overlay") actions.push(...this.#onOverlay(peer, fromOverlayProto(frame.message), now));
        else if (frame.kind === "pubsub") {
          const verdict = this.router.admitAdvert(peer, now);
          if (verdict === "disconnect") return [...actions, ...this.#drop(peer, now)];
          if (verdict === "admit") actions.push(...this.#routerActions(this.router.advert(peer, advertFromProto(frame.message), now), now));
        }
      }
    } catch (error) {
      if (!(error instanceof RemoteProtocolError)) throw error;
      this.#count(`malformed: ${error.name}`);
      return [...actions, ...this.#drop(peer, now)];
    }
    return actions;
  }

  linkDown(peer: PeerId, now: number): NodeAction[] {
    return this.#membershipActions(this.membership.linkDown(peer, now), now);
  }

  tick(now: number): NodeAction[] {
    return [...this.#membershipActions(this.membership.tick(now), now), ...this.#routerActions(this.router.tick(now), now),
      ...this.#checkComponent(now)];
  }

  leave(now: number): NodeAction[] {
    this.#nextComponentCheck = null;
    return this.#membershipActions(this.membership.leave(), now);
  }

  // -- internals ----------------------------------------------------------------------------

  #armComponentCheck(now: number): void {
    const interval = this.config.componentCheckIntervalMs;
    this.#nextComponentCheck = interval === null ? null : now + interval * (1 + this.#random.random());
  }

  /** Healing (docs/pubsub.md section 8): reach out of a component cut off from the overlay. */
  #checkComponent(now: number): NodeAction[] {
    if (this.#nextComponentCheck === null || now < this.#nextComponentCheck) return [];
    this.#armComponentCheck(now);
    const full = this.membership.active.size >= this.membership.config.activeSize;
    const outsider = this.healing.check(this.router.tree, [...this.membership.passive.keys()], full);
    return outsider === null ? [] : this.#membershipActions(this.membership.reachOut(outsider, now), now);
  }

  #onOverlay(peer: PeerId, message: OverlayMsg, now: number): NodeAction[] {
    switch (message.type) {
      case "gossip": return this.#routerActions(this.router.gossip(peer, message.id, message.hops, message.payload, now), now);
      case "ihave": case "graft": case "prune": return [];
      default: return this.#membershipActions(this.membership.receive(peer, message, now), now);
    }
  }

  #drop(peer: PeerId, now: number): NodeAction[] {
    return [{ type: "close", peer, failed: true }, ...this.linkDown(peer, now)];
  }

  #count(reason: string): void {
    this.#malformed.set(reason, (this.#malformed.get(reason) ?? 0) + 1);
  }

  #send(peer: PeerId, message: OverlayMsg): NodeAction {
    return { type: "send", peer, frame: encodeOverlayFrame(toOverlayProto(message)) };
  }

  #membershipActions(actions: readonly MembershipAction[], now: number): NodeAction[] {
    const out: NodeAction[] = [];
    let changed = false;
    for (const action of actions) {
      switch (action.type) {
        case "send": out.push(this.#send(action.peer, action.message)); break;
        case "close": out.push(action); break;
        case "probe": out.push({ type: "send", peer: action.peer, frame: encodePing(0n) }); break;
        case "neighborUp": changed = true; out.push(...this.#routerActions(this.router.neighborUp(action.peer, now), now)); break;
        case "neighborDown": changed = true; out.push(...this.#routerActions(this.router.neighborDown(action.peer, now), now)); break;
      }
    }
    if (changed) out.push({ type: "neighbors", peers: this.neighbors });
    return out;
  }

  #routerActions(actions: readonly RouterAction[], now: number): NodeAction[] {
    const out: NodeAction[] = [];
    for (const action of actions) {
      switch (action.type) {
        case "push":
          out.push(this.#send(action.peer, { type: "gossip", id: action.id, hops: action.hops, payload: action.payload, origin: "", entry: 0n }));
          break;
        case "advert": out.push({ type: "send", peer: action.peer, frame: encodeAdvertFrame(action.advert) }); break;
        case "deliver":
          for (const subscription of action.subscriptions) out.push({ type: "deliver", subscription, document: action.document, via: action.via });
          break;
        case "drop": out.push(...this.#drop(action.peer, now)); break;
      }
    }
    return out;
  }
}
