/** Policy evaluation: precedence, default verdict, narrowing by port/method/path, coalesce opt-out. */
import { describe, expect, it } from 'vitest';
import { PolicyEngine, type PolicyRequest } from '../../../../src/daemon/policy/policy-engine.js';
import type { RuleInfo, Verdict } from '../../../../src/shared/protocol/entities.js';

let nextId = 1;
function rule(verdict: Verdict, host: string, extra: Partial<RuleInfo> = {}): RuleInfo {
  return {
    id: nextId++,
    verdict,
    host,
    port: null,
    method: null,
    path: null,
    coalesce: true,
    source: 'user',
    created_at: '2026-01-01T00:00:00.000Z',
    ...extra,
  };
}

function request(extra: Partial<PolicyRequest> = {}): PolicyRequest {
  return { host: 'api.anthropic.com', port: 443, method: 'POST', path: '/v1/messages', ...extra };
}

describe('PolicyEngine precedence', () => {
  it('lets a matching deny beat a matching allow and ask, whatever their order', () => {
    const deny = rule('deny', 'api.anthropic.com');
    const rules = [rule('allow', '*.anthropic.com'), deny, rule('ask', '*')];
    for (const order of [rules, [...rules].reverse()]) {
      const d = new PolicyEngine(order, 'allow').evaluate(request());
      expect(d.verdict).toBe('deny');
      expect(d.rule_id).toBe(deny.id);
    }
  });

  it('lets a matching allow beat a matching ask, whatever their order', () => {
    const allow = rule('allow', 'api.anthropic.com');
    const ask = rule('ask', '*');
    for (const order of [
      [ask, allow],
      [allow, ask],
    ]) {
      const d = new PolicyEngine(order, 'deny').evaluate(request());
      expect(d.verdict).toBe('allow');
      expect(d.rule_id).toBe(allow.id);
    }
  });

  it('ignores rules that do not match when ranking', () => {
    const allow = rule('allow', 'api.anthropic.com');
    const d = new PolicyEngine([rule('deny', 'api.openai.com'), allow], 'ask').evaluate(request());
    expect(d).toMatchObject({ verdict: 'allow', rule_id: allow.id });
  });

  it('names the deciding rule in the reason', () => {
    const deny = rule('deny', '*.anthropic.com', { path: '/v1/**' });
    const d = new PolicyEngine([deny], 'allow').evaluate(request());
    expect(d.reason).toContain(`rule ${deny.id}`);
    expect(d.reason).toContain('*.anthropic.com');
  });
});

describe('PolicyEngine default verdict', () => {
  it.each<Verdict>(['allow', 'deny', 'ask'])('gives the default verdict %s when no rule matches', (dv) => {
    const d = new PolicyEngine([rule('deny', 'api.openai.com')], dv).evaluate(request());
    expect(d).toMatchObject({ verdict: dv, rule_id: null, coalesce: true });
    expect(d.reason).toContain('api.anthropic.com:443');
  });

  it('uses the new snapshot after replace', () => {
    const engine = new PolicyEngine([], 'ask');
    expect(engine.evaluate(request()).verdict).toBe('ask');
    engine.replace([rule('deny', 'api.anthropic.com')]);
    expect(engine.evaluate(request()).verdict).toBe('deny');
    engine.replace([]);
    expect(engine.evaluate(request()).verdict).toBe('ask');
  });

  it('is not affected by later mutation of the rules array it was given', () => {
    const rules = [rule('allow', 'api.anthropic.com')];
    const engine = new PolicyEngine(rules, 'deny');
    rules.pop();
    expect(engine.evaluate(request()).verdict).toBe('allow');
  });
});

