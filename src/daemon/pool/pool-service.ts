/**
 * Credential pools: one pool-scoped phantom in front of an ordered list of member credentials. Resolves a
 * pool phantom to its active member with the same resolver `pool.status` reports, applies failovers
 * (cooldown first, synchronously, then audit row, event and de-duplicated notice), and manages pools.
 */
import type { PoolInfo } from '../../shared/protocol/events.js';
import { SluiceError } from '../../shared/protocol/error-codes.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { EventBus } from '../events/event-bus.js';
import type { Logger } from '../log.js';
import type { PoolOptions, PoolRow, PoolsRepo } from '../store/pools-repo.js';
import type { UsageLedger } from '../usage/usage-ledger.js';
import type { CredentialVault } from '../vault/credential-vault.js';
import { jwtClaims } from '../vault/oauth-secret.js';
import { newJwtPhantom, newPhantom, phantomCore } from '../vault/phantom.js';
import type { FailoverReason } from './failover-classifier.js';
import type { DailyBudgets } from './daily-budgets.js';
import { fractionLeft, healthiest, lowUntil } from './headroom-rotation.js';
import type { MemberHealth } from './member-health.js';
import { DAILY_BUDGET, MemberBlocks } from './member-blocks.js';
import { dailyBudgetRefusal, planLimitsRefusal, type MemberRefusal } from './member-refusals.js';
import { chooseActive, type ActiveChoice } from './pool-resolver.js';

/** A pool's `pool_exhausted` audit row is not repeated within this window (like its notice). */
export const EXHAUSTED_REPEAT_MS = 30_000;

/** Cooldown used by `pool rotate` for the member it parks. */
export const MANUAL_ROTATE_MS = 300_000;

/** Cooldown reason of a member moved off by `--rotate-below`. */
export const HEADROOM_LOW = 'headroom_low';

/** What pools read of usage accounting (issue 24): headroom for `--rotate-below`, daily budgets. Both optional. */
export interface PoolUsage {
  ledger?: UsageLedger;
  budgets?: DailyBudgets;
}

/** Outcome of a failover. */
export interface FailoverResult {
  from: string;
  to: string | null;
}

/** Owns pools and their active members. */
export class PoolService {
  private pools = new Map<string, PoolRow>();
  private byCoreIndex = new Map<string, { pool: PoolRow; slot: 'access' | 'refresh' }>();
  private changes = 0;
  /** When each pool last wrote a `pool_exhausted` row; cleared when it switches to a healthy member. */
  private readonly exhaustedAt = new Map<string, number>();
  /** Cooldowns and spent budgets: what the member choice skips and `pool.status` reports. */
  private readonly blocks: MemberBlocks;

  constructor(
    private readonly repo: PoolsRepo,
    private readonly health: MemberHealth,
    private readonly vault: CredentialVault,
    private readonly audit: AuditLog,
    private readonly bus: EventBus,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly notice: (level: 'info' | 'warn', kind: string, message: string) => void,
    private readonly usage: PoolUsage = {},
  ) {
    this.blocks = new MemberBlocks(health, usage.budgets);
    this.reload();
  }

  /** Grows on every change to pools or their membership (lets callers cache what they derive). */
  get version(): number {
    return this.changes;
  }

  private reload(): void {
    this.changes++;
    this.pools = new Map(this.repo.list().map((p) => [p.name, p]));
    this.byCoreIndex = new Map();
    for (const p of this.pools.values()) {
      this.byCoreIndex.set(phantomCore(p.phantom), { pool: p, slot: 'access' });
      if (p.phantom_refresh) this.byCoreIndex.set(phantomCore(p.phantom_refresh), { pool: p, slot: 'refresh' });
    }
  }

  /** True when a pool is called `name` (credential and pool names share one namespace). */
  has(name: string): boolean {
    return this.pools.has(name);
  }

