/**
 * The thin driver of `SecureLinkCore` over a message channel (a WebSocket or
 * an RTCDataChannel): writes what the core returns, feeds it what arrives,
 * enforces the handshake deadlines, and hands frames to the layer above.
 *
 * Deadlines of the handshake (docs/protocol.md "Deadlines and budgets"): the
 * three messages within 5 s in all, and each message of the peer within 3 s
 * of the moment we wait for it (the initiator waits for message 2 once it
 * wrote message 1; the responder for message 1 from the start and for
 * message 3 once it wrote message 2).  Either one missed is a
 * `HandshakeTimeout`: the channel is closed and `open` rejects.
 */

import { ConnectionClosed, HandshakeTimeout, RemoteProtocolError } from "../errors.js";
import { SecureLinkCore } from "../link/secureLink.js";
import type { Identity } from "../wire/identity.js";
import type { PeerId } from "../wire/peerId.js";
import { AsyncQueue } from "./queue.js";

/** All three handshake messages within this many ms (docs/protocol.md "Deadlines and budgets"). */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
/** Each handshake message of the peer within this many ms of the moment we wait for it. */
export const HANDSHAKE_MESSAGE_TIMEOUT_MS = 3_000;
/** Once a frame (or Noise message) started arriving, the rest within this many ms (`FrameTimeout`). */
export const FRAME_TIMEOUT_MS = 10_000;
/** Frames received but not yet read, at most; a reader that falls further behind loses the link. */
export const RECEIVE_QUEUE_FRAMES = 1024;

/** What the secure layer needs from a channel. */
export interface MessageChannel {
  send(data: Uint8Array): void | Promise<void>;
  close(): void;
  /** Resolves once the channel holds no unsent bytes, or is closed (absent: `send` resolving means sent). */
  drained?(): Promise<void>;
  /** The driver calls these: `onMessage` per channel message, `onClose` once. */
  onMessage: ((data: Uint8Array) => void) | null;
  onClose: ((reason: string) => void) | null;
}

export interface SecureChannelOptions {
  readonly initiator: boolean;
  readonly identity: Identity;
  readonly expectedPeerId?: PeerId;
  readonly maxFrameSize?: number;
  readonly handshakeTimeoutMs?: number;
  readonly handshakeMessageTimeoutMs?: number;
}

function randomKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** A Noise-secured link: `send` frames, read them with `for await` (or `onFrame`), `close`. */
export class SecureLink implements AsyncIterable<Uint8Array> {
  readonly remotePeerId: PeerId;
  /** Resolves with the reason once the link is closed. */
  readonly closed: Promise<string>;
  readonly #channel: MessageChannel;
  readonly #core: SecureLinkCore;
  readonly #frames = new AsyncQueue<Uint8Array>(RECEIVE_QUEUE_FRAMES);
  #onFrame: ((frame: Uint8Array) => void) | null = null;
  #closeReason: string | null = null;
  #frameTimer: ReturnType<typeof setTimeout> | null = null;
  /** The writes of the last `send` (settled: they are all done or failed). */
  #lastWrite: Promise<void> = Promise.resolve();
  #resolveClosed!: (reason: string) => void;

