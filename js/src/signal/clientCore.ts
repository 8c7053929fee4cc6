/**
 * The peer side of signalling, as a pure state machine (docs/signal.md,
 * docs/peer.md section 2).
 *
 * Theory of operation.  The client keeps one link to a *home* signaller.  It
 * asks its driver to dial a URL (`dial`); the driver runs the WebSocket and
 * Noise, then reports `linkUp(homePeerId)` or `linkDown(reason)`.  On a link
 * the client sends `hello{PEER}`, waits for the home's `hello{SIGNALLER,
 * listen_url}` and registers a signed record naming that `listen_url`; once
 * `registered{ok}` arrives it is homed, sends what waited for a home (offers,
 * answers, contact requests) and renews its record every lifetime / 3.  When
 * the link dies it moves to the next URL, in the given order, after an
 * exponential backoff with jitter, and registers a higher `seq` there.
 * Closing registers a tombstone and waits for its `registered` (2 s at most).
 *
 * Inputs: the methods below, each taking `now` (Unix ms).  Outputs: the
 * actions each returns, in order, and `timer` (the next `now` at which the
 * driver must call `tick`; timers are values, never cancelled).  No I/O, no
 * clock, no ambient randomness: a `SeededRandom` chooses ids and jitter.
 *
 * Departures from the Python client: requests sent on a link that dies fail
 * at once (their answer cannot come) instead of at their timeout.
 */

import { create } from "@bufbuild/protobuf";

import { MalformedSignalMessage, RecordRejected, RemoteProtocolError, SignalUsageError } from "../errors.js";
import { toHex } from "../bytes.js";
import {
  GetContactsSchema, RegisterSchema, RelaySchema, type SignalMessage, SignalHelloSchema, SignalHello_Role,
} from "../gen/taiinet/v1/signal_pb.js";
import { decodeLinkFrame, encodePong, encodeSignalFrame } from "../link/frames.js";
import type { SeededRandom } from "../random.js";
import type { Identity } from "../wire/identity.js";
import { type PeerId, parsePeerId } from "../wire/peerId.js";
import {
  MAX_RECORD_LIFETIME_MS, MAX_SERVICE_CHARS, MAX_SERVICES, type PeerRecord, RECORD_LIFETIME_MS, RECORD_RENEWALS,
  SESSION_ID_BYTES, type SessionKind, openPeerRecord, openSession, sealPeerRecord, sealSession,
} from "./records.js";

/** Most records a `contacts` answer holds, and most a peer asks for. */
export const MAX_CONTACTS = 32;

/** The client's bounds and timings (ms); every field has a default. */
export interface SignalClientConfig {
  /** Life of a registered record; renewed `RECORD_RENEWALS` times per life. */
  readonly recordLifetimeMs: number;
  /** How long closing waits for the home to confirm the tombstone. */
  readonly withdrawTimeoutMs: number;
  /** Backoff before the n-th retry: min(max, initial * 2^n) * uniform(0.5, 1.5). */
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  /** How long an offer waits for its answer (docs/signal.md: 20 s). */
  readonly offerTimeoutMs: number;
  /** How long `hello`, `registered` and `contacts` may take. */
  readonly requestTimeoutMs: number;
  /** Offers of ours waiting for an answer, at most. */
  readonly maxPendingSessions: number;
  /** Frames waiting for a home (offers, answers, requests), at most. */
  readonly maxQueuedFrames: number;
  /** Contact requests in flight, at most. */
  readonly maxPendingRequests: number;
  /** Services named in our record (`"seeder"`...). */
  readonly services: readonly string[];
}

export const DEFAULT_SIGNAL_CLIENT_CONFIG: SignalClientConfig = Object.freeze({
  recordLifetimeMs: RECORD_LIFETIME_MS,
  withdrawTimeoutMs: 2_000,
  backoffInitialMs: 100,
  backoffMaxMs: 5_000,
  offerTimeoutMs: 20_000,
  requestTimeoutMs: 10_000,
  maxPendingSessions: 64,
  maxQueuedFrames: 128,
  maxPendingRequests: 16,
  services: [],
});

