// Page-side helpers of the browser tests (loaded by the test page next to the bundle).
// Every function is called with page.evaluate and returns plain JSON.
import * as T from "/taiinet.js";

const text = new TextEncoder();
const untext = new TextDecoder();
let client = null;
let identity = null;
let echoed = 0;
const failures = [];

async function echo(link) {
  for await (const frame of link) {
    await link.send(T.concatBytes(text.encode("echo:"), frame));
    echoed++;
  }
}

/** Join the signallers as a fresh peer that echoes frames on every link it accepts. */
export async function start(signallers, options = {}) {
  identity = T.Identity.generate();
  client = T.SignalClient.connect(signallers, { identity });
  await client.registered();
  (async () => {
    for await (const offer of client.offers) {
      T.acceptWebRTC(client, identity, offer, options).then(echo, (error) => failures.push(`${error.name}: ${error.message}`));
    }
  })();
  return identity.peerId;
}

/** Dial `peerId`, send each frame (text, or {size} bytes of "x") and read one reply each. */
export async function dialAndExchange(peerId, frames, options = {}) {
  const link = await T.dialWebRTC(client, identity, peerId, options);
  const reader = link[Symbol.asyncIterator]();
  const replies = [];
  for (const frame of frames) {
    const data = typeof frame === "string" ? text.encode(frame) : new Uint8Array(frame.size).fill(0x78);
    await link.send(data);
    const reply = await reader.next();
    if (reply.done) throw new Error(`the link closed: ${await link.closed}`);
    replies.push(reply.value.length > 64 ? { size: reply.value.length, head: untext.decode(reply.value.subarray(0, 8)) } : untext.decode(reply.value));
  }
  link.close();
  return { remote: link.remotePeerId, replies };
}

/** Resolves once accepted links echoed `count` frames in all. */
export async function waitEchoed(count, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  while (echoed < count) {
    if (Date.now() > end) throw new Error(`only ${echoed} frames echoed; failures: ${failures.join("; ")}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return echoed;
}

export async function stop() {
  await client?.close();
  return failures;
}

// -- the node API (TaiiNet.connect) ---------------------------------------------------------
let net = null;
const received = [];

/** Join the mesh as a full peer and subscribe to `query`; the page's peer id. */
export async function join(signallers, query, options = {}) {
  net = await T.TaiiNet.connect({ signallers, ...options });
  net.subscribe(query).on("data", (msg) => received.push({ data: msg.data, publisher: msg.publisher, id: msg.id, via: msg.via }));
  return net.peerId;
}

export function neighbors() {
  return net.neighbors;
}

export async function waitNeighbors(count, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  while (net.neighbors.length < count) {
    if (Date.now() > end) throw new Error(`only ${net.neighbors.length} neighbours`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return net.neighbors;
}

export async function publish(document) {
  return net.publish(document);
}

/** A one-shot publisher: join, `await sub.send(document)` at once, close; its peer id. */
export async function sendAndLeave(signallers, document, options = {}) {
  const oneShot = await T.TaiiNet.connect({ signallers, ...options });
  const sub = oneShot.subscribe({ never: { $exists: true } });
  await sub.send(document);
  await oneShot.close();
  return oneShot.peerId;
}

/** The documents received so far, once there are at least `count` of them. */
export async function waitReceived(count, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  while (received.length < count) {
    if (Date.now() > end) throw new Error(`only ${received.length} documents: ${JSON.stringify(received)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return received;
}

/** The content router's counters (adverts sent and received, accepted, unwanted, ...). */
export function routerStats() {
  return Object.fromEntries(net.core.router.stats);
}

export async function leave() {
  const rejected = Object.fromEntries(net.core.rejected);
  await net.close();
  return rejected;
}

// -- benchmarks (bench/browser.py) ------------------------------------------------------------
// Frames: "r" + payload counted, "R" + payload the last (answered "d"), "p" + payload echoed.
let benchRaw = false;

/** A secured link or a bare channel, seen the same way: send(bytes), onData(handler). */
function wrap(linkOrChannel, raw) {
  if (raw) return { send: (data) => linkOrChannel.send(data), onData: (fn) => { linkOrChannel.onMessage = fn; }, close: () => linkOrChannel.close() };
  return { send: (data) => linkOrChannel.send(data), onData: (fn) => { linkOrChannel.onFrame = fn; }, close: () => linkOrChannel.close() };
}

function serveBench(link) {
  link.onData((data) => {
    if (data[0] === 0x70) void link.send(data);
    else if (data[0] === 0x52) void link.send(Uint8Array.of(0x64));
  });
}

/** Answer offers as bench receivers: bare channels while `raw`, secured links otherwise. */
export async function benchServe(signallers, options = {}) {
  identity = T.Identity.generate();
  client = T.SignalClient.connect(signallers, { identity });
  await client.registered();
  (async () => {
    for await (const offer of client.offers) {
      const raw = benchRaw;
      const opening = raw ? T.acceptRawWebRTC(client, offer, options) : T.acceptWebRTC(client, identity, offer, options);
      opening.then((link) => serveBench(wrap(link, raw)), (error) => failures.push(`${error.name}: ${error.message}`));
    }
  })();
  return identity.peerId;
}

export function setBenchRaw(raw) {
  benchRaw = raw;
}

/** `count` frames of `size` bytes as fast as the link takes them, then `pings` round trips. */
export async function bench(peerId, raw, count, size, pings, options = {}) {
  const opened = raw ? await T.dialRawWebRTC(client, peerId, options) : await T.dialWebRTC(client, identity, peerId, options);
  const link = wrap(opened, raw);
  let waiter = null;
  link.onData((data) => { const w = waiter; waiter = null; w?.(data); });
  const reply = () => new Promise((resolve) => { waiter = resolve; });
  const frame = (kind) => { const data = new Uint8Array(size); data[0] = kind; return data; };
  for (let i = 0; i < 50; i++) { const r = reply(); await link.send(frame(0x70)); await r; } // warm-up
  const done = reply();
  const start = performance.now();
  for (let i = 0; i < count; i++) await link.send(frame(i === count - 1 ? 0x52 : 0x72));
  await done;
  const seconds = (performance.now() - start) / 1000;
  const rtts = [];
  for (let i = 0; i < pings; i++) {
    const r = reply();
    const t0 = performance.now();
    await link.send(frame(0x70));
    await r;
    rtts.push(performance.now() - t0);
  }
  rtts.sort((a, b) => a - b);
  link.close();
  const at = (q) => rtts[Math.min(rtts.length - 1, Math.floor(q * rtts.length))];
  return { rate: count / seconds, p50: at(0.5), p99: at(0.99) };
}
