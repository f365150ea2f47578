/**
 * Issue 24 end to end, with real TLS through the built daemon to a fake api.anthropic.com: rotation before
 * the wall (`--rotate-below`), daily budgets, and paid-overage answers (`--plan-limits-only`), driven through
 * `sluicectl` where the user would. The fake upstream counts requests per real key and answers with
 * rate-limit headers that count down, usage in the JSON body, or a paid-overage error, per key.
 *
 * The rotation and budget tests go through the usage ledger, which reads the headers and bodies the daemon
 * relays.
 */
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startHttpsUpstream } from '../fakes/fake-upstream.js';
import { runCli } from '../fakes/reliability-helpers.js';
import { fakeSecret, waitFor } from './helpers.js';

const HOST = 'api.anthropic.com';

/** How the fake answers the n-th request (1-based) carrying one real key. */
type Behaviour = (n: number) => { status: number; headers?: Record<string, string>; body: string };

const behaviours = new Map<string, Behaviour>();
const counts = new Map<string, number>();
const seen: { path: string; key: string; status: number }[] = [];

const OK = JSON.stringify({ type: 'message', content: [{ type: 'text', text: 'hi' }], usage: { input_tokens: 3, output_tokens: 2 } });

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  req.on('end', () => {
    const key = String(req.headers['x-api-key'] ?? '');
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    const b = behaviours.get(key)?.(n) ?? { status: 200, body: OK };
    seen.push({ path: req.url ?? '', key, status: b.status });
    res.writeHead(b.status, { 'content-type': 'application/json', ...b.headers });
    res.end(b.body);
  });
}

/** Rate-limit headers that count down: `limit` requests per minute, `n` used so far; a 429 once none are left. */
function countdown(limit: number): Behaviour {
  return (n) => {
    const headers = {
      'anthropic-ratelimit-requests-limit': String(limit),
      'anthropic-ratelimit-requests-remaining': String(Math.max(0, limit - n)),
      'anthropic-ratelimit-requests-reset': new Date(Date.now() + 60_000).toISOString(),
    };
    if (n > limit)
      return {
        status: 429,
        headers: { ...headers, 'retry-after': '60' },
        body: JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'limit' } }),
      };
    return { status: 200, headers, body: OK };
  };
}

let up: Awaited<ReturnType<typeof startHttpsUpstream>>;
let d: TestDaemon;
const secrets = new Map<string, string>();

async function addCred(name: string): Promise<string> {
  const secret = fakeSecret('sk-ant-api03-');
  secrets.set(name, secret);
  const c = await d.client.call('cred.add', { name, hosts: [HOST], header: 'x-api-key', secret });
  return c.phantom;
}

const memberOf = (key: string) => [...secrets].find(([, s]) => s === key)?.[0] ?? '?';
const seenAt = (prefix: string) => seen.filter((s) => s.path.startsWith(prefix));

async function send(phantom: string, path: string) {
  return d.fetch(`https://${HOST}${path}`, {
    method: 'POST',
    headers: { 'x-api-key': phantom, 'content-type': 'application/json' },
    body: '{"model":"claude"}',
  });
}

async function auditRows(event: string) {
  return (await d.client.call('audit.tail', { n: 10_000 })).rows.filter((r) => r.event === event);
}

beforeAll(async () => {
  up = await startHttpsUpstream(handler);
  // A fixed zone far from UTC, so "local midnight" is visibly not UTC midnight.
  d = await startDaemon({ upstreamPort: up.port, env: { TZ: 'Pacific/Auckland' } });
  await d.client.call('rule.add', { verdict: 'allow', host: HOST });
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await up?.close();
});

