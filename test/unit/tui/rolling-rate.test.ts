import { describe, expect, it } from 'vitest';
import { RollingRate } from '../../../src/tui/rolling-rate.js';

const S = 1_700_000_000_000;

describe('RollingRate', () => {
  it('counts per second, oldest first', () => {
    const r = new RollingRate(10);
    r.record(S);
    r.record(S + 100);
    r.record(S + 1_500);
    r.record(S + 3_000, 4);
    expect(r.series(S + 3_200, 4)).toEqual([2, 1, 0, 4]);
  });

  it('forgets seconds that fell out of the window, even after wrapping the ring many times', () => {
    const r = new RollingRate(4);
    for (let i = 0; i < 20; i++) r.record(S + i * 1000, i);
    expect(r.series(S + 19_000, 4)).toEqual([16, 17, 18, 19]);
    // A quiet spell longer than the window clears every bucket.
    r.record(S + 40_000);
    expect(r.series(S + 40_000, 4)).toEqual([0, 0, 0, 1]);
  });

  it('shows nothing for seconds after the newest record', () => {
    const r = new RollingRate(10);
    r.record(S, 3);
    expect(r.series(S + 2_000, 3)).toEqual([3, 0, 0]);
  });

  it('ignores records older than the window', () => {
    const r = new RollingRate(3);
    r.record(S + 10_000);
    r.record(S);
    expect(r.series(S + 10_000, 3)).toEqual([0, 0, 1]);
  });
});
