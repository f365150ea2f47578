/** The bounded "most recent N" buffer read in arrival order. */
import { describe, expect, it } from 'vitest';
import { RecentBuffer } from '../../../../src/daemon/events/recent-buffer.js';

describe('RecentBuffer', () => {
  it('returns everything oldest first before it fills', () => {
    const buf = new RecentBuffer<number>(5);
    for (const n of [1, 2, 3]) buf.add(n);
    expect(buf.last()).toEqual([1, 2, 3]);
  });

  it('returns the newest N oldest first after wrapping many times', () => {
    const buf = new RecentBuffer<number>(4);
    for (let n = 1; n <= 23; n++) buf.add(n);
    expect(buf.last()).toEqual([20, 21, 22, 23]);
    expect(buf.last(2)).toEqual([22, 23]);
  });

  it('never returns more than its size, whatever is asked', () => {
    const buf = new RecentBuffer<string>(3);
    for (const s of ['a', 'b', 'c', 'd']) buf.add(s);
    expect(buf.last(10)).toEqual(['b', 'c', 'd']);
    expect(buf.last(0)).toEqual([]);
  });

  it('is empty before anything is added', () => {
    expect(new RecentBuffer<number>(3).last()).toEqual([]);
  });
});