  /** The pool whose phantom (access or refresh) has this core. */
  byCore(core: string): { pool: PoolRow; slot: 'access' | 'refresh' } | undefined {
    return this.byCoreIndex.get(core);
  }

  /** The pool `name` is a member of, or null. */
  poolOf(member: string): string | null {
    for (const p of this.pools.values()) if (p.members.includes(member)) return p.name;
    return null;
  }

  private choose(pool: PoolRow): ActiveChoice {
    return chooseActive(pool.members, pool.active_member, this.blocks.gate(pool));
  }

  /**
   * The member that serves `pool` now; moves the sticky pointer when the current one cools or is past its
   * budget. With `--rotate-below PCT`, a chosen member whose headroom fell below PCT % is moved off first
   * (see {@link rotateIfLow}), before the request goes out rather than after a 429.
   */
  activeMember(pool: PoolRow): string {
    let choice = this.choose(pool);
    if (pool.rotate_below !== null && !choice.allCooling) {
      const to = this.rotateIfLow(pool, choice.member, pool.rotate_below);
      if (to) choice = { member: to, allCooling: false };
    }
    if (choice.allCooling && !choice.noneUsable)
      this.log.warn('every member of the pool is cooling; using the one that recovers first', { pool: pool.name, member: choice.member });
    if (choice.member !== pool.active_member) {
      const from = pool.active_member;
      this.setActive(pool, choice.member);
      if (from !== null && pool.members.includes(from)) this.movedOffBudget(pool, from, choice.member);
    }
    return choice.member;
  }

  /** When the pool left `from` because it is past its daily budget: report it (once a day) and publish the switch. */
  private movedOffBudget(pool: PoolRow, from: string, to: string): void {
    const budgets = this.usage.budgets;
    const breach = budgets?.breach(from);
    if (!budgets || !breach || this.health.get(from)) return;
    budgets.report(from, breach, budgets.resetAt());
    this.bus.publish('cred.failover', { pool: pool.name, from, to, reason: DAILY_BUDGET });
    this.bus.publish('pool.changed', { pool: this.info(pool) });
  }

  /**
   * `--rotate-below`: when `member`'s headroom is below `pct` %, cools it until its low windows reset
   * (reason `headroom_low`), writes `cred_headroom_low` (`pool:member:PCT%`) and a notice, publishes the usual
   * `cred.failover`/`pool.changed`, and returns the member with the most headroom that may serve (unknown
   * headroom counts as full). Nothing changes, and null is returned, when headroom is fine or no other member
   * that may serve has more headroom left (moving would not help; the member keeps serving until a real
   * limit cools it).
   */
  private rotateIfLow(pool: PoolRow, member: string, pct: number): string | null {
    const ledger = this.usage.ledger;
    if (!ledger) return null;
    const now = this.clock.now();
    const h = ledger.headroomOf(member);
    const left = fractionLeft(h, now);
    if (h === null || left >= pct / 100) return null;
    const gate = this.blocks.gate(pool);
    const leftOf = (m: string) => fractionLeft(ledger.headroomOf(m), now);
    const to = healthiest(pool.members, member, (m) => gate.blockedUntil(m) === 0, leftOf);
    const shown = `${Math.floor(left * 100)}%`;
    if (to === null || leftOf(to) <= left) {
      // Fixed text (no live percentage), so the 30 s notice de-duplication holds while the member counts down.
      this.notice('warn', HEADROOM_LOW, `pool ${pool.name}: ${member} is below ${pct}% headroom and no other member has more; staying on it`);
      return null;
    }
    this.health.cool(member, lowUntil(h, pct, now), HEADROOM_LOW);
    this.setActive(pool, to);
    this.exhaustedAt.delete(pool.name);
    this.audit.append({ event: 'cred_headroom_low', credential: member, detail: `${pool.name}:${member}:${pct}%` });
    this.notice('info', HEADROOM_LOW, `pool ${pool.name}: ${member} below ${pct}% headroom (${shown} left); switched to ${to} until it resets`);
    this.bus.publish('cred.failover', { pool: pool.name, from: member, to, reason: HEADROOM_LOW });
    this.bus.publish('pool.changed', { pool: this.info(pool) });
    return to;
  }

