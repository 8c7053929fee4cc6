// Driven by tests/browser/test_js_signal_client.py: the bundled signal client against real
// `taiinet signal` processes.  Reads commands (JSON lines) on stdin, writes events on stdout.
import { createInterface } from "node:readline";

const { SignalClient, Identity } = await import(new URL("../../dist/taiinet.js", import.meta.url).href);

const [signallers, seed] = [JSON.parse(process.argv[2]), BigInt(process.argv[3] ?? "1")];
const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const client = SignalClient.connect(signallers, { identity: Identity.fromSeed(new Uint8Array(32).fill(77)), seed });
client.onRegistered = ({ home, homeUrl }) => say({ event: "registered", home, homeUrl, peerId: client.peerId });
client.onHomeLost = (reason) => say({ event: "homeLost", reason });

(async () => {
  for await (const offer of client.offers) {
    say({ event: "offer", from: offer.fromPeer, sdp: offer.sdp });
    client.answer(offer, `js answer to: ${offer.sdp}`);
  }
})();

for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line);
  try {
    if (command.op === "contacts") {
      const records = await client.contacts(command.count ?? 8);
      say({ event: "contacts", peers: records.map((r) => r.peerId) });
    } else if (command.op === "offer") {
      say({ event: "answer", sdp: await client.offer(command.to, command.sdp) });
    } else if (command.op === "close") {
      await client.close();
      say({ event: "closed" });
      process.exit(0);
    }
  } catch (error) {
    say({ event: "error", op: command.op, name: error.name, message: error.message });
  }
}
