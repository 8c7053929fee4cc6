/**
 * Length-prefixed frames: the unit every link carries (docs/protocol.md, section 4).
 *
 * Theory of operation: a link carries a byte stream of frames, each written as
 * `uvarint(len(frame)) || frame`.  A length must be minimal and at most
 * `MAX_UVARINT_BYTES` bytes; a length above the receiver's maximum is rejected
 * as soon as the prefix is read, before any of the frame is buffered, so the
 * decoder never holds more than one maximum frame plus its prefix.  This is
 * the byte layer only: what a frame holds is the business of the layers above.
 */

import { FrameTooLarge, LocalProtocolError, MalformedFrame, OversizedFrame, TruncatedFrame } from "../errors.js";
import { concatBytes } from "../bytes.js";

/** Default largest frame (the bytes after the length prefix) a link accepts: 1 MiB. */
export const DEFAULT_MAX_FRAME_SIZE = 1 << 20;
/** A length prefix is at most this many bytes (lengths below 2**35). */
export const MAX_UVARINT_BYTES = 5;

/** The minimal unsigned LEB128 encoding of `value` (0 <= value < 2**53). */
export function encodeUvarint(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new LocalProtocolError(`cannot encode ${value} as a uvarint`);
  }
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return Uint8Array.from(out);
}

/**
 * Decode a minimal uvarint at `offset`; return `[value, offset after it]`.
 * `TruncatedFrame` if the data ends inside it, `MalformedFrame` if it is
 * longer than `maxBytes` or not minimal.
 */
export function decodeUvarint(data: Uint8Array, offset = 0, maxBytes = MAX_UVARINT_BYTES): [number, number] {
  let value = 0;
  for (let index = 0; index < maxBytes; index++) {
    const position = offset + index;
    const byte = data[position];
    if (byte === undefined) throw new TruncatedFrame("input ends inside a varint");
    value += (byte & 0x7f) * 2 ** (7 * index);
    if ((byte & 0x80) === 0) {
      if (byte === 0 && index > 0) throw new MalformedFrame("varint is not minimally encoded");
      return [value, position + 1];
    }
  }
  throw new MalformedFrame(`varint longer than ${maxBytes} bytes`);
}

/** `uvarint(len(frame)) || frame`; `OversizedFrame` if over the maximum. */
export function frameWithPrefix(frame: Uint8Array, maxFrameSize = DEFAULT_MAX_FRAME_SIZE): Uint8Array {
  if (frame.length > maxFrameSize) {
    throw new OversizedFrame(`frame of ${frame.length} bytes exceeds the maximum of ${maxFrameSize}`);
  }
  return concatBytes(encodeUvarint(frame.length), frame);
}

/**
 * Split a byte stream into frames, holding at most one frame in memory.
 * Feed it bytes as they arrive; it returns the frames completed by them.
 * After it threw, it is broken and throws `LocalProtocolError` on use.
 */
export class FrameDecoder {
  readonly maxFrameSize: number;
  private prefix: number[] = [];
  private frame: Uint8Array | null = null;
  private filled = 0;
  private broken = false;

  constructor(maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    if (!Number.isSafeInteger(maxFrameSize) || maxFrameSize < 0) {
      throw new LocalProtocolError("maxFrameSize must be a non-negative integer");
    }
    this.maxFrameSize = maxFrameSize;
  }

  /** True when the bytes fed so far end inside a prefix or a frame. */
  get hasPartialFrame(): boolean {
    return this.prefix.length > 0 || this.frame !== null;
  }

  /** Bytes of the incomplete frame (or prefix) held so far. */
  get heldBytes(): number {
    return this.prefix.length + this.filled;
  }

  feed(data: Uint8Array): Uint8Array[] {
    if (this.broken) throw new LocalProtocolError("FrameDecoder already failed; the link must be closed");
    try {
      return this.consume(data);
    } catch (error) {
      this.broken = true;
      throw error;
    }
  }

  private consume(data: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (offset < data.length) {
      if (this.frame === null) {
        const byte = data[offset++] as number;
        this.prefix.push(byte);
        if ((byte & 0x80) !== 0 && this.prefix.length < MAX_UVARINT_BYTES) continue;
        const [length] = decodeUvarint(Uint8Array.from(this.prefix));
        this.prefix = [];
        if (length > this.maxFrameSize) {
          throw new FrameTooLarge(`peer announced a frame of ${length} bytes; the maximum is ${this.maxFrameSize}`);
        }
        this.frame = new Uint8Array(length);
        this.filled = 0;
      }
      const take = Math.min(this.frame.length - this.filled, data.length - offset);
      this.frame.set(data.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === this.frame.length) {
        frames.push(this.frame);
        this.frame = null;
        this.filled = 0;
      }
    }
    return frames;
  }

  /** Call at the end of the stream: `TruncatedFrame` if it ended inside a frame. */
  endOfStream(): void {
    if (this.hasPartialFrame) {
      this.broken = true;
      throw new TruncatedFrame("the link ended inside a frame");
    }
  }
}