  private constructor(channel: MessageChannel, core: SecureLinkCore, remotePeerId: PeerId) {
    this.#channel = channel;
    this.#core = core;
    this.remotePeerId = remotePeerId;
    this.closed = new Promise((resolve) => { this.#resolveClosed = resolve; });
  }

  /** Run the handshake on `channel`; the secured link, or a rejection (and the channel closed). */
  static open(channel: MessageChannel, options: SecureChannelOptions): Promise<SecureLink> {
    const core = new SecureLinkCore({
      initiator: options.initiator, identity: options.identity, staticPrivateKey: randomKey(),
      ephemeralPrivateKey: randomKey(),
      ...(options.expectedPeerId === undefined ? {} : { expectedPeerId: options.expectedPeerId }),
      ...(options.maxFrameSize === undefined ? {} : { maxFrameSize: options.maxFrameSize }),
    });
    return new Promise((resolve, reject) => {
      let link: SecureLink | null = null;
      let messageTimer: ReturnType<typeof setTimeout> | undefined;
      const stopTimers = (): void => {
        clearTimeout(timer);
        clearTimeout(messageTimer);
      };
      const fail = (error: Error): void => {
        stopTimers();
        channel.onMessage = channel.onClose = null;
        channel.close();
        reject(error);
      };
      /** From now, the peer's next handshake message within the per-message deadline. */
      const awaitMessage = (): void => {
        clearTimeout(messageTimer);
        const ms = options.handshakeMessageTimeoutMs ?? HANDSHAKE_MESSAGE_TIMEOUT_MS;
        messageTimer = setTimeout(() => fail(new HandshakeTimeout(`no Noise handshake message from the peer within ${ms} ms`)), ms);
      };
      const timer = setTimeout(() => fail(new HandshakeTimeout(
        `the Noise handshake did not complete within ${options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS} ms`)),
      options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS);
      channel.onClose = (reason) => fail(new ConnectionClosed(`the channel closed during the handshake: ${reason}`));
      channel.onMessage = (data) => {
        if (link !== null) return link.#receive(data);
        try {
          const out = core.receive(data);
          for (const message of out.send) void channel.send(message);
          if (!core.established) {
            if (out.send.length > 0) awaitMessage(); // we answered: the peer's next message is due
            return;
          }
          stopTimers();
          link = new SecureLink(channel, core, core.remotePeerId as PeerId);
          channel.onClose = (reason) => { if (link !== null) link.#ended(reason); };
          resolve(link);
          for (const frame of out.frames) link.#deliver(frame);
          link.#watchPartialFrame();
        } catch (error) {
          fail(error instanceof Error ? error : new Error(String(error)));
        }
      };
      try {
        for (const message of core.start()) void channel.send(message);
        awaitMessage(); // message 2 for the initiator, message 1 for the responder
      } catch (error) {
        fail(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  get isClosed(): boolean {
    return this.#closeReason !== null;
  }

  /** Call `handler` for every frame (instead of iterating); frames already queued go first. */
  set onFrame(handler: ((frame: Uint8Array) => void) | null) {
    this.#onFrame = handler;
    if (handler === null) return;
    for (const frame of this.#frames.drain()) handler(frame);
  }

  send(frame: Uint8Array): Promise<void> {
    if (this.#closeReason !== null) return Promise.reject(new ConnectionClosed(`the link is closed: ${this.#closeReason}`));
    const written = this.#write(this.#core.sendFrame(frame)); // encrypted now, in call order
    this.#lastWrite = written.catch(() => undefined);
    return written;
  }

  /** Resolves once every frame sent so far left the channel's send buffer: true, or false if the link closed first. */
  async flush(): Promise<boolean> {
    await this.#lastWrite;
    if (this.#closeReason === null) await this.#channel.drained?.();
    return this.#closeReason === null;
  }

  async #write(messages: readonly Uint8Array[]): Promise<void> {
    for (const message of messages) await this.#channel.send(message);
  }

  close(reason = "closed"): void {
    if (this.#closeReason !== null) return;
    this.#channel.onMessage = null;
    this.#channel.close();
    this.#ended(reason);
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.#frames[Symbol.asyncIterator]();
  }

  #receive(data: Uint8Array): void {
    if (this.#closeReason !== null) return;
    let frames: Uint8Array[];
    try {
      frames = this.#core.receive(data).frames;
    } catch (error) {
      if (!(error instanceof RemoteProtocolError)) throw error;
      this.close(`${error.name}: ${error.message}`);
      return;
    }
    for (const frame of frames) this.#deliver(frame);
    this.#watchPartialFrame();
  }

  /** The frame deadline (docs/protocol.md "Deadlines and budgets"): armed while a frame is incomplete. */
  #watchPartialFrame(): void {
    if (!this.#core.hasPartialFrame) {
      if (this.#frameTimer !== null) clearTimeout(this.#frameTimer);
      this.#frameTimer = null;
    } else if (this.#frameTimer === null && this.#closeReason === null) {
      this.#frameTimer = setTimeout(() => this.close("FrameTimeout: a frame did not complete in time"), FRAME_TIMEOUT_MS);
    }
  }

  #deliver(frame: Uint8Array): void {
    if (this.#onFrame !== null) {
      this.#onFrame(frame);
    } else if (!this.#frames.push(frame)) {
      this.close("the reader fell behind: receive queue full");
    }
  }

  #ended(reason: string): void {
    if (this.#closeReason !== null) return;
    let why = reason;
    try {
      this.#core.endOfStream();
    } catch (error) {
      if (error instanceof Error) why = `${reason} (${error.message})`;
    }
    this.#closeReason = why;
    if (this.#frameTimer !== null) clearTimeout(this.#frameTimer);
    this.#frames.end();
    this.#resolveClosed(why);
  }
}
