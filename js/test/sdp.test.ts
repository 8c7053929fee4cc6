// The SDP checks of docs/protocol.md "WebRTC data channel", applied before the browser sees an SDP.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { InvalidSdp } from "../src/errors.js";
import { validateSdp } from "../src/link/sdp.js";

const GOOD = [
  "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
  "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0",
  "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", "a=end-of-candidates",
  "a=ice-ufrag:abcd", "a=ice-pwd:0123456789abcdef0123456789", "a=fingerprint:sha-256 AA:BB", "a=setup:actpass",
  "a=mid:0", "a=sctp-port:5000", "a=max-message-size:262144",
].join("\r\n") + "\r\n";

describe("SDP checks", () => {
  it("accept a complete data channel SDP", () => assert.equal(validateSdp(GOOD, "offer"), GOOD));

  const bad: [string, string, RegExp][] = [
    ["no candidates", GOOD.replace(/a=candidate:[^\r]*\r\n/, ""), /no ICE candidate/],
    ["two media sections", GOOD + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", /exactly one data channel/],
    ["no fingerprint", GOOD.replace(/a=fingerprint:[^\r]*\r\n/, ""), /no a=fingerprint/],
    ["a control character", GOOD.replace("s=-", "s=\u0007"), /not an SDP line/],
    ["not v=0 first", `x${GOOD}`, /v=0/],
    ["too large", GOOD + `a=x:${"y".repeat(17_000)}\r\n`, /larger than/],
    ["too many candidates", GOOD + "a=candidate:2 1 udp 1 127.0.0.1 1 typ host\r\n".repeat(64), /more than 64/],
  ];
  for (const [name, sdp, message] of bad) {
    it(`refuse ${name}`, () => assert.throws(() => validateSdp(sdp, "answer"), (e: unknown) => e instanceof InvalidSdp && message.test((e as Error).message)));
  }
  it("refuse what is not text", () => assert.throws(() => validateSdp(42, "offer"), InvalidSdp));
});
