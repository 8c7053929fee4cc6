/**
 * Signed peer records and session messages (docs/signal.md, "Signed
 * payloads"): the only module that touches `PeerRecord` and
 * `SessionDescription` on the wire.  Opening checks every limit and returns a
 * validated, read-only value; anything else is `RecordRejected`.
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";

import { InvalidEnvelope, InvalidPeerId, RecordRejected, SignalUsageError } from "../errors.js";
import { utf8 } from "../bytes.js";
import {
  PeerRecordSchema, SessionDescriptionSchema, SessionDescription_Kind,
} from "../gen/taiinet/v1/signal_pb.js";
import { type Envelope, openEnvelope, sealEnvelope } from "../wire/envelope.js";
import type { Identity } from "../wire/identity.js";
import { type PeerId, parsePeerId } from "../wire/peerId.js";

export const PEER_RECORD_DOMAIN = "taiinet-peer-record";
export const PEER_RECORD_TYPE = utf8("/taiinet/peer-record");
export const SESSION_DOMAIN = "taiinet-signal-session";
export const SESSION_TYPE = utf8("/taiinet/session");
export const MAX_RECORD_ENVELOPE_BYTES = 2048;
export const MAX_ADDRESSES = 8;
export const MAX_ADDRESS_CHARS = 256;
/** Latest expiry a record may carry, from now (ms). */
export const MAX_RECORD_LIFETIME_MS = 300_000;
/** A record lives this long (ms) and is renewed `RECORD_RENEWALS` times per life. */
export const RECORD_LIFETIME_MS = 90_000;
export const RECORD_RENEWALS = 3;
export const MAX_SERVICES = 8;
export const MAX_SERVICE_CHARS = 32;
export const MAX_SESSION_ENVELOPE_BYTES = 32 * 1024;
export const MAX_SDP_CHARS = 24 * 1024;
export const SESSION_ID_BYTES = 16;

export interface PeerRecord {
  readonly peerId: PeerId;
  readonly signallerPeerId: PeerId;
  readonly signallerUrl: string;
  readonly addresses: readonly string[];
  readonly seq: bigint;
  readonly expiresUnixMs: number;
  readonly withdrawn: boolean;
  readonly services: readonly string[];
}

export type SessionKind = "offer" | "answer" | "ice" | "reject";
const KINDS: Record<number, SessionKind> = {
  [SessionDescription_Kind.OFFER]: "offer",
  [SessionDescription_Kind.ANSWER]: "answer",
  [SessionDescription_Kind.ICE]: "ice",
  [SessionDescription_Kind.REJECT]: "reject",
};
const KIND_NUMBERS: Record<SessionKind, SessionDescription_Kind> = {
  offer: SessionDescription_Kind.OFFER,
  answer: SessionDescription_Kind.ANSWER,
  ice: SessionDescription_Kind.ICE,
  reject: SessionDescription_Kind.REJECT,
};

export interface SessionDescription {
  readonly fromPeer: PeerId;
  readonly toPeer: PeerId;
  readonly sessionId: Uint8Array;
  readonly kind: SessionKind;
  readonly sdp: string;
  readonly createdUnixMs: number;
}

/** Characters as Python counts them (code points), for the limits shared with it. */
function chars(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

function open(data: Uint8Array, domain: string, payloadType: Uint8Array, maxSize: number): Envelope {
  try {
    return openEnvelope(data, domain, { maxSize, payloadType });
  } catch (error) {
    if (error instanceof InvalidEnvelope) throw new RecordRejected(`bad envelope: ${error.message}`);
    throw error;
  }
}

function peer(text: string, what: string): PeerId {
  try {
    return parsePeerId(text);
  } catch (error) {
    if (error instanceof InvalidPeerId) throw new RecordRejected(`${what} is not a valid peer id`);
    throw error;
  }
}

function parse<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch {
    throw new RecordRejected(`the payload is not a ${what}`);
  }
}

