/**
 * A rolling tokens-per-minute rate over the last five minutes: a hoopy ring of 10-second buckets (the
 * same structure request-stats.ts uses for requests per second). Pure; the caller passes the time.
 */
import Hoopy from 'hoopy';

const SLOT_MS = 10_000;
const WINDOW_MS = 5 * 60_000;
const SLOTS = WINDOW_MS / SLOT_MS;

/** Tokens per minute over the last five minutes, for one credential. */
export class TokenRate {
  private readonly slots = new Hoopy<number>(SLOTS + 1);
  private slot: number;

  constructor(now: number) {
    for (let i = 0; i < SLOTS + 1; i++) this.slots[i] = 0;
    this.slot = Math.floor(now / SLOT_MS);
  }

  private roll(now: number): number {
    const s = Math.floor(now / SLOT_MS);
    if (s > this.slot) {
      // Slots the ring wraps onto are cleared; after a long quiet spell only the last SLOTS+1 matter.
      for (let i = Math.max(this.slot + 1, s - SLOTS); i <= s; i++) this.slots[i] = 0;
      this.slot = s;
    }
    return this.slot;
  }

  /** Adds `tokens` at `now` (a time before the current slot counts in the current slot). */
  add(now: number, tokens: number): void {
    const s = this.roll(now);
    this.slots[s] = (this.slots[s] ?? 0) + tokens;
  }

  /** Tokens per minute over the five minutes up to `now` (the current, partial slot included), rounded. */
  perMinute(now: number): number {
    const s = this.roll(now);
    let sum = 0;
    for (let i = s - SLOTS + 1; i <= s; i++) sum += this.slots[i] ?? 0;
    return Math.round(sum / (WINDOW_MS / 60_000));
  }

  /** True when nothing was counted in the window (the rate can be forgotten). */
  idle(now: number): boolean {
    return this.perMinute(now) === 0;
  }
}
