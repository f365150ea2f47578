/**
 * Upstream timeouts (SLUICE_UPSTREAM_CONNECT_TIMEOUT_MS, SLUICE_UPSTREAM_HEADER_TIMEOUT_MS): an upstream
 * that never completes its TLS handshake, or accepts a request and never answers, gets the client a
 * provider-shaped 504 `upstream_timeout`, the upstream torn down, the permits released and an audit row.
 * A stream whose headers arrived has no idle timeout of its own. Short limits make each case take ~1 s.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { listenOnLoopback, type LoopbackServer } from '../fakes/loopback-server.js';
import { openWebSocket } from '../fakes/ws-through-proxy.js';
import { fakeSecret, readStream, tokenOf, waitFor } from './helpers.js';

const ANT = 'api.anthropic.com';
const OAI = 'api.openai.com';
const CONNECT_MS = 600;
const HEADER_MS = 1000;

let d: TestDaemon;
let up: FakeUpstream;
/** Accepts TCP connections and never says a word: a TLS handshake to it never completes. */
let silent: LoopbackServer;
let silentAccepted = 0;
const silentOpen = new Set<net.Socket>();
let ant = { 'x-api-key': '' };
let oai = { authorization: '' };

beforeAll(async () => {
  up = await startFakeUpstream();
  silent = await listenOnLoopback(
    net.createServer((s) => {
      silentAccepted++;
      silentOpen.add(s);
      s.on('close', () => silentOpen.delete(s));
      s.on('error', () => {});
      // Reads (and drops) what arrives, so the peer's close is noticed.
      s.resume();
    }),
  );
  d = await startDaemon({
    env: {
      SLUICE_RESOLVE: `${ANT}:443:127.0.0.1:${up.port},${OAI}:443:127.0.0.1:${silent.port}`,
      SLUICE_UPSTREAM_CONNECT_TIMEOUT_MS: String(CONNECT_MS),
      SLUICE_UPSTREAM_HEADER_TIMEOUT_MS: String(HEADER_MS),
    },
  });
  for (const host of [ANT, OAI]) await d.client.call('rule.add', { verdict: 'allow', host });
  const a = await d.client.call('cred.add', { name: 'ant', hosts: [ANT], header: 'x-api-key', secret: fakeSecret('sk-ant-api03-'), max_concurrent: 2 });
  ant = { 'x-api-key': a.phantom };
  const o = await d.client.call('cred.add', {
    name: 'oai',
    hosts: [OAI],
    header: 'authorization',
    format: 'Bearer {}',
    secret: fakeSecret('sk-proj-'),
    max_concurrent: 2,
  });
  oai = { authorization: `Bearer ${o.phantom}` };
});

afterAll(async () => {
  await d?.stop();
  await up?.close();
  await silent?.close();
});

/** In-flight count of credential `name` (and the global one) from stats.snapshot. */
async function inFlight(name: string): Promise<{ cred: number; global: number }> {
  const s = await d.client.call('stats.snapshot');
  return { cred: s.credentials.find((c) => c.name === name)?.in_flight ?? -1, global: s.global.in_flight };
}

async function auditRow(path: string) {
  return waitFor(
    async () => (await d.client.call('audit.tail', { n: 50 })).rows.find((r) => r.path === path && r.event === 'request'),
    `the audit row of ${path}`,
  );
}

describe('HTTP', () => {
  test('an upstream that accepts the request and never answers → 504 upstream_timeout after the header limit; upstream torn down, permits back, audited', async () => {
    const started = Date.now();
    const r = await d.fetch(`https://${ANT}/hang`, { headers: ant });
    const took = Date.now() - started;
    expect(r.status).toBe(504);
    const body = JSON.parse(r.text);
    expect(body).toMatchObject({ type: 'error', error: { type: 'api_error' }, sluice: { code: 'upstream_timeout' } });
    expect(body.error.message).toMatch(/no response headers within 1000 ms/);
    expect(took).toBeGreaterThanOrEqual(HEADER_MS - 50);
    expect(took).toBeLessThan(HEADER_MS + 8000);
    await waitFor(async () => (await inFlight('ant')).cred === 0 && (await inFlight('ant')).global === 0, 'in_flight back to 0');
    await waitFor(() => up.open() === 0, 'the hanging upstream request torn down');
    const row = await auditRow('/hang');
    expect(row).toMatchObject({ host: ANT, status: 504, credential: 'ant', detail: 'upstream_timeout:headers' });
  });

  test('an upstream that never completes TLS → 504 upstream_timeout after the connect limit; connection closed, permits back, audited', async () => {
    const before = silentAccepted;
    const started = Date.now();
    const r = await d.fetch(`https://${OAI}/v1/never-connects`, { headers: oai });
    const took = Date.now() - started;
    expect(r.status).toBe(504);
    const body = JSON.parse(r.text);
    expect(body).toMatchObject({ error: { type: 'server_error', code: 'upstream_timeout' }, sluice: { code: 'upstream_timeout' } });
    expect(body.error.message).toMatch(/did not connect within 600 ms/);
    expect(took).toBeGreaterThanOrEqual(CONNECT_MS - 50);
    expect(took).toBeLessThan(HEADER_MS + 8000);
    expect(silentAccepted).toBeGreaterThan(before);
    await waitFor(async () => (await inFlight('oai')).cred === 0, 'in_flight back to 0');
    await waitFor(() => silentOpen.size === 0, 'the half-made upstream connection closed');
    const row = await auditRow('/v1/never-connects');
    expect(row).toMatchObject({ host: OAI, status: 504, credential: 'oai', detail: 'upstream_timeout:connect' });
  });

  test('a stream whose headers arrived has no idle timeout: events 1.5× the header limit apart all arrive', async () => {
    const s = await readStream(`https://${ANT}/sse?n=2&gap=${Math.round(HEADER_MS * 1.5)}`, d.dispatcher(), { headers: ant });
    expect(s.status).toBe(200);
    const text = s.chunks.map((c) => c.text).join('');
    expect(text).toContain('"i":1');
    expect(text).toContain('[DONE]');
    await waitFor(async () => (await inFlight('ant')).cred === 0, 'in_flight back to 0');
  });
});

describe('WebSocket', () => {
  test('an upgrade to an upstream that never completes TLS → 504 upstream_timeout; permits back, audited', async () => {
    const r = await openWebSocket({ proxyPort: d.proxyPort, token: tokenOf(d), caPath: d.caPath, host: OAI, path: '/v1/ws-never-connects', headers: oai });
    expect('status' in r ? r.status : 101).toBe(504);
    if ('status' in r) expect(JSON.parse(r.body).sluice.code).toBe('upstream_timeout');
    await waitFor(async () => (await inFlight('oai')).cred === 0, 'in_flight back to 0');
    await waitFor(() => silentOpen.size === 0, 'the half-made upstream connection closed');
    const row = await waitFor(async () => (await d.client.call('audit.tail', { n: 50 })).rows.find((x) => x.path === '/v1/ws-never-connects'), 'the audit row');
    expect(row).toMatchObject({ status: 504, verdict: 'upstream_timeout' });
  });
});
