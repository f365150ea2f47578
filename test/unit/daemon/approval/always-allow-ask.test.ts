/** Issue 22 #12: always-allow next to an exact `ask` rule replaces it and fans the allow out. */
import { afterEach, describe, expect, it } from 'vitest';
import { ApprovalBroker } from '../../../../src/daemon/approval/approval-broker.js';
import { AuditLog } from '../../../../src/daemon/audit/audit-log.js';
import { EventBus } from '../../../../src/daemon/events/event-bus.js';
import { PolicyEngine } from '../../../../src/daemon/policy/policy-engine.js';
import { RuleService } from '../../../../src/daemon/services/rule-service.js';
import { RulesRepo } from '../../../../src/daemon/store/rules-repo.js';
import { memoryVault, type MemoryVault } from '../memory-vault.js';

let mv: MemoryVault;
afterEach(() => mv?.close());

function world() {
  mv = memoryVault();
  const repo = new RulesRepo(mv.db);
  const policy = new PolicyEngine([], 'allow');
  const rules = new RuleService(repo, policy, new AuditLog(mv.db, mv.clock), new EventBus(), mv.clock);
  const broker = new ApprovalBroker(mv.clock, { timeoutMs: 120_000 }, (host, port, verdict) => {
    const r = rules.add({ verdict, host, port, method: null, path: null, coalesce: true, source: 'approval' }, { replaceAsk: true });
    return { rule_id: r.rule.id, replaced: r.replaced ?? null };
  });
  return { rules, broker, policy };
}

const req = { host: 'api.example.com', port: 443, method: 'GET', path: '/', coalesce: true };

describe('issue 22 #12: always-allow next to an exact ask rule', () => {
  it('replaces the ask rule with an allow rule, allows every waiter and says what was saved', async () => {
    const { rules, broker, policy } = world();
    const ask = rules.add({ verdict: 'ask', host: 'api.example.com', port: 443, method: null, path: null, coalesce: true, source: 'user' }).rule;
    expect(policy.evaluate({ host: 'api.example.com', port: 443, method: 'GET', path: '/' }).verdict).toBe('ask');
    const w1 = broker.ask(req);
    const w2 = broker.ask(req);
    const id = broker.list()[0]!.id;
    const r = broker.resolve(id, 'always_allow');
    expect(r.waiters).toBe(2);
    expect(r.saved).toMatchObject({ replaced: ask.id });
    const saved = r.saved as { rule_id: number };
    expect((await w1).allowed).toBe(true);
    expect((await w2).allowed).toBe(true);
    const list = rules.list();
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ id: saved.rule_id, verdict: 'allow', host: 'api.example.com', port: 443 });
    expect(policy.evaluate({ host: 'api.example.com', port: 443, method: 'GET', path: '/' }).verdict).toBe('allow');
    expect(broker.pendingCount).toBe(0);
  });

  it('a user rule.add still refuses a conflicting verdict (only an approval answer replaces an ask rule)', () => {
    const { rules } = world();
    rules.add({ verdict: 'ask', host: 'h.example', port: 443, method: null, path: null, coalesce: true, source: 'user' });
    expect(() => rules.add({ verdict: 'allow', host: 'h.example', port: 443, method: null, path: null, coalesce: true, source: 'user' })).toThrow(
      /already matches/,
    );
  });
});
