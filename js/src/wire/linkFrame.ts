/**
 * Link frames: what a frame holds (docs/protocol.md, sections 4.1 and 4.2).
 *
 * Theory of operation: a frame is one `LinkFrame`, a list of items, each a
 * protocol id and that protocol's message as bytes.  An item's encoding does
 * not depend on the others, so a sender encodes each item once
 * (`encodeItem`) and a frame of several is their concatenation
 * (`joinItems`), byte for byte what protobuf writes.  `decodeLinkFrame`
 * parses a frame once into `[protocol, body]` pairs; each body then goes to
 * its protocol's codec.  Which protocols a peer runs is not decided here: an
 * item of a protocol the caller does not run is to be skipped, not refused.
 * Protocol 1 is the link's own keep-alive (`LinkControl`: `Ping`/`Pong`).
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";

import { FrameTooLarge, LocalProtocolError, MalformedFrame } from "../errors.js";
import { concatBytes } from "../bytes.js";
import { LinkControlSchema, LinkFrameSchema } from "../gen/taiinet/v1/frame_pb.js";
import { DEFAULT_MAX_FRAME_SIZE, encodeUvarint } from "./framing.js";

/** Most items in one frame. */
export const MAX_FRAME_ITEMS = 512;
/** Protocol ids are 1 .. this (a uint32; 0 is no protocol). */
export const MAX_PROTOCOL_ID = 2 ** 32 - 1;
/** The link's own protocol: keep-alive. */
export const LINK_PROTOCOL = 1;

/** One item, as the pair a frame decodes into. */
export type LinkItem = readonly [protocol: number, body: Uint8Array];

/** One `LinkItem` as it sits in a `LinkFrame` (key, length, item); an empty body is left out. */
export function encodeItem(protocol: number, body: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(protocol) || protocol < 1 || protocol > MAX_PROTOCOL_ID) {
    throw new LocalProtocolError(`protocol id ${protocol} is not in 1..${MAX_PROTOCOL_ID}`);
  }
  const head = concatBytes(Uint8Array.of(0x08), encodeUvarint(protocol));
  const item = body.length === 0 ? head : concatBytes(head, Uint8Array.of(0x12), encodeUvarint(body.length), body);
  return concatBytes(Uint8Array.of(0x0a), encodeUvarint(item.length), item);
}

/** The `LinkFrame` holding the encoded `items` (from `encodeItem`), in order. */
export function joinItems(items: readonly Uint8Array[]): Uint8Array {
  return concatBytes(...items);
}

/**
 * Parse frame bytes into their items, in order.  `FrameTooLarge` over
 * `maxFrameSize`; `MalformedFrame` when the bytes are not a `LinkFrame`, hold
 * no item or more than `maxItems`, or an item of protocol 0.
 */
export function decodeLinkFrame(data: Uint8Array, maxFrameSize = DEFAULT_MAX_FRAME_SIZE,
                                maxItems = MAX_FRAME_ITEMS): LinkItem[] {
  if (data.length > maxFrameSize) {
    throw new FrameTooLarge(`frame of ${data.length} bytes exceeds the maximum of ${maxFrameSize}`);
  }
  let frame;
  try {
    frame = fromBinary(LinkFrameSchema, data, { readUnknownFields: false });
  } catch (error) {
    throw new MalformedFrame(`undecodable frame: ${String(error)}`);
  }
  if (frame.items.length === 0) throw new MalformedFrame("a frame holds no item");
  if (frame.items.length > maxItems) throw new MalformedFrame(`a frame holds more than ${maxItems} items`);
  return frame.items.map((item) => {
    if (item.protocol === 0) throw new MalformedFrame("an item of protocol 0");
    return [item.protocol, item.body] as const;
  });
}

/** An encoded item (and a one-item frame) holding a `Ping`. */
export function pingItem(nonce = 0n): Uint8Array {
  return encodeItem(LINK_PROTOCOL, toBinary(LinkControlSchema, create(LinkControlSchema, {
    body: { case: "ping", value: { nonce } },
  })));
}

/** An encoded item (and a one-item frame) holding a `Pong`. */
export function pongItem(nonce: bigint): Uint8Array {
  return encodeItem(LINK_PROTOCOL, toBinary(LinkControlSchema, create(LinkControlSchema, {
    body: { case: "pong", value: { nonce } },
  })));
}

/** `["ping" | "pong", nonce]` of a `LinkControl` body; `MalformedFrame` if bad. */
export function decodeControl(body: Uint8Array): ["ping" | "pong", bigint] {
  let control;
  try {
    control = fromBinary(LinkControlSchema, body, { readUnknownFields: false });
  } catch (error) {
    throw new MalformedFrame(`undecodable link control message: ${String(error)}`);
  }
  if (control.body.case === "ping" || control.body.case === "pong") return [control.body.case, control.body.value.nonce];
  throw new MalformedFrame("a link control message of no kind this version knows");
}
