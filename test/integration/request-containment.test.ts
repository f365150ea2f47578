/**
 * The request side of containment (issues 19 and 23), through the built daemon with real TLS: one canonical
 * host before policy (trailing dot, numeric IPv4 forms), injection sites (`--inject`), the leak scan
 * through gzip, percent-encoding and JSON escapes, and stale phantoms refused with 401 `unknown_phantom`.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SluiceEvent } from '../../src/shared/protocol/events.js';
import { connectDaemon } from '../../src/shared/rpc/client.js';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream, type SeenRequest } from '../fakes/fake-upstream.js';
import { runCli } from '../fakes/reliability-helpers.js';
import { connectTunnel } from '../fakes/ws-through-proxy.js';
import { basicAuth, fakeSecret, rawConnect, rawProxy, tokenOf as tokenOfDaemon, tunnelRaw, waitFor } from './helpers.js';

const tokenOf = tokenOfDaemon;

const ANT = 'api.anthropic.com';
const OAI = 'api.openai.com';
const ANT_SECRET = fakeSecret('sk-ant-api03-');
const OAI_SECRET = fakeSecret('sk-proj-');

let upstream: FakeUpstream;
let d: TestDaemon;
let ant = '';
let oai = '';

beforeAll(async () => {
  upstream = await startFakeUpstream();
  d = await startDaemon({ upstreamPort: upstream.port });
  await d.client.call('rule.add', { verdict: 'allow', host: ANT });
  await d.client.call('rule.add', { verdict: 'allow', host: OAI });
  await d.client.call('rule.add', { verdict: 'deny', host: 'evil.example' });
  await d.client.call('rule.add', { verdict: 'allow', host: '127.0.0.1' });
  ant = (await d.client.call('cred.add', { name: 'ant', hosts: [ANT], header: 'x-api-key', secret: ANT_SECRET })).phantom;
  oai = (await d.client.call('cred.add', { name: 'oai', hosts: [OAI], header: 'authorization', format: 'Bearer {}', secret: OAI_SECRET })).phantom;
});

afterAll(async () => {
  await d?.stop();
  await upstream?.close();
});

function seenAt(from: number, prefix: string): SeenRequest[] {
  return upstream.seen.slice(from).filter((r) => r.path.startsWith(prefix));
}

async function auditRows(event: string) {
  return (await d.client.call('audit.tail', { n: 200 })).rows.filter((r) => r.event === event);
}

/** A request written by hand (binary-safe) inside a TLS tunnel to `host` (CONNECT host:443); the raw answer. */
async function tunnelled(host: string, method: string, path: string, headers: Record<string, string>, body: Buffer | string = ''): Promise<string> {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`, 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (b.length > 0) lines.push(`Content-Length: ${b.length}`);
  const tunnel = await connectTunnel(d.proxyPort, host, 443, tokenOf(d));
  const t = tls.connect({ socket: tunnel as net.Socket, servername: host, ca: [fs.readFileSync(d.caPath, 'utf8')] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => (t.destroy(), reject(new Error('tunnelled request timed out'))), 10_000);
    t.on('secureConnect', () => t.write(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), b])));
    t.on('data', (c: Buffer) => (out += c.toString('latin1')));
    t.on('error', (e) => (clearTimeout(timer), reject(e)));
    t.on('close', () => (clearTimeout(timer), resolve(out)));
  });
}

const statusOf = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);

describe('one canonical host', () => {
  test('deny evil.example also denies evil.example. (trailing dot) through a CONNECT tunnel', async () => {
    const from = upstream.seen.length;
    const raw = await tunnelRaw(d, 'evil.example.', 'GET /x HTTP/1.1\r\nHost: evil.example.\r\nConnection: close\r\n\r\n');
    expect(statusOf(raw)).toBe(403);
    expect(raw).toContain('policy_denied');
    expect(upstream.seen.length).toBe(from);
  });

  test('deny evil.example also denies EVIL.example. as a plain proxy request', async () => {
    const r = await rawProxy(
      d.proxyPort,
      `GET http://EVIL.example./x HTTP/1.1\r\nHost: evil.example.\r\nProxy-Authorization: ${basicAuth(tokenOf(d))}\r\nConnection: close\r\n\r\n`,
    );
    expect(r.status).toBe(403);
    expect(r.text).toContain('policy_denied');
    // The audit names the canonical host.
    const rows = await waitFor(
      async () => (await d.client.call('audit.tail', { n: 50 })).rows.filter((x) => x.verdict === 'policy_denied' && x.path === '/x'),
      'denied rows',
    );
    expect(rows.every((x) => x.host === 'evil.example')).toBe(true);
  });

  test.each(['127.1', '2130706433', '0x7f000001', '0177.0.0.1'])('IPv4 alias %s is refused 400 invalid_host naming 127.0.0.1', async (alias) => {
    const r = await rawProxy(
      d.proxyPort,
      `GET http://${alias}:${upstream.port}/x HTTP/1.1\r\nHost: ${alias}:${upstream.port}\r\nProxy-Authorization: ${basicAuth(tokenOf(d))}\r\nConnection: close\r\n\r\n`,
    );
    expect(r.status).toBe(400);
    expect(r.text).toContain('invalid_host');
    expect(r.text).toContain('use 127.0.0.1');
  });

  test.each(['127.1', '2130706433', '0x7f000001'])('CONNECT to IPv4 alias %s is refused 400 before any certificate is made', async (alias) => {
    const r = await rawConnect(d.proxyPort, `${alias}:443`, basicAuth(tokenOf(d)));
    expect(r.status).toBe(400);
    expect(r.text).toContain('127.0.0.1');
  });

  test('[::ffff:127.0.0.1] is 127.0.0.1: a deny rule for 127.0.0.1 on a port applies to it', async () => {
    await d.client.call('rule.add', { verdict: 'deny', host: '127.0.0.1', port: 9 });
    const r = await rawProxy(
      d.proxyPort,
      `GET http://[::ffff:127.0.0.1]:9/x HTTP/1.1\r\nHost: [::ffff:127.0.0.1]:9\r\nProxy-Authorization: ${basicAuth(tokenOf(d))}\r\nConnection: close\r\n\r\n`,
    );
    expect(r.status).toBe(403);
    expect(r.text).toContain('policy_denied');
  });
});

