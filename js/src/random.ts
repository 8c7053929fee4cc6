/**
 * A small seeded generator (SplitMix64) for protocol choices in the cores:
 * request and session ids, backoff jitter, peer sampling.  The drivers seed it
 * from the platform's secure random source; tests seed it with a constant, so
 * a run is reproduced by its seed.  Key material never comes from here.
 */

const MASK64 = (1n << 64n) - 1n;

export class SeededRandom {
  #state: bigint;

  constructor(seed: bigint | number) {
    this.#state = BigInt(seed) & MASK64;
  }

  /** The next 64 random bits. */
  nextU64(): bigint {
    this.#state = (this.#state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = this.#state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  }

  /** Uniform in [0, 1). */
  random(): number {
    return Number(this.nextU64() >> 11n) / 2 ** 53;
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.random();
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.random() * n);
  }

  bytes(count: number): Uint8Array {
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i += 8) {
      let word = this.nextU64();
      for (let j = i; j < Math.min(i + 8, count); j++) {
        out[j] = Number(word & 0xffn);
        word >>= 8n;
      }
    }
    return out;
  }

  /** The items in a random order (a new array). */
  shuffled<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }
}
