/** Rows of `credential_budgets`: each credential's daily token and request budgets (removed with it). */
import type { Db } from './database.js';

/** A credential's daily budgets; null = no budget of that kind. */
export interface BudgetRow {
  name: string;
  daily_tokens: number | null;
  daily_requests: number | null;
}

/** Reads and writes daily budgets by credential name. */
export class BudgetsRepo {
  constructor(private readonly db: Db) {}

  /** Every credential that has a budget row. */
  list(): BudgetRow[] {
    return this.db
      .prepare(
        'SELECT c.name AS name, b.daily_tokens AS daily_tokens, b.daily_requests AS daily_requests FROM credential_budgets b JOIN credentials c ON c.id = b.credential_id',
      )
      .all() as BudgetRow[];
  }

  /** Stores `name`'s budgets (both null removes the row). Returns false when there is no such credential. */
  set(name: string, dailyTokens: number | null, dailyRequests: number | null, now: string): boolean {
    if (dailyTokens === null && dailyRequests === null) {
      this.db.prepare('DELETE FROM credential_budgets WHERE credential_id = (SELECT id FROM credentials WHERE name = ?)').run(name);
      return this.db.prepare('SELECT 1 FROM credentials WHERE name = ?').get(name) !== undefined;
    }
    return (
      this.db
        .prepare(
          `INSERT INTO credential_budgets (credential_id, daily_tokens, daily_requests, updated_at)
           SELECT id, ?, ?, ? FROM credentials WHERE name = ?
           ON CONFLICT(credential_id) DO UPDATE SET daily_tokens = excluded.daily_tokens, daily_requests = excluded.daily_requests,
             updated_at = excluded.updated_at`,
        )
        .run(dailyTokens, dailyRequests, now, name).changes === 1
    );
  }
}
