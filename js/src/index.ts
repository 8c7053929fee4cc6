/**
 * TaiiNet's browser peer: the foundations shared with the Python reference.
 *
 * Identity and peer ids, signed envelopes, length-prefixed framing and link
 * frames (items by protocol id, keep-alive), the Noise
 * XX handshake and secure session (sans-I/O state machines: the caller moves
 * the bytes), the query language and the `Value` document codec.  Every byte
 * format is the one of docs/protocol.md and docs/query.md, checked against the
 * shared vectors in conformance/.
 */

export * from "./errors.js";
export { bytesEqual, concatBytes, fromHex, toHex } from "./bytes.js";
export { DEFAULT_MAX_FRAME_SIZE, FrameDecoder, MAX_UVARINT_BYTES, decodeUvarint, encodeUvarint, frameWithPrefix } from "./wire/framing.js";
export {
  LINK_PROTOCOL, type LinkItem, MAX_FRAME_ITEMS, MAX_PROTOCOL_ID, decodeControl, decodeLinkFrame, encodeItem, joinItems,
  pingItem, pongItem,
} from "./wire/linkFrame.js";
export { b58decode, b58encode } from "./wire/base58.js";
export { MAX_PEER_ID_TEXT, type PeerId, parseOptionalPeerId, parsePeerId, parseUserPeerId, peerIdFromPublicKey, publicKeyOfPeerId } from "./wire/peerId.js";
export { decodePrivateKey, decodePublicKey, encodePrivateKey, encodePublicKey } from "./wire/keys.js";
export { Identity, verifySignature, verifyWithPublicKey } from "./wire/identity.js";
export { DEFAULT_MAX_ENVELOPE_SIZE, type Envelope, type OpenOptions, openEnvelope, sealEnvelope, signedBytes } from "./wire/envelope.js";
export {
  CipherState, type HandshakeOptions, type HandshakeResult, type HandshakeState, MAX_NOISE_MESSAGE, MAX_PLAINTEXT,
  NoiseHandshake, NoiseMessageReader, SecureSession, makeHandshakePayload, verifyHandshakePayload, withLengthPrefix,
  x25519PublicKey,
} from "./noise/noise.js";
export { DEFAULT_DOCUMENT_LIMITS, DEFAULT_QUERY_LIMITS, type DocumentLimits, type QueryLimits } from "./query/limits.js";
export type { Filter, Op } from "./query/nodes.js";
export { parseQuery } from "./query/parser.js";
export { filterFromBytes, filterToBytes, filterToJson } from "./query/filterCodec.js";
export { Query } from "./query/query.js";
export { type Document, valueEquals } from "./query/values.js";
export { documentToValue, valueToDocument, valueToDocumentCounted } from "./query/valueCodec.js";