export function signalClientConfig(overrides: Partial<SignalClientConfig> = {}): SignalClientConfig {
  const config = { ...DEFAULT_SIGNAL_CLIENT_CONFIG, ...overrides };
  if (!(config.recordLifetimeMs > 0 && config.recordLifetimeMs <= MAX_RECORD_LIFETIME_MS)) {
    throw new SignalUsageError(`recordLifetimeMs must be in (0, ${MAX_RECORD_LIFETIME_MS}]: homes refuse longer lives`);
  }
  if (config.services.length > MAX_SERVICES || config.services.some((s) => s.length > MAX_SERVICE_CHARS)) {
    throw new SignalUsageError(`at most ${MAX_SERVICES} services of ${MAX_SERVICE_CHARS} characters`);
  }
  for (const key of ["withdrawTimeoutMs", "backoffInitialMs", "backoffMaxMs", "offerTimeoutMs", "requestTimeoutMs",
    "maxPendingSessions", "maxQueuedFrames", "maxPendingRequests"] as const) {
    if (!(config[key] > 0)) throw new SignalUsageError(`${key} must be positive`);
  }
  return Object.freeze(config);
}

/** An offer from another peer; answer or reject it through `answer`/`reject`. */
export interface IncomingOffer {
  readonly fromPeer: PeerId;
  readonly sessionId: Uint8Array;
  readonly sdp: string;
}

export type SignalAction =
  | { readonly type: "dial"; readonly url: string }
  | { readonly type: "send"; readonly frame: Uint8Array }
  | { readonly type: "closeLink"; readonly reason: string }
  | { readonly type: "registered"; readonly home: PeerId; readonly homeUrl: string }
  | { readonly type: "homeLost"; readonly url: string; readonly reason: string }
  | { readonly type: "offer"; readonly offer: IncomingOffer }
  | { readonly type: "answer"; readonly sessionId: string; readonly sdp: string }
  | { readonly type: "offerFailed"; readonly sessionId: string; readonly reason: string }
  | { readonly type: "contacts"; readonly requestId: bigint; readonly records: readonly PeerRecord[] }
  | { readonly type: "contactsFailed"; readonly requestId: bigint; readonly reason: string }
  | { readonly type: "closed" };

type State = "idle" | "dialing" | "hello" | "registering" | "registered" | "backoff" | "withdrawing" | "closed";

interface PendingOffer { readonly deadline: number; readonly target: PeerId }
interface PendingRequest { readonly deadline: number; sent: boolean; readonly service: string }

const MAX_U64 = (1n << 64n) - 1n;

export class SignalClientCore {
  readonly identity: Identity;
  readonly signallers: readonly string[];
  readonly config: SignalClientConfig;
  state: State = "idle";
  /** The home's peer id and announced URL while registered. */
  home: PeerId | null = null;
  homeUrl: string | null = null;
  /** Why the last signaller could not be reached or kept. */
  lastFailure = "";
  readonly #random: SeededRandom;
  #url = "";
  #linkPeer: PeerId | null = null;
  #index = 0;
  #failures = 0;
  #seq = 0n;
  #nextRequestId: bigint;
  #registerRequest: bigint | null = null;
  #deadline: number | null = null; // hello, registered, withdrawal or end of backoff
  #renewAt: number | null = null;
  #queued: Uint8Array[] = [];
  readonly #offers = new Map<string, PendingOffer>();
  readonly #requests = new Map<bigint, PendingRequest>();

  constructor(identity: Identity, signallers: readonly string[], random: SeededRandom,
    config: SignalClientConfig = DEFAULT_SIGNAL_CLIENT_CONFIG) {
    if (signallers.length === 0) throw new SignalUsageError("give at least one signaller URL");
    this.identity = identity;
    this.signallers = [...signallers];
    this.config = config;
    this.#random = random;
    this.#nextRequestId = random.nextU64() >> 32n;
  }

  get peerId(): PeerId {
    return this.identity.peerId;
  }

