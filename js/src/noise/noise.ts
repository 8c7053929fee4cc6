/**
 * Noise XX with the libp2p handshake payload, as a sans-I/O state machine
 * (docs/protocol.md, section 5); a port of taiinet/transport/noise.py.
 *
 * Theory of operation: `Noise_XX_25519_ChaChaPoly_SHA256` (Noise spec rev. 34),
 * empty prologue:
 *
 *     -> e
 *     <- e, ee, s, es        payload: responder's NoiseHandshakePayload
 *     -> s, se               payload: initiator's NoiseHandshakePayload
 *
 * The first message's payload is empty.  A handshake payload carries the
 * sender's Ed25519 identity key and its signature over
 * `"noise-libp2p-static-key:" || sender's X25519 static public key`, binding
 * the Noise static key to the peer id.  An initiator that dialed an expected
 * peer id checks it after message 2, before it reveals its own identity.
 *
 * `NoiseHandshake` is the state machine: the owner calls `writeMessage()` when
 * `state` is "write" and `readMessage(bytes)` when it is "read"; at "done",
 * `result` holds the two `CipherState`s and the remote peer id.  Any failure
 * moves it to "failed" for good.  Messages here are bare Noise messages; on a
 * link each is preceded by its 2-byte big-endian length (`NoiseMessageReader`
 * undoes that).  The X25519 keys come from the caller, so the core is
 * deterministic and replays the conformance transcript.
 *
 * `SecureSession` is the transport phase: uvarint-prefixed frames form a
 * plaintext stream cut into chunks of at most `MAX_PLAINTEXT` bytes, each
 * encrypted as one Noise transport message.
 *
 * Departures from the specs: none on the wire.  No rekeying (the nonce limit
 * ends the link instead).
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";

import { concatBytes, utf8 } from "../bytes.js";
import { DecryptionError, HandshakeError, InvalidPublicKey, LocalProtocolError, PeerIdMismatch, TruncatedFrame } from "../errors.js";
import { NoiseHandshakePayloadSchema } from "../gen/taiinet/v1/noise_pb.js";
import { DEFAULT_MAX_FRAME_SIZE, FrameDecoder, frameWithPrefix } from "../wire/framing.js";
import { type Identity, verifyWithPublicKey } from "../wire/identity.js";
import { decodePublicKey } from "../wire/keys.js";
import { type PeerId, peerIdFromPublicKey } from "../wire/peerId.js";

export const PROTOCOL_NAME = utf8("Noise_XX_25519_ChaChaPoly_SHA256");
/** Noise's limit on one message, tag included. */
export const MAX_NOISE_MESSAGE = 65535;
export const TAG_SIZE = 16;
export const MAX_PLAINTEXT = MAX_NOISE_MESSAGE - TAG_SIZE;
export const DH_SIZE = 32;
export const LENGTH_PREFIX_SIZE = 2;
export const STATIC_KEY_SIGNATURE_PREFIX = utf8("noise-libp2p-static-key:");
/** A handshake payload larger than this is rejected (ours has about 104 bytes). */
export const MAX_HANDSHAKE_PAYLOAD = 4096;
const MAX_NONCE = 2n ** 64n - 1n;
const EMPTY = new Uint8Array(0);

/** Noise's HKDF with two outputs. */
export function hkdf2(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array): [Uint8Array, Uint8Array] {
  const tempKey = hmac(sha256, chainingKey, inputKeyMaterial);
  const output1 = hmac(sha256, tempKey, Uint8Array.of(1));
  const output2 = hmac(sha256, tempKey, concatBytes(output1, Uint8Array.of(2)));
  return [output1, output2];
}

export function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(privateKey);
}

/** DH; a low-order remote key (all-zero shared secret) fails the handshake. */
export function x25519Shared(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(privateKey, publicKey);
  } catch (error) {
    throw new HandshakeError(`invalid X25519 public key from peer: ${String(error)}`);
  }
  if (shared.every((byte) => byte === 0)) throw new HandshakeError("X25519 shared secret is zero (low-order key)");
  return shared;
}

/** A ChaCha20-Poly1305 key and its 64-bit message counter. */
export class CipherState {
  readonly #key: Uint8Array | null;
  nonce = 0n;

  constructor(key: Uint8Array | null = null) {
    this.#key = key;
  }

  get hasKey(): boolean {
    return this.#key !== null;
  }

