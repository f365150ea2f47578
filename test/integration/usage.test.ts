/**
 * Usage accounting end to end (issue 24), real TLS through the built daemon to a fake provider that reports
 * usage in JSON, SSE (Anthropic, OpenAI Chat, OpenAI Responses, gzip-encoded too) and WebSocket
 * `response.completed`, with rate-limit headers that count down. `usage.snapshot` must total exactly what
 * the upstream reported, by credential, model, pool and agent; headroom must show the latest headers; the
 * CLI prints the same; and today's totals survive a daemon restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredentialUsage, UsageRow, UsageSnapshot } from '../../src/shared/protocol/usage.js';
import { connectDaemon } from '../../src/shared/rpc/client.js';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { REQUEST_LIMIT, startUsageProvider, type UsagePlan, type UsageProvider } from '../fakes/usage-provider.js';
import { openWebSocket } from '../fakes/ws-through-proxy.js';
import { runCli } from '../unit/cli/fake-daemon.js';
import { fakeSecret, tokenOf, waitFor } from './helpers.js';

const ANT = 'api.anthropic.com';
const OAI = 'api.openai.com';

let up: UsageProvider;
let d: TestDaemon;
const phantom: Record<string, string> = {};
let poolPhantom = '';
let agentToken = '';

/** What the upstream reported, summed the way sluice normalises it (per credential, model, pool, agent). */
const expected = new Map<string, { requests: number; input_tokens: number; output_tokens: number; cached_tokens: number }>();
function expect1(keys: string[], t: { requests: number; input_tokens: number; output_tokens: number; cached_tokens: number }): void {
  for (const k of keys) {
    const e = expected.get(k) ?? { requests: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0 };
    e.requests += t.requests;
    e.input_tokens += t.input_tokens;
    e.output_tokens += t.output_tokens;
    e.cached_tokens += t.cached_tokens;
    expected.set(k, e);
  }
}
const rowsOf = (s: UsageSnapshot): Record<string, Omit<UsageRow, 'key'>> => Object.fromEntries(s.rows.map(({ key, ...rest }) => [key, rest]));
const expectedFor = (prefix: string) =>
  Object.fromEntries([...expected].filter(([k]) => k.startsWith(prefix + ':')).map(([k, v]) => [k.slice(prefix.length + 1), v]));

interface Call {
  cred: string;
  host: string;
  path: string;
  model: string;
  plan: UsagePlan;
  stream?: boolean;
  gzip?: boolean;
  include_usage?: boolean;
  via?: 'pool' | 'agent';
}

/** Sends one request through the proxy, reads it to the end, and books what the upstream will report. */
async function call(c: Call): Promise<void> {
  const auth = c.host === ANT ? { 'x-api-key': c.via === 'pool' ? poolPhantom : phantom[c.cred]! } : { authorization: `Bearer ${phantom[c.cred]}` };
  const body = JSON.stringify({
    model: c.model,
    stream: c.stream,
    gzip: c.gzip,
    plan: c.plan,
    ...(c.include_usage ? { stream_options: { include_usage: true } } : {}),
  });
  const r = await d.fetch(`https://${c.host}${c.path}`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body,
    ...(c.via === 'agent' ? { auth: agentToken } : {}),
  });
  expect(r.status).toBe(200);
  if (c.stream) expect(r.text).toMatch(/^(event|data): /);
  const anthropic = c.host === ANT;
  const tokens = {
    requests: 1,
    input_tokens: anthropic ? c.plan.input + (c.plan.cache_creation ?? 0) + (c.plan.cache_read ?? 0) : c.plan.input,
    output_tokens: c.plan.output,
    cached_tokens: anthropic ? (c.plan.cache_read ?? 0) : (c.plan.cached ?? 0),
  };
  // A chat stream without include_usage reports no tokens: the request still counts.
  const t = c.stream && c.path.includes('chat') && !c.include_usage ? { requests: 1, input_tokens: 0, output_tokens: 0, cached_tokens: 0 } : tokens;
  const model = t.input_tokens + t.output_tokens > 0 || !c.stream ? c.model : '-';
  expect1([`cred:${c.cred}`, `model:${model}`, `pool:${c.via === 'pool' ? 'team' : '-'}`, `agent:${c.via === 'agent' ? 'bot' : '-'}`], t);
}

