// The signal client core against a scripted home (docs/signal.md): every frame the home
// would send is built here from the proto schemas, every action checked.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { create } from "@bufbuild/protobuf";
import fc from "fast-check";

import { toHex } from "../src/bytes.js";
import { DhtMessageSchema } from "../src/gen/taiinet/v1/dht_pb.js";
import {
  ContactsSchema, type Register, RegisteredSchema, type Relay, RelayFailedSchema, RelaySchema, type SignalMessage,
  SignalHelloSchema, SignalHello_Role,
} from "../src/gen/taiinet/v1/signal_pb.js";
import { decodeLinkFrame, encodePing, encodeSignalFrame } from "../src/link/frames.js";
import { SeededRandom } from "../src/random.js";
import { type SignalAction, SignalClientCore, signalClientConfig } from "../src/signal/clientCore.js";
import { openPeerRecord, openSession, sealPeerRecord, sealSession } from "../src/signal/records.js";
import { Identity } from "../src/wire/identity.js";

const ME = Identity.fromSeed(new Uint8Array(32).fill(1));
const HOME = Identity.fromSeed(new Uint8Array(32).fill(2));
const OTHER = Identity.fromSeed(new Uint8Array(32).fill(3));
const HOME_URL = "ws://127.0.0.1:9001";
const T0 = 1_800_000_000_000;

function signalOf(frame: Uint8Array): SignalMessage {
  const [decoded] = decodeLinkFrame(frame);
  assert.equal(decoded?.kind, "signal");
  return (decoded as { message: SignalMessage }).message;
}

function sent(actions: readonly SignalAction[]): SignalMessage[] {
  return actions.flatMap((a) => (a.type === "send" ? [signalOf(a.frame)] : []));
}

function types(actions: readonly SignalAction[]): string[] {
  return actions.map((a) => a.type);
}

const hello = (role = SignalHello_Role.SIGNALLER, listenUrl = HOME_URL): Uint8Array =>
  encodeSignalFrame({ case: "hello", value: create(SignalHelloSchema, { role, listenUrl }) });
const registered = (requestId: bigint, ok = true): Uint8Array =>
  encodeSignalFrame({ case: "registered", value: create(RegisteredSchema, { requestId, ok, reason: ok ? "" : "stale seq" }) });

function newClient(urls = [HOME_URL, "ws://127.0.0.1:9002"], overrides = {}): SignalClientCore {
  return new SignalClientCore(ME, urls, new SeededRandom(7), signalClientConfig(overrides));
}

/** Start, link up, greet and register; returns the client and the register it sent. */
function homed(client = newClient()): [SignalClientCore, Register] {
  assert.deepEqual(client.start(T0), [{ type: "dial", url: HOME_URL }]);
  const [peerHello] = sent(client.linkUp(HOME.peerId, T0));
  assert.equal(peerHello?.body.case, "hello");
  const [register] = sent(client.receive(hello(), T0));
  assert.equal(register?.body.case, "register");
  const value = register.body.value as Register;
  const actions = client.receive(registered(value.requestId), T0 + 5);
  assert.deepEqual(actions, [{ type: "registered", home: HOME.peerId, homeUrl: HOME_URL }]);
  return [client, value];
}

function relayFrom(from: Identity, kind: "offer" | "answer" | "reject" | "ice", sessionId: Uint8Array, sdp: string, to = ME.peerId): Uint8Array {
  const session = sealSession(from, { fromPeer: from.peerId, toPeer: to, sessionId, kind, sdp, createdUnixMs: T0 });
  return encodeSignalFrame({ case: "relay", value: create(RelaySchema, { targetPeer: to, session, hopsLeft: 0 }) });
}

