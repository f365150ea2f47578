/**
 * "The last N items": a fixed array used as a ring, read in arrival order. A plain array rather than hoopy
 * (which the rolling rates use): hoopy indexes through a Proxy, and this buffer takes one write per proxied
 * request, where that trap showed in profiles (~1.5 µs a request).
 */

/** A bounded, append-only buffer of the most recent items. */
export class RecentBuffer<T> {
  private readonly buf: (T | undefined)[];
  private n = 0;

  constructor(private readonly size: number) {
    this.buf = new Array<T | undefined>(size);
  }

  /** Appends one item, overwriting the oldest when full. */
  add(item: T): void {
    this.buf[this.n % this.size] = item;
    this.n++;
  }

  /** Up to `k` most recent items, oldest first. */
  last(k = this.size): T[] {
    const out: T[] = [];
    for (let i = Math.max(0, this.n - Math.min(k, this.size)); i < this.n; i++) out.push(this.buf[i % this.size] as T);
    return out;
  }
}
