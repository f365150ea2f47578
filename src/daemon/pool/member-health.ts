/**
 * Process-wide cooldowns of credentials, shared by every pool and every reload. A cooldown only ever
 * extends (a shorter one never shortens it), is applied in memory synchronously, and is persisted so a
 * restart remembers it. Every cooldown ends at most `maxCooldownMs` from when it is applied or loaded (a
 * misread header can never park an account for years). Expired cooldowns read as healthy.
 */
import type { Clock } from '../clock.js';

/** Default upper bound of any cooldown: 24 h (`SLUICE_MAX_COOLDOWN_S`). */
export const DEFAULT_MAX_COOLDOWN_MS = 86_400_000;

/** A member's current cooldown. */
export interface Cooldown {
  until: number;
  reason: string;
}

/** Cooldown bookkeeping with an injected clock. */
export class MemberHealth {
  private readonly cooling = new Map<string, Cooldown>();

  constructor(
    private readonly clock: Clock,
    private readonly persist: (name: string, until: number | null, reason: string | null) => void = () => {},
    private readonly maxCooldownMs: number = DEFAULT_MAX_COOLDOWN_MS,
  ) {}

  /** Restores persisted cooldowns (expired ones are ignored, overlong ones clamped). */
  load(rows: { name: string; until: number; reason: string }[]): void {
    for (const r of rows) if (r.until > this.clock.now()) this.cooling.set(r.name, { until: this.clamp(r.until), reason: r.reason });
  }

  private clamp(until: number): number {
    return Math.min(until, this.clock.now() + this.maxCooldownMs);
  }

  /** Cools `name` until `until` (clamped) unless it already cools longer. Returns the cooldown in force. */
  cool(name: string, requested: number, reason: string): Cooldown {
    const until = this.clamp(requested);
    const cur = this.get(name);
    if (cur && cur.until >= until) return cur;
    const c = { until, reason };
    this.cooling.set(name, c);
    this.persist(name, until, reason);
    return c;
  }

  /** Clears `name`'s cooldown (pool reset). */
  clear(name: string): void {
    if (this.cooling.delete(name)) this.persist(name, null, null);
  }

  /** The cooldown in force for `name`, or null when healthy. */
  get(name: string): Cooldown | null {
    const c = this.cooling.get(name);
    if (!c) return null;
    if (c.until <= this.clock.now()) {
      this.cooling.delete(name);
      return null;
    }
    return c;
  }

  /** True when `name` is not cooling. */
  isHealthy(name: string): boolean {
    return this.get(name) === null;
  }
}
