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
  LINK_PROTOCOL, type LinkItem, MAX_FRAME_ITEMS, MAX_PROTOCOL_ID, decodeControl, decodeLinkFrame as decodeLinkItems, encodeItem, joinItems,
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
export { SeededRandom } from "./random.js";
export { type LinkFrame, decodeLinkFrame, encodePing, encodePong, encodeSignalFrame } from "./link/frames.js";
export { type LinkOutput, SecureLinkCore, type SecureLinkOptions } from "./link/secureLink.js";
export {
  MAX_RECORD_LIFETIME_MS, type PeerRecord, RECORD_LIFETIME_MS, type SessionDescription, type SessionKind,
  openPeerRecord, openSession, sealPeerRecord, sealSession,
} from "./signal/records.js";
export {
  DEFAULT_SIGNAL_CLIENT_CONFIG, type IncomingOffer, MAX_CONTACTS, type SignalAction, SignalClientCore,
  type SignalClientConfig, signalClientConfig,
} from "./signal/clientCore.js";
export { AsyncQueue } from "./io/queue.js";
export { HANDSHAKE_MESSAGE_TIMEOUT_MS, HANDSHAKE_TIMEOUT_MS, type MessageChannel, SecureLink, type SecureChannelOptions } from "./io/secureChannel.js";
export { WEBSOCKET_SUBPROTOCOL, dialWebSocket } from "./io/websocket.js";
export { type Registration, SIGNAL_MAX_FRAME_SIZE, SignalClient, type SignalClientOptions } from "./io/signalClient.js";
export { MAX_SDP_CANDIDATES, MAX_SDP_LINES, MAX_SDP_SIZE, validateSdp } from "./link/sdp.js";
export { CONNECT_TIMEOUT_MS, DATA_CHANNEL_LABEL, type WebRTCOptions, acceptRawWebRTC, acceptWebRTC, dialRawWebRTC, dialWebRTC } from "./io/webrtc.js";
export { MalformedOverlayMessage, type OverlayMsg, fromOverlayProto, toOverlayProto } from "./overlay/codec.js";
export { DEFAULT_HYPARVIEW_CONFIG, HyParView, type HyParViewConfig, type MembershipAction } from "./overlay/hyparview.js";
export {
  DOCUMENT_DOMAIN, type OpenedDocument, RejectedDocument, type SealedDocument, documentId, openDocument, sealDocument,
} from "./pubsub/document.js";
export { type Advert, MalformedAdvert, advertFromProto, advertToProto, encodeAdvertFrame } from "./pubsub/advert.js";
export { DEFAULT_ROUTER_CONFIG, type RouterAction, type RouterConfig, TreeRouter } from "./pubsub/tree/router.js";
export { DEFAULT_NODE_CORE_CONFIG, type NodeAction, NodeCore, type NodeCoreConfig } from "./node/nodeCore.js";
export { type ConnectOptions, type Message, Subscription, TaiiNet } from "./io/taiinet.js";
export { type Flushable, HAND_OFF_TIMEOUT_MS, type HandOffSource, waitHandOff } from "./io/handOff.js";