describe('injection sites (--inject)', () => {
  test('cred.list shows inject, default header; cred.update changes it; a bad site is a clear error that changes nothing', async () => {
    const list = await d.client.call('cred.list');
    expect(list.credentials.find((c) => c.name === 'ant')!.inject).toEqual(['header']);
    await expect(d.client.call('cred.update', { name: 'ant', inject: ['header', 'cookie'] as never })).rejects.toMatchObject({
      message: expect.stringContaining('inject sites are header, query, body, path'),
    });
    await expect(d.client.call('cred.update', { name: 'ant', inject: [] })).rejects.toThrow(/at least one/);
    expect((await d.client.call('cred.list')).credentials.find((c) => c.name === 'ant')!.inject).toEqual(['header']);
  });

  test('sluicectl cred add/update --inject and cred list show the sites; a bad site names itself', async () => {
    const add = await runCli(['cred', 'add', 'cli-inj', '--host', 'cli.example', '--inject', 'query, header', '--json'], d.socket, {
      input: 'sk-cli-secret-0123456789\n',
    });
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout).inject).toEqual(['header', 'query']);
    const bad = await runCli(['cred', 'update', 'cli-inj', '--inject', 'header,cookies'], d.socket);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"cookies"');
    const upd = await runCli(['cred', 'update', 'cli-inj', '--inject', 'body,path'], d.socket);
    expect(upd.code, upd.stderr).toBe(0);
    const list = await runCli(['cred', 'list'], d.socket);
    expect(list.stdout).toMatch(/INJECT/);
    expect(list.stdout).toMatch(/cli-inj.*body,path/);
    await d.client.call('cred.remove', { name: 'cli-inj' });
  });

  test('a phantom outside its credential sites is left as the phantom and audited phantom_not_injected (one row)', async () => {
    const from = upstream.seen.length;
    const body = JSON.stringify({ prompt: 'my key is', key: ant });
    const raw = await tunnelled(ANT, 'POST', `/v1/sites?key=${ant}`, { 'x-api-key': ant, 'content-type': 'application/json' }, body);
    expect(statusOf(raw)).toBe(200);
    const seen = seenAt(from, '/v1/sites');
    expect(seen).toHaveLength(1);
    // Header: the default site, swapped. Query and body: not sites of `ant`, so the upstream sees the phantom.
    expect(seen[0]!.headers['x-api-key']).toBe(ANT_SECRET);
    expect(seen[0]!.path).toBe(`/v1/sites?key=${ant}`);
    expect(JSON.parse(seen[0]!.body).key).toBe(ant);
    expect(seen[0]!.body + seen[0]!.path).not.toContain(ANT_SECRET);
    const rows = await waitFor(async () => {
      const r = (await auditRows('phantom_not_injected')).filter((x) => x.path === '/v1/sites');
      return r.length > 0 ? r : null;
    }, 'phantom_not_injected row');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.credential).toBe('ant');
    expect(rows[0]!.detail).toContain('ant@query');
    expect(rows[0]!.detail).toContain('ant@body');
  });

  test('with --inject header,body the body phantom is swapped, also inside a gzip body (forwarded decoded)', async () => {
    await d.client.call('cred.update', { name: 'ant', inject: ['header', 'body'] });
    try {
      const from = upstream.seen.length;
      const gz = zlib.gzipSync(Buffer.from(JSON.stringify({ key: ant, text: 'héllo' })));
      const raw = await tunnelled(ANT, 'POST', '/v1/gzip-body', { 'x-api-key': ant, 'content-type': 'application/json', 'content-encoding': 'gzip' }, gz);
      expect(statusOf(raw)).toBe(200);
      const seen = seenAt(from, '/v1/gzip-body');
      expect(seen).toHaveLength(1);
      expect(seen[0]!.headers['content-encoding']).toBeUndefined();
      expect(JSON.parse(seen[0]!.body)).toEqual({ key: ANT_SECRET, text: 'héllo' });
      expect(Number(seen[0]!.headers['content-length'])).toBe(Buffer.byteLength(seen[0]!.body));
    } finally {
      await d.client.call('cred.update', { name: 'ant', inject: ['header'] });
    }
  });

  test('a phantom only in the body of a body-site credential is swapped and the request counts against that credential', async () => {
    const bodyOnly = (await d.client.call('cred.add', { name: 'body-only', hosts: [ANT], header: 'x-body-only', inject: ['body'], secret: fakeSecret() }))
      .phantom;
    try {
      const raw = await tunnelled(
        ANT,
        'POST',
        '/v1/body-only',
        { 'x-api-key': 'user-supplied', 'content-type': 'application/json' },
        JSON.stringify({ key: bodyOnly }),
      );
      expect(statusOf(raw)).toBe(200);
      const row = await waitFor(
        async () => (await d.client.call('audit.tail', { n: 100 })).rows.find((x) => x.event === 'request' && x.path === '/v1/body-only'),
        'the request row',
      );
      expect(row.credential).toBe('body-only');
    } finally {
      await d.client.call('cred.remove', { name: 'body-only' });
    }
  });

  test('a gzip body with no phantom to swap goes upstream as it came (still compressed)', async () => {
    const from = upstream.seen.length;
    const gz = zlib.gzipSync(Buffer.from('{"text":"nothing to see"}'));
    const raw = await tunnelled(ANT, 'POST', '/v1/gzip-plain', { 'x-api-key': ant, 'content-encoding': 'gzip' }, gz);
    expect(statusOf(raw)).toBe(200);
    expect(seenAt(from, '/v1/gzip-plain')[0]!.headers['content-encoding']).toBe('gzip');
  });

  test('a body in an encoding sluice cannot read is refused (415), never passed unscanned', async () => {
    const from = upstream.seen.length;
    const raw = await tunnelled(ANT, 'POST', '/v1/zstd', { 'x-api-key': ant, 'content-encoding': 'zstd' }, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]));
    expect(statusOf(raw)).toBe(415);
    expect(raw).toContain('undecodable_body');
    expect(seenAt(from, '/v1/zstd')).toHaveLength(0);
  });
});