describe("signal client core", () => {
  it("greets, registers a record naming the home's listen_url, and renews it", () => {
    const [client, register] = homed();
    const record = openPeerRecord(register.record, T0);
    assert.equal(record.peerId, ME.peerId);
    assert.equal(record.signallerPeerId, HOME.peerId);
    assert.equal(record.signallerUrl, HOME_URL);
    assert.equal(record.expiresUnixMs, T0 + 90_000);
    assert.equal(record.withdrawn, false);
    assert.equal(client.timer, T0 + 5 + 30_000);
    assert.deepEqual(client.tick(T0 + 29_000), []);
    const [renewal] = sent(client.tick(T0 + 5 + 30_000));
    const renewed = openPeerRecord((renewal?.body.value as Register).record, T0 + 30_005);
    assert.ok(renewed.seq > record.seq);
  });

  it("answers the home's Ping with a Pong of the same nonce", () => {
    const [client] = homed();
    const [action] = client.receive(encodePing(300n), T0);
    assert.equal(action?.type, "send");
    const [frame] = decodeLinkFrame((action as { frame: Uint8Array }).frame);
    assert.deepEqual(frame, { kind: "pong", nonce: 300n });
  });

  it("closes a link whose first message is not a signaller's hello, then fails over after a backoff", () => {
    const client = newClient();
    client.start(T0);
    client.linkUp(HOME.peerId, T0);
    const actions = client.receive(hello(SignalHello_Role.PEER, ""), T0);
    assert.deepEqual(types(actions), ["closeLink"]);
    assert.equal(client.state, "backoff");
    const at = client.timer as number;
    assert.ok(at >= T0 + 100 && at <= T0 + 300, `backoff ends at +${at - T0} ms`);
    assert.deepEqual(client.tick(at), [{ type: "dial", url: "ws://127.0.0.1:9002" }]);
  });

  it("fails over when the dial fails and when no hello comes in time", () => {
    const client = newClient();
    client.start(T0);
    client.linkDown("connection refused", T0);
    assert.match(client.lastFailure, /9001: connection refused/);
    assert.deepEqual(client.tick(client.timer as number), [{ type: "dial", url: "ws://127.0.0.1:9002" }]);
    client.linkUp(OTHER.peerId, T0 + 1000);
    assert.equal(client.timer, T0 + 1000 + 10_000);
    assert.deepEqual(types(client.tick(T0 + 11_000)), ["closeLink"]);
    assert.deepEqual(client.tick(client.timer as number), [{ type: "dial", url: HOME_URL }]);
  });

  it("re-homes after losing its home, with a higher seq", () => {
    const [client, first] = homed();
    assert.deepEqual(types(client.linkDown("reset", T0 + 10)), ["homeLost"]);
    assert.equal(client.home, null);
    client.tick(client.timer as number);
    client.linkUp(OTHER.peerId, T0 + 500);
    const [register] = sent(client.receive(hello(SignalHello_Role.SIGNALLER, "ws://127.0.0.1:9002"), T0 + 500));
    const record = openPeerRecord((register?.body.value as Register).record, T0 + 500);
    assert.equal(record.signallerPeerId, OTHER.peerId);
    assert.ok(record.seq > openPeerRecord(first.record, T0).seq);
  });

  it("a refused record closes the link and moves on", () => {
    const client = newClient();
    client.start(T0);
    client.linkUp(HOME.peerId, T0);
    const [register] = sent(client.receive(hello(), T0));
    const actions = client.receive(registered((register?.body.value as Register).requestId, false), T0);
    assert.deepEqual(types(actions), ["closeLink"]);
    assert.match(client.lastFailure, /refused our record: stale seq/);
  });

  it("queues an offer until homed; relays it; matches the answer by session id and sender", () => {
    const client = newClient();
    client.start(T0);
    const [sessionId, early] = client.offer(OTHER.peerId, "v=0 offer", T0);
    assert.deepEqual(early, []);
    client.linkUp(HOME.peerId, T0);
    const [register] = sent(client.receive(hello(), T0));
    const flushed = sent(client.receive(registered((register?.body.value as Register).requestId), T0));
    assert.equal(flushed.length, 1);
    const relay = flushed[0]?.body.value as Relay;
    assert.equal(relay.targetPeer, OTHER.peerId);
    assert.equal(relay.hopsLeft, 0);
    const session = openSession(relay.session);
    assert.equal(session.kind, "offer");
    assert.equal(toHex(session.sessionId), sessionId);
    // An answer signed by someone else, or for another session, is ignored.
    assert.deepEqual(client.receive(relayFrom(HOME, "answer", session.sessionId, "forged"), T0), []);
    assert.deepEqual(client.receive(relayFrom(OTHER, "answer", new Uint8Array(16), "stray"), T0), []);
    assert.deepEqual(client.receive(relayFrom(OTHER, "answer", session.sessionId, "v=0 answer"), T0),
      [{ type: "answer", sessionId, sdp: "v=0 answer" }]);
    assert.deepEqual(client.receive(relayFrom(OTHER, "answer", session.sessionId, "again"), T0), []);
  });

  it("an offer fails on REJECT, on relay_failed and on timeout", () => {
    const [client] = homed();
    const [rejected, a1] = client.offer(OTHER.peerId, "sdp", T0);
    const sid1 = openSession((sent(a1)[0]?.body.value as Relay).session).sessionId;
    const [r] = client.receive(relayFrom(OTHER, "reject", sid1, "busy"), T0);
    assert.deepEqual(r, { type: "offerFailed", sessionId: rejected, reason: `${OTHER.peerId} refused the offer: busy` });
    const [failed, a2] = client.offer(OTHER.peerId, "sdp", T0);
    const sid2 = openSession((sent(a2)[0]?.body.value as Relay).session).sessionId;
    const relayFailed = encodeSignalFrame({ case: "relayFailed", value: create(RelayFailedSchema, {
      targetPeer: OTHER.peerId, sessionId: sid2, reason: "target peer not found", originPeer: ME.peerId,
    }) });
    assert.deepEqual(client.receive(relayFailed, T0), [{ type: "offerFailed", sessionId: failed, reason: "target peer not found" }]);
    const [late] = client.offer(OTHER.peerId, "sdp", T0);
    assert.deepEqual(client.tick(T0 + 20_000).filter((a) => a.type === "offerFailed").map((a) => (a as { sessionId: string }).sessionId), [late]);
  });

  it("passes on offers to us, ignores those to others, and answers with the same session id", () => {
    const [client] = homed();
    const sid = new Uint8Array(16).fill(9);
    assert.deepEqual(client.receive(relayFrom(OTHER, "offer", sid, "sdp", HOME.peerId), T0), []);
    const [action] = client.receive(relayFrom(OTHER, "offer", sid, "their offer"), T0);
    assert.equal(action?.type, "offer");
    const offer = (action as Extract<SignalAction, { type: "offer" }>).offer;
    assert.equal(offer.fromPeer, OTHER.peerId);
    const [reply] = sent(client.answer(offer, "our answer", T0));
    const session = openSession((reply?.body.value as Relay).session);
    assert.equal(session.kind, "answer");
    assert.equal(session.toPeer, OTHER.peerId);
    assert.deepEqual(session.sessionId, sid);
  });

  it("keeps only valid, live, foreign, unwithdrawn contacts", () => {
    const [client] = homed();
    const [requestId, actions] = client.requestContacts(50, "", T0);
    const get = sent(actions)[0]?.body.value as { count: number };
    assert.equal(get.count, 32);
    const record = (who: Identity, extra: { withdrawn?: boolean; expiresUnixMs?: number } = {}) => sealPeerRecord(who, {
      signallerPeerId: HOME.peerId, signallerUrl: HOME_URL, addresses: [], seq: 1n,
      expiresUnixMs: extra.expiresUnixMs ?? T0 + 60_000, withdrawn: extra.withdrawn ?? false, services: [],
    });
    const fourth = Identity.fromSeed(new Uint8Array(32).fill(4));
    const records = [record(OTHER), record(ME), record(fourth, { withdrawn: true }), record(HOME, { expiresUnixMs: T0 - 1 }),
      Uint8Array.of(1, 2, 3)];
    const [answer] = client.receive(encodeSignalFrame({ case: "contacts", value: create(ContactsSchema, { requestId, records }) }), T0);
    assert.equal(answer?.type, "contacts");
    assert.deepEqual((answer as Extract<SignalAction, { type: "contacts" }>).records.map((r) => r.peerId), [OTHER.peerId]);
  });

  it("keeps one record per peer, its newest, where the peer first appears", () => {
    const [client] = homed();
    const [requestId] = client.requestContacts(8, "", T0);
    const record = (who: Identity, seq: bigint) => sealPeerRecord(who, {
      signallerPeerId: HOME.peerId, signallerUrl: HOME_URL, addresses: [`a${seq}`], seq,
      expiresUnixMs: T0 + 60_000, withdrawn: false, services: [],
    });
    const fourth = Identity.fromSeed(new Uint8Array(32).fill(4));
    const records = [record(OTHER, 2n), record(fourth, 1n), record(OTHER, 5n), record(OTHER, 3n)];
    const [answer] = client.receive(encodeSignalFrame({ case: "contacts", value: create(ContactsSchema, { requestId, records }) }), T0);
    const got = (answer as Extract<SignalAction, { type: "contacts" }>).records;
    assert.deepEqual(got.map((r) => [r.peerId, r.seq]), [[OTHER.peerId, 5n], [fourth.peerId, 1n]]);
  });

  it("drops the link when the home sends what it may not (a DHT message, a second hello)", () => {
    for (const frame of [hello(), encodeSignalFrame({ case: "dht", value: create(DhtMessageSchema) })]) {
      const [client] = homed();
      assert.deepEqual(types(client.receive(frame, T0)), ["closeLink", "homeLost"]);
    }
  });

  it("withdraws with a tombstone on close and ends when the home confirms", () => {
    const [client] = homed();
    const [tombstone] = sent(client.close(T0 + 100));
    const value = tombstone?.body.value as Register;
    assert.equal(openPeerRecord(value.record, T0 + 100).withdrawn, true);
    assert.throws(() => client.offer(OTHER.peerId, "x", T0 + 100));
    assert.deepEqual(types(client.receive(registered(value.requestId), T0 + 200)), ["closeLink", "closed"]);
  });

  it("closes after 2 s when the home never confirms the withdrawal", () => {
    const [client] = homed();
    client.close(T0);
    assert.equal(client.timer, T0 + 2_000);
    assert.deepEqual(types(client.tick(T0 + 2_000)), ["closeLink", "closed"]);
    assert.equal(client.state, "closed");
  });

  it("any bytes from the home either work or close the link; the client never throws", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (data) => {
      const [client] = homed();
      const actions = client.receive(data, T0);
      for (const action of actions) assert.ok(["send", "closeLink", "homeLost", "offer", "contacts"].includes(action.type));
    }), { seed: 1, numRuns: 300 });
  });
});
