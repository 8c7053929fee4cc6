/**
 * The one error hierarchy, as in the Python package (taiinet/errors.py).
 *
 * Errors are split by blame: a `LocalProtocolError` means this program
 * misused an API; a `RemoteProtocolError` means a peer sent something it must
 * not, and the link it came on is closed.  Every error a user can see is a
 * `TaiiNetError`; the class names match the Python ones, so logs of both
 * peers read alike.
 */

export class TaiiNetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** This program used an API wrongly (bad argument, wrong state). */
export class LocalProtocolError extends TaiiNetError {}

/** A peer broke the protocol; the link it came on is closed. */
export class RemoteProtocolError extends TaiiNetError {}

// --- wire ------------------------------------------------------------------------------
/** A length prefix announced a frame larger than the configured maximum. */
export class FrameTooLarge extends RemoteProtocolError {}
/** The input ended inside a length prefix or a frame. */
export class TruncatedFrame extends RemoteProtocolError {}
/** A length prefix or a frame could not be decoded. */
export class MalformedFrame extends RemoteProtocolError {}
/** This program tried to send a frame larger than the link's maximum. */
export class OversizedFrame extends LocalProtocolError {}
/** Text or bytes that are not the peer id of an Ed25519 key. */
export class InvalidPeerId extends RemoteProtocolError {}
/** A protobuf PublicKey that is not a canonical 32-byte Ed25519 key. */
export class InvalidPublicKey extends RemoteProtocolError {}
/** A signed envelope that is malformed, oversized, wrongly signed or of another domain. */
export class InvalidEnvelope extends RemoteProtocolError {}
/** Key file bytes that are not a canonical Ed25519 PrivateKey. */
export class KeyFileError extends TaiiNetError {}

// --- Noise -----------------------------------------------------------------------------
/** The Noise handshake failed (bad message, bad payload, low-order key). */
export class HandshakeError extends RemoteProtocolError {}
/** The peer did not send a handshake message in time: all three within 5 s, each within 3 s. */
export class HandshakeTimeout extends HandshakeError {}
/** The peer proved a peer id other than the one dialed. */
export class PeerIdMismatch extends HandshakeError {}
/** A Noise transport message failed authentication. */
export class DecryptionError extends RemoteProtocolError {}

// --- query -----------------------------------------------------------------------------
/**
 * A query is not valid.  `path` names where (`"$and.1.age.$gt"`, or
 * `"<root>"`), `reason` says what is wrong.
 */
export class InvalidQuery extends TaiiNetError {
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string) {
    const where = path === "" ? "<root>" : path;
    super(`invalid query at ${where}: ${reason}`);
    this.path = where;
    this.reason = reason;
  }
}
/** A document is not a JSON-like tree within the limits (local misuse). */
export class InvalidDocument extends TaiiNetError {}
/** Bytes from a peer are not a well-formed, in-limit `Value` (a document). */
export class MalformedValue extends RemoteProtocolError {}
/** Bytes from a peer are not a well-formed, in-limit `Filter` (a query). */
export class MalformedFilter extends RemoteProtocolError {}

// --- signalling and links (docs/signal.md) ------------------------------------------------
/** A signed peer record or session message failed a check (signature, signer, limits, expiry). */
export class RecordRejected extends RemoteProtocolError {}
/** A signal message broke docs/signal.md (wrong role, bad id, over a limit). */
export class MalformedSignalMessage extends RemoteProtocolError {}
/** An SDP offer or answer from the network failed the checks of docs/protocol.md "WebRTC data channel". */
export class InvalidSdp extends RemoteProtocolError {}
/** The API of the signal client or a link was used wrongly (bad peer id, too many offers...). */
export class SignalUsageError extends LocalProtocolError {}
/** An offer got a REJECT, a `relay_failed`, no answer in time, or the home was lost meanwhile. */
export class PeerUnreachable extends TaiiNetError {}
/** No signaller accepted us in time; the message names the last failure. */
export class NoSignallerAvailable extends TaiiNetError {}
/** A link closed or failed; `reason` says why. */
export class ConnectionClosed extends TaiiNetError {}
/** A handshake, an open or an answer took longer than its deadline. */
export class LinkTimeout extends TaiiNetError {}
/** The node was closed (every later call fails with this). */
export class NodeClosed extends TaiiNetError {}
/** No neighbour took a published document within the hand-off deadline. */
export class HandOffTimeout extends TaiiNetError {}