describe('leak scan sees through encodings', () => {
  const leakCases: [string, () => Promise<string>][] = [
    [
      'a gzip-encoded body',
      () =>
        tunnelled(ANT, 'POST', '/v1/leak-gzip', { 'x-api-key': ant, 'content-encoding': 'gzip' }, zlib.gzipSync(Buffer.from(JSON.stringify({ other: oai })))),
    ],
    [
      'a deflate-encoded body',
      () =>
        tunnelled(
          ANT,
          'POST',
          '/v1/leak-deflate',
          { 'x-api-key': ant, 'content-encoding': 'deflate' },
          zlib.deflateSync(Buffer.from(JSON.stringify({ other: oai }))),
        ),
    ],
    [
      'a br-encoded body',
      () =>
        tunnelled(
          ANT,
          'POST',
          '/v1/leak-br',
          { 'x-api-key': ant, 'content-encoding': 'br' },
          zlib.brotliCompressSync(Buffer.from(JSON.stringify({ other: oai }))),
        ),
    ],
    [
      'JSON \\u escapes',
      () =>
        tunnelled(
          ANT,
          'POST',
          '/v1/leak-json',
          { 'x-api-key': ant, 'content-type': 'application/json' },
          `{"other":"${oai.replace('SLUICE', '\\u0053LUICE')}"}`,
        ),
    ],
    ['percent-encoding in the query', () => tunnelled(ANT, 'GET', `/v1/leak-query?k=${oai.replace('SLUICE', '%53%4CUICE')}`, { 'x-api-key': ant })],
    [
      'percent-encoding in a form body',
      () =>
        tunnelled(
          ANT,
          'POST',
          '/v1/leak-form',
          { 'x-api-key': ant, 'content-type': 'application/x-www-form-urlencoded' },
          `a=1&k=${oai.replace('SLUICE', '%53LUICE')}`,
        ),
    ],
  ];
  test.each(leakCases)('a phantom bound elsewhere hidden in %s is a phantom_leak (403, audited)', async (_name, send) => {
    const before = (await auditRows('phantom_leak')).length;
    const from = upstream.seen.length;
    const raw = await send();
    expect(statusOf(raw)).toBe(403);
    expect(raw).toContain('phantom_leak');
    expect(upstream.seen.slice(from).filter((r) => r.path.startsWith('/v1/leak'))).toHaveLength(0);
    await waitFor(async () => (await auditRows('phantom_leak')).length > before, 'a phantom_leak row');
  });
});

