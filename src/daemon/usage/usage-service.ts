/**
 * Usage accounting (issue 24): counts each forwarded request of a credential and the tokens its response
 * reported, into hourly buckets in SQLite (batched: flushed every second and at shutdown, never a
 * transaction per request), today's totals per credential (since local midnight; reloaded from the buckets
 * at start, so they survive a restart), a five-minute tokens-per-minute rate, and the latest rate-limit
 * headroom per credential. Publishes `usage.updated` at most once a second. Implements {@link UsageLedger},
 * which pools and budgets read: every answer comes from memory.
 *
 * Time comes from the injected clock only (buckets, midnight, the event throttle, the retention prune).
 */
import type http from 'node:http';
import type { CredentialUsage, Headroom, UsageGroupBy, UsageRow, UsageSnapshot, UsageTotals } from '../../shared/protocol/usage.js';
import type { Clock } from '../clock.js';
import type { EventBus } from '../events/event-bus.js';
import type { UsageBucket, UsageRepo } from '../store/usage-repo.js';
import { normalizeModelName } from './model-name.js';
import { expired, mergeRateLimit, nextResetAt, parseRateLimitHeaders, toHeadroom, type RateLimitState } from './ratelimit-headers.js';
import { RATE_SLOT_MS, TokenRate } from './token-rate.js';
import type { UsageLedger } from './usage-ledger.js';

/** One request's contribution: who served it and what its response reported. */
export interface UsageRecord {
  credential: string;
  /** The pool the credential was reached through (null: used directly). */
  pool: string | null;
  /** The `sluicectl run` agent (null: the owner's token). */
  agent: string | null;
  model: string | null;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
}

/** What the proxy calls (request pipeline, WebSocket relay). */
export interface UsageRecorder {
  /** Reads the rate-limit headers of a response `credential` got (any status). */
  observeHeaders(credential: string, headers: http.IncomingHttpHeaders): void;
  /** Counts one request's usage. */
  record(r: UsageRecord): void;
}

/** A credential's daily budget (null: none). */
export interface DailyBudget {
  daily_tokens: number | null;
  daily_requests: number | null;
}

/** What the service needs. */
export interface UsageServiceDeps {
  clock: Clock;
  repo: UsageRepo;
  bus: EventBus;
  /** The credentials to report on, in display order. */
  names: () => string[];
  /** A credential's daily budget (the budgets engineer plugs theirs in; nulls until then). */
  budgetOf: (credential: string) => DailyBudget;
  /**
   * Replaces every real secret in `text` by its phantom. Model names and header strings come from bytes the
   * parser saw before the relay masked them: an upstream that echoes a key there must not get it into the
   * database or an RPC result.
   */
  maskText: (text: string) => string;
  /** Told when a flush fails (the counts stay queued and are retried). */
  onFlushError?: (err: unknown) => void;
}

/** How often queued buckets are written. */
export const FLUSH_MS = 1000;
/** The least time between two `usage.updated` events. */
export const EVENT_MIN_GAP_MS = 1000;
/** How long hourly buckets are kept. */
export const RETENTION_MS = 90 * 24 * 3_600_000;
const PRUNE_EVERY_MS = 24 * 3_600_000;
const HOUR_MS = 3_600_000;

/** `usage.snapshot`'s periods. */
export const SINCE_MS = { '1h': HOUR_MS, '24h': 24 * HOUR_MS, '7d': 7 * 24 * HOUR_MS } as const;
/** A period `usage.snapshot` accepts. */
export type UsageSince = keyof typeof SINCE_MS;

/** The start of the UTC hour holding `ms`, as stored (ISO-8601). */
export function hourOf(ms: number): string {
  return new Date(Math.floor(ms / HOUR_MS) * HOUR_MS).toISOString();
}

