/**
 * The checks an SDP offer or answer from the network must pass before it
 * reaches the browser's WebRTC stack (docs/protocol.md, "WebRTC data
 * channel"): size, line syntax, exactly one data channel section, ICE and
 * DTLS attributes, 1 to 64 candidates (no trickle ICE).  The browser's own
 * parser (`setRemoteDescription`) is the last check.
 */

import { InvalidSdp } from "../errors.js";

export const MAX_SDP_SIZE = 16 * 1024;
export const MAX_SDP_LINES = 256;
export const MAX_SDP_CANDIDATES = 64;

const SDP_LINE = /^[a-z]=[^\x00-\x08\x0a-\x1f\x7f]*$/;
const REQUIRED_ATTRIBUTES = ["a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:"];

/** `sdp` if it passes; else `InvalidSdp` naming the first check it failed. */
export function validateSdp(sdp: unknown, kind: "offer" | "answer"): string {
  if (typeof sdp !== "string") throw new InvalidSdp(`the ${kind} is not text`);
  if (new TextEncoder().encode(sdp).length > MAX_SDP_SIZE) throw new InvalidSdp(`the ${kind} is larger than ${MAX_SDP_SIZE} bytes`);
  const lines = sdp.replaceAll("\r\n", "\n").split("\n").filter((line) => line !== "");
  if (lines.length > MAX_SDP_LINES) throw new InvalidSdp(`the ${kind} has more than ${MAX_SDP_LINES} lines`);
  if (lines[0] !== "v=0") throw new InvalidSdp(`the ${kind} does not start with v=0`);
  lines.forEach((line, index) => {
    if (!SDP_LINE.test(line)) throw new InvalidSdp(`line ${index + 1} of the ${kind} is not an SDP line`);
  });
  const media = lines.filter((line) => line.startsWith("m="));
  if (media.length !== 1 || !media[0]?.startsWith("m=application ") || !media[0].includes("webrtc-datachannel")) {
    throw new InvalidSdp(`the ${kind} must have exactly one data channel (m=application) section`);
  }
  for (const attribute of REQUIRED_ATTRIBUTES) {
    if (!lines.some((line) => line.startsWith(attribute))) throw new InvalidSdp(`the ${kind} has no ${attribute.slice(0, -1)} attribute`);
  }
  const candidates = lines.filter((line) => line.startsWith("a=candidate:")).length;
  if (candidates === 0) throw new InvalidSdp(`the ${kind} has no ICE candidate (trickle ICE is not supported)`);
  if (candidates > MAX_SDP_CANDIDATES) throw new InvalidSdp(`the ${kind} has more than ${MAX_SDP_CANDIDATES} ICE candidates`);
  return sdp;
}
