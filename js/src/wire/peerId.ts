/**
 * `PeerId`: the one type of a validated peer id (docs/protocol.md, section 2.3).
 *
 * A peer id is the base58btc text of the identity multihash of a
 * protobuf-encoded Ed25519 public key:
 *
 *     00 24 || 08 01 12 20 || 32 key bytes   ->   "12D3KooW..." (52 characters)
 *
 * Every id from the network is parsed with `parsePeerId` (canonical base58btc
 * only); `parseUserPeerId` also takes the CIDv1 form (`bafz...`) a user may
 * type.  The key bytes are not checked to be a curve point: a signature check
 * against such an id simply fails.
 */

import { InvalidPeerId, LocalProtocolError } from "../errors.js";
import { b32decodeLower, b58decode, b58encode } from "./base58.js";

/** A peer id known to be valid: only the functions of this module make one. */
export type PeerId = string & { readonly __brand: "PeerId" };

/** multihash code (identity), multihash length, the PublicKey header (Ed25519, 32 bytes). */
export const PEER_ID_PREFIX = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20);
export const ED25519_PUBLIC_KEY_SIZE = 32;
/** Bytes of a peer id's multihash. */
export const PEER_ID_BYTES_SIZE = PEER_ID_PREFIX.length + ED25519_PUBLIC_KEY_SIZE;
/** Peer id text longer than this is rejected before decoding (a valid one has 52). */
export const MAX_PEER_ID_TEXT = 128;
/** CIDv1 prefix of a peer id in CID form: version 1, multicodec libp2p-key (0x72). */
const CID_PREFIX = Uint8Array.of(0x01, 0x72);

function hasPeerIdPrefix(data: Uint8Array): boolean {
  return data.length === PEER_ID_BYTES_SIZE && PEER_ID_PREFIX.every((byte, i) => data[i] === byte);
}

function describe(text: string): string {
  return JSON.stringify(text.slice(0, 60));
}

/** `text` as a `PeerId`; `InvalidPeerId` (a RemoteProtocolError) if it is not one. */
export function parsePeerId(text: unknown): PeerId {
  if (typeof text !== "string" || text.length === 0 || text.length > MAX_PEER_ID_TEXT) {
    throw new InvalidPeerId(`a peer id is 1..${MAX_PEER_ID_TEXT} base58btc characters`);
  }
  const data = b58decode(text);
  if (data === null) throw new InvalidPeerId(`peer id ${describe(text)} is not base58btc`);
  if (!hasPeerIdPrefix(data)) {
    throw new InvalidPeerId(`${describe(text)} is not the peer id of an Ed25519 key (expected 12D3KooW...)`);
  }
  // base58btc is a bijection on byte strings, so decodable text is canonical.
  return text as PeerId;
}

/** `""` (an optional field left unset) or a valid `PeerId`. */
export function parseOptionalPeerId(text: string): PeerId | "" {
  return text === "" ? "" : parsePeerId(text);
}

/**
 * Validate a peer id typed by a user and return its canonical form.  Accepts
 * the CIDv1 form (`b` + base32 of `01 72 || peer id bytes`) as well.
 */
export function parseUserPeerId(text: string): PeerId {
  if (text.length > MAX_PEER_ID_TEXT || !text.startsWith("b")) return parsePeerId(text);
  const cid = b32decodeLower(text.slice(1));
  if (cid === null || cid[0] !== CID_PREFIX[0] || cid[1] !== CID_PREFIX[1]) {
    throw new InvalidPeerId(`${describe(text)} is not a CIDv1 peer id with the libp2p-key codec`);
  }
  const data = cid.subarray(CID_PREFIX.length);
  if (!hasPeerIdPrefix(data)) {
    throw new InvalidPeerId(`${describe(text)} is not the peer id of an Ed25519 key`);
  }
  return peerIdFromPublicKey(data.subarray(PEER_ID_PREFIX.length));
}

/** The peer id of a raw 32-byte Ed25519 public key. */
export function peerIdFromPublicKey(raw: Uint8Array): PeerId {
  if (raw.length !== ED25519_PUBLIC_KEY_SIZE) {
    throw new LocalProtocolError(`an Ed25519 public key has 32 bytes, not ${raw.length}`);
  }
  const data = new Uint8Array(PEER_ID_BYTES_SIZE);
  data.set(PEER_ID_PREFIX);
  data.set(raw, PEER_ID_PREFIX.length);
  return b58encode(data) as PeerId;
}

/** The raw 32-byte Ed25519 key a peer id embeds. */
export function publicKeyOfPeerId(peerId: PeerId): Uint8Array {
  const data = b58decode(peerId);
  if (data === null || !hasPeerIdPrefix(data)) throw new InvalidPeerId("not a peer id");
  return data.subarray(PEER_ID_PREFIX.length);
}
