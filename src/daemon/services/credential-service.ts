/**
 * Credential operations behind RPC: validation beyond the params schema (globs, name clashes), the vault
 * write, cap invalidation, audit and events. Results never include a secret.
 */
import type { CredentialInfo } from '../../shared/protocol/entities.js';
import { SluiceError } from '../../shared/protocol/error-codes.js';
import type { ParamsOut } from '../../shared/protocol/params.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { CapRegistry } from '../concurrency/cap-registry.js';
import type { EventBus } from '../events/event-bus.js';
import { assertValidGlob } from '../policy/host-glob.js';
import type { CredentialRow } from '../store/credentials-repo.js';
import type { CredentialVault } from '../vault/credential-vault.js';

/** Manages credentials for the RPC layer. */
export class CredentialService {
  constructor(
    private readonly vault: CredentialVault,
    private readonly caps: CapRegistry,
    private readonly audit: AuditLog,
    private readonly bus: EventBus,
    /** Returns the pool a credential is a live member of, if any. */
    private readonly poolOf: (name: string) => string | null = () => null,
    /** Forgets what the daemon remembers about a removed credential (counters, cooldown). */
    private readonly forget: (name: string) => void = () => {},
  ) {}

  /** A credential's daily budgets (wired to the daily budgets; issue 24). */
  budgetOf: (name: string) => { daily_tokens: number | null; daily_requests: number | null } = () => ({ daily_tokens: null, daily_requests: null });

  /** True when an OAuth credential needs a new login (wired to the token refresher). */
  needsLogin: (name: string) => boolean = () => false;

  /** Publishes `cred.changed` for a state change the daemon made itself (e.g. it started needing a login). */
  changedByDaemon(name: string): void {
    const row = this.vault.get(name);
    if (row) this.bus.publish('cred.changed', { action: 'updated', name, credential: this.info(row) });
  }

  /**
   * Called after a cap or queue-timeout change made through `cred.update` (wired to publish
   * `limits.changed`, so every cap change emits it whoever made it).
   */
  onCapsChanged: () => void = () => {};

  /** The client view of a row: no secret, live counts included. */
  info(row: CredentialRow): CredentialInfo {
    const c = this.caps.countsFor(row.name);
    return {
      name: row.name,
      kind: row.kind,
      hosts: row.hosts,
      header: row.header,
      format: row.format,
      max_concurrent: row.max_concurrent,
      queue_timeout_ms: row.queue_timeout_ms,
      phantom: row.phantom,
      phantom_refresh: row.phantom_refresh,
      token_url: row.token_url,
      inject: row.inject,
      in_flight: c.in_flight,
      queued: c.queued,
      ...this.budgetOf(row.name),
      ...(row.kind === 'oauth' ? { needs_login: this.needsLogin(row.name) } : {}),
      created_at: row.created_at,
      updated_at: row.updated_at,
    };
  }

  /** Every credential's client view. */
  list(): CredentialInfo[] {
    return this.vault.list().map((r) => this.info(r));
  }

  /** Adds a credential; returns it with its phantom. */
  add(p: ParamsOut<'cred.add'>): CredentialInfo {
    for (const h of p.hosts) assertValidGlob(h, 'host');
    const row = this.vault.add({ ...p });
    this.audit.append({ event: 'cred_added', credential: row.name, detail: `hosts=${row.hosts.join(',')} inject=${row.inject.join(',')}` });
    const info = this.info(row);
    this.bus.publish('cred.changed', { action: 'added', name: row.name, credential: info });
    return info;
  }

  /**
   * Updates a credential; only a given `secret` replaces the stored one. Cap changes apply to the next
   * request and also publish `limits.changed` unless `quietLimits` (the caller publishes it itself).
   */
  update(p: ParamsOut<'cred.update'>, quietLimits = false): CredentialInfo {
    for (const h of p.hosts ?? []) assertValidGlob(h, 'host');
    const { name, ...rest } = p;
    const before = this.vault.get(name);
    if (!before) throw new SluiceError('not_found', `no credential named ${name}`);
    const row = this.vault.update(name, rest);
    const capsChanged = row.max_concurrent !== before.max_concurrent || row.queue_timeout_ms !== before.queue_timeout_ms;
    if (capsChanged) this.caps.invalidate(name);
    const changed = Object.keys(rest).filter((k) => (rest as Record<string, unknown>)[k] !== undefined);
    this.audit.append({ event: 'cred_updated', credential: name, detail: `changed=${changed.join(',')}` });
    const info = this.info(row);
    this.bus.publish('cred.changed', { action: 'updated', name, credential: info });
    if (capsChanged && !quietLimits) this.onCapsChanged();
    return info;
  }

  /** Removes a credential and its secret; refused while it is a pool member. */
  remove(name: string): void {
    if (!this.vault.get(name)) throw new SluiceError('not_found', `no credential named ${name}`);
    const pool = this.poolOf(name);
    if (pool) throw new SluiceError('in_use', `credential ${name} is a member of pool ${pool}; remove it from the pool first`);
    this.vault.remove(name);
    this.caps.invalidate(name);
    // A credential added later under the same name starts from zero.
    this.forget(name);
    this.audit.append({ event: 'cred_removed', credential: name });
    this.bus.publish('cred.changed', { action: 'removed', name, credential: null });
  }
}