beforeAll(async () => {
  up = await startUsageProvider();
  d = await startDaemon({ upstreamPort: up.port });
  await d.client.call('rule.add', { verdict: 'allow', host: ANT });
  await d.client.call('rule.add', { verdict: 'allow', host: OAI });
  for (const [name, host, header, format] of [
    ['ant', ANT, 'x-api-key', undefined],
    ['ant-p', ANT, 'x-api-key', undefined],
    ['oai', OAI, 'authorization', 'Bearer {}'],
  ] as const) {
    const c = await d.client.call('cred.add', {
      name,
      hosts: [host],
      header,
      ...(format ? { format } : {}),
      secret: fakeSecret(host === ANT ? 'sk-ant-api03-' : 'sk-proj-'),
    });
    phantom[name] = c.phantom;
  }
  poolPhantom = (await d.client.call('pool.create', { name: 'team', members: ['ant-p'] })).phantom;
  const reg = await d.client.call('agents.register', { name: 'bot' });
  agentToken = decodeURIComponent(/sluice:([^@]+)@/.exec(reg.env.proxy_url)![1]!);
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await up?.close();
});

describe('usage accounting', () => {
  it('totals equal exactly what the upstream reported, by credential, model, pool and agent', async () => {
    await call({ cred: 'ant', host: ANT, path: '/v1/messages', model: 'claude-a', plan: { input: 12, output: 34, cache_read: 100, cache_creation: 7 } });
    await call({ cred: 'ant', host: ANT, path: '/v1/messages', model: 'claude-a', stream: true, plan: { input: 5, output: 77, cache_read: 2000 } });
    await call({
      cred: 'ant',
      host: ANT,
      path: '/v1/messages',
      model: 'claude-b',
      stream: true,
      gzip: true,
      plan: { input: 9, output: 13, cache_creation: 50 },
    });
    await call({ cred: 'oai', host: OAI, path: '/v1/chat/completions', model: 'gpt-c', plan: { input: 300, output: 20, cached: 256 } });
    await call({
      cred: 'oai',
      host: OAI,
      path: '/v1/chat/completions',
      model: 'gpt-c',
      stream: true,
      include_usage: true,
      plan: { input: 40, output: 4, cached: 0 },
    });
    await call({ cred: 'oai', host: OAI, path: '/v1/chat/completions', model: 'gpt-c', stream: true, plan: { input: 999, output: 999 } });
    await call({ cred: 'oai', host: OAI, path: '/v1/responses', model: 'gpt-r', stream: true, gzip: true, plan: { input: 1000, output: 111, cached: 640 } });
    await call({ cred: 'oai', host: OAI, path: '/v1/responses', model: 'gpt-r', plan: { input: 8, output: 2, cached: 0 } });
    await call({ cred: 'ant-p', host: ANT, path: '/v1/messages', model: 'claude-a', stream: true, via: 'pool', plan: { input: 21, output: 3 } });
    await call({ cred: 'ant', host: ANT, path: '/v1/messages', model: 'claude-b', via: 'agent', plan: { input: 1, output: 1, cache_read: 1 } });

    // A WebSocket carrying two responses: one request each, tokens from each response.completed.
    const open = await openWebSocket({
      proxyPort: d.proxyPort,
      token: tokenOf(d),
      caPath: d.caPath,
      host: OAI,
      path: '/v1/responses',
      headers: { authorization: `Bearer ${phantom.oai}` },
    });
    if (!('ws' in open)) throw new Error(`upgrade refused: ${open.status} ${open.body}`);
    const ws = open.ws;
    let completed = 0;
    ws.on('message', (m) => {
      if (String(m).includes('response.completed')) completed++;
    });
    for (const plan of [
      { input: 500, output: 50, cached: 128 },
      { input: 600, output: 60, cached: 0 },
    ]) {
      ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-ws', plan }));
      expect1(['cred:oai', 'model:gpt-ws', 'pool:-', 'agent:-'], {
        requests: 1,
        input_tokens: plan.input,
        output_tokens: plan.output,
        cached_tokens: plan.cached,
      });
    }
    await waitFor(() => completed === 2, 'both WebSocket responses to complete');
    ws.close();

    for (const by of ['cred', 'model', 'pool', 'agent'] as const) {
      // Exchanges are recorded when the response to the client closes: poll until the last ones land (on a
      // timeout the assertion below shows the difference).
      let s = await d.client.call('usage.snapshot', { by });
      await waitFor(
        async () => {
          s = await d.client.call('usage.snapshot', { by });
          return sameJson(rowsOf(s), expectedFor(by));
        },
        { what: `usage.snapshot by ${by} to match what the upstream reported`, timeoutMs: 10_000 },
      ).catch(() => {});
      expect(rowsOf(s), `by ${by}`).toEqual(expectedFor(by));
      expect(s.by).toBe(by);
      expect(s.since).toBe('24h');
    }
  });

  it('headroom is the latest the rate-limit headers said, in usage.snapshot and in the subscribe snapshot', async () => {
    const s = await d.client.call('usage.snapshot', {});
    const ant = s.credentials.find((c) => c.name === 'ant')!;
    // The fake counts down one request per answer per key.
    expect(ant.headroom?.requests?.remaining).toBe(REQUEST_LIMIT - up.answered.get(keyFor('ant'))!);
    expect(ant.headroom?.requests?.limit).toBe(REQUEST_LIMIT);
    expect(ant.headroom?.unified?.status).toBe('allowed');
    expect(ant.headroom?.unified?.windows[0]).toMatchObject({ name: '5h', utilization: 0.25 });
    const oai = s.credentials.find((c) => c.name === 'oai')!;
    expect(oai.headroom?.requests?.remaining).toBe(REQUEST_LIMIT - up.answered.get(keyFor('oai'))!);
    expect(oai.headroom?.tokens?.limit).toBe(100_000);
    expect(oai.headroom?.fraction_left).toBeGreaterThan(0);
    expect(oai.today.requests).toBe(expected.get('cred:oai')!.requests);
    expect(oai.tokens_per_min).toBeGreaterThan(0);
    expect(oai.budget).toEqual({ daily_tokens: null, daily_requests: null });

    const sub = await d.client.call('events.subscribe', {});
    expect(sub.snapshot.usage?.find((c) => c.name === 'ant')?.headroom?.requests?.remaining).toBe(ant.headroom?.requests?.remaining);
  });

  it('a 429 counts as a request with no tokens and its headers still update the headroom', async () => {
    const before = (await d.client.call('usage.snapshot', {})).credentials.find((c) => c.name === 'ant')!;
    const r = await d.fetch(`https://${ANT}/status/429`, {
      method: 'POST',
      headers: { 'x-api-key': phantom.ant!, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(r.status).toBe(429);
    expect1(['cred:ant', 'model:-', 'pool:-', 'agent:-'], { requests: 1, input_tokens: 0, output_tokens: 0, cached_tokens: 0 });
    const after = await waitFor(async () => {
      const c = (await d.client.call('usage.snapshot', {})).credentials.find((x) => x.name === 'ant')!;
      return c.today.requests === before.today.requests + 1 ? c : null;
    }, 'the 429 to be counted');
    expect(after.today.input_tokens).toBe(before.today.input_tokens);
    expect(after.headroom?.requests?.remaining).toBe(before.headroom!.requests!.remaining - 1);
  });

  it('usage.updated reaches subscribers with the new totals, at most once a second', async () => {
    const sub = await connectDaemon({ socketPath: d.socket });
    try {
      const events: { at: number; credentials: CredentialUsage[] }[] = [];
      sub.onEvent((e) => {
        if (e.type === 'usage.updated') events.push({ at: Date.now(), credentials: e.credentials });
      });
      await sub.call('events.subscribe', { types: ['usage.updated'] });
      const before = (await d.client.call('usage.snapshot', {})).credentials.find((c) => c.name === 'oai')!.today;
      for (let i = 0; i < 5; i++)
        await call({ cred: 'oai', host: OAI, path: '/v1/chat/completions', model: 'gpt-c', plan: { input: 10, output: 1, cached: 0 } });
      const want = before.input_tokens + 50;
      await waitFor(
        () => events.some((e) => e.credentials.find((c) => c.name === 'oai')?.today.input_tokens === want),
        'a usage.updated event with all five requests',
      );
      // Sent at least 1 s apart (the unit test checks the exact throttle); arrival may bunch up a little on a busy machine.
      for (let i = 1; i < events.length; i++) expect(events[i]!.at - events[i - 1]!.at).toBeGreaterThanOrEqual(500);
    } finally {
      sub.close();
    }
  });

  it('sluicectl usage prints the RPC result with --json and a table otherwise', async () => {
    const json = await runCli(['--socket', d.socket, 'usage', '--by', 'model', '--json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as UsageSnapshot;
    expect(rowsOf(parsed)).toEqual(expectedFor('model'));
    const table = await runCli(['--socket', d.socket, 'usage', '--since', '7d']);
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toBe('usage by cred, last 7d');
    expect(lines[1]).toMatch(/^KEY\s+REQUESTS\s+INPUT\s+OUTPUT\s+CACHED$/);
    const oai = expected.get('cred:oai')!;
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^oai\\s+${oai.requests}\\s+${oai.input_tokens}\\s+${oai.output_tokens}\\s+${oai.cached_tokens}$`)),
    );
    expect(table.stdout).toMatch(/^ant\s+\d+\s+\d+\s+\d+\s+req \d+\/50 · tok \d+% · 5h 75%$/m);
    const bad = await runCli(['--socket', d.socket, 'usage', '--by', 'host']);
    expect(bad.code).toBe(2);
    const rpcBad = await d.client.call('usage.snapshot', { by: 'host' } as never).catch((e: Error) => e);
    expect(String(rpcBad)).toMatch(/by is one of cred, pool, agent, model/);
  });

  it("today's totals and the hourly buckets survive a daemon restart", async () => {
    const before = await d.client.call('usage.snapshot', { by: 'cred' });
    await d.stop();
    d = await startDaemon({ upstreamPort: up.port, home: d.home });
    const after = await d.client.call('usage.snapshot', { by: 'cred' });
    expect(rowsOf(after)).toEqual(rowsOf(before));
    expect(rowsOf(after)).toEqual(expectedFor('cred'));
    for (const name of ['ant', 'ant-p', 'oai']) {
      expect(after.credentials.find((c) => c.name === name)?.today, name).toEqual(before.credentials.find((c) => c.name === name)?.today);
    }
    expect(after.credentials.find((c) => c.name === 'oai')!.today.requests).toBe(expected.get('cred:oai')!.requests);
  });
});

describe('containment', () => {
  it('a real secret the upstream echoes as the model name is counted under its phantom', async () => {
    const secret = fakeSecret('sk-ant-api03-');
    const c = await d.client.call('cred.add', { name: 'leaky', hosts: [ANT], header: 'x-api-key', secret });
    const r = await d.fetch(`https://${ANT}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': c.phantom, 'content-type': 'application/json' },
      body: JSON.stringify({ model: `echo-${secret}`, stream: true, plan: { input: 1, output: 1 } }),
    });
    expect(r.status).toBe(200);
    expect(r.text).not.toContain(secret);
    const s = await waitFor(async () => {
      const x = await d.client.call('usage.snapshot', { by: 'model' });
      return x.rows.some((row) => row.key === `echo-${c.phantom}`) ? x : null;
    }, 'the echoed model to be counted under the phantom');
    expect(JSON.stringify(s)).not.toContain(secret);
  });
});

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .sort(([x], [y]) => x.localeCompare(y))
        .map(([k, x]) => [k, sortKeys(x)]),
    );
  return v;
}

/** The real key the fake saw for a credential (the phantom's secret): found by what it counted. */
function keyFor(name: string): string {
  const keys = [...up.answered.keys()];
  const prefix = name.startsWith('oai') ? 'sk-proj-' : 'sk-ant-api03-';
  // ant and ant-p both use Anthropic keys: ant answered more often.
  const mine = keys.filter((k) => k.startsWith(prefix)).sort((x, y) => up.answered.get(y)! - up.answered.get(x)!);
  return mine[0]!;
}
