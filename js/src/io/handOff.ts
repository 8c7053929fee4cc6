/**
 * Waiting for a publication's hand-off (docs/pubsub.md section 7; docs/node.md
 * "hand-off"): a document published here no longer needs this peer once a
 * neighbour holds it on a live link and the frame that carried it has left
 * that link's send buffer.  Until then a page that closes (or a tab that is
 * shut) takes the document with it.
 *
 * The router says which neighbours hold it (`handedTo`, on their current
 * links); the links say when what was sent on them is out (`flush`).  If
 * nobody holds it yet (no parent yet, or the link it went on failed), the
 * wait goes on at each change of the node (the router pushes the retained
 * document to the next parent), up to a deadline: the router keeps a
 * document 30 s, so waiting longer is pointless.
 */

import { HandOffTimeout, NodeClosed } from "../errors.js";
import type { PeerId } from "../wire/peerId.js";

/** How long `send` waits for a hand-off by default (ms): the router's retention. */
export const HAND_OFF_TIMEOUT_MS = 30_000;

/** A link as the hand-off sees it. */
export interface Flushable {
  /** Resolves once what was sent so far left the send buffer: true, or false if the link closed. */
  flush(): Promise<boolean>;
}

/** The node as the hand-off sees it. */
export interface HandOffSource {
  /** Neighbours holding the document `id` (hex) on their current links. */
  handedTo(id: string): readonly PeerId[];
  /** The open links to `peer`. */
  linksTo(peer: PeerId): readonly Flushable[];
  /** Resolves at the next change of the node's state or links (new actions, a link adopted or closed). */
  changed(): Promise<void>;
  isClosed(): boolean;
}

/** Resolves once a neighbour holds `id` and its frame is out; `HandOffTimeout` after `timeoutMs`,
 * `NodeClosed` if the node closes first. */
export async function waitHandOff(source: HandOffSource, id: string, timeoutMs = HAND_OFF_TIMEOUT_MS): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let expired = false;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      expired = true;
      resolve();
    }, timeoutMs);
  });
  try {
    for (;;) {
      if (source.isClosed()) throw new NodeClosed(`the node closed before document ${id.slice(0, 16)} was handed to a neighbour`);
      const changed = source.changed(); // taken before looking, so that no change is missed
      for (const peer of source.handedTo(id)) {
        const flushed = await Promise.all(source.linksTo(peer).map((link) => link.flush()));
        if (flushed.includes(true)) return;
      }
      if (expired) break;
      await Promise.race([changed, deadline]); // then one last look
    }
  } finally {
    clearTimeout(timer);
  }
  throw new HandOffTimeout(`no neighbour took document ${id.slice(0, 16)} within ${timeoutMs} ms (it stays retained for the router's next parent)`);
}
