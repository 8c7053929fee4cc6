// Published documents against the vector in docs/protocol.md ("Published documents"), parsed
// out of the spec itself so that code and document cannot drift, and every rejection reason.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { toHex } from "../src/bytes.js";
import { documentId as sealDocumentId, openDocument, RejectedDocument, sealDocument } from "../src/pubsub/document.js";
import { Identity } from "../src/wire/identity.js";
import { hex } from "./vectors.js";

function specVector(name: string): Record<string, string> {
  const text = readFileSync(new URL("../../docs/protocol.md", import.meta.url), "utf8");
  const block = text.split(`<!-- vector: ${name} -->`)[1]?.split("```text")[1]?.split("```")[0] ?? "";
  const fields: Record<string, string> = {};
  let last = "";
  for (const line of block.split("\n")) {
    const match = /^(\w+): (.*)$/.exec(line);
    if (match) fields[last = match[1] as string] = (match[2] as string).trim();
    else if (line.trim() !== "" && last !== "") fields[last] += line.trim();
  }
  return fields;
}

describe("published documents", () => {
  const vector = specVector("document");
  const identity = Identity.fromSeed(hex(vector.seed as string));

  it("seal as the spec's vector", () => {
    const sealed = sealDocument(identity, { topic: "a" }, Number(vector.published_unix_ms), BigInt(`0x${vector.nonce}`));
    assert.equal(identity.peerId, vector.publisher);
    assert.equal(toHex(sealed.envelope), vector.envelope);
    assert.equal(toHex(sealed.messageId), vector.message_id);
  });

  it("open the spec's vector", () => {
    const opened = openDocument(hex(vector.message_id as string), hex(vector.envelope as string));
    assert.deepEqual(opened.document, { topic: "a" });
    assert.equal(opened.publisher, vector.publisher);
    assert.equal(opened.publishedUnixMs, Number(vector.published_unix_ms));
  });

  it("reject a wrong id, a flipped byte and an oversized envelope, each by name", () => {
    const { messageId, envelope } = sealDocument(identity, { n: 1 }, 1, 2n);
    const reason = (id: Uint8Array, data: Uint8Array): string => {
      try {
        openDocument(id, data);
        return "accepted";
      } catch (error) {
        assert.ok(error instanceof RejectedDocument);
        return error.reason;
      }
    };
    assert.equal(reason(new Uint8Array(32), envelope), "id_mismatch");
    const tampered = Uint8Array.from(envelope);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    assert.equal(reason(sealDocumentId(tampered), tampered), "invalid_envelope");
    assert.equal(reason(messageId, new Uint8Array(61 * 1024)), "oversized");
    assert.equal(reason(messageId, envelope), "accepted");
  });
});


