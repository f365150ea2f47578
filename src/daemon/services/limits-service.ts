/**
 * Concurrency limits behind RPC: the global cap (persisted in settings, overriding the environment once set
 * at runtime) and per-credential caps and queue waits (stored on the credential). Every change applies to
 * the next request, is audited, and is published as `limits.changed`.
 */
import type { LimitsInfo } from '../../shared/protocol/entities.js';
import { SluiceError } from '../../shared/protocol/error-codes.js';
import type { ParamsOut } from '../../shared/protocol/params.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { CapRegistry } from '../concurrency/cap-registry.js';
import type { EventBus } from '../events/event-bus.js';
import type { SettingsRepo } from '../store/settings-repo.js';
import type { CredentialVault } from '../vault/credential-vault.js';
import type { CredentialService } from './credential-service.js';

const GLOBAL_KEY = 'global_cap';

/** Reads and changes limits. */
export class LimitsService {
  constructor(
    private readonly caps: CapRegistry,
    private readonly vault: CredentialVault,
    private readonly creds: CredentialService,
    private readonly settings: SettingsRepo,
    private readonly audit: AuditLog,
    private readonly bus: EventBus,
  ) {}

  /** Applies the persisted global cap if one was set at runtime, else `fromEnv`. */
  init(fromEnv: number | null): void {
    const stored = this.settings.get(GLOBAL_KEY);
    this.caps.setGlobalCap(stored === undefined ? fromEnv : stored === 'none' ? null : Number(stored));
  }

  /** Current limits with live counts. */
  get(): LimitsInfo {
    return {
      global: this.caps.getGlobalCap(),
      credentials: this.vault.list().map((r) => ({ name: r.name, max_concurrent: r.max_concurrent, queue_timeout_ms: r.queue_timeout_ms, ...this.caps.countsFor(r.name) })),
    };
  }

  /** Changes limits; validates everything before changing anything. */
  set(p: ParamsOut<'limits.set'>): LimitsInfo {
    if (p.cred !== undefined && !this.vault.get(p.cred)) throw new SluiceError('not_found', `no credential named ${p.cred}`);
    if (p.global !== undefined) {
      this.settings.set(GLOBAL_KEY, p.global === null ? 'none' : String(p.global));
      this.caps.setGlobalCap(p.global);
      this.audit.append({ event: 'limits_changed', detail: `global=${p.global ?? 'none'}` });
    }
    if (p.cred !== undefined && (p.max_concurrent !== undefined || p.queue_timeout_ms !== undefined)) {
      this.creds.update({ name: p.cred, max_concurrent: p.max_concurrent, queue_timeout_ms: p.queue_timeout_ms });
    }
    const limits = this.get();
    this.bus.publish('limits.changed', { limits });
    return limits;
  }
}
