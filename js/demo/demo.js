// The demo page: one peer of the mesh that `taiinet demo --browser` runs.  It joins
// with the bundle's TaiiNet.connect (signallers and ICE servers from /config.json),
// lists its neighbours, shows the documents matching the query box, and publishes
// what the publish box holds.  Plain JavaScript, no framework.
const { TaiiNet } = await import("/taiinet.js");

/** Rows kept in the table (older ones are removed). */
const MAX_ROWS = 100;
const $ = (id) => document.getElementById(id);
const config = await (await fetch("/config.json")).json();
const pythonPeers = new Set(config.pythonPeers);
let subscription = null;
let shown = 0;

function kind(peer) {
  if (peer === net.peerId) return "self";
  return pythonPeers.has(peer) ? "python" : "page";
}

function label(peer) {
  if (peer === null) return "";
  const who = kind(peer);
  return `<span class="${who}" title="${peer}">…${peer.slice(-6)} (${who === "self" ? "this tab" : who})</span>`;
}

function showNeighbors(peers) {
  $("neighbor-count").textContent = String(peers.length);
  $("neighbors").replaceChildren(...peers.map((peer) => {
    const item = document.createElement("li");
    item.dataset.peer = peer;
    item.innerHTML = label(peer);
    return item;
  }));
}

function showMessage(msg) {
  const row = document.createElement("tr");
  row.dataset.document = JSON.stringify(msg.data);
  row.dataset.publisher = msg.publisher;
  const cells = [new Date(msg.publishedUnixMs).toLocaleTimeString(), label(msg.publisher), label(msg.via)];
  row.innerHTML = cells.map((cell) => `<td>${cell}</td>`).join("");
  const doc = document.createElement("td");
  doc.className = "doc";
  doc.textContent = row.dataset.document;
  row.append(doc);
  $("documents").prepend(row);
  while ($("documents").rows.length > MAX_ROWS) $("documents").lastElementChild.remove();
  $("doc-count").textContent = String(++shown);
}

function subscribe(text) {
  const query = JSON.parse(text);
  const next = net.subscribe(query); // InvalidQuery (naming the path at fault) before anything changes
  subscription?.close();
  subscription = next;
  shown = 0;
  $("documents").replaceChildren();
  $("doc-count").textContent = "0";
  document.body.dataset.query = JSON.stringify(query);
  subscription.on("data", showMessage);
}

function report(error) {
  $("error").textContent = error ? `${error.name}: ${error.message}` : "";
}

const net = await TaiiNet.connect({
  signallers: config.signallers, iceServers: config.iceServers,
  ...(config.iceTransportPolicy ? { iceTransportPolicy: config.iceTransportPolicy } : {}),
});
net.onNeighbors = showNeighbors;
showNeighbors(net.neighbors);
subscribe($("query").value);
$("status").innerHTML = `this tab is peer ${label(net.peerId)}, joined through ${config.signallers.length} signallers` +
  (config.iceServers.length ? " (pages link to each other through the TURN relay)" : " (no TURN relay: tabs link to each other only where the browser has an address besides 127.0.0.1)");
document.body.dataset.peer = net.peerId;
document.body.dataset.ready = "true";

$("query-form").addEventListener("submit", (event) => {
  event.preventDefault();
  try {
    subscribe($("query").value);
    report(null);
  } catch (error) {
    report(error);
  }
});

$("publish-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const id = await subscription.send(JSON.parse($("document").value));
    $("published").textContent = `published ${id.slice(0, 12)}…, handed to a neighbour`;
    report(null);
  } catch (error) {
    report(error);
  }
});

addEventListener("pagehide", () => { void net.close(); });
