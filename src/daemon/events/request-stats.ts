/**
 * Rolling request statistics: per-credential totals by status class and rejects, global totals, and a
 * requests-per-second rate over the last few seconds (a hoopy ring of per-second buckets).
 */
import Hoopy from 'hoopy';
import type { CredentialStats } from '../../shared/protocol/entities.js';
import type { Clock } from '../clock.js';

/** Counters for one credential: the cumulative part of {@link CredentialStats}. */
export type Counters = Pick<CredentialStats, 'total' | 'status_2xx' | 'status_3xx' | 'status_4xx' | 'status_5xx' | 'errors' | 'rejected'>;

const zero = (): Counters => ({ total: 0, status_2xx: 0, status_3xx: 0, status_4xx: 0, status_5xx: 0, errors: 0, rejected: 0 });
const WINDOW_S = 5;

/** Counts finished requests and cap refusals. */
export class RequestStats {
  private readonly perCred = new Map<string, Counters>();
  private total = 0;
  private rejected = 0;
  private readonly buckets = new Hoopy<number>(WINDOW_S + 1);
  private bucketSecond = 0;
  /** Requests finished in `bucketSecond`, kept apart: hoopy's index access goes through a Proxy. */
  private current = 0;

  constructor(private readonly clock: Clock) {
    for (let i = 0; i < WINDOW_S + 1; i++) this.buckets[i] = 0;
    this.bucketSecond = Math.floor(clock.now() / 1000);
  }

  private roll(): number {
    const sec = Math.floor(this.clock.now() / 1000);
    if (sec > this.bucketSecond) {
      this.buckets[this.bucketSecond] = this.current;
      this.current = 0;
      for (let s = Math.max(this.bucketSecond + 1, sec - WINDOW_S); s <= sec; s++) this.buckets[s] = 0;
      this.bucketSecond = sec;
    }
    return sec;
  }

  private counters(name: string): Counters {
    let c = this.perCred.get(name);
    if (!c) this.perCred.set(name, (c = zero()));
    return c;
  }

  /** Records a finished request (status null = failed without a response). */
  recordFinished(credential: string | null, status: number | null): void {
    this.roll();
    this.current++;
    this.total++;
    if (!credential) return;
    const c = this.counters(credential);
    c.total++;
    if (status === null) c.errors++;
    else if (status < 300) c.status_2xx++;
    else if (status < 400) c.status_3xx++;
    else if (status < 500) c.status_4xx++;
    else c.status_5xx++;
  }

  /** Records a cap refusal. */
  recordRejected(credential: string | null): void {
    this.rejected++;
    if (credential) this.counters(credential).rejected++;
  }

  /** Counters for `name` (zeros if never seen). */
  countersFor(name: string): Counters {
    return { ...(this.perCred.get(name) ?? zero()) };
  }

  /** Forgets a removed credential's counters. */
  forget(name: string): void {
    this.perCred.delete(name);
  }

  /** Global totals and the average rate over the last full seconds. */
  global(): { requests_total: number; rejected: number; requests_per_s: number } {
    const sec = this.roll();
    let sum = 0;
    for (let s = sec - WINDOW_S; s < sec; s++) sum += this.buckets[s] ?? 0;
    return { requests_total: this.total, rejected: this.rejected, requests_per_s: Math.round((sum / WINDOW_S) * 10) / 10 };
  }
}