describe('paid overage (--plan-limits-only)', () => {
  test('a plan-limit answer cools the member until its reset and is not replayed; once every member is out, 429 without sending', async () => {
    await addCred('pl-a');
    await addCred('pl-b');
    const pool = await runCli(['pool', 'create', 'pl', '--member', 'pl-a', '--member', 'pl-b', '--plan-limits-only', '--json'], d.socket);
    expect(pool.code, pool.stderr).toBe(0);
    const info = JSON.parse(pool.stdout) as { phantom: string; plan_limits_only: boolean; rotate_below: number | null };
    expect(info).toMatchObject({ plan_limits_only: true, rotate_below: null });
    const resetS = Math.floor(Date.now() / 1000) + 3 * 3600;
    const overage = {
      status: 400,
      headers: { 'anthropic-ratelimit-unified-reset': String(resetS) },
      body: JSON.stringify({
        type: 'error',
        error: { type: 'invalid_request_error', message: "You're out of extra usage. Add more at claude.ai/settings/usage and keep going." },
        request_id: 'req_011CZqnb9kHEjoyRX6EAR4mn',
      }),
    };
    behaviours.set(secrets.get('pl-a')!, () => overage);

    const first = await send(info.phantom, '/v1/messages?pl=1');
    // The agent gets the provider's own answer (not replayed on pl-b: that would bill pl-b's extra usage).
    expect(first.status).toBe(400);
    expect(first.text).toContain('out of extra usage');
    expect(seenAt('/v1/messages?pl=1').map((s) => memberOf(s.key))).toEqual(['pl-a']);
    const st = (await d.client.call('pool.status', { name: 'pl' })).pools[0]!;
    expect(st.active).toBe('pl-b');
    const a = st.members.find((m) => m.name === 'pl-a')!;
    expect(a).toMatchObject({ healthy: false, reason: 'plan_limit' });
    expect(Date.parse(a.cooldown_until!)).toBe(resetS * 1000);
    expect((await auditRows('cred_failover')).map((r) => r.detail)).toContain('pl:pl-a->pl-b:plan_limit');

    // The next request goes to pl-b; pl-a is never sent anything again.
    expect((await send(info.phantom, '/v1/messages?pl=2')).status).toBe(200);
    expect(seenAt('/v1/messages?pl=2').map((s) => memberOf(s.key))).toEqual(['pl-b']);

    // pl-b moves to overage too (429 with the enforced-spend-limit code): every member is out.
    behaviours.set(secrets.get('pl-b')!, () => ({
      status: 429,
      body: JSON.stringify({
        type: 'error',
        error: { type: 'rate_limit_error', message: 'spend limit', details: { error_code: 'enforced_spend_limit_reached' } },
      }),
    }));
    expect((await send(info.phantom, '/v1/messages?pl=3')).status).toBe(429);
    expect(seenAt('/v1/messages?pl=3').map((s) => memberOf(s.key))).toEqual(['pl-b']);
    const before = seen.length;
    const refused = await send(info.phantom, '/v1/messages?pl=4');
    expect(refused.status).toBe(429);
    expect(refused.headers['x-sluice-reason']).toBe('plan_limits_exhausted');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(JSON.parse(refused.text)).toMatchObject({ type: 'error', error: { type: 'overloaded_error' }, sluice: { code: 'plan_limits_exhausted' } });
    expect(seen.length).toBe(before); // nothing reached the upstream
    for (const s of secrets.values()) expect(refused.text).not.toContain(s);
  });
});

