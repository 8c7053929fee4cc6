/**
 * The application API of the browser peer:
 *
 *     const net = await TaiiNet.connect({ signallers: ["ws://..."], iceServers: [] });
 *     const sub = net.subscribe({ key: "value", age: { $gt: 4 } });
 *     sub.on("data", (msg) => console.log(msg.data, msg.publisher, msg.id));
 *     for await (const msg of sub) { ... }
 *     await sub.send({ key: "value", age: 5 });   // resolves once a neighbour holds it
 *     sub.close(); await net.close();
 *
 * The driver of `NodeCore`: links (RTCDataChannel + Noise, opened through the
 * signal client) by peer id, the clock and one timer.
 */

import { NoSignallerAvailable, NodeClosed } from "../errors.js";
import { NodeCore, type NodeAction } from "../node/nodeCore.js";
import type { OpenedDocument } from "../pubsub/document.js";
import { Query } from "../query/query.js";
import type { Document } from "../query/values.js";
import { SeededRandom } from "../random.js";
import { toHex } from "../bytes.js";
import { Identity } from "../wire/identity.js";
import type { PeerId } from "../wire/peerId.js";
import { HAND_OFF_TIMEOUT_MS, type HandOffSource, waitHandOff } from "./handOff.js";
import { AsyncQueue } from "./queue.js";
import { PeerLinks } from "./peerLinks.js";
import type { SecureLink } from "./secureChannel.js";
import { SignalClient } from "./signalClient.js";
import { type WebRTCOptions, acceptWebRTC, dialWebRTC } from "./webrtc.js";

/** Frames queued for a peer while its link is being opened, at most. */
export const DIAL_QUEUE_FRAMES = 256;
/** Messages a subscription holds for a reader that does not keep up; older ones are dropped. */
export const SUBSCRIPTION_QUEUE = 1024;
/** Links (open or being opened) a peer holds at most; offers beyond are refused. */
export const MAX_LINKS = 64;
/** How long `connect` waits for a signaller to accept us, by default (ms). */
export const REGISTER_TIMEOUT_MS = 30_000;
/** Contacts asked for when joining. */
export const JOIN_CONTACTS = 8;
/** A link frame between peers is at most 61,440 + 1,024 bytes (docs/overlay.md). */
export const OVERLAY_MAX_FRAME_SIZE = 62_464;

export interface ConnectOptions {
  readonly signallers: readonly string[];
  /** STUN/TURN servers (none by default: links to peers on the same host need none). */
  readonly iceServers?: RTCIceServer[];
  readonly iceTransportPolicy?: RTCIceTransportPolicy;
  readonly identity?: Identity;
  /** How long to wait for a signaller to accept us before giving up (`NoSignallerAvailable`). */
  readonly registerTimeoutMs?: number;
  /** How long `sub.send` waits for a neighbour to take the document (`HandOffTimeout`; default 30 s). */
  readonly handOffTimeoutMs?: number;
}

/** A document delivered to a subscription. */
export interface Message {
  readonly data: Document;
  readonly publisher: PeerId;
  /** The message id (SHA-256 of the signed envelope), hex. */
  readonly id: string;
  readonly publishedUnixMs: number;
  /** The neighbour it came from (null: published by this peer). */
  readonly via: PeerId | null;
}

function randomSeed(): bigint {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return (BigInt(words[0] as number) << 32n) | BigInt(words[1] as number);
}

export class Subscription implements AsyncIterable<Message> {
  readonly query: Query;
  readonly #net: TaiiNet;
  readonly #id: number;
  readonly #queue = new AsyncQueue<Message>(SUBSCRIPTION_QUEUE);
  readonly #handlers: ((message: Message) => void)[] = [];
  #closed = false;

  /** @internal */
  constructor(net: TaiiNet, id: number, query: Query) {
    this.#net = net;
    this.#id = id;
    this.query = query;
  }

  on(event: "data", handler: (message: Message) => void): this {
    if (event !== "data") throw new TypeError(`unknown event ${String(event)}`);
    this.#handlers.push(handler);
    return this;
  }