  /**
   * Whether `credential` (serving `poolName`, when pooled) may be sent a request now: null when it may, else
   * the 429 to answer. Past its daily budget → `daily_budget` (retry after the next local midnight); a member
   * out of plan allowance in a `--plan-limits-only` pool (only chosen when every member is) →
   * `plan_limits_exhausted` (retry after its cooldown). Messages carry names and numbers only.
   */
  memberRefusal(credential: string, poolName: string | null): MemberRefusal | null {
    const over = this.usage.budgets?.check(credential);
    if (over) return dailyBudgetRefusal(credential, poolName, over.breach, over.retryAfterS);
    if (poolName === null) return null;
    const pool = this.pools.get(poolName);
    const c = this.health.get(credential);
    if (!pool?.plan_limits_only || c?.reason !== 'plan_limit') return null;
    // Retry when the first member comes back, whichever it is.
    const back = Math.min(...pool.members.map((m) => this.health.get(m)?.until ?? c.until));
    return planLimitsRefusal(poolName, back, this.clock.now());
  }

  private setActive(pool: PoolRow, member: string): void {
    pool.active_member = member;
    this.repo.setActive(pool.name, member);
  }

  /** The client view of a pool, computed with the same resolver the proxy uses. */
  info(pool: PoolRow): PoolInfo {
    const active = pool.members.length > 0 ? this.choose(pool).member : null;
    return {
      name: pool.name,
      phantom: pool.phantom,
      phantom_refresh: pool.phantom_refresh,
      active,
      members: pool.members.map((m) => {
        const b = this.blocks.blocked(m);
        return { name: m, healthy: b === null, cooldown_until: b ? new Date(b.until).toISOString() : null, reason: b?.reason ?? null };
      }),
      rotate_below: pool.rotate_below,
      plan_limits_only: pool.plan_limits_only,
    };
  }

  /**
   * Publishes `pool.changed` for the pool `member` belongs to, if any: its budget was just found spent or was
   * changed, so what `pool.status` says of it changed although no cooldown did (dashboards keep pool state
   * from events).
   */
  memberBudgetChanged(member: string): void {
    const name = this.poolOf(member);
    const pool = name === null ? undefined : this.pools.get(name);
    if (pool) this.bus.publish('pool.changed', { pool: this.info(pool) });
  }

  /** All pools. */
  list(): PoolInfo[] {
    return [...this.pools.values()].map((p) => this.info(p));
  }

  /** One pool, or not_found. */
  get(name: string): PoolRow {
    const p = this.pools.get(name);
    if (!p) throw new SluiceError('not_found', `no pool named ${name}`);
    return p;
  }

