/**
 * One side of a secure link over any byte channel (docs/protocol.md 5.3-5.4):
 * the Noise XX handshake, then frames both ways.  Pure: the driver feeds the
 * channel's messages in and writes out what each call returns; the keys come
 * from the caller.  Any `RemoteProtocolError` thrown here means the link must
 * be closed.
 */

import { LocalProtocolError } from "../errors.js";
import { NoiseHandshake, NoiseMessageReader, SecureSession, withLengthPrefix } from "../noise/noise.js";
import type { Identity } from "../wire/identity.js";
import type { PeerId } from "../wire/peerId.js";

export interface SecureLinkOptions {
  readonly initiator: boolean;
  readonly identity: Identity;
  readonly staticPrivateKey: Uint8Array;
  readonly ephemeralPrivateKey: Uint8Array;
  /** The peer id the dialer expects; checked before it reveals its own identity. */
  readonly expectedPeerId?: PeerId;
  readonly maxFrameSize?: number;
}

export interface LinkOutput {
  /** Length-prefixed Noise messages to write to the channel, in order. */
  readonly send: Uint8Array[];
  /** Frames received, in order. */
  readonly frames: Uint8Array[];
}

export class SecureLinkCore {
  readonly #handshake: NoiseHandshake;
  readonly #reader = new NoiseMessageReader();
  readonly #maxFrameSize: number | undefined;
  #session: SecureSession | null = null;

  constructor(options: SecureLinkOptions) {
    this.#handshake = new NoiseHandshake({
      initiator: options.initiator, identity: options.identity, staticPrivateKey: options.staticPrivateKey,
      ephemeralPrivateKey: options.ephemeralPrivateKey,
      ...(options.expectedPeerId === undefined ? {} : { expectedPeerId: options.expectedPeerId }),
    });
    this.#maxFrameSize = options.maxFrameSize;
  }

  get established(): boolean {
    return this.#session !== null;
  }

  get remotePeerId(): PeerId | null {
    return this.#session?.remotePeerId ?? null;
  }

  /** True while bytes of an incomplete Noise message or frame are held. */
  get hasPartialFrame(): boolean {
    return this.#session === null ? this.#reader.hasPartialMessage : this.#session.hasPartialFrame;
  }

  /** What to write first: message 1 for the initiator, nothing for the responder. */
  start(): Uint8Array[] {
    return this.#handshake.state === "write" ? [withLengthPrefix(this.#handshake.writeMessage())] : [];
  }

  /** Bytes from the channel, however they were cut. */
  receive(data: Uint8Array): LinkOutput {
    if (this.#session !== null) return { send: [], frames: this.#session.receiveData(data) };
    const send: Uint8Array[] = [];
    const messages = this.#reader.feed(data);
    let index = 0;
    while (index < messages.length && this.#handshake.state === "read") {
      this.#handshake.readMessage(messages[index++] as Uint8Array);
      if (this.#stateAfterRead() === "write") send.push(withLengthPrefix(this.#handshake.writeMessage()));
    }
    if (this.#handshake.state !== "done" || this.#handshake.result === null) return { send, frames: [] };
    this.#session = new SecureSession(this.#handshake.result, {
      reader: this.#reader, ...(this.#maxFrameSize === undefined ? {} : { maxFrameSize: this.#maxFrameSize }),
    });
    return { send, frames: this.#session.receiveMessages(messages.slice(index)) };
  }

  /** The handshake's state (a method, so that the compiler does not narrow it across `readMessage`). */
  #stateAfterRead(): string {
    return this.#handshake.state;
  }

  /** The channel messages that carry one frame. */
  sendFrame(frame: Uint8Array): Uint8Array[] {
    if (this.#session === null) throw new LocalProtocolError("the link is not secured yet");
    return this.#session.encryptFrame(frame);
  }

  /** `TruncatedFrame` if the channel ended inside a Noise message or a frame. */
  endOfStream(): void {
    this.#session?.endOfStream();
  }
}
