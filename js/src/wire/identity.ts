/**
 * Node identities: Ed25519 key pairs named by their libp2p peer id
 * (docs/protocol.md, section 2).  Signing and verification are @noble/curves'
 * Ed25519.  Signatures are checked by the rule of section 2.4, as every peer
 * does (conformance/signatures.json): noble with `zip215: false` decodes A and
 * R strictly, requires S < L and checks the cofactored equation; it refuses a
 * key of small order but not a nonce R of small order, so both are refused
 * here first, by their bytes.
 */

import { ed25519 } from "@noble/curves/ed25519.js";

import { KeyFileError, LocalProtocolError } from "../errors.js";
import { bytesEqual } from "../bytes.js";
import { ED25519_SEED_SIZE, ED25519_SIGNATURE_SIZE, decodePrivateKey, encodePrivateKey, encodePublicKey } from "./keys.js";
import { ED25519_PUBLIC_KEY_SIZE, type PeerId, peerIdFromPublicKey, publicKeyOfPeerId } from "./peerId.js";

/** The field prime p. */
const P = 2n ** 255n - 19n;
/** y of two of the four points of order 8 (the other two have y = p - this). */
const ORDER_EIGHT_Y = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
/** The y coordinates of the eight points of small order. */
const SMALL_ORDER_Y = new Set([0n, 1n, P - 1n, ORDER_EIGHT_Y, P - ORDER_EIGHT_Y]);

/** Whether 32 bytes may stand for A or R: y reduced (y < p) and not a point of small order
 * (x = 0 with the sign bit set, the other non-canonical form, has y = ±1: refused too). */
function acceptablePoint(encoded: Uint8Array): boolean {
  let y = BigInt((encoded[31] as number) & 0x7f);
  for (let i = 30; i >= 0; i--) y = (y << 8n) | BigInt(encoded[i] as number);
  return y < P && !SMALL_ORDER_Y.has(y);
}

/** True when `signature` is valid for `data` and the raw key `publicKey` (docs/protocol.md 2.4). */
export function verifyWithPublicKey(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_SIZE || publicKey.length !== ED25519_PUBLIC_KEY_SIZE) return false;
  if (!acceptablePoint(publicKey) || !acceptablePoint(signature.subarray(0, 32))) return false;
  try {
    return ed25519.verify(signature, data, publicKey, { zip215: false });
  } catch {
    return false; // a key that is not a curve point
  }
}

/** True when `signature` is the signature of `data` by `peerId`'s key. */
export function verifySignature(peerId: PeerId, data: Uint8Array, signature: Uint8Array): boolean {
  return verifyWithPublicKey(publicKeyOfPeerId(peerId), data, signature);
}

/** An Ed25519 key pair and its peer id. */
export class Identity {
  readonly publicKey: Uint8Array;
  readonly peerId: PeerId;
  readonly #seed: Uint8Array;

  private constructor(seed: Uint8Array) {
    this.#seed = seed;
    this.publicKey = ed25519.getPublicKey(seed);
    this.peerId = peerIdFromPublicKey(this.publicKey);
  }

  /** A fresh key pair from the platform's secure random source. */
  static generate(): Identity {
    return new Identity(crypto.getRandomValues(new Uint8Array(ED25519_SEED_SIZE)));
  }

  /** The key pair of a 32-byte seed (deterministic: for tests). */
  static fromSeed(seed: Uint8Array): Identity {
    if (seed.length !== ED25519_SEED_SIZE) {
      throw new LocalProtocolError(`an Ed25519 seed has 32 bytes, not ${seed.length}`);
    }
    return new Identity(Uint8Array.from(seed));
  }

  /** Parse the protobuf `PrivateKey` of a key file; `KeyFileError` if invalid. */
  static fromPrivateKeyBytes(data: Uint8Array): Identity {
    const [seed, publicKey] = decodePrivateKey(data);
    const identity = new Identity(seed);
    if (!bytesEqual(identity.publicKey, publicKey)) {
      throw new KeyFileError("the public key in the key file does not match its seed");
    }
    return identity;
  }

  /** The protobuf `PrivateKey` (a key file's content). Keep it secret. */
  privateKeyBytes(): Uint8Array {
    return encodePrivateKey(this.#seed, this.publicKey);
  }

  /** The protobuf-encoded `PublicKey` (as in envelopes and handshake payloads). */
  get publicKeyProto(): Uint8Array {
    return encodePublicKey(this.publicKey);
  }

  /** The 64-byte Ed25519 signature of `data`. */
  sign(data: Uint8Array): Uint8Array {
    return ed25519.sign(data, this.#seed);
  }
}
