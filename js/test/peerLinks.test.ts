// The page's links by peer (docs/protocol.md 4.3): with two links to one peer, frames go
// where the peer sends, and a link that ends with frames written on it since the last frame
// read from it fails the whole peer (the core hears of it) instead of losing them silently.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { PeerLinks } from "../src/io/peerLinks.js";
import { Identity } from "../src/wire/identity.js";

const PEER = Identity.fromSeed(new Uint8Array(32).fill(2)).peerId;

class FakeLink {
  closedWith: string | null = null;
  constructor(readonly name: string) {}
  close(reason: string): void {
    this.closedWith ??= reason;
  }
}

describe("PeerLinks", () => {
  it("fails the peer when the answerer's new link ends with a frame written on it unread", () => {
    const links = new PeerLinks<FakeLink>();
    const older = new FakeLink("older");
    links.add(PEER, older);
    links.received(PEER, older);
    links.wrote(links.target(PEER)!); // a reply, on the older link
    links.received(PEER, older);
    const newer = new FakeLink("newer"); // the join dial the peer is about to cancel
    links.add(PEER, newer);
    assert.equal(links.target(PEER), newer);
    links.wrote(newer); // e.g. an interest advert
    newer.close("the peer closed it unread");
    assert.equal(links.ended(PEER, newer), "down");
    assert.equal(links.get(PEER), undefined);
    assert.match(older.closedWith ?? "", /^failed/);
    assert.equal(links.ended(PEER, older), "stale"); // its own end later changes nothing
  });

  it("keeps the peer when the link that ended had nothing unanswered on it", () => {
    const links = new PeerLinks<FakeLink>();
    const older = new FakeLink("older");
    const newer = new FakeLink("newer");
    links.add(PEER, older);
    links.add(PEER, newer);
    links.wrote(newer);
    links.received(PEER, newer); // the peer answered on it
    links.received(PEER, older); // and now sends on the older one: so do we
    assert.equal(links.target(PEER), older);
    links.wrote(older);
    assert.equal(links.ended(PEER, newer), "kept");
    assert.deepEqual(links.get(PEER), [older]);
    assert.equal(older.closedWith, null);
    assert.equal(links.ended(PEER, older), "down"); // the last one, written on: gone
  });

  it("reports the peer down when its last link ends, written on or not", () => {
    const links = new PeerLinks<FakeLink>();
    const only = new FakeLink("only");
    links.add(PEER, only);
    links.received(PEER, only);
    assert.equal(links.ended(PEER, only), "down");
    assert.equal(links.size, 0);
  });
});
