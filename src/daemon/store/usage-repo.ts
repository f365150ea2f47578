/**
 * The `usage_hourly` table: requests and token counts per UTC hour, credential, pool, agent and model.
 * Writes come in batches (one transaction per flush, never one per request); '' stands for "none" in the
 * key columns.
 */
import type { UsageGroupBy, UsageRow, UsageTotals } from '../../shared/protocol/usage.js';
import type { Db } from './database.js';

/** One bucket's key and the counts to add to it. */
export interface UsageBucket extends UsageTotals {
  /** Start of the UTC hour, ISO-8601 (`2026-01-01T13:00:00.000Z`). */
  hour: string;
  credential: string;
  pool: string;
  agent: string;
  model: string;
}

const GROUP_COLUMN: Record<UsageGroupBy, string> = { cred: 'credential', pool: 'pool', agent: 'agent', model: 'model' };

/** Reads and writes the hourly usage buckets. */
export class UsageRepo {
  private readonly upsert;
  constructor(private readonly db: Db) {
    this.upsert = db.prepare(
      `INSERT INTO usage_hourly (hour, credential, pool, agent, model, requests, input_tokens, output_tokens, cached_tokens)
       VALUES (@hour, @credential, @pool, @agent, @model, @requests, @input_tokens, @output_tokens, @cached_tokens)
       ON CONFLICT (hour, credential, pool, agent, model) DO UPDATE SET
         requests = requests + excluded.requests,
         input_tokens = input_tokens + excluded.input_tokens,
         output_tokens = output_tokens + excluded.output_tokens,
         cached_tokens = cached_tokens + excluded.cached_tokens`,
    );
  }

  /** Adds every bucket's counts to the stored ones, all in one transaction (all or nothing). */
  add(buckets: readonly UsageBucket[]): void {
    if (buckets.length === 0) return;
    this.db.transaction(() => {
      for (const b of buckets) this.upsert.run(b);
    })();
  }

  /** Totals per credential over the buckets from `fromHour` (inclusive, ISO) on. */
  totalsByCredentialSince(fromHour: string): Map<string, UsageTotals> {
    const rows = this.db
      .prepare(
        `SELECT credential AS key, sum(requests) AS requests, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                sum(cached_tokens) AS cached_tokens
         FROM usage_hourly WHERE hour >= ? GROUP BY credential`,
      )
      .all(fromHour) as UsageRow[];
    return new Map(
      rows.map((r) => [r.key, { requests: r.requests, input_tokens: r.input_tokens, output_tokens: r.output_tokens, cached_tokens: r.cached_tokens }]),
    );
  }

  /** Totals grouped by `by` over the buckets from `fromHour` on, largest token count first; '' keys read `-`. */
  grouped(by: UsageGroupBy, fromHour: string): UsageRow[] {
    const col = GROUP_COLUMN[by];
    const rows = this.db
      .prepare(
        `SELECT ${col} AS key, sum(requests) AS requests, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                sum(cached_tokens) AS cached_tokens
         FROM usage_hourly WHERE hour >= ? GROUP BY ${col}
         ORDER BY sum(input_tokens) + sum(output_tokens) DESC, sum(requests) DESC, ${col}`,
      )
      .all(fromHour) as UsageRow[];
    return rows.map((r) => ({ ...r, key: r.key === '' ? '-' : r.key }));
  }

  /** Deletes buckets of hours before `beforeHour` (ISO); returns how many. */
  deleteBefore(beforeHour: string): number {
    return this.db.prepare('DELETE FROM usage_hourly WHERE hour < ?').run(beforeHour).changes;
  }
}
