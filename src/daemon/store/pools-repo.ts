/** Rows of `credential_pools`, `credential_pool_members` and `credential_health`. */
import type { Db } from './database.js';

/** A pool with its members in order (by credential name). */
export interface PoolRow {
  id: number;
  name: string;
  phantom: string;
  /** OAuth pools: the stable phantom for the refresh token. */
  phantom_refresh: string | null;
  active_member: string | null;
  members: string[];
  created_at: string;
  /** `--rotate-below PCT` (1..99), or null when off. */
  rotate_below: number | null;
  /** `--plan-limits-only`: a member that moved to paid overage counts as exhausted. */
  plan_limits_only: boolean;
}

/** The options a pool carries besides its members. */
export interface PoolOptions {
  rotate_below: number | null;
  plan_limits_only: boolean;
}

/** A persisted cooldown. */
export interface HealthRow {
  name: string;
  cooldown_until: string | null;
  reason: string | null;
}

/** CRUD over pools and member health. */
export class PoolsRepo {
  constructor(private readonly db: Db) {}

  /** All pools with members in order. */
  list(): PoolRow[] {
    const pools = this.db
      .prepare('SELECT id, name, phantom, phantom_refresh, active_member, created_at, rotate_below, plan_limits_only FROM credential_pools ORDER BY name')
      .all() as (Omit<PoolRow, 'members' | 'plan_limits_only'> & { plan_limits_only: number })[];
    const members = this.db
      .prepare(
        'SELECT m.pool_id AS pool_id, c.name AS name FROM credential_pool_members m JOIN credentials c ON c.id = m.credential_id ORDER BY m.pool_id, m.position',
      )
      .all() as { pool_id: number; name: string }[];
    return pools.map((p) => ({ ...p, plan_limits_only: p.plan_limits_only === 1, members: members.filter((m) => m.pool_id === p.id).map((m) => m.name) }));
  }

  /** Creates a pool and its member links in one transaction. */
  insert(
    name: string,
    phantom: string,
    phantomRefresh: string | null,
    members: string[],
    now: string,
    options: PoolOptions = { rotate_below: null, plan_limits_only: false },
  ): void {
    this.db
      .transaction(() => {
        const info = this.db
          .prepare(
            'INSERT INTO credential_pools (name, phantom, phantom_refresh, active_member, created_at, rotate_below, plan_limits_only) VALUES (?, ?, ?, ?, ?, ?, ?)',
          )
          .run(name, phantom, phantomRefresh, members[0] ?? null, now, options.rotate_below, options.plan_limits_only ? 1 : 0);
        const add = this.db.prepare('INSERT INTO credential_pool_members (pool_id, credential_id, position) SELECT ?, id, ? FROM credentials WHERE name = ?');
        members.forEach((m, i) => {
          if (add.run(info.lastInsertRowid, i, m).changes !== 1) throw new Error(`no credential named ${m}`);
        });
      })
      .immediate();
  }

  /** Appends `member` after the pool's last member. Returns false when the pool or credential is missing. */
  addMember(pool: string, member: string): boolean {
    return (
      this.db
        .prepare(
          `INSERT INTO credential_pool_members (pool_id, credential_id, position)
           SELECT p.id, c.id, (SELECT COALESCE(MAX(position), -1) + 1 FROM credential_pool_members WHERE pool_id = p.id)
           FROM credential_pools p, credentials c WHERE p.name = ? AND c.name = ?`,
        )
        .run(pool, member).changes === 1
    );
  }

  /** Unlinks `member` from the pool (the credential stays); the remaining members keep their order. */
  removeMember(pool: string, member: string): boolean {
    return (
      this.db
        .prepare(
          `DELETE FROM credential_pool_members
           WHERE pool_id = (SELECT id FROM credential_pools WHERE name = ?) AND credential_id = (SELECT id FROM credentials WHERE name = ?)`,
        )
        .run(pool, member).changes === 1
    );
  }

  /** Deletes a pool (member credentials stay). */
  remove(name: string): boolean {
    return this.db.prepare('DELETE FROM credential_pools WHERE name = ?').run(name).changes > 0;
  }

  /** Stores a pool's options. Returns false when there is no such pool. */
  setOptions(pool: string, options: PoolOptions): boolean {
    return (
      this.db
        .prepare('UPDATE credential_pools SET rotate_below = ?, plan_limits_only = ? WHERE name = ?')
        .run(options.rotate_below, options.plan_limits_only ? 1 : 0, pool).changes === 1
    );
  }

  /** Remembers which member is active. */
  setActive(pool: string, member: string | null): void {
    this.db.prepare('UPDATE credential_pools SET active_member = ? WHERE name = ?').run(member, pool);
  }

  /** Persisted cooldowns by credential name. */
  health(): HealthRow[] {
    return this.db
      .prepare(
        "SELECT c.name AS name, h.cooldown_until AS cooldown_until, h.reason AS reason FROM credential_health h JOIN credentials c ON c.id = h.credential_id WHERE h.status = 'cooling'",
      )
      .all() as HealthRow[];
  }

  /** Stores a member's cooldown (null until = healthy). */
  setHealth(name: string, until: string | null, reason: string | null, now: string): void {
    this.db
      .prepare(
        `INSERT INTO credential_health (credential_id, status, cooldown_until, reason, updated_at)
         SELECT id, ?, ?, ?, ? FROM credentials WHERE name = ?
         ON CONFLICT(credential_id) DO UPDATE SET status = excluded.status, cooldown_until = excluded.cooldown_until,
           reason = excluded.reason, updated_at = excluded.updated_at`,
      )
      .run(until ? 'cooling' : 'healthy', until, reason, now, name);
  }
}
