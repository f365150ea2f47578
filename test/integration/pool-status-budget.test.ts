/**
 * `pool.status` (RPC, `sluicectl pool status`, and the `pool.changed` event dashboards keep pool state from)
 * must not call a member healthy while requests to it get 429 `daily_budget`: it shows it unhealthy, reason
 * `daily_budget`, `cooldown_until` the next local midnight. Real TLS through the built daemon to a fake
 * api.anthropic.com; the daemon runs in a fixed zone far from UTC so "local midnight" is visibly not UTC's.
 */
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { PoolInfo, SluiceEvent } from '../../src/shared/protocol/events.js';
import { connectDaemon } from '../../src/shared/rpc/client.js';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startHttpsUpstream } from '../fakes/fake-upstream.js';
import { runCli } from '../fakes/reliability-helpers.js';
import { fakeSecret, waitFor } from './helpers.js';

const HOST = 'api.anthropic.com';
const TZ = 'Pacific/Auckland';
const OK = JSON.stringify({ type: 'message', model: 'claude', content: [{ type: 'text', text: 'hi' }], usage: { input_tokens: 3, output_tokens: 2 } });

let up: Awaited<ReturnType<typeof startHttpsUpstream>>;
let d: TestDaemon;
let sent = 0;

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  req.on('end', () => {
    sent++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(OK);
  });
}

beforeAll(async () => {
  up = await startHttpsUpstream(handler);
  d = await startDaemon({ upstreamPort: up.port, env: { TZ } });
  await d.client.call('rule.add', { verdict: 'allow', host: HOST });
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await up?.close();
});

async function addCred(name: string): Promise<void> {
  await d.client.call('cred.add', { name, hosts: [HOST], header: 'x-api-key', secret: fakeSecret('sk-ant-api03-') });
}

async function send(phantom: string) {
  return d.fetch(`https://${HOST}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': phantom, 'content-type': 'application/json' },
    body: '{"model":"claude"}',
  });
}

async function requestsToday(cred: string, n: number): Promise<void> {
  await waitFor(async () => {
    const c = (await d.client.call('usage.snapshot', {})).credentials.find((x) => x.name === cred);
    return c && c.today.requests === n ? c : null;
  }, `${n} requests of ${cred} to be counted`);
}

/** The next midnight in the daemon's zone, as epoch ms (to the second: the zone has whole-minute offsets). */
function nextAucklandMidnight(): number {
  const now = Date.now();
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: TZ, hour: 'numeric', minute: 'numeric', second: 'numeric', hourCycle: 'h23' })
    .formatToParts(new Date(now))
    .reduce<Record<string, number>>((o, p) => (p.type === 'literal' ? o : { ...o, [p.type]: Number(p.value) }), {});
  const sinceMidnightS = parts.hour! * 3600 + parts.minute! * 60 + parts.second!;
  return Math.floor(now / 1000) * 1000 + (86_400 - sinceMidnightS) * 1000;
}

const memberOf = (p: PoolInfo, name: string) => p.members.find((m) => m.name === name)!;

describe('pool status of a member past its daily budget', () => {
  test('pool.status and sluicectl pool status show it unhealthy with reason daily_budget until local midnight, not healthy', async () => {
    await addCred('bs-a');
    await addCred('bs-b');
    const pool = await d.client.call('pool.create', { name: 'bs', members: ['bs-a', 'bs-b'] });
    expect((await runCli(['limits', 'set', '--cred', 'bs-a', '--daily-requests', '1'], d.socket)).code).toBe(0);
    expect((await send(pool.phantom)).status).toBe(200);
    await requestsToday('bs-a', 1);

    const st = (await d.client.call('pool.status', { name: 'bs' })).pools[0]!;
    const a = memberOf(st, 'bs-a');
    expect(a).toMatchObject({ healthy: false, reason: 'daily_budget' });
    // Within a few seconds of the next Auckland midnight (not UTC's, unless they coincide).
    expect(Math.abs(Date.parse(a.cooldown_until!) - nextAucklandMidnight())).toBeLessThanOrEqual(5_000);
    expect(memberOf(st, 'bs-b')).toMatchObject({ healthy: true, reason: null, cooldown_until: null });
    // The pool already serves from bs-b: what status says matches what the proxy does.
    expect(st.active).toBe('bs-b');
    const before = sent;
    expect((await send(pool.phantom)).status).toBe(200);
    expect(sent).toBe(before + 1);

    const json = await runCli(['pool', 'status', 'bs', '--json'], d.socket);
    expect(json.code, json.stderr).toBe(0);
    const fromCli = JSON.parse(json.stdout) as { pools: PoolInfo[] };
    expect(memberOf(fromCli.pools[0]!, 'bs-a')).toEqual(a);

    const table = await runCli(['pool', 'status', 'bs'], d.socket);
    expect(table.code, table.stderr).toBe(0);
    const row = table.stdout.split('\n').find((l) => /\bbs-a\b/.test(l))!;
    expect(row).toMatch(/\bdaily_budget\b/);
    expect(row).toMatch(/\bin \d+h/); // the cooldown column counts down to midnight
    expect(row).not.toMatch(/\bok\b/);
  });

  test('a single-member pool whose member spends its budget: refused with daily_budget, and status and pool.changed agree', async () => {
    await addCred('bs-solo');
    const pool = await d.client.call('pool.create', { name: 'bs1', members: ['bs-solo'] });
    const watcher = await connectDaemon({ socketPath: d.socket, timeoutMs: 10_000 });
    const events: SluiceEvent[] = [];
    watcher.onEvent((e) => events.push(e));
    try {
      await watcher.call('events.subscribe', { types: ['pool.changed'] });
      expect((await runCli(['limits', 'set', '--cred', 'bs-solo', '--daily-requests', '1'], d.socket)).code).toBe(0);
      expect((await send(pool.phantom)).status).toBe(200);
      await requestsToday('bs-solo', 1);
      const refused = await send(pool.phantom);
      expect(refused.status).toBe(429);
      expect(refused.headers['x-sluice-reason']).toBe('daily_budget');
      // No member to move to, so no failover: the budget being found spent still tells dashboards.
      const changed = await waitFor(
        () =>
          events.find(
            (e): e is Extract<SluiceEvent, { type: 'pool.changed' }> =>
              e.type === 'pool.changed' && e.pool.name === 'bs1' && memberOf(e.pool, 'bs-solo').reason === 'daily_budget',
          ),
        'pool.changed showing bs-solo past its budget',
      );
      expect(memberOf(changed.pool, 'bs-solo').healthy).toBe(false);
      expect(memberOf((await d.client.call('pool.status', { name: 'bs1' })).pools[0]!, 'bs-solo')).toMatchObject({ healthy: false, reason: 'daily_budget' });

      // Budget cleared: it may serve again, and status and the event say so at once.
      expect((await runCli(['limits', 'set', '--cred', 'bs-solo', '--daily-requests', 'none'], d.socket)).code).toBe(0);
      expect(memberOf((await d.client.call('pool.status', { name: 'bs1' })).pools[0]!, 'bs-solo')).toEqual({
        name: 'bs-solo',
        healthy: true,
        cooldown_until: null,
        reason: null,
      });
      await waitFor(
        () => events.find((e) => e.type === 'pool.changed' && e.pool.name === 'bs1' && memberOf(e.pool, 'bs-solo').healthy),
        'pool.changed showing bs-solo healthy again',
      );
      expect((await send(pool.phantom)).status).toBe(200);
    } finally {
      watcher.close();
    }
  });
});
