// The Noise XX state machine replays the Python reference's transcript byte for byte.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import { DecryptionError, HandshakeError, LocalProtocolError, PeerIdMismatch, TruncatedFrame } from "../src/errors.js";
import { NoiseHandshake, NoiseMessageReader, SecureSession, makeHandshakePayload, withLengthPrefix } from "../src/noise/noise.js";
import { Identity } from "../src/wire/identity.js";
import { hex, load, toHexString } from "./vectors.js";

const v = load("noise_xx.json");

function pair(expectedPeerId?: string): [NoiseHandshake, NoiseHandshake] {
  const initiator = new NoiseHandshake({
    initiator: true, identity: Identity.fromSeed(hex(v.initiator_identity_seed)),
    staticPrivateKey: hex(v.initiator_static_private), ephemeralPrivateKey: hex(v.initiator_ephemeral_private),
    ...(expectedPeerId !== undefined ? { expectedPeerId } : {}),
  });
  const responder = new NoiseHandshake({
    initiator: false, identity: Identity.fromSeed(hex(v.responder_identity_seed)),
    staticPrivateKey: hex(v.responder_static_private), ephemeralPrivateKey: hex(v.responder_ephemeral_private),
  });
  return [initiator, responder];
}

function handshake(initiator: NoiseHandshake, responder: NoiseHandshake): string[] {
  const sent: string[] = [];
  for (const [writer, reader] of [[initiator, responder], [responder, initiator], [initiator, responder]] as const) {
    const message = writer.writeMessage();
    sent.push(toHexString(withLengthPrefix(message)));
    reader.readMessage(message);
  }
  return sent;
}

describe("Noise XX", () => {
  it("writes the transcript's messages and handshake hash", () => {
    const [initiator, responder] = pair(v.responder_peer_id);
    assert.equal(toHexString(initiator.staticPublicKey), v.initiator_static_public);
    assert.equal(toHexString(responder.staticPublicKey), v.responder_static_public);
    assert.equal(toHexString(makeHandshakePayload(Identity.fromSeed(hex(v.responder_identity_seed)), responder.staticPublicKey)), v.responder_payload);
    assert.deepEqual(handshake(initiator, responder), v.messages);
    assert.equal(initiator.state, "done");
    assert.equal(responder.state, "done");
    assert.equal(toHexString(initiator.result!.handshakeHash), v.handshake_hash);
    assert.equal(initiator.result!.remotePeerId, v.responder_peer_id);
    assert.equal(responder.result!.remotePeerId, v.initiator_peer_id);
  });

  it("encrypts and decrypts the transcript's transport messages", () => {
    const [initiator, responder] = pair();
    handshake(initiator, responder);
    const sessions = { initiator: new SecureSession(initiator.result!), responder: new SecureSession(responder.result!) };
    // Sessions built on one result share its ciphers: the readers come from a second handshake
    // (same keys, so the same session keys).
    const [i2, r2] = pair();
    handshake(i2, r2);
    const readers = { initiator: new SecureSession(r2.result!), responder: new SecureSession(i2.result!) };
    for (const c of v.transport) {
      const from = c.from as "initiator" | "responder";
      const frame = c.zeros !== undefined ? new Uint8Array(c.zeros) : hex(c.frame);
      const sent = sessions[from].encryptFrame(frame);
      if (c.messages !== undefined) {
        assert.deepEqual(sent.map(toHexString), c.messages);
      } else {
        assert.deepEqual(sent.map((m) => createHash("sha256").update(m).digest("hex")), c.messages_sha256);
        assert.deepEqual(sent.map((m) => m.length), c.message_lengths);
      }
      // Fed one message at a time, and the last one byte by byte: the cut must not matter.
      const got: Uint8Array[] = [];
      const stream = Buffer.concat(sent);
      for (let i = 0; i < stream.length; i += 997) got.push(...readers[from].receiveData(stream.subarray(i, i + 997)));
      assert.deepEqual(got, [frame]);
    }
  });

  it("fails the initiator with PeerIdMismatch before it reveals itself", () => {
    const [initiator, responder] = pair(v.initiator_peer_id);
    responder.readMessage(initiator.writeMessage());
    assert.throws(() => initiator.readMessage(responder.writeMessage()), PeerIdMismatch);
    assert.equal(initiator.state, "failed");
    assert.throws(() => initiator.writeMessage(), LocalProtocolError);
  });

  it("rejects an altered message 2 and a non-empty first payload", () => {
    const [initiator, responder] = pair();
    responder.readMessage(initiator.writeMessage());
    const message = responder.writeMessage();
    message[40] = (message[40] as number) ^ 1;
    assert.throws(() => initiator.readMessage(message), HandshakeError);
    const [, fresh] = pair();
    const first = hex(v.messages[0]).subarray(2);
    assert.throws(() => fresh.readMessage(Buffer.concat([first, Uint8Array.of(1)])), HandshakeError);
  });

  it("rejects a low-order ephemeral key", () => {
    const [, responder] = pair();
    assert.doesNotThrow(() => responder.readMessage(new Uint8Array(32)));
    assert.throws(() => responder.writeMessage(), HandshakeError);
    assert.equal(responder.state, "failed");
  });

  it("refuses calls in the wrong state", () => {
    const [initiator, responder] = pair();
    assert.throws(() => initiator.readMessage(new Uint8Array(32)), LocalProtocolError);
    assert.throws(() => responder.writeMessage(), LocalProtocolError);
  });

  it("fails a replayed or short transport message, and a stream cut mid-message", () => {
    const [initiator, responder] = pair();
    handshake(initiator, responder);
    const sender = new SecureSession(initiator.result!);
    const receiver = new SecureSession(responder.result!);
    const [message] = sender.encryptFrame(Uint8Array.of(1, 2, 3)) as [Uint8Array];
    assert.deepEqual(receiver.receiveData(message), [Uint8Array.of(1, 2, 3)]);
    assert.throws(() => receiver.receiveData(message), DecryptionError);
    assert.throws(() => new SecureSession(responder.result!).receiveMessages([new Uint8Array(15)]), DecryptionError);
    const cut = new SecureSession(responder.result!);
    cut.receiveData(Uint8Array.of(0, 40, 1));
    assert.ok(cut.hasPartialFrame);
    assert.throws(() => cut.endOfStream(), TruncatedFrame);
  });

  it("reassembles length-prefixed messages however they are cut", () => {
    const messages = [Uint8Array.of(1), new Uint8Array(0), new Uint8Array(300).fill(7)];
    const stream = Buffer.concat(messages.map(withLengthPrefix));
    for (const step of [1, 2, 5, stream.length]) {
      const reader = new NoiseMessageReader();
      const got: Uint8Array[] = [];
      for (let i = 0; i < stream.length; i += step) got.push(...reader.feed(stream.subarray(i, i + step)));
      assert.deepEqual(got, messages);
      assert.equal(reader.heldBytes, 0);
    }
  });
});
