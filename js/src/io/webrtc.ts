/**
 * Links over an RTCDataChannel (docs/protocol.md, "WebRTC data channel"):
 * complete SDPs (every candidate inside, no trickle) relayed by the signal
 * client, one reliable ordered channel labelled `taiinet`, binary messages of
 * whole length-prefixed Noise messages, Noise XX with the offerer as
 * initiator.  ICE servers come from the caller only: no public default.
 */

import { ConnectionClosed, InvalidSdp, LinkTimeout } from "../errors.js";
import { validateSdp } from "../link/sdp.js";
import type { IncomingOffer } from "../signal/clientCore.js";
import type { Identity } from "../wire/identity.js";
import type { PeerId } from "../wire/peerId.js";
import { type MessageChannel, SecureLink } from "./secureChannel.js";
import type { SignalClient } from "./signalClient.js";

export const DATA_CHANNEL_LABEL = "taiinet";
/** From the offer (or answer) to a secured link, at most (ms). */
export const CONNECT_TIMEOUT_MS = 30_000;
/** Gathering every candidate (the SDPs carry them all), at most (ms). */
export const GATHER_TIMEOUT_MS = 5_000;
/** `send` waits while the channel buffers more than this... */
export const SEND_BUFFER_HIGH = 1 << 20;
/** ...until it drains to this. */
export const SEND_BUFFER_LOW = 256 * 1024;
/** How often `drained` looks at the send buffer (ms): the channel has no event for "empty". */
export const DRAIN_POLL_MS = 10;

export interface WebRTCOptions {
  /** STUN/TURN servers; none by default (links to peers on the same host need none). */
  readonly iceServers?: RTCIceServer[];
  /** "relay" to use TURN only (browser to browser on one host: docs/protocol.md). */
  readonly iceTransportPolicy?: RTCIceTransportPolicy;
  readonly connectTimeoutMs?: number;
  readonly maxFrameSize?: number;
}

class DataChannelChannel implements MessageChannel {
  onMessage: ((data: Uint8Array) => void) | null = null;
  onClose: ((reason: string) => void) | null = null;
  readonly #channel: RTCDataChannel;
  readonly #peer: RTCPeerConnection;

  constructor(channel: RTCDataChannel, peer: RTCPeerConnection) {
    this.#channel = channel;
    this.#peer = peer;
    channel.binaryType = "arraybuffer";
    channel.bufferedAmountLowThreshold = SEND_BUFFER_LOW;
    channel.onmessage = (event: MessageEvent) => {
      if (!(event.data instanceof ArrayBuffer)) {
        this.close();
        this.#closed("a string message on the data channel");
        return;
      }
      this.onMessage?.(new Uint8Array(event.data));
    };
    channel.onclose = () => this.#closed("the data channel closed");
    peer.onconnectionstatechange = () => {
      if (peer.connectionState === "failed" || peer.connectionState === "closed") this.#closed(`connection ${peer.connectionState}`);
    };
  }

