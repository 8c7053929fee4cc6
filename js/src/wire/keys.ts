/**
 * Ed25519 keys in their libp2p protobuf encodings (docs/protocol.md, 2.1, 2.2).
 *
 * The canonical encodings are fixed strings of bytes, so checking the prefix
 * and the length is the whole of "parses and re-encodes to the same bytes":
 *
 *     PublicKey  = 08 01 12 20 || public key          (36 bytes)
 *     PrivateKey = 08 01 12 40 || seed || public key  (68 bytes, a key file)
 */

import { InvalidPublicKey, KeyFileError } from "../errors.js";
import { bytesEqual, concatBytes } from "../bytes.js";

export const ED25519_SEED_SIZE = 32;
export const ED25519_SIGNATURE_SIZE = 64;
const PUBLIC_KEY_HEADER = Uint8Array.of(0x08, 0x01, 0x12, 0x20);
const PRIVATE_KEY_HEADER = Uint8Array.of(0x08, 0x01, 0x12, 0x40);
/** A key file larger than this is not a key file (a canonical one has 68 bytes). */
export const MAX_KEY_FILE_SIZE = 4096;

/** The protobuf `PublicKey` of a raw Ed25519 key. */
export function encodePublicKey(raw: Uint8Array): Uint8Array {
  return concatBytes(PUBLIC_KEY_HEADER, raw);
}

/** The raw 32-byte key of a canonical Ed25519 `PublicKey`; else `InvalidPublicKey`. */
export function decodePublicKey(data: Uint8Array): Uint8Array {
  if (data.length !== 36 || !bytesEqual(data.subarray(0, 4), PUBLIC_KEY_HEADER)) {
    throw new InvalidPublicKey("not a canonically encoded Ed25519 PublicKey (08 01 12 20 || 32 bytes)");
  }
  return data.slice(4);
}

export function encodePrivateKey(seed: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return concatBytes(PRIVATE_KEY_HEADER, seed, publicKey);
}

/** `[seed, public key]` of a canonical Ed25519 `PrivateKey`; else `KeyFileError`. */
export function decodePrivateKey(data: Uint8Array): [Uint8Array, Uint8Array] {
  if (data.length > MAX_KEY_FILE_SIZE) throw new KeyFileError("too large to be a key file");
  if (data.length !== 68 || !bytesEqual(data.subarray(0, 4), PRIVATE_KEY_HEADER)) {
    throw new KeyFileError("not a canonically encoded Ed25519 PrivateKey (08 01 12 40 || 64 bytes)");
  }
  return [data.slice(4, 36), data.slice(36)];
}
