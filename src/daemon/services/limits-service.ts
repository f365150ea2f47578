/**
 * Concurrency limits behind RPC: the global cap and per-credential caps and queue waits (stored on the
 * credential). Every change applies to the next request, is audited, and is published as `limits.changed`.
 *
 * The global cap's rule: at start, an environment value (`SLUICE_MAX_GLOBAL_CONCURRENT`, else
 * `PROXY_MAX_GLOBAL_CONCURRENT`) that differs from the one seen at the previous start wins and is stored; a
 * later `limits set` wins from then on, including across restarts with the same environment value, until a
 * start with a different one. Without an environment value the stored cap applies. A warning line is
 * logged whenever the cap in force disagrees with the environment.
 *
 * Daily budgets (issue 24) are set here too (`limits set --cred NAME --daily-tokens N|none
 * --daily-requests N|none`); they are stored with the credential and apply to the next request.
 */
import type { LimitsInfo } from '../../shared/protocol/entities.js';
import { SluiceError } from '../../shared/protocol/error-codes.js';
import type { ParamsOut } from '../../shared/protocol/params.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { CapRegistry } from '../concurrency/cap-registry.js';
import type { EventBus } from '../events/event-bus.js';
import type { Budget, DailyBudgets } from '../pool/daily-budgets.js';
import type { SettingsRepo } from '../store/settings-repo.js';
import type { CredentialVault } from '../vault/credential-vault.js';
import type { CredentialService } from './credential-service.js';

const GLOBAL_KEY = 'global_cap';
/** The environment's global cap at the last start (`unset` or a number), to tell a new env value from an old one. */
const GLOBAL_ENV_KEY = 'global_cap_env';

/** Reads and changes limits. */
export class LimitsService {
  constructor(
    private readonly caps: CapRegistry,
    private readonly vault: CredentialVault,
    private readonly creds: CredentialService,
    private readonly settings: SettingsRepo,
    private readonly audit: AuditLog,
    private readonly bus: EventBus,
    private readonly budgets: DailyBudgets | null = null,
  ) {
    creds.onCapsChanged = () => this.bus.publish('limits.changed', { limits: this.get() });
  }

  /**
   * Chooses the global cap at start (see the module comment for the rule) and applies it. `envVar` names the
   * variable `fromEnv` came from; `warn` receives one line when the cap in force disagrees with it.
   */
  init(fromEnv: number | null, envVar: string | null = null, warn: (message: string, fields: Record<string, unknown>) => void = () => {}): void {
    const stored = this.settings.get(GLOBAL_KEY);
    const storedCap = stored === undefined ? undefined : stored === 'none' ? null : Number(stored);
    const envNow = fromEnv === null ? 'unset' : String(fromEnv);
    const envBefore = this.settings.get(GLOBAL_ENV_KEY);
    let cap: number | null;
    if (fromEnv !== null && envNow !== envBefore) {
      // A new environment value: it wins and becomes the stored cap.
      cap = fromEnv;
      if (storedCap !== undefined && storedCap !== fromEnv) {
        warn(`${envVar ?? 'the environment'}=${fromEnv} replaces the global cap ${storedCap ?? 'none'} set earlier with limits set`, {
          env: fromEnv,
          stored: storedCap ?? 'none',
        });
      }
      this.settings.set(GLOBAL_KEY, String(fromEnv));
    } else {
      cap = storedCap === undefined ? fromEnv : storedCap;
      if (fromEnv !== null && cap !== fromEnv) {
        warn(
          `the global cap ${cap ?? 'none'} set with limits set overrides ${envVar ?? 'the environment'}=${fromEnv} (a different environment value at the next start replaces it)`,
          { env: fromEnv, stored: cap ?? 'none' },
        );
      }
    }
    this.settings.set(GLOBAL_ENV_KEY, envNow);
    this.caps.setGlobalCap(cap);
  }

  /** `name`'s daily budgets (nulls when none); what the usage service and the dashboard show. */
  budgetOf(name: string): Budget {
    return this.budgets?.budgetOf(name) ?? { daily_tokens: null, daily_requests: null };
  }

  /** Current limits with live counts. */
  get(): LimitsInfo {
    return {
      global: this.caps.getGlobalCap(),
      credentials: this.vault.list().map((r) => ({
        name: r.name,
        max_concurrent: r.max_concurrent,
        queue_timeout_ms: r.queue_timeout_ms,
        ...this.caps.countsFor(r.name),
        ...this.budgetOf(r.name),
      })),
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
    if ((p.daily_tokens !== undefined || p.daily_requests !== undefined) && !this.budgets) {
      throw new SluiceError('invalid_params', 'daily budgets are not available in this daemon');
    }
    if (p.cred !== undefined && (p.max_concurrent !== undefined || p.queue_timeout_ms !== undefined)) {
      this.creds.update({ name: p.cred, max_concurrent: p.max_concurrent, queue_timeout_ms: p.queue_timeout_ms }, true);
    }
    if (p.cred !== undefined && this.budgets && (p.daily_tokens !== undefined || p.daily_requests !== undefined)) {
      const b = this.budgets.set(p.cred, { daily_tokens: p.daily_tokens, daily_requests: p.daily_requests });
      this.audit.append({
        event: 'limits_changed',
        credential: p.cred,
        detail: `daily_tokens=${b.daily_tokens ?? 'none'} daily_requests=${b.daily_requests ?? 'none'}`,
      });
      this.creds.changedByDaemon(p.cred);
    }
    const limits = this.get();
    this.bus.publish('limits.changed', { limits });
    return limits;
  }
}
