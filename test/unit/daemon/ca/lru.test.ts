/** The LRU that bounds every per-host cache: never above capacity, least recently used evicted first. */
import { describe, expect, test } from 'vitest';
import { Lru } from '../../../../src/daemon/ca/lru.js';

describe('Lru', () => {
  test('never holds more than its capacity, whatever is written', () => {
    const l = new Lru<string, number>(50);
    for (let i = 0; i < 10_000; i++) {
      l.set(`h${i}`, i);
      if (i % 7 === 0) l.get(`h${i - 3}`);
      expect(l.size).toBeLessThanOrEqual(50);
    }
    expect(l.size).toBe(50);
    // The last 50 written are the ones kept.
    expect(l.get('h9950')).toBe(9950);
    expect(l.get('h9949')).toBeUndefined();
  });

  test('evicts the least recently used entry: a read refreshes it, has() does not', () => {
    const l = new Lru<string, number>(3);
    l.set('a', 1).set('b', 2).set('c', 3);
    expect(l.get('a')).toBe(1); // a is now the newest; b is the oldest
    l.set('d', 4);
    expect(l.has('b')).toBe(false);
    expect([l.has('a'), l.has('c'), l.has('d')]).toEqual([true, true, true]);
    expect(l.has('c')).toBe(true); // has() leaves c the oldest
    l.set('e', 5);
    expect(l.has('c')).toBe(false);
    expect(l.size).toBe(3);
  });

  test('re-reading the newest entry and overwriting a key keep the order right', () => {
    const l = new Lru<string, number>(2);
    l.set('a', 1);
    l.set('b', 2);
    expect(l.get('b')).toBe(2);
    expect(l.get('b')).toBe(2);
    l.set('a', 10); // overwrite: a becomes the newest, b the oldest
    l.set('c', 3);
    expect(l.has('b')).toBe(false);
    expect(l.get('a')).toBe(10);
    expect(l.size).toBe(2);
  });

  test('delete and deleteIf (only while the key still maps to that value)', () => {
    const l = new Lru<string, string>(4);
    l.set('k', 'old');
    l.set('k', 'new');
    l.deleteIf('k', 'old');
    expect(l.get('k')).toBe('new');
    l.deleteIf('k', 'new');
    expect(l.has('k')).toBe(false);
    l.set('x', '1');
    expect(l.delete('x')).toBe(true);
    expect(l.delete('x')).toBe(false);
    expect(l.size).toBe(0);
  });

  test('a capacity below 1 or not whole is refused', () => {
    expect(() => new Lru(0)).toThrow(RangeError);
    expect(() => new Lru(2.5)).toThrow(RangeError);
  });
});