  /** Creates a pool; members must exist, be distinct and not belong to another pool. */
  create(name: string, members: string[], options: PoolOptions = { rotate_below: null, plan_limits_only: false }): PoolInfo {
    if (this.pools.has(name) || this.vault.get(name)) throw new SluiceError('already_exists', `a credential or pool named ${name} already exists`);
    if (new Set(members).size !== members.length) throw new SluiceError('invalid_params', 'a member is listed twice');
    for (const m of members) {
      const cred = this.vault.get(m);
      if (!cred) throw new SluiceError('not_found', `no credential named ${m}`);
      const other = this.poolOf(m);
      if (other) throw new SluiceError('in_use', `credential ${m} is already a member of pool ${other}`);
    }
    const rows = members.map((m) => this.vault.get(m)!);
    const kinds = new Set(rows.map((r) => r.kind));
    if (kinds.size > 1) throw new SluiceError('invalid_params', 'pool members must all be api-key credentials or all oauth credentials');
    const first = rows[0]!;
    let phantom: string;
    let phantomRefresh: string | null = null;
    if (first.kind === 'oauth') {
      // One stable JWT-shaped phantom for the whole pool, with the first member's claims: byte-identical
      // before and after any failover or refresh, so the agent's cached token stays valid.
      phantom = newJwtPhantom(jwtClaims(this.vault.oauthTokens(first.name).access_token) ?? { sub: `sluice-pool:${name}` });
      phantomRefresh = newPhantom(first.phantom_refresh!.slice(0, first.phantom_refresh!.length - phantomCore(first.phantom_refresh!).length));
    } else {
      phantom = newPhantom(first.phantom.slice(0, first.phantom.length - phantomCore(first.phantom).length));
    }
    this.repo.insert(name, phantom, phantomRefresh, members, this.clock.iso(), options);
    this.reload();
    this.audit.append({
      event: 'pool_created',
      credential: name,
      detail: `members=${members.join(',')}${options.rotate_below !== null || options.plan_limits_only ? optionsDetail(options) : ''}`,
    });
    const info = this.info(this.get(name));
    this.bus.publish('pool.changed', { pool: info });
    return info;
  }

  /** Changes a pool's options (`pool update`); a field left undefined keeps its value. Applies to the next request. */
  update(name: string, patch: { rotate_below?: number | null | undefined; plan_limits_only?: boolean | undefined }): PoolInfo {
    const pool = this.get(name);
    const options: PoolOptions = {
      rotate_below: patch.rotate_below === undefined ? pool.rotate_below : patch.rotate_below,
      plan_limits_only: patch.plan_limits_only ?? pool.plan_limits_only,
    };
    this.repo.setOptions(name, options);
    this.reload();
    this.audit.append({ event: 'pool_updated', credential: name, detail: optionsDetail(options).trim() });
    const info = this.info(this.get(name));
    this.bus.publish('pool.changed', { pool: info });
    return info;
  }

  /**
   * Appends credential `member` to pool `name`. The pool's phantom (and refresh phantom) is unchanged, so
   * agents keep working; the member must exist, be of the pool's kind and belong to no pool yet.
   */
  addMember(name: string, member: string): PoolInfo {
    const pool = this.get(name);
    const cred = this.vault.get(member);
    if (!cred) throw new SluiceError('not_found', `no credential named ${member}`);
    const other = this.poolOf(member);
    if (other === name) throw new SluiceError('already_exists', `credential ${member} is already a member of pool ${name}`);
    if (other) throw new SluiceError('in_use', `credential ${member} is already a member of pool ${other}`);
    const kind = pool.members[0] === undefined ? undefined : this.vault.get(pool.members[0])?.kind;
    if (kind !== undefined && kind !== cred.kind) throw new SluiceError('invalid_params', `pool ${name} holds ${kind} credentials; ${member} is ${cred.kind}`);
    this.repo.addMember(name, member);
    return this.membershipChanged(name, 'pool_member_added', member);
  }

  /**
   * Removes `member` from pool `name` (the credential stays). The pool's phantom is unchanged. The last
   * member cannot be removed: a pool without members could serve nothing. When the active member leaves,
   * the next one in order (wrapping) takes over, subject to health like any failover.
   */
  removeMember(name: string, member: string): PoolInfo {
    const pool = this.get(name);
    const index = pool.members.indexOf(member);
    if (index === -1) throw new SluiceError('not_found', `credential ${member} is not a member of pool ${name}`);
    if (pool.members.length === 1) {
      throw new SluiceError('in_use', `${member} is the last member of pool ${name}; add another member first, or remove the pool`);
    }
    this.repo.removeMember(name, member);
    if (pool.active_member === member) {
      const rest = pool.members.filter((m) => m !== member);
      this.repo.setActive(name, rest[index % rest.length]!);
    }
    return this.membershipChanged(name, 'pool_member_removed', member);
  }

