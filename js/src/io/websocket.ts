/**
 * WebSocket channels (docs/protocol.md "WebSocket"): subprotocol `taiinet.v1`,
 * binary messages only, each one or more whole length-prefixed Noise messages.
 * Uses the platform's `WebSocket` (browsers; node with --experimental-websocket).
 */

import { ConnectionClosed, LinkTimeout } from "../errors.js";
import type { Identity } from "../wire/identity.js";
import type { PeerId } from "../wire/peerId.js";
import { type MessageChannel, SecureLink } from "./secureChannel.js";

export const WEBSOCKET_SUBPROTOCOL = "taiinet.v1";
/** The whole upgrade (TCP, TLS for wss://, HTTP) within this many ms. */
export const UPGRADE_TIMEOUT_MS = 5_000;

class WebSocketChannel implements MessageChannel {
  onMessage: ((data: Uint8Array) => void) | null = null;
  onClose: ((reason: string) => void) | null = null;
  readonly #socket: WebSocket;

  constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (event: MessageEvent) => {
      if (!(event.data instanceof ArrayBuffer)) {
        this.close();
        this.#closed("a text message on a binary link");
        return;
      }
      this.onMessage?.(new Uint8Array(event.data));
    };
    socket.onclose = (event: CloseEvent) => this.#closed(`WebSocket closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`);
    socket.onerror = () => this.#closed("WebSocket error");
  }

  send(data: Uint8Array): void {
    if (this.#socket.readyState === WebSocket.OPEN) this.#socket.send(data as Uint8Array<ArrayBuffer>);
  }

  close(): void {
    this.#socket.close(1000);
  }

  #closed(reason: string): void {
    const handler = this.onClose;
    this.onClose = null;
    this.onMessage = null;
    handler?.(reason);
  }
}

/** Open a WebSocket to `url` and run Noise XX as initiator over it. */
export function dialWebSocket(url: string, identity: Identity, options: { expectedPeerId?: PeerId; maxFrameSize?: number } = {}): Promise<SecureLink> {
  return new Promise<WebSocket>((resolve, reject) => {
    let socket: WebSocket;
    try {
      socket = new WebSocket(url, WEBSOCKET_SUBPROTOCOL);
    } catch (error) {
      reject(new ConnectionClosed(`cannot dial ${url}: ${String(error)}`));
      return;
    }
    socket.binaryType = "arraybuffer";
    const timer = setTimeout(() => {
      socket.close();
      reject(new LinkTimeout(`${url}: the WebSocket upgrade took too long`));
    }, UPGRADE_TIMEOUT_MS);
    socket.onopen = () => {
      clearTimeout(timer);
      if (socket.protocol !== WEBSOCKET_SUBPROTOCOL) {
        socket.close();
        reject(new ConnectionClosed(`${url} did not accept the subprotocol ${WEBSOCKET_SUBPROTOCOL}`));
      } else {
        resolve(socket);
      }
    };
    // Some failures (a refused or forbidden port) fire only `error`: either settles the dial.
    socket.onclose = socket.onerror = () => {
      clearTimeout(timer);
      reject(new ConnectionClosed(`cannot dial ${url}`));
    };
  }).then((socket) => SecureLink.open(new WebSocketChannel(socket), {
    initiator: true, identity,
    ...(options.expectedPeerId === undefined ? {} : { expectedPeerId: options.expectedPeerId }),
    ...(options.maxFrameSize === undefined ? {} : { maxFrameSize: options.maxFrameSize }),
  }));
}