/** The last local midnight at or before `ms` (the process's time zone). */
export function localMidnight(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

function zero(): UsageTotals {
  return { requests: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0 };
}

function addInto(t: UsageTotals, r: UsageTotals): void {
  t.requests += r.requests;
  t.input_tokens += r.input_tokens;
  t.output_tokens += r.output_tokens;
  t.cached_tokens += r.cached_tokens;
}

/** See the module comment. */
export class UsageService implements UsageLedger, UsageRecorder {
  private readonly pending = new Map<string, UsageBucket>();
  private readonly today = new Map<string, UsageTotals>();
  private dayStart: number;
  private nextMidnight: number;
  private readonly rates = new Map<string, TokenRate>();
  private readonly headroom = new Map<string, RateLimitState>();
  private flushCancel: (() => void) | null = null;
  private pruneCancel: (() => void) | null = null;
  private eventCancel: (() => void) | null = null;
  private decayCancel: (() => void) | null = null;
  private lastEventAt = -Infinity;
  private stopped = false;
  /** The hour of the last record and its bucket label (one Date formatting an hour, not one a request). */
  private hourStart = -1;
  private hourLabel = '';

  constructor(private readonly d: UsageServiceDeps) {
    this.dayStart = localMidnight(d.clock.now());
    this.nextMidnight = this.followingMidnight(this.dayStart);
  }

  /** Loads today's totals from the buckets, prunes old buckets, and starts the flush and prune timers. */
  start(): void {
    this.prune();
    this.loadToday();
    const prune = (): void => {
      this.prune();
      this.pruneCancel = this.d.clock.setTimer(prune, PRUNE_EVERY_MS);
    };
    this.pruneCancel = this.d.clock.setTimer(prune, PRUNE_EVERY_MS);
  }

  /** Writes what is queued and stops the timers (at shutdown). */
  stop(): void {
    this.stopped = true;
    this.flushCancel?.();
    this.pruneCancel?.();
    this.eventCancel?.();
    this.decayCancel?.();
    this.flush();
  }

  private followingMidnight(dayStart: number): number {
    // 26 h on, then back to that day's midnight: right across daylight-saving changes.
    return localMidnight(dayStart + 26 * HOUR_MS);
  }

  /** Moves "today" on when local midnight passed. */
  private rollDay(now: number): void {
    if (now < this.nextMidnight && now >= this.dayStart) return;
    this.dayStart = localMidnight(now);
    this.nextMidnight = this.followingMidnight(this.dayStart);
    this.today.clear();
  }

  private loadToday(): void {
    // Buckets are whole UTC hours: in a time zone whose midnight is not on the hour, the bucket that
    // holds midnight counts towards today in full.
    const totals = this.d.repo.totalsByCredentialSince(hourOf(this.dayStart));
    for (const [name, t] of totals) {
      const mine = this.today.get(name) ?? zero();
      addInto(mine, t);
      this.today.set(name, mine);
    }
  }

  private prune(): void {
    try {
      this.d.repo.deleteBefore(hourOf(this.d.clock.now() - RETENTION_MS));
    } catch (err) {
      this.d.onFlushError?.(err);
    }
  }

  /** Arms the flush timer when something is queued (an idle daemon has no timer running). */
  private scheduleFlush(): void {
    if (this.stopped || this.flushCancel) return;
    this.flushCancel = this.d.clock.setTimer(() => {
      this.flushCancel = null;
      this.flush();
      // A failed flush left the counts queued: try again in a second.
      if (this.pending.size > 0) this.scheduleFlush();
    }, FLUSH_MS);
  }

  /** Writes the queued buckets in one transaction; on failure they stay queued for the next flush. */
  flush(): void {
    if (this.pending.size === 0) return;
    const buckets = [...this.pending.values()];
    try {
      this.d.repo.add(buckets);
      this.pending.clear();
    } catch (err) {
      this.d.onFlushError?.(err);
    }
  }

  record(r: UsageRecord): void {
    const now = this.d.clock.now();
    this.rollDay(now);
    if (now < this.hourStart || now >= this.hourStart + HOUR_MS) {
      this.hourStart = Math.floor(now / HOUR_MS) * HOUR_MS;
      this.hourLabel = hourOf(this.hourStart);
    }
    const hour = this.hourLabel;
    const pool = r.pool ?? '';
    const agent = r.agent ?? '';
    // Masked whole, then cleaned and capped: the name is the upstream's choice and is stored, reported and drawn.
    const model = normalizeModelName(r.model === null ? null : this.d.maskText(r.model)) ?? '';
    const key = `${hour}\u0000${r.credential}\u0000${pool}\u0000${agent}\u0000${model}`;
    let b = this.pending.get(key);
    if (!b) this.pending.set(key, (b = { hour, credential: r.credential, pool, agent, model, ...zero() }));
    addInto(b, r);
    this.scheduleFlush();
    let t = this.today.get(r.credential);
    if (!t) this.today.set(r.credential, (t = zero()));
    addInto(t, r);
    const tokens = r.input_tokens + r.output_tokens;
    if (tokens > 0) {
      let rate = this.rates.get(r.credential);
      if (!rate) this.rates.set(r.credential, (rate = new TokenRate(now)));
      rate.add(now, tokens);
    }
    this.changed();
  }

  observeHeaders(credential: string, headers: http.IncomingHttpHeaders): void {
    const s = parseRateLimitHeaders(headers, this.d.clock.now());
    if (!s) return;
    if (s.unified) {
      if (s.unified.status !== null) s.unified.status = this.d.maskText(s.unified.status);
      for (const w of s.unified.windows) w.name = this.d.maskText(w.name);
    }
    this.headroom.set(credential, mergeRateLimit(this.headroom.get(credential), s));
    this.changed();
  }

  headroomOf(credential: string): Headroom | null {
    const s = this.headroom.get(credential);
    if (!s) return null;
    if (expired(s, this.d.clock.now())) {
      this.headroom.delete(credential);
      return null;
    }
    return toHeadroom(s, this.d.clock.now());
  }

  todayOf(credential: string): UsageTotals {
    this.rollDay(this.d.clock.now());
    return { ...(this.today.get(credential) ?? zero()) };
  }

  /** Tokens per minute of `credential` over the last five minutes. */
  tokensPerMinute(credential: string): number {
    return this.rates.get(credential)?.perMinute(this.d.clock.now()) ?? 0;
  }

  /** Every credential's usage, budget and headroom now (`Snapshot.usage`, `usage.updated`). */
  credentials(): CredentialUsage[] {
    return this.d.names().map((name) => ({
      name,
      tokens_per_min: this.tokensPerMinute(name),
      today: this.todayOf(name),
      budget: this.d.budgetOf(name),
      headroom: this.headroomOf(name),
    }));
  }

  /** `usage.snapshot`: totals grouped by `by` over the last `since` (from the start of that hour), plus {@link credentials}. */
  snapshot(by: UsageGroupBy, since: UsageSince): UsageSnapshot {
    this.flush();
    const from = hourOf(this.d.clock.now() - SINCE_MS[since]);
    const rows = this.d.repo.grouped(by, from);
    // Whatever a failed flush left queued still counts.
    if (this.pending.size > 0) mergePending(rows, [...this.pending.values()], by, from);
    return { by, since, rows, credentials: this.credentials() };
  }

  /** Something a dashboard shows changed (a budget too): publishes `usage.updated`, at most once a second. */
  changed(): void {
    if (this.eventCancel || this.stopped) return;
    const wait = Math.max(0, this.lastEventAt + EVENT_MIN_GAP_MS - this.d.clock.now());
    this.eventCancel = this.d.clock.setTimer(() => {
      this.eventCancel = null;
      this.lastEventAt = this.d.clock.now();
      const credentials = this.credentials();
      if (this.d.bus.hasListeners) this.d.bus.publish('usage.updated', { credentials });
      this.scheduleDecay(credentials);
    }, wait);
  }

  /**
   * Dashboards keep the numbers of the last event, so what changes with no new traffic is published too:
   * a non-zero rate as it rolls down (its slots are {@link RATE_SLOT_MS} long), and a headroom each time
   * one of its windows resets. Nothing is armed once every rate is 0 and no headroom is waiting to expire.
   */
  private scheduleDecay(credentials: CredentialUsage[]): void {
    this.decayCancel?.();
    this.decayCancel = null;
    if (this.stopped) return;
    const now = this.d.clock.now();
    let at = credentials.some((c) => c.tokens_per_min > 0) ? now + RATE_SLOT_MS : Infinity;
    // Each window drops out of what dashboards show as it resets.
    for (const s of this.headroom.values()) {
      const next = nextResetAt(s, now);
      if (next !== null) at = Math.min(at, next);
    }
    if (at === Infinity) return;
    this.decayCancel = this.d.clock.setTimer(() => {
      this.decayCancel = null;
      this.changed();
    }, at - now);
  }
}

const GROUP_FIELD: Record<UsageGroupBy, keyof Pick<UsageBucket, 'credential' | 'pool' | 'agent' | 'model'>> = {
  cred: 'credential',
  pool: 'pool',
  agent: 'agent',
  model: 'model',
};

function mergePending(rows: UsageRow[], pending: UsageBucket[], by: UsageGroupBy, from: string): void {
  for (const b of pending) {
    if (b.hour < from) continue;
    const key = b[GROUP_FIELD[by]] || '-';
    let row = rows.find((r) => r.key === key);
    if (!row) rows.push((row = { key, ...zero() }));
    addInto(row, b);
  }
  rows.sort((a, b) => b.input_tokens + b.output_tokens - (a.input_tokens + a.output_tokens) || b.requests - a.requests || a.key.localeCompare(b.key));
}
