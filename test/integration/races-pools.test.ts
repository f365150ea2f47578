/**
 * Issue 22 #6, #7 and #9 through the built daemon: `pool.remove` publishes its event, a removed
 * credential's stats are forgotten, and a pooled 403 whose body streams slowly is passed through after a
 * bounded wait instead of being held until 64 KiB or the end arrive.
 */
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SluiceEvent } from '../../src/shared/protocol/events.js';
import { connectDaemon } from '../../src/shared/rpc/client.js';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startHttpsUpstream } from '../fakes/fake-upstream.js';
import type { LoopbackServer } from '../fakes/loopback-server.js';
import { fakeSecret, openStream, waitFor } from './helpers.js';

const HOST = 'api.anthropic.com';
/** How long the slow 403 keeps its body open after the first bytes. */
const SLOW_BODY_MS = 8_000;

let up: LoopbackServer;
let d: TestDaemon;
let slowBodyEndedAt = 0;

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  req.on('end', () => {
    if (req.url === '/slow-403') {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.write('{"error":{"type":"permission_error","message":"');
      const t = setTimeout(() => {
        slowBodyEndedAt = Date.now();
        res.end('not allowed"}}');
      }, SLOW_BODY_MS);
      res.on('close', () => clearTimeout(t));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
}

beforeAll(async () => {
  up = await startHttpsUpstream(handler);
  d = await startDaemon({ upstreamPort: up.port });
  await d.client.call('rule.add', { verdict: 'allow', host: HOST });
});

afterAll(async () => {
  await d?.stop();
  await up?.close();
});

async function pool(name: string) {
  for (const l of ['a', 'b']) await d.client.call('cred.add', { name: `${name}-${l}`, hosts: [HOST], header: 'x-api-key', secret: fakeSecret() });
  return d.client.call('pool.create', { name, members: [`${name}-a`, `${name}-b`] });
}

describe('issue 22 #9: a slowly streamed pooled 403', () => {
  test('reaches the client after the bounded peek, long before its body ends, and cools nobody', async () => {
    const p = await pool('slow403');
    const started = Date.now();
    const res = await openStream(`https://${HOST}/slow-403`, d.dispatcher(), { headers: { 'x-api-key': p.phantom } });
    const headersAt = Date.now();
    expect(res.statusCode).toBe(403);
    const body = await res.body.text();
    expect(body).toBe('{"error":{"type":"permission_error","message":"not allowed"}}');
    // Headers came before the upstream finished the body (not held until the end).
    expect(slowBodyEndedAt).toBeGreaterThan(0);
    expect(headersAt).toBeLessThan(slowBodyEndedAt - 1_000);
    expect(headersAt - started).toBeGreaterThanOrEqual(1_500);
    const status = (await d.client.call('pool.status', { name: 'slow403' })).pools[0]!;
    expect(status.members.every((m) => m.healthy)).toBe(true);
  });
});

describe('issue 22 #6: pool.remove publishes an event', () => {
  test('a subscriber sees pool.changed with removed: true', async () => {
    await pool('gone');
    const c = await connectDaemon({ socketPath: d.socket, timeoutMs: 10_000 });
    const events: SluiceEvent[] = [];
    c.onEvent((e) => events.push(e));
    try {
      await c.call('events.subscribe', {});
      await d.client.call('pool.remove', { name: 'gone' });
      const ev = await waitFor(() => events.find((e) => e.type === 'pool.changed'), 'pool.changed');
      expect(ev).toMatchObject({ type: 'pool.changed', removed: true, pool: { name: 'gone' } });
    } finally {
      c.close();
    }
  });
});

describe('issue 22 #7: stats do not survive a credential removal', () => {
  test('a credential re-added under the same name starts from zero', async () => {
    const add = () => d.client.call('cred.add', { name: 'stats-reborn', hosts: [HOST], header: 'x-api-key', secret: fakeSecret() });
    const c = await add();
    for (let i = 0; i < 3; i++) {
      const r = await d.fetch(`https://${HOST}/v1/messages`, { headers: { 'x-api-key': c.phantom } });
      expect(r.status).toBe(200);
    }
    await waitFor(async () => (await d.client.call('stats.snapshot')).credentials.find((x) => x.name === 'stats-reborn')?.total === 3, 'total 3');
    await d.client.call('cred.remove', { name: 'stats-reborn' });
    await add();
    const s = (await d.client.call('stats.snapshot')).credentials.find((x) => x.name === 'stats-reborn')!;
    expect(s).toMatchObject({ total: 0, status_2xx: 0 });
  });
});
