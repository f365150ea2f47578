/**
 * A small least-recently-used map. Per-host state (leaf certificates, TLS contexts, parsed targets) is keyed
 * by names that clients choose, so every such cache needs a hard bound; evicting the least recently used
 * entry keeps the hosts an agent actually talks to warm, where clearing the whole map when it fills made
 * every host pay its first-request cost again at once.
 */

/** A map holding at most `capacity` entries; reading or writing an entry makes it the most recent. */
export class Lru<K, V> {
  // A Map iterates in insertion order: re-inserting on use keeps the least recently used entry first.
  private readonly map = new Map<K, V>();
  /** The most recently used key: reading it again needs no reordering (the common case on a hot path). */
  private newest: K | undefined = undefined;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`LRU capacity must be a whole number ≥ 1 (got ${capacity})`);
  }

  /** Number of entries (never more than the capacity). */
  get size(): number {
    return this.map.size;
  }

  /** The value for `key` (now the most recent), or undefined. */
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined || key === this.newest) return v;
    this.map.delete(key);
    this.map.set(key, v);
    this.newest = key;
    return v;
  }

  /** True when `key` is present; does not change its recency. */
  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Stores `value` as the most recent entry, evicting the least recently used one when full. */
  set(key: K, value: V): this {
    if (this.map.has(key)) this.map.delete(key);
    else if (this.map.size >= this.capacity) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, value);
    this.newest = key;
    return this;
  }

  /** Removes `key`; true when it was present. */
  delete(key: K): boolean {
    if (key === this.newest) this.newest = undefined;
    return this.map.delete(key);
  }

  /** Removes `key` only while it still maps to `value` (a failed promise must not evict its replacement). */
  deleteIf(key: K, value: V): void {
    if (this.map.get(key) === value) this.delete(key);
  }
}
