/** "The last N items" over a hoopy ring buffer, read in arrival order (hoopy's own iteration is storage order). */
import Hoopy from 'hoopy';

/** A bounded, append-only buffer of the most recent items. */
export class RecentBuffer<T> {
  private readonly buf: Hoopy<T>;
  private n = 0;

  constructor(private readonly size: number) {
    this.buf = new Hoopy<T>(size);
  }

  /** Appends one item, overwriting the oldest when full. */
  add(item: T): void {
    this.buf[this.n++] = item;
  }

  /** Up to `k` most recent items, oldest first. */
  last(k = this.size): T[] {
    const out: T[] = [];
    for (let i = Math.max(0, this.n - Math.min(k, this.size)); i < this.n; i++) out.push(this.buf[i] as T);
    return out;
  }
}