  /**
   * Publish `document` (to every subscriber whose query matches it, this one included if it
   * does); resolves with its message id (hex) once a neighbour holds it and the frame that
   * carried it left the link (the hand-off), so the page may close then.  `HandOffTimeout`
   * if no neighbour took it within `handOffTimeoutMs` (it stays retained and may still go
   * out); `NodeClosed` if the node closes first.
   */
  async send(document: Document): Promise<string> {
    const id = await this.#net.publish(document);
    await this.#net.handOff(id);
    return id;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#net.unsubscribe(this.#id);
    this.#queue.end();
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return this.#queue[Symbol.asyncIterator]();
  }

  /** @internal */
  deliver(message: Message): void {
    if (this.#closed) return;
    for (const handler of this.#handlers) handler(message);
    if (this.#handlers.length === 0 && !this.#queue.push(message)) {
      void this.#queue.next(); // full: the oldest goes, the newest stays
      this.#queue.push(message);
    }
  }
}

export class TaiiNet {
  readonly identity: Identity;
  readonly signal: SignalClient;
  readonly core: NodeCore;
  readonly #webrtc: WebRTCOptions;
  /** Open links by peer (two when both sides dialed at once: see `PeerLinks`). */
  readonly #links = new PeerLinks<SecureLink>();
  readonly #random = new SeededRandom(randomSeed());
  readonly #dialing = new Map<PeerId, Uint8Array[]>();
  readonly #subscriptions = new Map<number, Subscription>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** Resolvers of `HandOffSource.changed`: called after every action batch, link change and close. */
  #changeWaiters: (() => void)[] = [];
  readonly #handOffTimeoutMs: number;
  #closed = false;
  #accepting = 0;
  /** Called with the neighbours whenever they change. */
  onNeighbors: ((peers: readonly PeerId[]) => void) | null = null;

  private constructor(options: ConnectOptions) {
    this.identity = options.identity ?? Identity.generate();
    this.signal = SignalClient.connect(options.signallers, { identity: this.identity });
    this.core = new NodeCore(this.identity, this.#random);
    this.#handOffTimeoutMs = options.handOffTimeoutMs ?? HAND_OFF_TIMEOUT_MS;
    this.#webrtc = {
      iceServers: options.iceServers ?? [], maxFrameSize: OVERLAY_MAX_FRAME_SIZE,
      ...(options.iceTransportPolicy === undefined ? {} : { iceTransportPolicy: options.iceTransportPolicy }),
    };
  }

  /** Join the mesh: register with a signaller, take a contact, join the overlay through it. */
  static async connect(options: ConnectOptions): Promise<TaiiNet> {
    const net = new TaiiNet(options);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NoSignallerAvailable(
        `no signaller accepted us within ${options.registerTimeoutMs ?? REGISTER_TIMEOUT_MS} ms (last: ${net.signal.core.lastFailure || "none"})`)),
      options.registerTimeoutMs ?? REGISTER_TIMEOUT_MS);
    });
    try {
      await Promise.race([net.signal.registered(), timeout]);
    } catch (error) {
      await net.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    void net.#acceptOffers();
    const contacts = await net.signal.contacts(JOIN_CONTACTS).catch(() => []);
    const contact = contacts.length === 0 ? null : (contacts[net.#random.below(contacts.length)]?.peerId ?? null);
    net.#run(net.core.start(contact, Date.now(), contacts.map((c) => c.peerId)));
    return net;
  }

  get peerId(): PeerId {
    return this.identity.peerId;
  }

  get neighbors(): PeerId[] {
    return this.core.neighbors;
  }

  /** Subscribe to the documents matching `query` (`InvalidQuery`, naming the path at fault, if it is not valid). */
  subscribe(query: unknown): Subscription {
    if (this.#closed) throw new NodeClosed("the node is closed");
    const parsed = new Query(query);
    const [id, actions] = this.core.subscribe(parsed, Date.now());
    const subscription = new Subscription(this, id, parsed);
    this.#subscriptions.set(id, subscription);
    this.#run(actions);
    return subscription;
  }

  /** Sign and publish `document`; its message id (hex), at once (`handOff` waits for a neighbour to hold it). */
  async publish(document: Document): Promise<string> {
    if (this.#closed) throw new NodeClosed("the node is closed");
    const [id, actions] = this.core.publish(document, Date.now());
    this.#run(actions);
    return id;
  }

  /** Resolves once a neighbour holds the document `id` (hex) published here and the frame that
   * carried it left the link; `HandOffTimeout` after `timeoutMs`, `NodeClosed` if closed first. */
  handOff(id: string, timeoutMs = this.#handOffTimeoutMs): Promise<void> {
    const source: HandOffSource = {
      handedTo: (message) => this.core.handedTo(message),
      linksTo: (peer) => this.#links.get(peer) ?? [],
      changed: () => new Promise((resolve) => { this.#changeWaiters.push(resolve); }),
      isClosed: () => this.#closed,
    };
    return waitHandOff(source, id, timeoutMs);
  }

  /** @internal */
  unsubscribe(id: number): void {
    this.#subscriptions.delete(id);
    if (!this.#closed) this.#run(this.core.unsubscribe(id, Date.now()));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#run(this.core.leave(Date.now()));
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    for (const subscription of [...this.#subscriptions.values()]) subscription.close();
    this.#links.clear("leaving");
    this.#changed();
    await this.signal.close();
  }

  // -- the action loop --------------------------------------------------------------------

  #run(actions: readonly NodeAction[]): void {
    for (const action of actions) this.#apply(action);
    this.#changed();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const at = this.core.timer;
    if (at !== null && !this.#closed) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#run(this.core.tick(Date.now()));
      }, Math.max(0, at - Date.now()));
    }
  }

  #changed(): void {
    const waiters = this.#changeWaiters;
    this.#changeWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #apply(action: NodeAction): void {
    switch (action.type) {
      case "send": return this.#send(action.peer, action.frame);
      case "close": {
        this.#links.remove(action.peer, action.failed ? "failed" : "left the active view");
        this.#dialing.delete(action.peer);
        return;
      }
      case "deliver": {
        const opened: OpenedDocument = action.document;
        this.#subscriptions.get(action.subscription)?.deliver({
          data: opened.document, publisher: opened.publisher, id: toHex(opened.messageId), publishedUnixMs: opened.publishedUnixMs, via: action.via,
        });
        return;
      }
      case "neighbors":
        this.onNeighbors?.(action.peers);
        return;
    }
  }

  #send(peer: PeerId, frame: Uint8Array): void {
    if (this.#closed) return;
    const link = this.#links.target(peer);
    if (link !== undefined) {
      this.#links.wrote(link);
      link.send(frame).catch(() => undefined);
      return;
    }
    const queued = this.#dialing.get(peer);
    if (queued !== undefined) {
      if (queued.length < DIAL_QUEUE_FRAMES) queued.push(frame);
      return;
    }
    this.#dialing.set(peer, [frame]);
    dialWebRTC(this.signal, this.identity, peer, this.#webrtc).then((opened) => this.#adopt(opened), () => {
      if (this.#dialing.delete(peer)) this.#run(this.core.linkDown(peer, Date.now()));
    });
  }

  async #acceptOffers(): Promise<void> {
    for await (const offer of this.signal.offers) {
      if (this.#closed) return;
      if (this.#links.size + this.#dialing.size + this.#accepting >= MAX_LINKS) {
        this.signal.reject(offer, "busy: too many links");
        continue;
      }
      this.#accepting++;
      acceptWebRTC(this.signal, this.identity, offer, this.#webrtc).then((link) => this.#adopt(link), () => undefined)
        .finally(() => { this.#accepting--; });
    }
  }

  /** A new secured link to a peer: frames are sent on it until one comes on another; queued
   * frames go first.  Its end fails the peer if frames written on it may be unread (`PeerLinks`). */
  #adopt(link: SecureLink): void {
    const peer = link.remotePeerId;
    if (this.#closed) {
      link.close("closed");
      return;
    }
    this.#links.add(peer, link);
    const queued = this.#dialing.get(peer) ?? [];
    this.#dialing.delete(peer);
    link.onFrame = (frame) => {
      this.#links.received(peer, link);
      this.#run(this.core.receive(peer, frame, Date.now()));
    };
    void link.closed.then(() => {
      const end = this.#links.ended(peer, link);
      if (end === "down") this.#run(this.core.linkDown(peer, Date.now()));
      else if (end === "kept") this.#changed();
    });
    if (queued.length > 0) this.#links.wrote(link);
    for (const frame of queued) link.send(frame).catch(() => undefined);
    this.#changed();
  }
}
