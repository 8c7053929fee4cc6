/**
 * Node identities: Ed25519 key pairs named by their libp2p peer id
 * (docs/protocol.md, section 2).  Signing and verification are @noble/curves'
 * Ed25519 with strict RFC 8032 verification (no ZIP-215 leniency), as the
 * Python side's libsodium.
 */

import { ed25519 } from "@noble/curves/ed25519.js";

import { KeyFileError, LocalProtocolError } from "../errors.js";
import { bytesEqual } from "../bytes.js";
import { ED25519_SEED_SIZE, ED25519_SIGNATURE_SIZE, decodePrivateKey, encodePrivateKey, encodePublicKey } from "./keys.js";
import { ED25519_PUBLIC_KEY_SIZE, type PeerId, peerIdFromPublicKey, publicKeyOfPeerId } from "./peerId.js";

/** True when `signature` is the Ed25519 signature of `data` by the raw key `publicKey`. */
export function verifyWithPublicKey(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_SIZE || publicKey.length !== ED25519_PUBLIC_KEY_SIZE) return false;
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
