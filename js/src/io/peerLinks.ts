/**
 * The open links of a page, by peer (docs/protocol.md section 4.3).
 *
 * Two peers that dial each other at once hold two links for one pair: frames
 * are read from both and sent on the one a frame last came from (the newest
 * until one has), so both sides settle on one.  A frame is lost only if its
 * link ends before the peer read it, and nothing acknowledges frames, so a
 * link that ends while a frame written on it came after the last frame read
 * from it fails the whole peer: the others are closed and the core is told the
 * peer is gone (and repairs on the next link), rather than carrying on over the
 * others with those frames silently lost.  Resending them elsewhere would not
 * do: nothing tells which of them the peer already handled.
 */

import type { PeerId } from "../wire/peerId.js";

/** What the bookkeeping needs of a link. */
export interface ClosableLink {
  close(reason: string): void;
}

/** What the end of one link means for its peer. */
export type LinkEnd =
  /** Other links remain and nothing written on this one can have been lost. */
  | "kept"
  /** The peer is gone: its last link ended, or one ended with frames perhaps unread. */
  | "down"
  /** The link was no longer counted (its peer was closed or failed already). */
  | "stale";

export class PeerLinks<L extends ClosableLink> {
  readonly #links = new Map<PeerId, L[]>();
  /** Links written on since the last frame read from them. */
  readonly #unanswered = new Set<L>();

  get size(): number {
    return this.#links.size;
  }

  /** The peer's links, the one frames go out on last. */
  get(peer: PeerId): readonly L[] | undefined {
    return this.#links.get(peer);
  }

  /** A newly opened link: frames go out on it until one comes on another. */
  add(peer: PeerId, link: L): void {
    const links = this.#links.get(peer) ?? [];
    links.push(link);
    this.#links.set(peer, links);
  }

  /** The link to write the peer's next frame on (call `wrote` with it), if any. */
  target(peer: PeerId): L | undefined {
    return this.#links.get(peer)?.at(-1);
  }

  /** A frame is being written on `link`. */
  wrote(link: L): void {
    this.#unanswered.add(link);
  }

  /** A frame came from `link`: what was written on it before was (or will be) read, and
   * the peer's next frames go on it (where the peer sends). */
  received(peer: PeerId, link: L): void {
    this.#unanswered.delete(link);
    const links = this.#links.get(peer);
    if (links === undefined || links.at(-1) === link) return;
    const at = links.indexOf(link);
    if (at < 0) return;
    links.splice(at, 1);
    links.push(link);
  }

  /** `link` ended; on "down" every other link of the peer was closed with `reason`. */
  ended(peer: PeerId, link: L, reason = "failed: a link ended with frames perhaps unread"): LinkEnd {
    const unread = this.#unanswered.delete(link);
    const links = this.#links.get(peer);
    if (links === undefined || !links.includes(link)) return "stale";
    const rest = links.filter((other) => other !== link);
    if (rest.length > 0 && !unread) {
      this.#links.set(peer, rest);
      return "kept";
    }
    this.remove(peer, reason);
    return "down";
  }

  /** Forget the peer and close its links. */
  remove(peer: PeerId, reason: string): void {
    const links = this.#links.get(peer) ?? [];
    this.#links.delete(peer);
    for (const link of links) {
      this.#unanswered.delete(link);
      link.close(reason);
    }
  }

  /** Close every link (the page leaves). */
  clear(reason: string): void {
    for (const peer of [...this.#links.keys()]) this.remove(peer, reason);
  }
}
