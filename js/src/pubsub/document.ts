/**
 * Published documents (docs/protocol.md, "Published documents"): a signed
 * envelope (domain `taiinet-pubsub-document`, payload type
 * `taiinet/document/v2`) of a `PublishedDocument`, carried unchanged as a
 * Plumtree `Gossip` payload; its message id is SHA-256 of the envelope.
 * Opening checks, in order: size, id, envelope, payload, document limits.
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { sha256 } from "@noble/hashes/sha2.js";

import { InvalidDocument, InvalidEnvelope, LocalProtocolError, MalformedValue, RemoteProtocolError } from "../errors.js";
import { bytesEqual, utf8 } from "../bytes.js";
import { PublishedDocumentSchema } from "../gen/taiinet/v1/pubsub_pb.js";
import { DEFAULT_DOCUMENT_LIMITS, type DocumentLimits } from "../query/limits.js";
import type { Document } from "../query/values.js";
import { documentToValue, valueToDocumentCounted } from "../query/valueCodec.js";
import { openEnvelope, sealEnvelope } from "../wire/envelope.js";
import type { Identity } from "../wire/identity.js";
import type { PeerId } from "../wire/peerId.js";

export const DOCUMENT_DOMAIN = "taiinet-pubsub-document";
export const DOCUMENT_PAYLOAD_TYPE = utf8("taiinet/document/v2");
/** Largest document envelope (and Plumtree payload). */
export const MAX_DOCUMENT_ENVELOPE = 60 * 1024;

export type RejectReason = "oversized" | "id_mismatch" | "invalid_envelope" | "invalid_document";

/** A document from a peer failed a check; `reason` names which. */
export class RejectedDocument extends RemoteProtocolError {
  readonly reason: RejectReason;

  constructor(reason: RejectReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface SealedDocument {
  readonly messageId: Uint8Array;
  readonly envelope: Uint8Array;
}

export interface OpenedDocument {
  readonly messageId: Uint8Array;
  readonly publisher: PeerId;
  readonly document: Document;
  readonly publishedUnixMs: number;
}

export function documentId(envelope: Uint8Array): Uint8Array {
  return sha256(envelope);
}

/** Sign `document` for publication; `InvalidDocument` if it is not a document or too large. */
export function sealDocument(identity: Identity, document: Document, publishedUnixMs: number, nonce: bigint,
  limits: DocumentLimits = DEFAULT_DOCUMENT_LIMITS): SealedDocument {
  const value = documentToValue(document, limits);
  const payload = toBinary(PublishedDocumentSchema, create(PublishedDocumentSchema, {
    value, publishedUnixMs: BigInt(publishedUnixMs), nonce,
  }));
  let envelope: Uint8Array;
  try {
    envelope = sealEnvelope(identity, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE, payload, MAX_DOCUMENT_ENVELOPE);
  } catch (error) {
    if (error instanceof LocalProtocolError) throw new InvalidDocument(`document too large to publish: ${error.message}`);
    throw error;
  }
  return { messageId: documentId(envelope), envelope };
}

/** Verify a document received as `messageId`; `RejectedDocument` if any check fails. */
export function openDocument(messageId: Uint8Array, envelope: Uint8Array,
  limits: DocumentLimits = DEFAULT_DOCUMENT_LIMITS): OpenedDocument {
  if (envelope.length > MAX_DOCUMENT_ENVELOPE) {
    throw new RejectedDocument("oversized", `a document of ${envelope.length} bytes is over ${MAX_DOCUMENT_ENVELOPE}`);
  }
  if (!bytesEqual(documentId(envelope), messageId)) throw new RejectedDocument("id_mismatch", "the message id is not the envelope's SHA-256");
  let opened;
  try {
    opened = openEnvelope(envelope, DOCUMENT_DOMAIN, { maxSize: MAX_DOCUMENT_ENVELOPE, payloadType: DOCUMENT_PAYLOAD_TYPE });
  } catch (error) {
    if (error instanceof InvalidEnvelope) throw new RejectedDocument("invalid_envelope", error.message);
    throw error;
  }
  let message;
  try {
    message = fromBinary(PublishedDocumentSchema, opened.payload, { readUnknownFields: false });
  } catch {
    throw new RejectedDocument("invalid_document", "the payload is not a PublishedDocument");
  }
  let document: Document;
  try {
    [document] = valueToDocumentCounted(message.value, limits);
  } catch (error) {
    if (error instanceof MalformedValue) throw new RejectedDocument("invalid_document", error.message);
    throw error;
  }
  return { messageId, publisher: opened.peerId, document, publishedUnixMs: Number(message.publishedUnixMs) };
}
