/**
 * Policy rules: the store is the truth, the policy engine holds an immutable snapshot that is swapped after
 * every change (so evaluation never sees a half-applied change), and every change is audited and published.
 */
import type { RuleInfo } from '../../shared/protocol/entities.js';
import { SluiceError } from '../../shared/protocol/error-codes.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { EventBus } from '../events/event-bus.js';
import { assertValidGlob } from '../policy/host-glob.js';
import { describe, type PolicyEngine } from '../policy/policy-engine.js';
import type { NewRule, RulesRepo } from '../store/rules-repo.js';

/** Adds, lists and removes rules, keeping the policy snapshot in step. */
export class RuleService {
  constructor(
    private readonly repo: RulesRepo,
    private readonly policy: PolicyEngine,
    private readonly audit: AuditLog,
    private readonly bus: EventBus,
    private readonly clock: Clock,
  ) {}

  /** All rules. */
  list(): RuleInfo[] {
    return this.repo.list();
  }

  /**
   * Adds a rule (idempotent per matcher: an identical matcher returns the existing rule unchanged). A rule
   * with the same matcher and another verdict is refused with `already_exists`, except that `replaceAsk`
   * replaces an `ask` rule (an always-* answer to the prompt that rule raised); `replaced` is then its id.
   */
  add(rule: NewRule, opts: { replaceAsk?: boolean } = {}): { rule: RuleInfo; created: boolean; replaced?: number } {
    assertValidGlob(rule.host, 'host');
    if (rule.path !== null) assertValidGlob(rule.path, 'path');
    const existing = this.repo.findByMatcher(rule);
    if (existing && existing.verdict !== rule.verdict) {
      if (opts.replaceAsk && existing.verdict === 'ask' && rule.verdict !== 'ask') {
        this.remove(existing.id);
        return { ...this.add(rule), replaced: existing.id };
      }
      throw new SluiceError('already_exists', `rule ${existing.id} already matches ${describe(existing)} with verdict ${existing.verdict}; remove it first`);
    }
    const r = this.repo.insert({ ...rule, method: rule.method?.toUpperCase() ?? null }, this.clock.iso());
    if (r.created) {
      this.policy.replace(this.repo.list());
      this.audit.append({
        event: 'rule_added',
        verdict: r.rule.verdict,
        rule_id: r.rule.id,
        host: r.rule.host,
        port: r.rule.port,
        method: r.rule.method,
        path: r.rule.path,
        detail: r.rule.source,
      });
      this.bus.publish('rule.changed', { action: 'added', rule: r.rule });
    }
    return r;
  }

  /** Removes a rule by id. */
  remove(id: number): RuleInfo {
    const r = this.repo.remove(id);
    if (!r) throw new SluiceError('not_found', `no rule with id ${id}`);
    this.policy.replace(this.repo.list());
    this.audit.append({ event: 'rule_removed', rule_id: id, verdict: r.verdict, host: r.host });
    this.bus.publish('rule.changed', { action: 'removed', rule: r });
    return r;
  }
}
