/**
 * Signed envelopes, byte-compatible with libp2p RFC 0002 (docs/protocol.md, section 3).
 *
 * The signature covers the domain (never sent), the payload type and the
 * payload, each prefixed by its uvarint length.  Opening checks, in order:
 * size, canonical encoding (parse, re-encode, compare), key, payload type (if
 * the caller names one), signature, signer (if the caller names one).
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";

import { InvalidEnvelope, InvalidPublicKey, LocalProtocolError } from "../errors.js";
import { bytesEqual, concatBytes, utf8 } from "../bytes.js";
import { EnvelopeSchema } from "../gen/taiinet/v1/envelope_pb.js";
import { PublicKeySchema } from "../gen/taiinet/v1/keys_pb.js";
import { encodeUvarint } from "./framing.js";
import { type Identity, verifyWithPublicKey } from "./identity.js";
import { decodePublicKey } from "./keys.js";
import { type PeerId, peerIdFromPublicKey } from "./peerId.js";

/** Largest envelope `openEnvelope` accepts and `sealEnvelope` makes unless told otherwise. */
export const DEFAULT_MAX_ENVELOPE_SIZE = 256 * 1024;

/** A verified envelope: only `openEnvelope` makes them. */
export interface Envelope {
  readonly peerId: PeerId;
  readonly publicKey: Uint8Array;
  readonly payloadType: Uint8Array;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
  /** The exact bytes that were opened (to relay unchanged). */
  readonly raw: Uint8Array;
}

export interface OpenOptions {
  maxSize?: number;
  /** Require this payload type (checked before the signature). */
  payloadType?: Uint8Array;
  /** Require this signer. */
  peerId?: string;
}

/** The bytes an envelope's signature covers. */
export function signedBytes(domain: string, payloadType: Uint8Array, payload: Uint8Array): Uint8Array {
  const parts = [utf8(domain), payloadType, payload];
  return concatBytes(...parts.flatMap((part) => [encodeUvarint(part.length), part]));
}

function checkDomain(domain: string): void {
  if (typeof domain !== "string" || domain === "") {
    throw new LocalProtocolError("an envelope domain is a non-empty string");
  }
}

function encode(publicKeyProto: Uint8Array, payloadType: Uint8Array, payload: Uint8Array, signature: Uint8Array): Uint8Array {
  const publicKey = fromBinary(PublicKeySchema, publicKeyProto, { readUnknownFields: false });
  return toBinary(EnvelopeSchema, create(EnvelopeSchema, { publicKey, payloadType, payload, signature }));
}

/** Sign and encode an envelope; `LocalProtocolError` if it would exceed `maxSize`. */
export function sealEnvelope(identity: Identity, domain: string, payloadType: Uint8Array, payload: Uint8Array,
  maxSize = DEFAULT_MAX_ENVELOPE_SIZE): Uint8Array {
  checkDomain(domain);
  const signature = identity.sign(signedBytes(domain, payloadType, payload));
  const data = encode(identity.publicKeyProto, payloadType, payload, signature);
  if (data.length > maxSize) {
    throw new LocalProtocolError(`envelope of ${data.length} bytes exceeds the maximum of ${maxSize}`);
  }
  return data;
}

/** Decode and verify an envelope signed for `domain`; `InvalidEnvelope` if not. */
export function openEnvelope(data: Uint8Array, domain: string, options: OpenOptions = {}): Envelope {
  checkDomain(domain);
  const maxSize = options.maxSize ?? DEFAULT_MAX_ENVELOPE_SIZE;
  if (data.length > maxSize) {
    throw new InvalidEnvelope(`envelope of ${data.length} bytes exceeds the maximum of ${maxSize}`);
  }
  let message;
  try {
    message = fromBinary(EnvelopeSchema, data, { readUnknownFields: false });
  } catch {
    throw new InvalidEnvelope("not a protobuf Envelope");
  }
  if (message.publicKey === undefined) throw new InvalidEnvelope("envelope has no public key");
  const keyProto = toBinary(PublicKeySchema, message.publicKey);
  const { payloadType, payload, signature } = message;
  if (!bytesEqual(encode(keyProto, payloadType, payload, signature), data)) {
    throw new InvalidEnvelope("not a canonically encoded Envelope");
  }
  let publicKey: Uint8Array;
  try {
    publicKey = decodePublicKey(keyProto);
  } catch (error) {
    if (error instanceof InvalidPublicKey) throw new InvalidEnvelope(`envelope key: ${error.message}`);
    throw error;
  }
  if (options.payloadType !== undefined && !bytesEqual(payloadType, options.payloadType)) {
    throw new InvalidEnvelope("unexpected payload type");
  }
  if (!verifyWithPublicKey(publicKey, signedBytes(domain, payloadType, payload), signature)) {
    throw new InvalidEnvelope(`bad signature (or not signed for domain ${JSON.stringify(domain)})`);
  }
  const signer = peerIdFromPublicKey(publicKey);
  if (options.peerId !== undefined && signer !== options.peerId) {
    throw new InvalidEnvelope(`envelope signed by ${signer}, expected ${options.peerId}`);
  }
  return { peerId: signer, publicKey, payloadType, payload, signature, raw: data };
}