export function sealPeerRecord(identity: Identity, record: Omit<PeerRecord, "peerId">): Uint8Array {
  const message = create(PeerRecordSchema, {
    peerId: identity.peerId,
    signallerPeerId: record.signallerPeerId,
    signallerUrl: record.signallerUrl,
    addresses: [...record.addresses],
    seq: record.seq,
    expiresUnixMs: BigInt(record.expiresUnixMs),
    withdrawn: record.withdrawn,
    services: [...record.services],
  });
  return sealEnvelope(identity, PEER_RECORD_DOMAIN, PEER_RECORD_TYPE, toBinary(PeerRecordSchema, message),
    MAX_RECORD_ENVELOPE_BYTES);
}

/** A verified, unexpired peer record (a tombstone is valid: callers check `withdrawn`). */
export function openPeerRecord(data: Uint8Array, nowUnixMs: number): PeerRecord {
  const envelope = open(data, PEER_RECORD_DOMAIN, PEER_RECORD_TYPE, MAX_RECORD_ENVELOPE_BYTES);
  const pb = parse("PeerRecord", () => fromBinary(PeerRecordSchema, envelope.payload, { readUnknownFields: false }));
  if (pb.peerId !== envelope.peerId) throw new RecordRejected("the record names another peer than its signer");
  if (pb.addresses.length > MAX_ADDRESSES || pb.addresses.some((a) => chars(a) > MAX_ADDRESS_CHARS)) {
    throw new RecordRejected(`at most ${MAX_ADDRESSES} addresses of ${MAX_ADDRESS_CHARS} chars`);
  }
  const signallerPeerId = peer(pb.signallerPeerId, "the record's signaller");
  if (chars(pb.signallerUrl) > MAX_ADDRESS_CHARS) throw new RecordRejected("the record's signaller URL is too long");
  if (pb.services.length > MAX_SERVICES || pb.services.some((s) => chars(s) > MAX_SERVICE_CHARS)) {
    throw new RecordRejected(`at most ${MAX_SERVICES} services of ${MAX_SERVICE_CHARS} chars`);
  }
  const expires = pb.expiresUnixMs;
  if (expires <= BigInt(nowUnixMs)) throw new RecordRejected("the record has expired");
  if (expires > BigInt(nowUnixMs + MAX_RECORD_LIFETIME_MS)) {
    throw new RecordRejected("the record's expiry is too far in the future");
  }
  return {
    peerId: envelope.peerId, signallerPeerId, signallerUrl: pb.signallerUrl, addresses: pb.addresses,
    seq: pb.seq, expiresUnixMs: Number(expires), withdrawn: pb.withdrawn, services: pb.services,
  };
}

export function sealSession(identity: Identity, session: SessionDescription): Uint8Array {
  if (session.fromPeer !== identity.peerId) throw new SignalUsageError("a peer signs only its own session messages");
  const message = create(SessionDescriptionSchema, {
    fromPeer: session.fromPeer, toPeer: session.toPeer, sessionId: session.sessionId,
    kind: KIND_NUMBERS[session.kind], sdp: session.sdp, createdUnixMs: BigInt(session.createdUnixMs),
  });
  return sealEnvelope(identity, SESSION_DOMAIN, SESSION_TYPE, toBinary(SessionDescriptionSchema, message),
    MAX_SESSION_ENVELOPE_BYTES);
}

/** A verified session message; `RecordRejected` unless valid. */
export function openSession(data: Uint8Array): SessionDescription {
  const envelope = open(data, SESSION_DOMAIN, SESSION_TYPE, MAX_SESSION_ENVELOPE_BYTES);
  const pb = parse("SessionDescription",
    () => fromBinary(SessionDescriptionSchema, envelope.payload, { readUnknownFields: false }));
  if (pb.fromPeer !== envelope.peerId) throw new RecordRejected("the session message names another sender than its signer");
  if (pb.sessionId.length !== SESSION_ID_BYTES) throw new RecordRejected(`a session id has ${SESSION_ID_BYTES} bytes`);
  const kind = KINDS[pb.kind];
  if (kind === undefined) throw new RecordRejected("unknown session message kind");
  const toPeer = peer(pb.toPeer, "the session's target");
  if (chars(pb.sdp) > MAX_SDP_CHARS) throw new RecordRejected("session message with an oversized SDP");
  return {
    fromPeer: envelope.peerId, toPeer, sessionId: pb.sessionId, kind, sdp: pb.sdp,
    createdUnixMs: Number(pb.createdUnixMs),
  };
}
