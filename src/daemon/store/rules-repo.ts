/** Rows of the `rules` table (policy rules). */
import type { RuleInfo } from '../../shared/protocol/entities.js';
import type { Db } from './database.js';

/** What a new rule matches and decides: a rule before the store gives it an id and a time. */
export type NewRule = Omit<RuleInfo, 'id' | 'created_at'>;

interface RawRule extends Omit<RuleInfo, 'coalesce'> {
  coalesce: number;
}

const toInfo = (r: RawRule): RuleInfo => ({ ...r, coalesce: r.coalesce === 1 });

/** CRUD over rules. Insertion is idempotent per matcher (host, port, method, path). */
export class RulesRepo {
  constructor(private readonly db: Db) {}

  /** All rules in id order. */
  list(): RuleInfo[] {
    return (this.db.prepare('SELECT * FROM rules ORDER BY id').all() as RawRule[]).map(toInfo);
  }

  /** One rule by id. */
  get(id: number): RuleInfo | undefined {
    const r = this.db.prepare('SELECT * FROM rules WHERE id = ?').get(id) as RawRule | undefined;
    return r ? toInfo(r) : undefined;
  }

  /** The rule with exactly this matcher, if any. */
  findByMatcher(m: Pick<NewRule, 'host' | 'port' | 'method' | 'path'>): RuleInfo | undefined {
    const r = this.db
      .prepare(
        `SELECT * FROM rules WHERE host = ? AND ifnull(port, 0) = ifnull(?, 0)
           AND ifnull(method, '') = ifnull(?, '') AND ifnull(path, '') = ifnull(?, '')`,
      )
      .get(m.host, m.port, m.method, m.path) as RawRule | undefined;
    return r ? toInfo(r) : undefined;
  }

  /**
   * Inserts a rule unless one with the same matcher exists. Returns the stored rule and whether it is new;
   * an existing rule is returned unchanged (its verdict is not overwritten).
   */
  insert(rule: NewRule, now: string): { rule: RuleInfo; created: boolean } {
    const info = this.db
      .prepare(
        `INSERT OR IGNORE INTO rules (verdict, host, port, method, path, coalesce, source, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(rule.verdict, rule.host, rule.port, rule.method, rule.path, rule.coalesce ? 1 : 0, rule.source, now);
    if (info.changes > 0) return { rule: this.get(Number(info.lastInsertRowid))!, created: true };
    return { rule: this.findByMatcher(rule)!, created: false };
  }

  /** Deletes a rule; returns the deleted rule or undefined. */
  remove(id: number): RuleInfo | undefined {
    const r = this.get(id);
    if (r) this.db.prepare('DELETE FROM rules WHERE id = ?').run(id);
    return r;
  }
}