  async send(data: Uint8Array): Promise<void> {
    if (this.#channel.bufferedAmount > SEND_BUFFER_HIGH) {
      await new Promise<void>((resolve) => {
        this.#channel.addEventListener("bufferedamountlow", () => resolve(), { once: true });
        this.#channel.addEventListener("close", () => resolve(), { once: true });
      });
    }
    if (this.#channel.readyState === "open") this.#channel.send(data as Uint8Array<ArrayBuffer>);
  }

  async drained(): Promise<void> {
    while (this.#channel.readyState === "open" && this.#channel.bufferedAmount > 0) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
  }

  close(): void {
    this.#channel.close();
    this.#peer.close();
  }

  #closed(reason: string): void {
    const handler = this.onClose;
    this.onClose = null;
    this.onMessage = null;
    if (this.#peer.connectionState !== "closed") this.#peer.close();
    handler?.(reason);
  }
}

function newPeer(options: WebRTCOptions): RTCPeerConnection {
  return new RTCPeerConnection({
    iceServers: options.iceServers ?? [],
    ...(options.iceTransportPolicy === undefined ? {} : { iceTransportPolicy: options.iceTransportPolicy }),
  });
}

/** Set `description` and wait until every candidate is in the local SDP. */
async function completeLocalSdp(peer: RTCPeerConnection, description: RTCSessionDescriptionInit): Promise<string> {
  await peer.setLocalDescription(description);
  if (peer.iceGatheringState !== "complete") {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
      peer.addEventListener("icegatheringstatechange", () => {
        if (peer.iceGatheringState === "complete") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }
  const sdp = peer.localDescription?.sdp;
  if (sdp === undefined) throw new ConnectionClosed("no local description");
  return sdp;
}

function opened(channel: RTCDataChannel): Promise<void> {
  if (channel.readyState === "open") return Promise.resolve();
  return new Promise((resolve, reject) => {
    channel.addEventListener("open", () => resolve(), { once: true });
    channel.addEventListener("close", () => reject(new ConnectionClosed("the data channel closed before it opened")), { once: true });
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new LinkTimeout(what));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** An open data channel to `peerId`, offered through `signal` (no Noise yet). */
async function dialChannel(signal: SignalClient, peerId: PeerId, options: WebRTCOptions): Promise<DataChannelChannel> {
  const peer = newPeer(options);
  const run = async (): Promise<DataChannelChannel> => {
    const channel = peer.createDataChannel(DATA_CHANNEL_LABEL, { ordered: true });
    const offerSdp = await completeLocalSdp(peer, await peer.createOffer());
    const answerSdp = validateSdp(await signal.offer(peerId, offerSdp), "answer");
    try {
      await peer.setRemoteDescription({ type: "answer", sdp: answerSdp });
    } catch (error) {
      throw new InvalidSdp(`the answer was refused: ${String(error)}`);
    }
    await opened(channel);
    return new DataChannelChannel(channel, peer);
  };
  try {
    return await withTimeout(run(), options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS, `no WebRTC link to ${peerId} in time`, () => peer.close());
  } catch (error) {
    peer.close();
    throw error;
  }
}

/** Offer a link to `peerId` through `signal`; the secured link (we are the Noise initiator). */
export async function dialWebRTC(signal: SignalClient, identity: Identity, peerId: PeerId, options: WebRTCOptions = {}): Promise<SecureLink> {
  return SecureLink.open(await dialChannel(signal, peerId, options), {
    initiator: true, identity, expectedPeerId: peerId,
    ...(options.maxFrameSize === undefined ? {} : { maxFrameSize: options.maxFrameSize }),
  });
}

/** As `dialWebRTC` but without Noise: the bare channel (benchmarks compare against it). */
export function dialRawWebRTC(signal: SignalClient, peerId: PeerId, options: WebRTCOptions = {}): Promise<MessageChannel> {
  return dialChannel(signal, peerId, options);
}

/** Answer `offer` (or reject it when its SDP is bad); the open data channel (no Noise yet). */
async function acceptChannel(signal: SignalClient, offer: IncomingOffer, options: WebRTCOptions): Promise<DataChannelChannel> {
  let offerSdp: string;
  try {
    offerSdp = validateSdp(offer.sdp, "offer");
  } catch (error) {
    signal.reject(offer, error instanceof Error ? error.message : "bad offer");
    throw error;
  }
  const peer = newPeer(options);
  const channelArrived = new Promise<RTCDataChannel>((resolve, reject) => {
    peer.ondatachannel = (event) => {
      const channel = event.channel;
      if (channel.label !== DATA_CHANNEL_LABEL || !channel.ordered || channel.maxRetransmits !== null || channel.maxPacketLifeTime !== null) {
        reject(new ConnectionClosed(`refused a data channel ${JSON.stringify(channel.label)} that is not reliable, ordered and labelled taiinet`));
        return;
      }
      resolve(channel);
    };
  });
  const run = async (): Promise<DataChannelChannel> => {
    try {
      await peer.setRemoteDescription({ type: "offer", sdp: offerSdp });
    } catch (error) {
      signal.reject(offer, "the offer was refused");
      throw new InvalidSdp(`the offer was refused: ${String(error)}`);
    }
    signal.answer(offer, await completeLocalSdp(peer, await peer.createAnswer()));
    const channel = await channelArrived;
    await opened(channel);
    return new DataChannelChannel(channel, peer);
  };
  try {
    return await withTimeout(run(), options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS, `no WebRTC link from ${offer.fromPeer} in time`, () => peer.close());
  } catch (error) {
    peer.close();
    throw error;
  }
}

/** Answer `offer` (or reject it when its SDP is bad); the secured link (we are the responder). */
export async function acceptWebRTC(signal: SignalClient, identity: Identity, offer: IncomingOffer, options: WebRTCOptions = {}): Promise<SecureLink> {
  return SecureLink.open(await acceptChannel(signal, offer, options), {
    initiator: false, identity, expectedPeerId: offer.fromPeer,
    ...(options.maxFrameSize === undefined ? {} : { maxFrameSize: options.maxFrameSize }),
  });
}

/** As `acceptWebRTC` but without Noise: the bare channel (benchmarks compare against it). */
export function acceptRawWebRTC(signal: SignalClient, offer: IncomingOffer, options: WebRTCOptions = {}): Promise<MessageChannel> {
  return acceptChannel(signal, offer, options);
}