describe('pool options and budgets through sluicectl', () => {
  test('pool update sets and clears --rotate-below and --plan-limits-only; list and status show them', async () => {
    await addCred('po-a');
    const created = await runCli(['pool', 'create', 'po', '--member', 'po-a', '--rotate-below', '20'], d.socket);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('rotate-below 20%');
    const upd = await runCli(['pool', 'update', 'po', '--rotate-below', 'off', '--plan-limits-only', '--json'], d.socket);
    expect(upd.code, upd.stderr).toBe(0);
    expect(JSON.parse(upd.stdout)).toMatchObject({ name: 'po', rotate_below: null, plan_limits_only: true });
    const upd2 = await runCli(['pool', 'update', 'po', '--rotate-below', '35', '--no-plan-limits-only'], d.socket);
    expect(upd2.code, upd2.stderr).toBe(0);
    const list = await runCli(['pool', 'list'], d.socket);
    expect(list.stdout).toMatch(/po\s+po-a\s+po-a\s+rotate<35%/);
    const status = await runCli(['pool', 'status', 'po', '--json'], d.socket);
    expect(JSON.parse(status.stdout).pools[0]).toMatchObject({ rotate_below: 35, plan_limits_only: false });
  });

  test('bad input gets a clear error (exit 2) and changes nothing', async () => {
    await addCred('bi-a');
    expect((await runCli(['pool', 'create', 'bi', '--member', 'bi-a', '--rotate-below', '10'], d.socket)).code).toBe(0);
    await d.client.call('limits.set', { cred: 'bi-a', daily_tokens: 5000 });
    const poolBefore = (await d.client.call('pool.status', { name: 'bi' })).pools[0];
    const limitsBefore = await d.client.call('limits.get');
    for (const [args, message] of [
      [['pool', 'update', 'bi', '--rotate-below', '0'], /--rotate-below must be a whole percentage between 1 and 99, or off/],
      [['pool', 'update', 'bi', '--rotate-below', '150'], /--rotate-below must be a whole percentage between 1 and 99, or off/],
      [['pool', 'update', 'bi', '--rotate-below', 'abc'], /--rotate-below must be a whole percentage between 1 and 99, or off/],
      [['pool', 'create', 'bi2', '--member', 'bi-a', '--rotate-below', '0'], /--rotate-below must be a whole percentage/],
      [['pool', 'update', 'bi'], /pool update needs --rotate-below/],
      [['limits', 'set', '--cred', 'bi-a', '--daily-tokens', '-1'], /--daily-tokens must be a whole number between 1 and/],
      [['limits', 'set', '--cred', 'bi-a', '--daily-tokens', 'lots'], /--daily-tokens must be a whole number or "none"/],
      [['limits', 'set', '--cred', 'bi-a', '--daily-requests', '0'], /--daily-requests must be a whole number between 1 and/],
      [['limits', 'set', '--daily-requests', '5'], /need --cred NAME/],
    ] as [string[], RegExp][]) {
      const r = await runCli(args, d.socket);
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    // The RPC refuses the same values (scripts that skip the CLI).
    await expect(d.client.call('pool.update', { name: 'bi', rotate_below: 100 })).rejects.toThrow(/rotate_below must be a whole percentage/);
    await expect(d.client.call('limits.set', { cred: 'bi-a', daily_tokens: -1 })).rejects.toThrow(/daily_tokens must be a whole number/);
    expect((await d.client.call('pool.status', { name: 'bi' })).pools[0]).toEqual(poolBefore);
    expect(await d.client.call('limits.get')).toEqual(limitsBefore);
    expect((await d.client.call('pool.list')).pools.map((p) => p.name)).not.toContain('bi2');
  });

  test('limits set --daily-tokens/--daily-requests: shown by limits get and cred list --json, none clears, kept across a restart', async () => {
    await addCred('bd-a');
    const set = await runCli(['limits', 'set', '--cred', 'bd-a', '--daily-tokens', '2000000', '--daily-requests', '500'], d.socket);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/bd-a.*2000000\s+500/);
    const clear = await runCli(['limits', 'set', '--cred', 'bd-a', '--daily-requests', 'none', '--json'], d.socket);
    expect(JSON.parse(clear.stdout).credentials.find((c: { name: string }) => c.name === 'bd-a')).toMatchObject({
      daily_tokens: 2000000,
      daily_requests: null,
    });
    const creds = await runCli(['cred', 'list', '--json'], d.socket);
    expect(JSON.parse(creds.stdout).credentials.find((c: { name: string }) => c.name === 'bd-a')).toMatchObject({
      daily_tokens: 2000000,
      daily_requests: null,
    });
    expect((await auditRows('limits_changed')).map((r) => r.detail)).toContain('daily_tokens=2000000 daily_requests=none');

    await d.kill('SIGKILL');
    d = await startDaemon({ upstreamPort: up.port, home: d.home, env: { TZ: 'Pacific/Auckland' } });
    const after = (await d.client.call('limits.get')).credentials.find((c) => c.name === 'bd-a');
    expect(after).toMatchObject({ daily_tokens: 2000000, daily_requests: null });
  });
});

/** Waits until the usage service's count of `cred`'s day satisfies `ok`. */
async function todayIs(cred: string, ok: (t: { requests: number; input_tokens: number; output_tokens: number }) => boolean) {
  await waitFor(async () => {
    const c = (await d.client.call('usage.snapshot', {})).credentials.find((x) => x.name === cred);
    return c && ok(c.today) ? c : null;
  }, `usage of ${cred} to be counted`);
}

/** Seconds from now to the next midnight in Pacific/Auckland (what the daemon's retry-after must say). */
function secondsToAucklandMidnight(): number {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: 'Pacific/Auckland', hour: 'numeric', minute: 'numeric', second: 'numeric', hourCycle: 'h23' })
    .formatToParts(new Date())
    .reduce<Record<string, number>>((o, p) => (p.type === 'literal' ? o : { ...o, [p.type]: Number(p.value) }), {});
  return 86_400 - (parts.hour! * 3600 + parts.minute! * 60 + parts.second!);
}

