/**
 * A kept-alive upstream connection that the server drops just as the next request is written to it: sluice
 * re-sends that request (up to three times while the connection it got was a reused one) instead of answering 502.
 */
import type net from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startHttpsUpstream } from '../fakes/fake-upstream.js';
import type { LoopbackServer } from '../fakes/loopback-server.js';

let upstream: LoopbackServer;
let d: TestDaemon;
const served: { path: string; nth: number; body: string }[] = [];

beforeAll(async () => {
  upstream = await startHttpsUpstream((req, res) => {
    const sock = req.socket as net.Socket & { served?: number };
    sock.served = (sock.served ?? 0) + 1;
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      served.push({ path: req.url ?? '', nth: sock.served!, body });
      // Held a moment, so two of these in parallel leave two kept-alive connections in the daemon's pool.
      if (req.url === '/warm-slow') return void setTimeout(() => res.end(JSON.stringify({ ok: true })), 150);
      // A server that has just decided to close an idle connection: any later request on it is dropped unanswered.
      if (req.url === '/stale' && sock.served! > 1) return void sock.destroy();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, nth: sock.served }));
    });
  });
  d = await startDaemon({ env: { SLUICE_RESOLVE: `api.anthropic.com:443:127.0.0.1:${upstream.port}` } });
  await d.client.call('rule.add', { verdict: 'allow', host: 'api.anthropic.com' });
});

afterAll(async () => {
  await d?.stop();
  await upstream?.close();
});

test('a request that hits a connection the server just dropped is re-sent once on a fresh one (body intact)', async () => {
  const warm = await d.fetch('https://api.anthropic.com/warm', { method: 'POST', body: 'first' });
  expect(warm.status).toBe(200);
  const r = await d.fetch('https://api.anthropic.com/stale', { method: 'POST', body: 'second' });
  expect(r.status).toBe(200);
  expect(JSON.parse(r.text).nth).toBe(1);
  const stale = served.filter((s) => s.path === '/stale');
  expect(stale.map((s) => s.nth)).toEqual([2, 1]);
  expect(stale.every((s) => s.body === 'second')).toBe(true);
  const rows = (await d.client.call('audit.tail', { n: 5 })).rows.filter((row) => row.path === '/stale');
  expect(rows.map((row) => row.status)).toEqual([200]);
});

test('two dead kept-alive connections in a row (a server closing idle connections in a batch): still answered, on a third', async () => {
  served.length = 0;
  const warm = await Promise.all([1, 2].map(() => d.fetch('https://api.anthropic.com/warm-slow', { method: 'POST', body: 'w' })));
  expect(warm.map((w) => w.status)).toEqual([200, 200]);
  const r = await d.fetch('https://api.anthropic.com/stale', { method: 'POST', body: 'third' });
  expect(r.status, r.text).toBe(200);
  // Two pooled connections (each had served before) dropped it; a new connection answered.
  const nth = served.filter((s) => s.path === '/stale').map((s) => s.nth);
  expect(nth).toHaveLength(3);
  expect(nth[0]).toBeGreaterThan(1);
  expect(nth[1]).toBeGreaterThan(1);
  expect(nth[2]).toBe(1);
});
