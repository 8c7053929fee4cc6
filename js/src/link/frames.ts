/**
 * The link's frame codec (docs/protocol.md section 4): the only module of the
 * node and signal client that builds or parses link frames, on top of
 * `wire/linkFrame.ts`.  A frame holds items, each a protocol id and that
 * protocol's message (1: link keep-alive, 10: overlay, 11: signal, 12: pubsub); each layer
 * hands this module its own message and gets its own message back; the
 * keep-alive (`Ping` -> `Pong`, section 4.2) is answered by the callers.
 * Items of protocols this peer does not run come back as `other` (to skip).
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";

import { MalformedFrame } from "../errors.js";
import { type OverlayMessage, OverlayMessageSchema } from "../gen/taiinet/v1/overlay_pb.js";
import { type PubsubMessage, PubsubMessageSchema } from "../gen/taiinet/v1/pubsub_pb.js";
import { type SignalMessage, SignalMessageSchema } from "../gen/taiinet/v1/signal_pb.js";
import {
  LINK_PROTOCOL, MAX_FRAME_ITEMS, decodeControl, decodeLinkFrame as decodeItems, encodeItem, pingItem, pongItem,
} from "../wire/linkFrame.js";

/** Most items one link frame holds (docs/protocol.md 4.1). */
export const MAX_BATCH_FRAMES = MAX_FRAME_ITEMS;
/** Protocol ids of the layers this module reads (docs/protocol.md 4.1). */
export const OVERLAY_PROTOCOL = 10;
export const SIGNAL_PROTOCOL = 11;
export const PUBSUB_PROTOCOL = 12;

/** A decoded item, as the layers see it. */
export type LinkFrame =
  | { readonly kind: "ping"; readonly nonce: bigint }
  | { readonly kind: "pong"; readonly nonce: bigint }
  | { readonly kind: "signal"; readonly message: SignalMessage }
  | { readonly kind: "overlay"; readonly message: OverlayMessage }
  | { readonly kind: "pubsub"; readonly message: PubsubMessage }
  | { readonly kind: "other"; readonly protocol: number; readonly body: Uint8Array };

function parse<T>(decode: () => T, what: string): T {
  try {
    return decode();
  } catch {
    throw new MalformedFrame(`not a protobuf ${what}`);
  }
}

/** The items of one link frame, in order, decoded; `MalformedFrame` if bad. */
export function decodeLinkFrame(data: Uint8Array): LinkFrame[] {
  return decodeItems(data).map(([protocol, body]): LinkFrame => {
    switch (protocol) {
      case LINK_PROTOCOL: {
        const [kind, nonce] = decodeControl(body);
        return { kind, nonce };
      }
      case SIGNAL_PROTOCOL:
        return { kind: "signal", message: parse(() => fromBinary(SignalMessageSchema, body, { readUnknownFields: false }), "SignalMessage") };
      case OVERLAY_PROTOCOL:
        return { kind: "overlay", message: parse(() => fromBinary(OverlayMessageSchema, body, { readUnknownFields: false }), "OverlayMessage") };
      case PUBSUB_PROTOCOL:
        return { kind: "pubsub", message: parse(() => fromBinary(PubsubMessageSchema, body, { readUnknownFields: false }), "PubsubMessage") };
      default:
        return { kind: "other", protocol, body };
    }
  });
}

export function encodeSignalFrame(body: SignalMessage["body"]): Uint8Array {
  return encodeItem(SIGNAL_PROTOCOL, toBinary(SignalMessageSchema, create(SignalMessageSchema, { body })));
}

export function encodePing(nonce: bigint): Uint8Array {
  return pingItem(nonce);
}

export function encodePong(nonce: bigint): Uint8Array {
  return pongItem(nonce);
}

export function encodeOverlayFrame(message: OverlayMessage): Uint8Array {
  return encodeItem(OVERLAY_PROTOCOL, toBinary(OverlayMessageSchema, message));
}

export function encodePubsubFrame(message: PubsubMessage): Uint8Array {
  return encodeItem(PUBSUB_PROTOCOL, toBinary(PubsubMessageSchema, message));
}