describe('stale phantom (issue 23)', () => {
  test('after cred remove + re-add, the old phantom gets 401 unknown_phantom, an audit row and a notice, and is never forwarded', async () => {
    const old = (await d.client.call('cred.add', { name: 'stale', hosts: [OAI], header: 'x-stale', secret: fakeSecret('sk-proj-') })).phantom;
    await d.client.call('cred.remove', { name: 'stale' });
    await d.client.call('cred.add', { name: 'stale', hosts: [OAI], header: 'x-stale', secret: fakeSecret('sk-proj-') });
    const sub = await connectDaemon({ socketPath: d.socket, timeoutMs: 10_000 });
    const events: SluiceEvent[] = [];
    sub.onEvent((e) => events.push(e));
    await sub.call('events.subscribe', {});
    try {
      const from = upstream.seen.length;
      const raw = await tunnelled(OAI, 'GET', '/v1/stale', { authorization: `Bearer ${oai}`, 'x-stale': old });
      expect(statusOf(raw)).toBe(401);
      expect(raw).toContain('unknown_phantom');
      expect(raw).toContain('sluicectl cred list');
      // OpenAI's error shape, so the SDK reports it as an auth problem.
      expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).error.code).toBe('unknown_phantom');
      expect(seenAt(from, '/v1/stale')).toHaveLength(0);
      const rows = await waitFor(async () => {
        const r = (await auditRows('unknown_phantom')).filter((x) => x.path === '/v1/stale');
        return r.length > 0 ? r : null;
      }, 'unknown_phantom row');
      expect(rows[0]!.status).toBe(401);
      expect(JSON.stringify(rows)).not.toContain(old);
      await waitFor(() => events.some((e) => e.type === 'notice' && JSON.stringify(e).includes('unknown_phantom')), 'an unknown_phantom notice');
    } finally {
      sub.close();
    }
  });
});
