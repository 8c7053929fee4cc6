/** A bounded queue an async consumer reads: `push` fails (returns false) when full. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly limit: number;
  #items: T[] = [];
  #waiters: ((result: IteratorResult<T>) => void)[] = [];
  #ended = false;

  constructor(limit: number) {
    this.limit = limit;
  }

  get size(): number {
    return this.#items.length;
  }

  push(item: T): boolean {
    if (this.#ended) return false;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter({ value: item, done: false });
      return true;
    }
    if (this.#items.length >= this.limit) return false;
    this.#items.push(item);
    return true;
  }

  /** Take every item waiting, at once (for a consumer switching from iterating to a callback). */
  drain(): T[] {
    return this.#items.splice(0);
  }

  /** No more items: readers finish once the queue is drained. */
  end(): void {
    this.#ended = true;
    for (const waiter of this.#waiters.splice(0)) waiter({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#items.length > 0) return Promise.resolve({ value: this.#items.shift() as T, done: false });
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}