describe('needs the usage ledger', () => {
  // Headroom comes from the usage ledger, which reads the rate-limit headers the daemon relays.
  test('--rotate-below 20 moves to the second member before the first answers 429', async () => {
    await addCred('rb-a');
    await addCred('rb-b');
    const created = await runCli(['pool', 'create', 'rb', '--member', 'rb-a', '--member', 'rb-b', '--rotate-below', '20', '--json'], d.socket);
    const phantom = (JSON.parse(created.stdout) as { phantom: string }).phantom;
    behaviours.set(secrets.get('rb-a')!, countdown(10));
    behaviours.set(secrets.get('rb-b')!, countdown(10));
    // rb-a: 9 → 8 → … → 1 remaining of 10; at 1 (10 % < 20 %) the next request goes to rb-b.
    for (let i = 1; i <= 12; i++) expect((await send(phantom, `/v1/messages?rb=${i}`)).status).toBe(200);
    const served = Array.from({ length: 12 }, (_, i) => memberOf(seenAt(`/v1/messages?rb=${i + 1}`)[0]!.key));
    expect(served).toEqual([...Array(9).fill('rb-a'), 'rb-b', 'rb-b', 'rb-b']);
    expect(seen.filter((s) => s.key === secrets.get('rb-a') && s.status === 429)).toEqual([]);
    expect((await auditRows('cred_headroom_low')).map((r) => r.detail)).toEqual(['rb:rb-a:20%']);
    const st = (await d.client.call('pool.status', { name: 'rb' })).pools[0]!;
    expect(st.members.find((m) => m.name === 'rb-a')).toMatchObject({ healthy: false, reason: 'headroom_low' });
  });

  // Request counts come from the usage ledger (todayOf(cred).requests).
  test('--daily-requests 2 refuses the 3rd request with 429 + retry-after to local midnight, and still after a restart', async () => {
    const phantom = await addCred('dr-a');
    expect((await runCli(['limits', 'set', '--cred', 'dr-a', '--daily-requests', '2'], d.socket)).code).toBe(0);
    expect((await send(phantom, '/v1/messages?dr=1')).status).toBe(200);
    expect((await send(phantom, '/v1/messages?dr=2')).status).toBe(200);
    // The usage service records a request when its exchange ends, which may be just after the client has the body.
    await todayIs('dr-a', (t) => t.requests === 2);
    // The usage view shows the budget it is measured against.
    expect((await d.client.call('usage.snapshot', {})).credentials.find((x) => x.name === 'dr-a')?.budget).toEqual({ daily_tokens: null, daily_requests: 2 });
    const check = async (path: string) => {
      const before = seen.length;
      const r = await send(phantom, path);
      expect(r.status).toBe(429);
      expect(r.headers['x-sluice-reason']).toBe('daily_budget');
      expect(Math.abs(Number(r.headers['retry-after']) - secondsToAucklandMidnight())).toBeLessThanOrEqual(5);
      expect(seen.length).toBe(before);
    };
    await check('/v1/messages?dr=3');
    expect((await auditRows('daily_budget_reached')).filter((r) => r.credential === 'dr-a')).toHaveLength(1);
    // A graceful restart: the usage service writes its counts at shutdown (a SIGKILL loses the last second's).
    await d.stop();
    d = await startDaemon({ upstreamPort: up.port, home: d.home, env: { TZ: 'Pacific/Auckland' } });
    await check('/v1/messages?dr=4');
  });

  // Token counts come from the usage ledger (todayOf(cred) input + output tokens).
  test('--daily-tokens refuses once the reported input + output tokens reach the budget', async () => {
    const phantom = await addCred('dt-a');
    expect((await runCli(['limits', 'set', '--cred', 'dt-a', '--daily-tokens', '8'], d.socket)).code).toBe(0);
    // Each answer reports 3 + 2 = 5 tokens: 5 < 8 goes, 10 ≥ 8 is past the budget.
    expect((await send(phantom, '/v1/messages?dt=1')).status).toBe(200);
    await todayIs('dt-a', (t) => t.input_tokens + t.output_tokens === 5);
    expect((await send(phantom, '/v1/messages?dt=2')).status).toBe(200);
    await todayIs('dt-a', (t) => t.input_tokens + t.output_tokens === 10);
    const r = await send(phantom, '/v1/messages?dt=3');
    expect(r.status).toBe(429);
    expect(r.headers['x-sluice-reason']).toBe('daily_budget');
  });
});