  #nonceBytes(): Uint8Array {
    if (this.nonce >= MAX_NONCE) throw new LocalProtocolError("Noise nonce exhausted; the link must be closed");
    const out = new Uint8Array(12);
    new DataView(out.buffer).setBigUint64(4, this.nonce, true);
    return out;
  }

  encrypt(associatedData: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.#key === null) return plaintext;
    const ciphertext = chacha20poly1305(this.#key, this.#nonceBytes(), associatedData).encrypt(plaintext);
    this.nonce += 1n;
    return ciphertext;
  }

  /** Decrypt; `DecryptionError` when the message fails authentication. */
  decrypt(associatedData: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (this.#key === null) return ciphertext;
    let plaintext: Uint8Array;
    try {
      plaintext = chacha20poly1305(this.#key, this.#nonceBytes(), associatedData).decrypt(ciphertext);
    } catch (error) {
      if (error instanceof LocalProtocolError) throw error;
      throw new DecryptionError("Noise message failed authentication");
    }
    this.nonce += 1n;
    return plaintext;
  }
}

/** Noise's chaining key and handshake hash. */
class SymmetricState {
  h: Uint8Array;
  ck: Uint8Array;
  cipher = new CipherState();

  constructor() {
    this.h = PROTOCOL_NAME.length === 32 ? PROTOCOL_NAME : sha256(PROTOCOL_NAME);
    this.ck = this.h;
  }

  mixHash(data: Uint8Array): void {
    this.h = sha256(concatBytes(this.h, data));
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, tempKey] = hkdf2(this.ck, inputKeyMaterial);
    this.ck = ck;
    this.cipher = new CipherState(tempKey);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cipher.encrypt(this.h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    let plaintext: Uint8Array;
    try {
      plaintext = this.cipher.decrypt(this.h, ciphertext);
    } catch (error) {
      if (error instanceof DecryptionError) throw new HandshakeError("handshake message failed authentication");
      throw error;
    }
    this.mixHash(ciphertext);
    return plaintext;
  }

  split(): [CipherState, CipherState] {
    const [key1, key2] = hkdf2(this.ck, EMPTY);
    return [new CipherState(key1), new CipherState(key2)];
  }
}

export type HandshakeState = "write" | "read" | "done" | "failed";

export interface HandshakeResult {
  readonly remotePeerId: PeerId;
  readonly remoteStaticKey: Uint8Array;
  readonly sendCipher: CipherState;
  readonly receiveCipher: CipherState;
  readonly handshakeHash: Uint8Array;
}

export function makeHandshakePayload(identity: Identity, staticPublicKey: Uint8Array): Uint8Array {
  return toBinary(NoiseHandshakePayloadSchema, create(NoiseHandshakePayloadSchema, {
    identityKey: identity.publicKeyProto,
    identitySig: identity.sign(concatBytes(STATIC_KEY_SIGNATURE_PREFIX, staticPublicKey)),
  }));
}

/** The peer id a handshake payload proves for `remoteStaticKey`; else `HandshakeError`. */
export function verifyHandshakePayload(payload: Uint8Array, remoteStaticKey: Uint8Array): PeerId {
  if (payload.length > MAX_HANDSHAKE_PAYLOAD) {
    throw new HandshakeError(`handshake payload of ${payload.length} bytes is too large`);
  }
  let fields;
  try {
    // Extensions (field 4) and unknown fields are accepted and ignored, as libp2p peers may send them.
    fields = fromBinary(NoiseHandshakePayloadSchema, payload, { readUnknownFields: false });
  } catch {
    throw new HandshakeError("handshake payload is not a NoiseHandshakePayload");
  }
  let identityKey: Uint8Array;
  try {
    identityKey = decodePublicKey(fields.identityKey);
  } catch (error) {
    if (error instanceof InvalidPublicKey) throw new HandshakeError(`handshake identity key: ${error.message}`);
    throw error;
  }
  const signed = concatBytes(STATIC_KEY_SIGNATURE_PREFIX, remoteStaticKey);
  if (!verifyWithPublicKey(identityKey, signed, fields.identitySig)) {
    throw new HandshakeError("handshake payload signature does not match the static key");
  }
  return peerIdFromPublicKey(identityKey);
}

type Token = "e" | "s" | "ee" | "es" | "se";
/** Message patterns of XX, by message index: the tokens, in order. */
const XX_PATTERNS: readonly (readonly Token[])[] = [["e"], ["e", "ee", "s", "es"], ["s", "se"]];

export interface HandshakeOptions {
  initiator: boolean;
  identity: Identity;
  staticPrivateKey: Uint8Array;
  ephemeralPrivateKey: Uint8Array;
  expectedPeerId?: string;
}

/** The XX handshake of one side; see the module comment. */
export class NoiseHandshake {
  readonly initiator: boolean;
  readonly staticPublicKey: Uint8Array;
  state: HandshakeState;
  result: HandshakeResult | null = null;
  readonly #identity: Identity;
  readonly #s: Uint8Array;
  readonly #e: Uint8Array;
  readonly #ePub: Uint8Array;
  readonly #expectedPeerId: string | undefined;
  readonly #symmetric = new SymmetricState();
  #re: Uint8Array | null = null;
  #rs: Uint8Array | null = null;
  #remotePeerId: PeerId | null = null;
  #messageIndex = 0;

  constructor(options: HandshakeOptions) {
    if (options.staticPrivateKey.length !== DH_SIZE || options.ephemeralPrivateKey.length !== DH_SIZE) {
      throw new LocalProtocolError("X25519 private keys have 32 bytes");
    }
    this.initiator = options.initiator;
    this.#identity = options.identity;
    this.#s = options.staticPrivateKey;
    this.staticPublicKey = x25519PublicKey(this.#s);
    this.#e = options.ephemeralPrivateKey;
    this.#ePub = x25519PublicKey(this.#e);
    this.#expectedPeerId = options.expectedPeerId;
    this.#symmetric.mixHash(EMPTY); // the empty prologue
    this.state = this.initiator ? "write" : "read";
  }

  #ourPayload(): Uint8Array {
    // Message 1 carries nothing; messages 2 and 3 carry the sender's identity.
    return this.#messageIndex === 0 ? EMPTY : makeHandshakePayload(this.#identity, this.staticPublicKey);
  }

  /** The DH of a token: "es" is the initiator's e with the responder's s, and so on. */
  #dhFor(token: Token): Uint8Array {
    if (this.#re === null) throw new HandshakeError("no remote ephemeral key");
    if (token === "ee") return x25519Shared(this.#e, this.#re);
    const oursIsEphemeral = (token === "es") === this.initiator;
    if (oursIsEphemeral) {
      if (this.#rs === null) throw new HandshakeError("no remote static key");
      return x25519Shared(this.#e, this.#rs);
    }
    return x25519Shared(this.#s, this.#re);
  }

  /** The next handshake message to send (without its length prefix). */
  writeMessage(): Uint8Array {
    if (this.state !== "write") throw new LocalProtocolError(`cannot write a handshake message in state ${this.state}`);
    let message: Uint8Array;
    try {
      message = this.#write();
    } catch (error) {
      this.state = "failed"; // a DH with the peer's low-order key
      throw error;
    }
    this.#advance();
    return message;
  }

  #write(): Uint8Array {
    const parts: Uint8Array[] = [];
    for (const token of XX_PATTERNS[this.#messageIndex] ?? []) {
      if (token === "e") {
        parts.push(this.#ePub);
        this.#symmetric.mixHash(this.#ePub);
      } else if (token === "s") {
        parts.push(this.#symmetric.encryptAndHash(this.staticPublicKey));
      } else {
        this.#symmetric.mixKey(this.#dhFor(token));
      }
    }
    parts.push(this.#symmetric.encryptAndHash(this.#ourPayload()));
    return concatBytes(...parts);
  }

  /** Process the peer's next handshake message; `HandshakeError` if it is bad. */
  readMessage(message: Uint8Array): void {
    if (this.state !== "read") throw new LocalProtocolError(`cannot read a handshake message in state ${this.state}`);
    try {
      this.#read(Uint8Array.from(message));
    } catch (error) {
      this.state = "failed";
      throw error;
    }
    this.#advance();
  }

  #read(message: Uint8Array): void {
    if (message.length > MAX_NOISE_MESSAGE) {
      throw new HandshakeError(`handshake message of ${message.length} bytes exceeds 65535`);
    }
    let view = message;
    for (const token of XX_PATTERNS[this.#messageIndex] ?? []) {
      if (token === "e") {
        if (view.length < DH_SIZE) throw new HandshakeError("handshake message too short for an ephemeral key");
        this.#re = view.slice(0, DH_SIZE);
        view = view.subarray(DH_SIZE);
        this.#symmetric.mixHash(this.#re);
      } else if (token === "s") {
        const size = DH_SIZE + TAG_SIZE;
        if (view.length < size) throw new HandshakeError("handshake message too short for a static key");
        this.#rs = this.#symmetric.decryptAndHash(view.subarray(0, size));
        view = view.subarray(size);
      } else {
        this.#symmetric.mixKey(this.#dhFor(token));
      }
    }
    const payload = this.#symmetric.decryptAndHash(view);
    if (this.#messageIndex === 0) {
      if (payload.length > 0) throw new HandshakeError("the first handshake message must have an empty payload");
      return;
    }
    if (this.#rs === null) throw new HandshakeError("no remote static key");
    const remotePeerId = verifyHandshakePayload(payload, this.#rs);
    if (this.#expectedPeerId !== undefined && remotePeerId !== this.#expectedPeerId) {
      throw new PeerIdMismatch(`dialed ${this.#expectedPeerId} but the peer proved ${remotePeerId}`);
    }
    this.#remotePeerId = remotePeerId;
  }

  #advance(): void {
    this.#messageIndex += 1;
    if (this.#messageIndex === XX_PATTERNS.length) {
      this.#finish();
      return;
    }
    const oursNext = (this.#messageIndex % 2 === 0) === this.initiator;
    this.state = oursNext ? "write" : "read";
  }

  #finish(): void {
    if (this.#remotePeerId === null || this.#rs === null) throw new LocalProtocolError("handshake incomplete");
    const [first, second] = this.#symmetric.split();
    this.result = {
      remotePeerId: this.#remotePeerId,
      remoteStaticKey: this.#rs,
      sendCipher: this.initiator ? first : second,
      receiveCipher: this.initiator ? second : first,
      handshakeHash: this.#symmetric.h,
    };
    this.state = "done";
  }
}

/**
 * Reassemble 2-byte-length-prefixed Noise messages from a byte stream.
 * Holds at most one incomplete message (`MAX_NOISE_MESSAGE + 2` bytes).
 */
export class NoiseMessageReader {
  #buffer = new Uint8Array(0);

  get hasPartialMessage(): boolean {
    return this.#buffer.length > 0;
  }

  get heldBytes(): number {
    return this.#buffer.length;
  }

  feed(data: Uint8Array): Uint8Array[] {
    const messages: Uint8Array[] = [];
    // A plain view, so that slice() copies even when `data` is a Node Buffer (whose slice() is a view).
    const input = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let pending = this.#buffer.length > 0 ? concatBytes(this.#buffer, input) : input;
    while (pending.length >= LENGTH_PREFIX_SIZE) {
      const end = LENGTH_PREFIX_SIZE + (((pending[0] as number) << 8) | (pending[1] as number));
      if (end > pending.length) break;
      messages.push(pending.slice(LENGTH_PREFIX_SIZE, end));
      pending = pending.subarray(end);
    }
    this.#buffer = pending.slice();
    return messages;
  }
}

export function withLengthPrefix(message: Uint8Array): Uint8Array {
  if (message.length > MAX_NOISE_MESSAGE) {
    throw new LocalProtocolError(`Noise message of ${message.length} bytes exceeds 65535`);
  }
  return concatBytes(Uint8Array.of(message.length >> 8, message.length & 0xff), message);
}

/**
 * The transport phase: frames in, length-prefixed Noise messages out, and back.
 * After a `RemoteProtocolError` the session is broken; the link must close.
 */
export class SecureSession {
  readonly remotePeerId: PeerId;
  readonly maxFrameSize: number;
  readonly #send: CipherState;
  readonly #receive: CipherState;
  readonly #reader: NoiseMessageReader;
  readonly #frames: FrameDecoder;

  /** `reader` carries over bytes that arrived with the last handshake message. */
  constructor(result: HandshakeResult, options: { maxFrameSize?: number; reader?: NoiseMessageReader } = {}) {
    this.remotePeerId = result.remotePeerId;
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.#send = result.sendCipher;
    this.#receive = result.receiveCipher;
    this.#reader = options.reader ?? new NoiseMessageReader();
    this.#frames = new FrameDecoder(this.maxFrameSize);
  }

  /** The prefixed Noise messages that carry one frame (`OversizedFrame` if too big). */
  encryptFrame(frame: Uint8Array): Uint8Array[] {
    const plaintext = frameWithPrefix(frame, this.maxFrameSize);
    const out: Uint8Array[] = [];
    for (let start = 0; start < plaintext.length; start += MAX_PLAINTEXT) {
      out.push(withLengthPrefix(this.#send.encrypt(EMPTY, plaintext.subarray(start, start + MAX_PLAINTEXT))));
    }
    return out;
  }

  /** Frames completed by `data`; throws a `RemoteProtocolError` on bad input. */
  receiveData(data: Uint8Array): Uint8Array[] {
    return this.receiveMessages(this.#reader.feed(data));
  }

  /** Frames completed by whole (unprefixed) Noise transport messages. */
  receiveMessages(messages: readonly Uint8Array[]): Uint8Array[] {
    const frames: Uint8Array[] = [];
    for (const message of messages) {
      if (message.length < TAG_SIZE) throw new DecryptionError("Noise transport message shorter than its tag");
      frames.push(...this.#frames.feed(this.#receive.decrypt(EMPTY, message)));
    }
    return frames;
  }

  /** True while bytes of an incomplete Noise message or frame are held. */
  get hasPartialFrame(): boolean {
    return this.#reader.hasPartialMessage || this.#frames.hasPartialFrame;
  }

  /** Bytes held for the incomplete Noise message and frame (memory a peer pins). */
  get heldBytes(): number {
    return this.#reader.heldBytes + this.#frames.heldBytes;
  }

  /** `TruncatedFrame` if the stream ended inside a Noise message or a frame. */
  endOfStream(): void {
    if (this.#reader.hasPartialMessage) throw new TruncatedFrame("the link ended inside a Noise message");
    this.#frames.endOfStream();
  }
}