  /** The next `now` at which `tick` must be called, or null. */
  get timer(): number | null {
    let at = this.#deadline ?? Infinity;
    if (this.#renewAt !== null) at = Math.min(at, this.#renewAt);
    for (const offer of this.#offers.values()) at = Math.min(at, offer.deadline);
    for (const request of this.#requests.values()) at = Math.min(at, request.deadline);
    return at === Infinity ? null : at;
  }

  start(now: number): SignalAction[] {
    if (this.state !== "idle") throw new SignalUsageError("the signal client is already started");
    return this.#dialNext(now);
  }

  /** The driver's dial succeeded: a Noise-secured link to `homePeerId`. */
  linkUp(homePeerId: PeerId, now: number): SignalAction[] {
    if (this.state !== "dialing") return [{ type: "closeLink", reason: "not dialing" }];
    this.#linkPeer = homePeerId;
    this.#failures = 0;
    this.state = "hello";
    this.#deadline = now + this.config.requestTimeoutMs;
    const hello = create(SignalHelloSchema, { role: SignalHello_Role.PEER, listenUrl: "" });
    return [{ type: "send", frame: encodeSignalFrame({ case: "hello", value: hello }) }];
  }

  /** The dial failed, or the link to the home ended. */
  linkDown(reason: string, now: number): SignalAction[] {
    if (this.state === "closed" || this.state === "idle" || this.state === "backoff") return [];
    const actions: SignalAction[] = [];
    const url = this.#url;
    this.lastFailure = reason.includes(url) ? reason : `${url}: ${reason}`;
    if (this.state === "registered") actions.push({ type: "homeLost", url, reason });
    this.home = this.homeUrl = this.#linkPeer = null;
    this.#renewAt = null;
    this.#registerRequest = null;
    for (const [id, request] of this.#requests) {
      if (request.sent) {
        this.#requests.delete(id);
        actions.push({ type: "contactsFailed", requestId: id, reason: "home signaller lost" });
      }
    }
    if (this.state === "withdrawing") {
      this.state = "closed";
      this.#deadline = null;
      return [...actions, ...this.#closeAll("closed")];
    }
    this.#failures++;
    const delay = Math.min(this.config.backoffMaxMs, this.config.backoffInitialMs * 2 ** Math.min(this.#failures, 16));
    this.state = "backoff";
    this.#deadline = now + delay * this.#random.uniform(0.5, 1.5);
    return actions;
  }

  /** A frame arrived on the link to the home. */
  receive(data: Uint8Array, now: number): SignalAction[] {
    if (this.state === "closed" || this.state === "idle" || this.state === "dialing" || this.state === "backoff") return [];
    try {
      const actions: SignalAction[] = [];
      for (const frame of decodeLinkFrame(data)) {
        if (frame.kind === "ping") actions.push({ type: "send", frame: encodePong(frame.nonce) });
        else if (frame.kind === "signal") actions.push(...this.#onSignal(frame.message, now));
      }
      return actions;
    } catch (error) {
      if (!(error instanceof RemoteProtocolError)) throw error;
      return [{ type: "closeLink", reason: error.message }, ...this.linkDown(error.message, now)];
    }
  }

  tick(now: number): SignalAction[] {
    const actions: SignalAction[] = [];
    for (const [id, offer] of this.#offers) {
      if (offer.deadline <= now) {
        this.#offers.delete(id);
        actions.push({ type: "offerFailed", sessionId: id, reason: `no answer from ${offer.target}: timed out` });
      }
    }
    for (const [id, request] of this.#requests) {
      if (request.deadline <= now) {
        this.#requests.delete(id);
        actions.push({ type: "contactsFailed", requestId: id, reason: "timed out" });
      }
    }
    if (this.#deadline !== null && this.#deadline <= now) {
      this.#deadline = null;
      actions.push(...this.#onDeadline(now));
    } else if (this.#renewAt !== null && this.#renewAt <= now && this.state === "registered") {
      this.#renewAt = null;
      actions.push(this.#register(now, false));
    }
    return actions;
  }

  /** Relay an offer to `peerId`; its answer comes as an `answer` (or `offerFailed`) action with the returned id. */
  offer(peerId: string, sdp: string, now: number): [string, SignalAction[]] {
    let target: PeerId;
    try {
      target = parsePeerId(peerId);
    } catch {
      throw new SignalUsageError(`cannot offer to ${JSON.stringify(peerId.slice(0, 60))}: not a peer id`);
    }
    if (this.#offers.size >= this.config.maxPendingSessions) throw new SignalUsageError("too many offers in flight");
    this.#checkOpen();
    const sessionId = this.#random.bytes(SESSION_ID_BYTES);
    const actions = this.#sendSession(target, sessionId, "offer", sdp, now);
    const key = toHex(sessionId);
    this.#offers.set(key, { deadline: now + this.config.offerTimeoutMs, target });
    return [key, actions];
  }

  answer(offer: IncomingOffer, sdp: string, now: number): SignalAction[] {
    this.#checkOpen();
    return this.#sendSession(offer.fromPeer, offer.sessionId, "answer", sdp, now);
  }

  reject(offer: IncomingOffer, reason: string, now: number): SignalAction[] {
    this.#checkOpen();
    return this.#sendSession(offer.fromPeer, offer.sessionId, "reject", reason.slice(0, 200), now);
  }

  /** Ask the home for up to `count` contacts; the answer comes as a `contacts` action. */
  requestContacts(count: number, service: string, now: number): [bigint, SignalAction[]] {
    if (service.length > MAX_SERVICE_CHARS) throw new SignalUsageError(`a service name has at most ${MAX_SERVICE_CHARS} characters`);
    if (this.#requests.size >= this.config.maxPendingRequests) throw new SignalUsageError("too many contact requests in flight");
    this.#checkOpen();
    const requestId = this.#newRequestId();
    const message = create(GetContactsSchema, {
      requestId, count: Math.max(0, Math.min(Math.floor(count), MAX_CONTACTS)), localOnly: false, service,
    });
    const request: PendingRequest = { deadline: now + this.config.requestTimeoutMs, sent: false, service };
    this.#requests.set(requestId, request);
    const actions = this.#sendWhenHomed(encodeSignalFrame({ case: "getContacts", value: message }));
    request.sent = this.state === "registered";
    return [requestId, actions];
  }

  /** Leave: withdraw our record (tombstone) if homed, then close. */
  close(now: number): SignalAction[] {
    if (this.state === "closed" || this.state === "withdrawing") return [];
    if (this.state !== "registered" || this.#linkPeer === null || this.homeUrl === null) {
      const wasLinked = this.state === "hello" || this.state === "registering" || this.state === "dialing";
      this.state = "closed";
      this.#deadline = this.#renewAt = null;
      return [...(wasLinked ? [{ type: "closeLink", reason: "closing" } as const] : []), ...this.#closeAll("closed")];
    }
    this.state = "withdrawing";
    this.#renewAt = null;
    this.#deadline = now + this.config.withdrawTimeoutMs;
    return [this.#register(now, true)];
  }

  // -- internals ----------------------------------------------------------------------------

  #checkOpen(): void {
    if (this.state === "closed" || this.state === "withdrawing") throw new SignalUsageError("the signal client is closed");
  }

  #newRequestId(): bigint {
    this.#nextRequestId = (this.#nextRequestId + 1n) & MAX_U64;
    return this.#nextRequestId;
  }

  #dialNext(now: number): SignalAction[] {
    void now;
    const url = this.signallers[this.#index % this.signallers.length] as string;
    this.#index++;
    this.#url = url;
    this.state = "dialing";
    this.#deadline = null;
    return [{ type: "dial", url }];
  }

  #onDeadline(now: number): SignalAction[] {
    switch (this.state) {
      case "backoff": return this.#dialNext(now);
      case "hello":
      case "registering":
      case "registered": {
        const reason = this.state === "hello" ? "no hello from the signaller" : "no answer to register";
        return [{ type: "closeLink", reason }, ...this.linkDown(reason, now)];
      }
      case "withdrawing":
        this.state = "closed";
        return [{ type: "closeLink", reason: "closing" }, ...this.#closeAll("closed")];
      default: return [];
    }
  }

  #register(now: number, withdrawn: boolean): SignalAction {
    const seq = BigInt(Math.floor(now));
    this.#seq = this.#seq + 1n > seq ? this.#seq + 1n : seq;
    const record = sealPeerRecord(this.identity, {
      signallerPeerId: this.#linkPeer as PeerId, signallerUrl: this.homeUrl as string, addresses: [], seq: this.#seq,
      expiresUnixMs: Math.floor(now) + this.config.recordLifetimeMs, withdrawn, services: this.config.services,
    });
    const requestId = this.#newRequestId();
    this.#registerRequest = requestId;
    if (!withdrawn) this.#deadline = now + this.config.requestTimeoutMs;
    return { type: "send", frame: encodeSignalFrame({ case: "register", value: create(RegisterSchema, { requestId, record }) }) };
  }

  #onSignal(message: SignalMessage, now: number): SignalAction[] {
    const body = message.body;
    if (this.state === "hello") {
      if (body.case !== "hello" || body.value.role !== SignalHello_Role.SIGNALLER || body.value.listenUrl === "") {
        throw new MalformedSignalMessage("the home did not greet as a signaller with its listen_url");
      }
      this.homeUrl = body.value.listenUrl;
      this.state = "registering";
      return [this.#register(now, false)];
    }
    switch (body.case) {
      case "registered": return this.#onRegistered(body.value.requestId, body.value.ok, body.value.reason, now);
      case "contacts": return this.#onContacts(body.value.requestId, body.value.records, now);
      case "relay": return this.#onRelay(body.value.session);
      case "relayFailed": {
        const key = toHex(body.value.sessionId);
        if (!this.#offers.has(key) || body.value.targetPeer === "") return [];
        this.#offers.delete(key);
        return [{ type: "offerFailed", sessionId: key, reason: body.value.reason || "relay failed" }];
      }
      default: throw new MalformedSignalMessage(`the home sent a ${body.case ?? "message of no known kind"}, which it may not`);
    }
  }

  #onRegistered(requestId: bigint, ok: boolean, reason: string, now: number): SignalAction[] {
    if (requestId !== this.#registerRequest) return [];
    this.#registerRequest = null;
    if (this.state === "withdrawing") {
      this.state = "closed";
      this.#deadline = null;
      return [{ type: "closeLink", reason: "closing" }, ...this.#closeAll("closed")];
    }
    if (!ok) {
      const why = `${this.#url} refused our record: ${reason.slice(0, 200)}`;
      return [{ type: "closeLink", reason: why }, ...this.linkDown(why, now)];
    }
    this.#deadline = null;
    this.#renewAt = now + this.config.recordLifetimeMs / RECORD_RENEWALS;
    if (this.state === "registered") return [];
    this.state = "registered";
    this.home = this.#linkPeer;
    const actions: SignalAction[] = [{ type: "registered", home: this.#linkPeer as PeerId, homeUrl: this.homeUrl as string }];
    for (const frame of this.#queued) actions.push({ type: "send", frame });
    this.#queued = [];
    for (const request of this.#requests.values()) request.sent = true;
    return actions;
  }

  #onContacts(requestId: bigint, raw: readonly Uint8Array[], now: number): SignalAction[] {
    const request = this.#requests.get(requestId);
    if (request === undefined) return [];
    this.#requests.delete(requestId);
    if (raw.length > MAX_CONTACTS) throw new MalformedSignalMessage(`a contacts answer holds at most ${MAX_CONTACTS} records`);
    // One record per peer, its newest: a signaller may list a peer twice.
    const records = new Map<string, PeerRecord>();
    for (const data of raw) {
      let record: PeerRecord;
      try {
        record = openPeerRecord(data, now);
      } catch (error) {
        if (error instanceof RecordRejected) continue;
        throw error;
      }
      const kept = records.get(record.peerId);
      if (record.peerId !== this.peerId && !record.withdrawn
        && (request.service === "" || record.services.includes(request.service))
        && (kept === undefined || record.seq > kept.seq)) records.set(record.peerId, record);
    }
    return [{ type: "contacts", requestId, records: [...records.values()] }];
  }

  #onRelay(data: Uint8Array): SignalAction[] {
    let session;
    try {
      session = openSession(data);
    } catch (error) {
      if (error instanceof RecordRejected) return []; // a bad relayed message is its signer's fault, not the home's
      throw error;
    }
    if (session.toPeer !== this.peerId) return [];
    if (session.kind === "offer") {
      return [{ type: "offer", offer: { fromPeer: session.fromPeer, sessionId: session.sessionId, sdp: session.sdp } }];
    }
    const key = toHex(session.sessionId);
    const pending = this.#offers.get(key);
    if (pending === undefined || session.kind === "ice" || session.fromPeer !== pending.target) return [];
    this.#offers.delete(key);
    if (session.kind === "reject") {
      return [{ type: "offerFailed", sessionId: key, reason: `${session.fromPeer} refused the offer: ${session.sdp.slice(0, 200)}` }];
    }
    return [{ type: "answer", sessionId: key, sdp: session.sdp }];
  }

  #sendSession(target: PeerId, sessionId: Uint8Array, kind: SessionKind, sdp: string, now: number): SignalAction[] {
    const session = sealSession(this.identity, {
      fromPeer: this.peerId, toPeer: target, sessionId, kind, sdp, createdUnixMs: Math.floor(now),
    });
    const relay = create(RelaySchema, { targetPeer: target, session, hopsLeft: 0 });
    return this.#sendWhenHomed(encodeSignalFrame({ case: "relay", value: relay }));
  }

  #sendWhenHomed(frame: Uint8Array): SignalAction[] {
    if (this.state === "registered") return [{ type: "send", frame }];
    if (this.#queued.length >= this.config.maxQueuedFrames) throw new SignalUsageError("too many messages waiting for a home signaller");
    this.#queued.push(frame);
    return [];
  }

  #closeAll(reason: string): SignalAction[] {
    const actions: SignalAction[] = [];
    for (const id of this.#offers.keys()) actions.push({ type: "offerFailed", sessionId: id, reason });
    for (const id of this.#requests.keys()) actions.push({ type: "contactsFailed", requestId: id, reason });
    this.#offers.clear();
    this.#requests.clear();
    this.#queued = [];
    this.home = this.homeUrl = null;
    actions.push({ type: "closed" });
    return actions;
  }
}
