/**
 * The link's frame codec (docs/protocol.md section 4): the only module that
 * builds or parses `taiinet.v1.Frame`, so a change of the frame layout touches
 * this file alone.  Each layer hands it its own message and gets its own
 * message back; the keep-alive (`Ping` -> `Pong`, section 4.2) is answered here.
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";

import { MalformedFrame } from "../errors.js";
import { type Frame, FrameSchema, PingSchema, PongSchema } from "../gen/taiinet/v1/frame_pb.js";
import type { OverlayMessage } from "../gen/taiinet/v1/overlay_pb.js";
import { type SignalMessage, SignalMessageSchema } from "../gen/taiinet/v1/signal_pb.js";

/** Most frames a batch holds (docs/protocol.md 4.1). */
export const MAX_BATCH_FRAMES = 512;

/** A decoded frame, as the layers see it. */
export type LinkFrame =
  | { readonly kind: "ping"; readonly nonce: bigint }
  | { readonly kind: "pong"; readonly nonce: bigint }
  | { readonly kind: "signal"; readonly message: SignalMessage }
  | { readonly kind: "overlay"; readonly message: OverlayMessage }
  | { readonly kind: "other"; readonly layer: string; readonly frame: Frame };

function fromProto(frame: Frame): LinkFrame {
  switch (frame.body.case) {
    case "ping": return { kind: "ping", nonce: frame.body.value.nonce };
    case "pong": return { kind: "pong", nonce: frame.body.value.nonce };
    case "signal": return { kind: "signal", message: frame.body.value };
    case "overlay": return { kind: "overlay", message: frame.body.value };
    case undefined: throw new MalformedFrame("a frame without a body (or of a kind this version does not know)");
    default: return { kind: "other", layer: frame.body.case, frame };
  }
}

/** The frames one link frame stands for (a batch unpacked, in order); `MalformedFrame` if bad. */
export function decodeLinkFrame(data: Uint8Array): LinkFrame[] {
  let frame: Frame;
  try {
    frame = fromBinary(FrameSchema, data, { readUnknownFields: false });
  } catch {
    throw new MalformedFrame("not a protobuf Frame");
  }
  if (frame.body.case !== "batch") return [fromProto(frame)];
  const inner = frame.body.value.frames;
  if (inner.length === 0 || inner.length > MAX_BATCH_FRAMES) {
    throw new MalformedFrame(`a batch holds 1 to ${MAX_BATCH_FRAMES} frames, not ${inner.length}`);
  }
  if (inner.some((f) => f.body.case === "batch")) throw new MalformedFrame("a batch inside a batch");
  return inner.map(fromProto);
}

export function encodeSignalFrame(body: SignalMessage["body"]): Uint8Array {
  const message = create(SignalMessageSchema, { body });
  return toBinary(FrameSchema, create(FrameSchema, { body: { case: "signal", value: message } }));
}

export function encodePing(nonce: bigint): Uint8Array {
  return toBinary(FrameSchema, create(FrameSchema, { body: { case: "ping", value: create(PingSchema, { nonce }) } }));
}

export function encodePong(nonce: bigint): Uint8Array {
  return toBinary(FrameSchema, create(FrameSchema, { body: { case: "pong", value: create(PongSchema, { nonce }) } }));
}

export function encodeOverlayFrame(message: OverlayMessage): Uint8Array {
  return toBinary(FrameSchema, create(FrameSchema, { body: { case: "overlay", value: message } }));
}