describe('PolicyEngine matching', () => {
  it('matches host globs case-insensitively', () => {
    const engine = new PolicyEngine([rule('allow', '*.anthropic.com')], 'deny');
    expect(engine.evaluate(request({ host: 'API.ANTHROPIC.COM' })).verdict).toBe('allow');
    expect(engine.evaluate(request({ host: 'anthropic.com' })).verdict).toBe('deny');
  });

  it('narrows a rule to its port', () => {
    const engine = new PolicyEngine([rule('allow', 'api.anthropic.com', { port: 443 })], 'deny');
    expect(engine.evaluate(request({ port: 443 })).verdict).toBe('allow');
    expect(engine.evaluate(request({ port: 8443 })).verdict).toBe('deny');
  });

  it('narrows a rule to its method, ignoring case', () => {
    const engine = new PolicyEngine([rule('allow', 'api.anthropic.com', { method: 'get' })], 'deny');
    expect(engine.evaluate(request({ method: 'GET' })).verdict).toBe('allow');
    expect(engine.evaluate(request({ method: 'POST' })).verdict).toBe('deny');
  });

  it('narrows a rule to a path glob', () => {
    const engine = new PolicyEngine([rule('allow', 'api.anthropic.com', { path: '/v1/**' })], 'deny');
    expect(engine.evaluate(request({ path: '/v1/messages' })).verdict).toBe('allow');
    expect(engine.evaluate(request({ path: '/v1/messages/count_tokens' })).verdict).toBe('allow');
    expect(engine.evaluate(request({ path: '/admin/keys' })).verdict).toBe('deny');
  });

  it('lets a narrow deny carve a hole in a broad allow', () => {
    const engine = new PolicyEngine([rule('allow', '*.anthropic.com'), rule('deny', '*.anthropic.com', { method: 'DELETE', path: '/v1/files/*' })], 'ask');
    expect(engine.evaluate(request({ method: 'DELETE', path: '/v1/files/abc' })).verdict).toBe('deny');
    expect(engine.evaluate(request({ method: 'GET', path: '/v1/files/abc' })).verdict).toBe('allow');
  });
});

describe('PolicyEngine coalesce', () => {
  it('carries coalesce:false from a matching rule', () => {
    const engine = new PolicyEngine([rule('ask', 'mcp.example.com', { coalesce: false })], 'allow');
    expect(engine.evaluate(request({ host: 'mcp.example.com' }))).toMatchObject({ verdict: 'ask', coalesce: false });
  });

  it('coalesces by default and when the opting-out rule does not match', () => {
    const engine = new PolicyEngine([rule('ask', 'mcp.example.com', { coalesce: false }), rule('ask', '*')], 'allow');
    expect(engine.evaluate(request()).coalesce).toBe(true);
  });
});

describe('PolicyEngine path spellings', () => {
  // An upstream that resolves dot-segments or merges slashes serves /admin/keys for these requests, so a
  // deny narrowed to /admin/** must hold for them too.
  it('keeps a deny on /admin/** in force for dot-segment and double-slash spellings of the same path', () => {
    const engine = new PolicyEngine([rule('allow', 'api.anthropic.com'), rule('deny', 'api.anthropic.com', { path: '/admin/**' })], 'ask');
    expect(engine.evaluate(request({ path: '/admin/keys' })).verdict).toBe('deny');
    expect(engine.evaluate(request({ path: '/v1/../admin/keys' })).verdict).toBe('deny');
    expect(engine.evaluate(request({ path: '//admin/keys' })).verdict).toBe('deny');
  });
});

describe('normalizePath fast path', () => {
  it('paths it returns unchanged are exactly what the full canonicalisation gives', async () => {
    const { normalizePath, canonicalPath } = await import('../../../../src/daemon/policy/request-path.js');
    const alphabet = [
      '/',
      '/',
      'a',
      'b',
      '.',
      '..',
      '%2e',
      '%2F',
      '%61',
      '//',
      '\\',
      ' ',
      '\t',
      '-',
      '_',
      '~',
      ':',
      '@',
      '!',
      '$',
      '&',
      "'",
      '(',
      '*',
      '+',
      ',',
      ';',
      '=',
      'v1',
      'x.json',
    ];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 20_000; i++) {
      let p = '/';
      for (let j = rnd(8); j > 0; j--) p += alphabet[rnd(alphabet.length)];
      expect(normalizePath(p), p).toBe(canonicalPath(p));
    }
    expect(normalizePath('/v1/messages?beta=true')).toBe('/v1/messages');
    expect(normalizePath('/v1/../admin')).toBe('/admin');
    expect(normalizePath('/%61dmin#x')).toBe('/admin');
  });
});
