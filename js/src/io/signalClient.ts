/**
 * The driver of `SignalClientCore`: WebSocket + Noise links to signallers, the
 * clock, one timer, and promises for the application.  Every decision is the
 * core's; this file only carries bytes and time.
 */

import { PeerUnreachable, SignalUsageError } from "../errors.js";
import type { PeerRecord } from "../signal/records.js";
import {
  type IncomingOffer, type SignalAction, SignalClientCore, type SignalClientConfig, signalClientConfig,
} from "../signal/clientCore.js";
import { SeededRandom } from "../random.js";
import { Identity } from "../wire/identity.js";
import type { PeerId } from "../wire/peerId.js";
import { AsyncQueue } from "./queue.js";
import type { SecureLink } from "./secureChannel.js";
import { dialWebSocket } from "./websocket.js";

/** Frames on a signal link are at most 128 KiB (docs/signal.md). */
export const SIGNAL_MAX_FRAME_SIZE = 128 * 1024;
/** Offers from other peers waiting to be answered, at most; more are refused. */
export const INCOMING_OFFER_QUEUE = 32;

export interface SignalClientOptions {
  readonly identity?: Identity;
  readonly config?: Partial<SignalClientConfig>;
  /** Seed of the client's protocol choices (ids, jitter); random by default. */
  readonly seed?: bigint;
}

export interface Registration { readonly home: PeerId; readonly homeUrl: string }

function randomSeed(): bigint {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return (BigInt(words[0] as number) << 32n) | BigInt(words[1] as number);
}

export class SignalClient {
  readonly identity: Identity;
  readonly core: SignalClientCore;
  /** Offers from other peers; answer each with `answer` or `reject`. */
  readonly offers = new AsyncQueue<IncomingOffer>(INCOMING_OFFER_QUEUE);
  /** Called on every (re-)registration and loss of the home. */
  onRegistered: ((registration: Registration) => void) | null = null;
  onHomeLost: ((reason: string) => void) | null = null;
  #link: SecureLink | null = null;
  #generation = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #registered: Registration | null = null;
  #registeredWaiters: ((registration: Registration) => void)[] = [];
  #closedWaiters: (() => void)[] = [];
  #closed = false;
  readonly #answers = new Map<string, { resolve: (sdp: string) => void; reject: (error: Error) => void }>();
  readonly #contacts = new Map<bigint, { resolve: (records: PeerRecord[]) => void; reject: (error: Error) => void }>();

  private constructor(signallers: readonly string[], options: SignalClientOptions) {
    this.identity = options.identity ?? Identity.generate();
    this.core = new SignalClientCore(this.identity, signallers, new SeededRandom(options.seed ?? randomSeed()),
      signalClientConfig(options.config));
  }

  /** Start keeping a home among `signallers` (tried in the given order). */
  static connect(signallers: readonly string[], options: SignalClientOptions = {}): SignalClient {
    const client = new SignalClient(signallers, options);
    client.#run(client.core.start(Date.now()));
    return client;
  }

  get peerId(): PeerId {
    return this.identity.peerId;
  }

  get registration(): Registration | null {
    return this.#registered;
  }

  /** Resolves once a home accepted our record (at once if it already has). */
  registered(): Promise<Registration> {
    if (this.#registered !== null) return Promise.resolve(this.#registered);
    if (this.#closed) return Promise.reject(new SignalUsageError("the signal client is closed"));
    return new Promise((resolve) => this.#registeredWaiters.push(resolve));
  }

  /** Relay an offer; resolves with the answer's SDP, rejects with `PeerUnreachable`. */
  offer(peerId: string, sdp: string): Promise<string> {
    const [sessionId, actions] = this.core.offer(peerId, sdp, Date.now());
    const answer = new Promise<string>((resolve, reject) => this.#answers.set(sessionId, { resolve, reject }));
    this.#run(actions);
    return answer;
  }

  answer(offer: IncomingOffer, sdp: string): void {
    this.#run(this.core.answer(offer, sdp, Date.now()));
  }

  reject(offer: IncomingOffer, reason: string): void {
    this.#run(this.core.reject(offer, reason, Date.now()));
  }

  /** Up to `count` verified records of live peers (not us). */
  contacts(count = 8, service = ""): Promise<PeerRecord[]> {
    const [requestId, actions] = this.core.requestContacts(count, service, Date.now());
    const records = new Promise<PeerRecord[]>((resolve, reject) => this.#contacts.set(requestId, { resolve, reject }));
    this.#run(actions);
    return records;
  }

  /** Withdraw our record (waiting 2 s at most for the home) and close. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.#closedWaiters.push(resolve));
    this.#run(this.core.close(Date.now()));
    return done;
  }

  // -- the action loop --------------------------------------------------------------------

  #run(actions: readonly SignalAction[]): void {
    for (const action of actions) this.#apply(action);
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

  #apply(action: SignalAction): void {
    switch (action.type) {
      case "dial": return this.#dial(action.url);
      case "send":
        if (this.#link !== null) this.#link.send(action.frame).catch(() => undefined);
        return;
      case "closeLink": {
        const link = this.#link;
        this.#link = null;
        this.#generation++;
        link?.close(action.reason);
        return;
      }
      case "registered": {
        this.#registered = { home: action.home, homeUrl: action.homeUrl };
        for (const waiter of this.#registeredWaiters.splice(0)) waiter(this.#registered);
        this.onRegistered?.(this.#registered);
        return;
      }
      case "homeLost":
        this.#registered = null;
        this.onHomeLost?.(action.reason);
        return;
      case "offer":
        if (!this.offers.push(action.offer)) this.reject(action.offer, "too many offers waiting");
        return;
      case "answer":
        this.#answers.get(action.sessionId)?.resolve(action.sdp);
        this.#answers.delete(action.sessionId);
        return;
      case "offerFailed":
        this.#answers.get(action.sessionId)?.reject(new PeerUnreachable(action.reason));
        this.#answers.delete(action.sessionId);
        return;
      case "contacts":
        this.#contacts.get(action.requestId)?.resolve([...action.records]);
        this.#contacts.delete(action.requestId);
        return;
      case "contactsFailed":
        this.#contacts.get(action.requestId)?.reject(new PeerUnreachable(`contacts: ${action.reason}`));
        this.#contacts.delete(action.requestId);
        return;
      case "closed":
        this.#closed = true;
        this.#registered = null;
        this.offers.end();
        for (const waiter of this.#closedWaiters.splice(0)) waiter();
        return;
    }
  }

  #dial(url: string): void {
    const generation = ++this.#generation;
    dialWebSocket(url, this.identity, { maxFrameSize: SIGNAL_MAX_FRAME_SIZE }).then((link) => {
      if (generation !== this.#generation || this.#closed) {
        link.close("no longer wanted");
        return;
      }
      this.#link = link;
      link.onFrame = (frame) => {
        if (generation === this.#generation) this.#run(this.core.receive(frame, Date.now()));
      };
      void link.closed.then((reason) => {
        if (generation !== this.#generation) return;
        this.#link = null;
        this.#run(this.core.linkDown(reason, Date.now()));
      });
      this.#run(this.core.linkUp(link.remotePeerId, Date.now()));
    }, (error: unknown) => {
      if (generation !== this.#generation) return;
      this.#run(this.core.linkDown(error instanceof Error ? error.message : String(error), Date.now()));
    });
  }
}
