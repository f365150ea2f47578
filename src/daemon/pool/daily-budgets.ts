/**
 * Daily budgets (issue 24): a credential may spend at most `daily_tokens` (input + output tokens, as the
 * usage ledger normalises them) and `daily_requests` per local day. Past either, a request for it is refused
 * with a provider-shaped 429 whose `retry-after` is the time to the next local midnight, and a pool skips it
 * like a cooling member. Budgets live in SQLite with the credential; the counts come from the usage ledger,
 * which reloads today's from its hourly buckets, so both survive a restart. The first time a credential is
 * found past its budget on a given day writes one audit row and one notice (not one per refused request).
 * Pure apart from the injected store, ledger and clock; "local" is the daemon process's time zone.
 */
import type { UsageTotals } from '../../shared/protocol/usage.js';
import type { Clock } from '../clock.js';
import type { UsageLedger } from '../usage/usage-ledger.js';

/** A credential's daily budgets; null = no budget of that kind. */
export interface Budget {
  daily_tokens: number | null;
  daily_requests: number | null;
}

/** Which budget is spent, how much was used and what the limit is. */
export interface BudgetBreach {
  kind: 'tokens' | 'requests';
  used: number;
  limit: number;
}

/** Where budgets are stored (BudgetsRepo in the daemon; a map in tests). */
export interface BudgetStore {
  list(): ({ name: string } & Budget)[];
  set(name: string, dailyTokens: number | null, dailyRequests: number | null, now: string): boolean;
}

const NO_BUDGET: Budget = Object.freeze({ daily_tokens: null, daily_requests: null });

/** The first local midnight after `now` (epoch ms), in the process's time zone (DST-aware: a local day may be 23 or 25 h). */
export function nextLocalMidnight(now: number): number {
  const d = new Date(now);
  d.setHours(24, 0, 0, 0);
  return d.getTime();
}

/**
 * The budget `today` breaks, or null. Tokens are checked first (they are what costs money). `inFlight`
 * requests (sent, not yet counted: the ledger counts a request when it ends) count against the request
 * budget, so a burst of parallel requests cannot overshoot it; their tokens are unknown until they end.
 */
export function breachOf(budget: Budget, today: UsageTotals, inFlight = 0): BudgetBreach | null {
  const tokens = today.input_tokens + today.output_tokens;
  if (budget.daily_tokens !== null && tokens >= budget.daily_tokens) return { kind: 'tokens', used: tokens, limit: budget.daily_tokens };
  const requests = today.requests + inFlight;
  if (budget.daily_requests !== null && requests >= budget.daily_requests) return { kind: 'requests', used: requests, limit: budget.daily_requests };
  return null;
}

/** Budgets by credential, checked against the usage ledger. */
export class DailyBudgets {
  private readonly budgets = new Map<string, Budget>();
  /** The local midnight that ends the day each credential was last reported past its budget. */
  private readonly reported = new Map<string, number>();

  constructor(
    private readonly store: BudgetStore,
    private readonly ledger: UsageLedger,
    private readonly clock: Clock,
    /** Called once per credential and local day when it is first found past its budget (audit row + notice). */
    private readonly onReached: (name: string, breach: BudgetBreach, until: number) => void = () => {},
    /** Requests of a credential in flight now (its permits), counted against its request budget. */
    private readonly inFlight: (name: string) => number = () => 0,
  ) {
    for (const r of store.list()) this.budgets.set(r.name, { daily_tokens: r.daily_tokens, daily_requests: r.daily_requests });
  }

  /** Told, with the credential's name, after its budget was set or cleared (wire.ts: dashboards show budgets). */
  onChange: (name: string) => void = () => {};

  /** `name`'s budgets (nulls when none): what `limits get`, `cred list` and the dashboard show. */
  budgetOf(name: string): Budget {
    return this.budgets.get(name) ?? NO_BUDGET;
  }

  /**
   * Changes `name`'s budgets: a field left undefined keeps its value, null clears it. The caller has checked
   * the credential exists and the values are in bounds. Returns the budgets now in force.
   */
  set(name: string, patch: { daily_tokens?: number | null | undefined; daily_requests?: number | null | undefined }): Budget {
    const cur = this.budgetOf(name);
    const next: Budget = {
      daily_tokens: patch.daily_tokens === undefined ? cur.daily_tokens : patch.daily_tokens,
      daily_requests: patch.daily_requests === undefined ? cur.daily_requests : patch.daily_requests,
    };
    if (!this.store.set(name, next.daily_tokens, next.daily_requests, this.clock.iso())) return cur;
    if (next.daily_tokens === null && next.daily_requests === null) this.budgets.delete(name);
    else this.budgets.set(name, next);
    // A raised budget that is spent again later today deserves its own row.
    this.reported.delete(name);
    this.onChange(name);
    return next;
  }

  /** Forgets a removed credential (its row went with it). */
  forget(name: string): void {
    this.budgets.delete(name);
    this.reported.delete(name);
  }

  /** The budget `name` has spent today, or null (no budget, or budget left). Reads memory only. */
  breach(name: string): BudgetBreach | null {
    const b = this.budgets.get(name);
    if (!b) return null;
    return breachOf(b, this.ledger.todayOf(name), b.daily_requests === null ? 0 : this.inFlight(name));
  }

  /** Epoch ms of the next local midnight, when every daily budget refills. */
  resetAt(): number {
    return nextLocalMidnight(this.clock.now());
  }

  /**
   * Checks `name` before a request is sent: null when it may go, else the breach, when the budget refills
   * and the whole seconds until then (at least 1, for `retry-after`). Reports the first breach of the day.
   */
  check(name: string): { breach: BudgetBreach; until: number; retryAfterS: number } | null {
    const breach = this.breach(name);
    if (!breach) return null;
    const now = this.clock.now();
    const until = nextLocalMidnight(now);
    this.report(name, breach, until);
    return { breach, until, retryAfterS: Math.max(1, Math.ceil((until - now) / 1000)) };
  }

  /** Reports `name` past its budget unless it was already reported for this local day. */
  report(name: string, breach: BudgetBreach, until: number): void {
    if (this.reported.get(name) === until) return;
    this.reported.set(name, until);
    this.onReached(name, breach, until);
  }
}
