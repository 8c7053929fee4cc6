/**
 * The `InterestAdvert` codec (docs/pubsub.md section 3): the only module of the
 * router that touches the `PubsubMessage` wire type.  Decoding checks every
 * rule of the section and throws `MalformedAdvert`, so the router sees only
 * valid adverts with their filters compiled.
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";

import { MalformedFilter, RemoteProtocolError } from "../errors.js";
import { encodePubsubFrame } from "../link/frames.js";
import { type PubsubMessage, PubsubMessageSchema } from "../gen/taiinet/v1/pubsub_pb.js";
import { FilterSchema } from "../gen/taiinet/v1/query_pb.js";
import { DEFAULT_QUERY_LIMITS, type QueryLimits } from "../query/limits.js";
import { Query } from "../query/query.js";
import { type PeerId, parseOptionalPeerId, parsePeerId } from "../wire/peerId.js";

/** Largest encoded `PubsubMessage`. */
export const MAX_ADVERT_BYTES = 32 * 1024;
/** Most filters an advert may hold on the wire. */
export const MAX_ADVERT_FILTERS = 16;
/** Longest route a node takes (links). */
export const MAX_ROOT_DISTANCE = 64;
/** `tree_size` saturates here; members are listed only below it. */
export const TREE_SIZE_CAP = 32;
/** `version` stops growing here. */
export const MAX_VERSION = (1n << 64n) - 1n;
/** Each filter of an advert is bounded by the query limits, within the advert's size. */
export const ADVERT_QUERY_LIMITS: QueryLimits = Object.freeze({ ...DEFAULT_QUERY_LIMITS, maxBytes: MAX_ADVERT_BYTES });

const MAX_SINCE = BigInt(Number.MAX_SAFE_INTEGER);

export class MalformedAdvert extends RemoteProtocolError {}

/** A valid interest advert (field meanings: docs/pubsub.md section 3). */
export interface Advert {
  readonly version: bigint;
  readonly filters: readonly Query[];
  readonly treeLink: boolean;
  readonly root: PeerId | "";
  readonly rootDistance: number;
  readonly rootSinceMs: number;
  readonly treeSize: number;
  readonly treeMembers: readonly PeerId[];
}

/** The `PubsubMessage` of `advert`. */
export function advertToProto(advert: Advert): PubsubMessage {
  return create(PubsubMessageSchema, { body: { case: "interest", value: {
    version: advert.version,
    filters: advert.filters.map((q) => fromBinary(FilterSchema, q.toFilterBytes())),
    treeLink: advert.treeLink, ack: 0n, root: advert.root, rootDistance: advert.rootDistance,
    rootSinceMs: BigInt(advert.rootSinceMs), treeSize: advert.treeSize, treeMembers: [...advert.treeMembers],
  } } });
}

/** `advert` as a link frame: one protocol-12 item. */
export function encodeAdvertFrame(advert: Advert): Uint8Array {
  return encodePubsubFrame(advertToProto(advert));
}

/** Validate a received `PubsubMessage`; `MalformedAdvert` if any rule of section 3 fails. */
export function advertFromProto(message: PubsubMessage): Advert {
  if (toBinary(PubsubMessageSchema, message).length > MAX_ADVERT_BYTES) throw new MalformedAdvert(`a pubsub message over ${MAX_ADVERT_BYTES} bytes`);
  if (message.body.case !== "interest") throw new MalformedAdvert("a PubsubMessage without a known body");
  const a = message.body.value;
  if (a.filters.length > MAX_ADVERT_FILTERS) throw new MalformedAdvert(`an advert of ${a.filters.length} filters, over ${MAX_ADVERT_FILTERS}`);
  if (a.rootDistance > MAX_ROOT_DISTANCE) throw new MalformedAdvert(`root distance ${a.rootDistance} over ${MAX_ROOT_DISTANCE}`);
  if (a.treeSize > TREE_SIZE_CAP || a.treeMembers.length > TREE_SIZE_CAP) throw new MalformedAdvert(`tree size or members over ${TREE_SIZE_CAP}`);
  let root: PeerId | "";
  let members: PeerId[];
  try {
    root = parseOptionalPeerId(a.root);
    members = a.treeMembers.map((m) => parsePeerId(m));
  } catch (error) {
    if (error instanceof RemoteProtocolError) throw new MalformedAdvert(`an advert's peer id: ${error.message}`);
    throw error;
  }
  const filters = a.filters.map((f) => {
    try {
      return Query.fromFilterBytes(toBinary(FilterSchema, f), ADVERT_QUERY_LIMITS);
    } catch (error) {
      if (error instanceof MalformedFilter) throw new MalformedAdvert(`an advert's filter: ${error.message}`);
      throw error;
    }
  });
  return {
    version: a.version, filters, treeLink: a.treeLink, root, rootDistance: a.rootDistance,
    // Beyond 2^53 - 1 ms (year 287,396) a start is a lie either way; clamped to keep it a number.
    rootSinceMs: Number(a.rootSinceMs > MAX_SINCE ? MAX_SINCE : a.rootSinceMs), treeSize: a.treeSize, treeMembers: members,
  };
}