  private membershipChanged(name: string, event: string, member: string): PoolInfo {
    this.reload();
    const pool = this.get(name);
    this.audit.append({ event, credential: name, detail: `member=${member} members=${pool.members.join(',')}` });
    const info = this.info(pool);
    this.bus.publish('pool.changed', { pool: info });
    return info;
  }

  /** Removes a pool; its member credentials stay. Publishes `pool.changed` with `removed: true`. */
  remove(name: string): void {
    const last = this.info(this.get(name));
    this.repo.remove(name);
    this.reload();
    this.exhaustedAt.delete(name);
    this.audit.append({ event: 'pool_removed', credential: name });
    this.bus.publish('pool.changed', { pool: last, removed: true });
  }

  /**
   * Cools `member` of `pool` (synchronously, before the response goes anywhere) and moves the pool to the
   * next healthy member. Writes `cred_failover` (`pool:from->to:reason`) or `pool_exhausted`.
   */
  failover(poolName: string, member: string, reason: FailoverReason | 'manual rotate', until: number): FailoverResult {
    const pool = this.get(poolName);
    const wasActive = pool.active_member === null || pool.active_member === member;
    this.health.cool(member, until, reason);
    if (!wasActive && this.health.isHealthy(pool.active_member!)) {
      // A late failure from a member the pool already left: extend its cooldown, nothing switched.
      return { from: member, to: pool.active_member };
    }
    const choice = chooseActive(pool.members, pool.active_member === member ? member : pool.active_member, this.blocks.gate(pool));
    const to = choice.allCooling ? null : choice.member;
    if (to && to !== pool.active_member) this.setActive(pool, to);
    if (to && to !== member) {
      this.exhaustedAt.delete(poolName);
      this.audit.append({ event: 'cred_failover', credential: member, detail: `${poolName}:${member}->${to}:${reason}` });
      this.notice('warn', 'cred_failover', `pool ${poolName}: ${member} ${reason.replace('_', ' ')}; switched to ${to}`);
    } else {
      // One row per exhaustion, not one per late failure of the burst that caused it (same 30 s window as
      // the notice).
      const now = this.clock.now();
      const last = this.exhaustedAt.get(poolName);
      if (last === undefined || now - last >= EXHAUSTED_REPEAT_MS) {
        this.exhaustedAt.set(poolName, now);
        this.audit.append({ event: 'pool_exhausted', credential: member, detail: `${poolName}:${member}:${reason}` });
        this.notice('warn', 'pool_exhausted', `pool ${poolName}: every member is cooling (${member} ${reason.replace('_', ' ')})`);
      }
    }
    this.bus.publish('cred.failover', { pool: poolName, from: member, to, reason });
    this.bus.publish('pool.changed', { pool: this.info(pool) });
    return { from: member, to };
  }

  /** Parks the active member (manual rotate, 300 s) so the next one takes over. */
  rotate(name: string): { pool: PoolInfo; from: string | null; to: string | null } {
    const pool = this.get(name);
    const from = this.activeMember(pool);
    const r = this.failover(name, from, 'manual rotate', this.clock.now() + MANUAL_ROTATE_MS);
    return { pool: this.info(pool), from, to: r.to };
  }

  /** Clears every member's cooldown. */
  reset(name: string): PoolInfo {
    const pool = this.get(name);
    for (const m of pool.members) this.health.clear(m);
    this.exhaustedAt.delete(name);
    this.audit.append({ event: 'pool_reset', credential: name });
    const info = this.info(pool);
    this.bus.publish('pool.changed', { pool: info });
    return info;
  }
}

/** ` rotate_below=… plan_limits_only=…` for audit details. */
function optionsDetail(o: PoolOptions): string {
  return ` rotate_below=${o.rotate_below === null ? 'off' : `${o.rotate_below}%`} plan_limits_only=${o.plan_limits_only ? 'on' : 'off'}`;
}
