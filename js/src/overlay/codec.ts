/**
 * Overlay messages (docs/overlay.md, "Messages"): the only module that touches
 * `OverlayMessage`.  Decoding checks every limit and returns a validated
 * value; a message that breaks one is `MalformedOverlayMessage` (the link it
 * came on is dropped).
 */

import { create } from "@bufbuild/protobuf";

import { InvalidPeerId, RemoteProtocolError } from "../errors.js";
import { type OverlayMessage, OverlayMessageSchema } from "../gen/taiinet/v1/overlay_pb.js";
import { type PeerId, parsePeerId } from "../wire/peerId.js";

export const MAX_SHUFFLE_PEERS = 64;
export const MAX_MESSAGE_ID = 64;
export const MAX_PAYLOAD = 61_440;
export const MAX_TTL = 255;

export class MalformedOverlayMessage extends RemoteProtocolError {}

/** An overlay message, validated. `origin` "" is the default tree. */
export type OverlayMsg =
  | { readonly type: "join" }
  | { readonly type: "forwardJoin"; readonly peer: PeerId; readonly ttl: number }
  | { readonly type: "neighbor"; readonly high: boolean }
  | { readonly type: "neighborReply"; readonly accepted: boolean }
  | { readonly type: "disconnect" }
  | { readonly type: "shuffle"; readonly origin: PeerId; readonly ttl: number; readonly peers: readonly PeerId[] }
  | { readonly type: "shuffleReply"; readonly peers: readonly PeerId[] }
  | { readonly type: "gossip"; readonly id: Uint8Array; readonly hops: number; readonly payload: Uint8Array; readonly origin: PeerId | ""; readonly entry: bigint }
  | { readonly type: "ihave"; readonly id: Uint8Array; readonly hops: number }
  | { readonly type: "graft"; readonly id: Uint8Array; readonly origin: PeerId | "" }
  | { readonly type: "prune"; readonly origin: PeerId | "" };

function peer(text: string): PeerId {
  try {
    return parsePeerId(text);
  } catch (error) {
    if (error instanceof InvalidPeerId) throw new MalformedOverlayMessage(`not a valid peer id: ${error.message}`);
    throw error;
  }
}

const optionalPeer = (text: string): PeerId | "" => (text === "" ? "" : peer(text));

function peers(list: readonly string[]): PeerId[] {
  if (list.length > MAX_SHUFFLE_PEERS) throw new MalformedOverlayMessage(`more than ${MAX_SHUFFLE_PEERS} peers`);
  return list.map(peer);
}

function small(value: number, what: string): number {
  if (value > MAX_TTL) throw new MalformedOverlayMessage(`${what} ${value} is over ${MAX_TTL}`);
  return value;
}

function messageId(id: Uint8Array, emptyAllowed = false): Uint8Array {
  if (id.length > MAX_MESSAGE_ID || (id.length === 0 && !emptyAllowed)) {
    throw new MalformedOverlayMessage(`a message id has 1 to ${MAX_MESSAGE_ID} bytes, not ${id.length}`);
  }
  return id;
}

/** The validated form of a decoded `OverlayMessage`. */
export function fromOverlayProto(message: OverlayMessage): OverlayMsg {
  const body = message.body;
  switch (body.case) {
    case "join": return { type: "join" };
    case "forwardJoin": return { type: "forwardJoin", peer: peer(body.value.peerId), ttl: small(body.value.ttl, "ttl") };
    case "neighbor": return { type: "neighbor", high: body.value.highPriority };
    case "neighborReply": return { type: "neighborReply", accepted: body.value.accepted };
    case "disconnect": return { type: "disconnect" };
    case "shuffle": return { type: "shuffle", origin: peer(body.value.origin), ttl: small(body.value.ttl, "ttl"), peers: peers(body.value.peers) };
    case "shuffleReply": return { type: "shuffleReply", peers: peers(body.value.peers) };
    case "gossip": {
      const { messageId: id, hops, payload, origin, entry } = body.value;
      if (payload.length > MAX_PAYLOAD) throw new MalformedOverlayMessage(`a payload of ${payload.length} bytes is over ${MAX_PAYLOAD}`);
      return { type: "gossip", id: messageId(id), hops: small(hops, "hops"), payload, origin: optionalPeer(origin), entry };
    }
    case "ihave": return { type: "ihave", id: messageId(body.value.messageId), hops: small(body.value.hops, "hops") };
    case "graft": return { type: "graft", id: messageId(body.value.messageId, true), origin: optionalPeer(body.value.origin) };
    case "prune": return { type: "prune", origin: optionalPeer(body.value.origin) };
    default: throw new MalformedOverlayMessage("an overlay message without a body");
  }
}

/** The wire form of an overlay message. */
export function toOverlayProto(message: OverlayMsg): OverlayMessage {
  switch (message.type) {
    case "join": return create(OverlayMessageSchema, { body: { case: "join", value: {} } });
    case "forwardJoin": return create(OverlayMessageSchema, { body: { case: "forwardJoin", value: { peerId: message.peer, ttl: message.ttl } } });
    case "neighbor": return create(OverlayMessageSchema, { body: { case: "neighbor", value: { highPriority: message.high } } });
    case "neighborReply": return create(OverlayMessageSchema, { body: { case: "neighborReply", value: { accepted: message.accepted } } });
    case "disconnect": return create(OverlayMessageSchema, { body: { case: "disconnect", value: {} } });
    case "shuffle": return create(OverlayMessageSchema, { body: { case: "shuffle", value: { origin: message.origin, ttl: message.ttl, peers: [...message.peers] } } });
    case "shuffleReply": return create(OverlayMessageSchema, { body: { case: "shuffleReply", value: { peers: [...message.peers] } } });
    case "gossip": return create(OverlayMessageSchema, { body: { case: "gossip", value: {
      messageId: message.id, hops: message.hops, payload: message.payload, origin: message.origin, entry: message.entry,
    } } });
    case "ihave": return create(OverlayMessageSchema, { body: { case: "ihave", value: { messageId: message.id, hops: message.hops } } });
    case "graft": return create(OverlayMessageSchema, { body: { case: "graft", value: { messageId: message.id, origin: message.origin } } });
    case "prune": return create(OverlayMessageSchema, { body: { case: "prune", value: { origin: message.origin } } });
  }
}
