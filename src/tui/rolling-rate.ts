/**
 * Requests per second over the last minute, counted from `request.finished` events into one-second
 * buckets of a hoopy ring buffer. Hoopy wraps every index modulo its size, so the absolute second number
 * is the index; we keep our own cursor (the newest second written) and never iterate or spread the buffer,
 * whose storage order is not chronological.
 */
import Hoopy from 'hoopy';

/** Per-second request counts for the last `capacity` seconds. Mutable; lives outside the reducer. */
export class RollingRate {
  private readonly buckets: Hoopy<number>;
  /** The newest second (epoch seconds) that has a bucket, or null before the first record. */
  private newest: number | null = null;

  constructor(private readonly capacity = 60) {
    this.buckets = new Hoopy<number>(capacity);
  }

  /** Counts `count` requests finished at `atMs`. Records older than the window are ignored. */
  record(atMs: number, count = 1): void {
    const sec = Math.floor(atMs / 1000);
    if (this.newest === null || sec > this.newest) {
      // Clear the buckets being reused for seconds between the old newest and this one.
      const from = this.newest === null ? sec - this.capacity + 1 : Math.max(this.newest + 1, sec - this.capacity + 1);
      for (let s = from; s <= sec; s++) this.buckets[s] = 0;
      this.newest = sec;
    }
    if (sec <= this.newest - this.capacity) return;
    this.buckets[sec] = (this.buckets[sec] ?? 0) + count;
  }

  /** Counts per second for the `n` seconds ending at `nowMs`'s second, oldest first. */
  series(nowMs: number, n: number): number[] {
    const end = Math.floor(nowMs / 1000);
    const out: number[] = [];
    for (let s = end - Math.min(n, this.capacity) + 1; s <= end; s++) out.push(this.count(s));
    return out;
  }

  private count(sec: number): number {
    if (this.newest === null || sec > this.newest || sec <= this.newest - this.capacity) return 0;
    return this.buckets[sec] ?? 0;
  }
}
