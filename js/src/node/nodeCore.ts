/**
 * A browser peer's protocol core: HyParView membership, Plumtree broadcast
 * and the local subscriptions, composed (docs/peer.md, steps 9-14).
 *
 * Theory of operation.  Frames from a neighbour are decoded here (a `Ping`
 * is answered, a malformed frame or overlay message drops its link, other
 * layers' frames are ignored); overlay messages go to membership or
 * broadcast; membership's neighbour events feed broadcast.  A published
 * document is sealed and broadcast; a payload from the network is opened
 * (every check of docs/protocol.md "Published documents") before Plumtree
 * accepts it, and delivered to each local subscription whose query matches.
 * This peer sends no `InterestAdvert`: its neighbours send it every document
 * (docs/pubsub.md), and it filters them itself.
 */

import { RemoteProtocolError } from "../errors.js";
import { toHex } from "../bytes.js";
import { decodeLinkFrame, encodeOverlayFrame, encodePing, encodePong } from "../link/frames.js";
import { type OverlayMsg, fromOverlayProto, toOverlayProto } from "../overlay/codec.js";
import { DEFAULT_HYPARVIEW_CONFIG, HyParView, type HyParViewConfig, type MembershipAction } from "../overlay/hyparview.js";
import { type BroadcastAction, DEFAULT_PLUMTREE_CONFIG, Plumtree, type PlumtreeConfig } from "../overlay/plumtree.js";
import { type OpenedDocument, RejectedDocument, openDocument, sealDocument } from "../pubsub/document.js";
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
  readonly broadcast: PlumtreeConfig;
  /** Local subscriptions, at most. */
  readonly maxSubscriptions: number;
}

export const DEFAULT_NODE_CORE_CONFIG: NodeCoreConfig = Object.freeze({
  membership: DEFAULT_HYPARVIEW_CONFIG, broadcast: DEFAULT_PLUMTREE_CONFIG, maxSubscriptions: 64,
});

export class NodeCore {
  readonly identity: Identity;
  readonly membership: HyParView;
  readonly broadcast: Plumtree;
  readonly config: NodeCoreConfig;
  /** Documents dropped by reason (a peer's fault), and frames dropped as malformed. */
  readonly rejected = new Map<string, number>();
  readonly #random: SeededRandom;
  readonly #subscriptions = new Map<number, Query>();
  readonly #opened = new Map<string, OpenedDocument>(); // the document Plumtree is accepting right now
  #nextSubscription = 1;

  constructor(identity: Identity, random: SeededRandom, config: NodeCoreConfig = DEFAULT_NODE_CORE_CONFIG) {
    this.identity = identity;
    this.config = config;
    this.#random = random;
    this.membership = new HyParView(identity.peerId, random, config.membership);
    this.broadcast = new Plumtree(identity.peerId, (id, payload) => this.#check(id, payload), config.broadcast);
  }

  get timer(): number | null {
    const times = [this.membership.timer, this.broadcast.timer].filter((t): t is number => t !== null);
    return times.length === 0 ? null : Math.min(...times);
  }

  get neighbors(): PeerId[] {
    return [...this.membership.active.keys()];
  }

  start(contact: PeerId | null, now: number): NodeAction[] {
    return this.#membershipActions(this.membership.start(contact, now), now);
  }

  subscribe(query: Query): number {
    if (this.#subscriptions.size >= this.config.maxSubscriptions) throw new RangeError(`at most ${this.config.maxSubscriptions} subscriptions`);
    const id = this.#nextSubscription++;
    this.#subscriptions.set(id, query);
    return id;
  }

  unsubscribe(id: number): void {
    this.#subscriptions.delete(id);
  }

  /** Sign and broadcast `document`; `InvalidDocument` if it is not one. */
  publish(document: Document, now: number): [string, NodeAction[]] {
    const sealed = sealDocument(this.identity, document, Math.floor(now), this.#random.nextU64());
    this.#opened.set(toHex(sealed.messageId), {
      messageId: sealed.messageId, publisher: this.identity.peerId, document, publishedUnixMs: Math.floor(now),
    });
    const actions = this.#broadcastActions(this.broadcast.broadcast(sealed.messageId, sealed.envelope, now), now);
    this.#opened.clear();
    return [toHex(sealed.messageId), actions];
  }

  /** A link frame from `peer`. */
  receive(peer: PeerId, data: Uint8Array, now: number): NodeAction[] {
    this.membership.heardFrom(peer, now);
    const actions: NodeAction[] = [];
    try {
      for (const frame of decodeLinkFrame(data)) {
        if (frame.kind === "ping") actions.push({ type: "send", peer, frame: encodePong(frame.nonce) });
        else if (frame.kind === "overlay") actions.push(...this.#onOverlay(peer, fromOverlayProto(frame.message), now));
      }
    } catch (error) {
      if (!(error instanceof RemoteProtocolError)) throw error;
      this.#count(`malformed: ${error.name}`);
      return [...actions, { type: "close", peer, failed: true }, ...this.linkDown(peer, now)];
    }
    return actions;
  }

  linkDown(peer: PeerId, now: number): NodeAction[] {
    return this.#membershipActions(this.membership.linkDown(peer, now), now);
  }

  tick(now: number): NodeAction[] {
    return [...this.#membershipActions(this.membership.tick(now), now), ...this.#broadcastActions(this.broadcast.tick(now), now)];
  }

  leave(now: number): NodeAction[] {
    return this.#membershipActions(this.membership.leave(), now);
  }

  // -- internals ----------------------------------------------------------------------------

  #onOverlay(peer: PeerId, message: OverlayMsg, now: number): NodeAction[] {
    switch (message.type) {
      case "gossip": case "ihave": case "graft": case "prune":
        return this.#broadcastActions(this.broadcast.receive(peer, message, now), now);
      default:
        return this.#membershipActions(this.membership.receive(peer, message, now), now);
    }
  }

  #check(id: Uint8Array, payload: Uint8Array): boolean {
    const key = toHex(id);
    if (this.#opened.has(key)) return true;
    try {
      this.#opened.set(key, openDocument(id, payload));
      return true;
    } catch (error) {
      if (!(error instanceof RejectedDocument)) throw error;
      this.#count(error.reason);
      return false;
    }
  }

  #count(reason: string): void {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
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
        case "neighborUp": changed = true; out.push(...this.#broadcastActions(this.broadcast.neighborUp(action.peer, now), now)); break;
        case "neighborDown": changed = true; this.broadcast.neighborDown(action.peer); break;
      }
    }
    if (changed) out.push({ type: "neighbors", peers: this.neighbors });
    return out;
  }

  #broadcastActions(actions: readonly BroadcastAction[], now: number): NodeAction[] {
    const out: NodeAction[] = [];
    for (const action of actions) {
      if (action.type === "send") out.push(this.#send(action.peer, action.message));
      else if (action.type === "drop") out.push({ type: "close", peer: action.peer, failed: true }, ...this.linkDown(action.peer, now));
      else out.push(...this.#deliver(action.id, action.from));
    }
    return out;
  }

  #deliver(id: Uint8Array, via: PeerId | null): NodeAction[] {
    const key = toHex(id);
    const opened = this.#opened.get(key);
    this.#opened.delete(key);
    if (opened === undefined) return [];
    const out: NodeAction[] = [];
    for (const [subscription, query] of this.#subscriptions) {
      if (query.matches(opened.document)) out.push({ type: "deliver", subscription, document: opened, via });
    }
    return out;
  }
}
