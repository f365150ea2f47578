/**
 * The upstream HTTP client (undici since issue 21): what it must keep doing that Node's `https.request` did.
 * `Expect: 100-continue` from a client (curl sends it for large bodies) still goes through, 1xx interim
 * answers are skipped, repeated response headers all reach the client, and a request that fails on a *new*
 * connection is not re-sent (only one that failed on a reused connection is; see stale-connection.test.ts).
 */
import fs from 'node:fs';
import type http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startHttpsUpstream } from '../fakes/fake-upstream.js';
import { listenOnLoopback, type LoopbackServer } from '../fakes/loopback-server.js';
import { REPO_ROOT } from '../fakes/repo-root.js';
import { connectTunnel, tokenOf } from '../fakes/ws-through-proxy.js';

const TLS_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'tls');
const HOST = 'api.anthropic.com';
/** Served by a raw TLS server that ends each body by closing the connection (no length, no chunks). */
const RAW = 'chatgpt.com';
/** Used by one test only, so its daemon-side pool is empty when that test starts. */
const FRESH = 'api.openai.com';
let upstream: LoopbackServer;
let rawUpstream: LoopbackServer;
let d: TestDaemon;
const seen: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];

beforeAll(async () => {
  upstream = await startHttpsUpstream((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', headers: req.headers, body });
      if (req.url === '/hints') {
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('after hints'), 20);
        return;
      }
      if (req.url === '/cookies') {
        res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
        res.setHeader('x-multi', ['one', 'two']);
        return void res.end('cookies');
      }
      // The first request on every connection is dropped unanswered: a new connection that fails.
      if (req.url === '/reset-new') return void req.socket.destroy();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, got: body.length }));
    });
  });
  rawUpstream = await listenOnLoopback(
    tls.createServer({ key: fs.readFileSync(path.join(TLS_DIR, 'upstream-key.pem')), cert: fs.readFileSync(path.join(TLS_DIR, 'upstream-cert.pem')) }, (s) => {
      s.on('error', () => {});
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nfirst part, ');
        setTimeout(() => s.end('and the rest until close'), 20);
      });
    }),
  );
  d = await startDaemon({
    env: {
      SLUICE_RESOLVE: `${HOST}:443:127.0.0.1:${upstream.port},${FRESH}:443:127.0.0.1:${upstream.port},${RAW}:443:127.0.0.1:${rawUpstream.port}`,
    },
  });
  for (const host of [HOST, FRESH, RAW]) await d.client.call('rule.add', { verdict: 'allow', host });
});

afterAll(async () => {
  await d?.stop();
  await upstream?.close();
  await rawUpstream?.close();
});

/** One raw HTTP/1.1 exchange inside a CONNECT tunnel (so headers undici would refuse can be sent). */
async function raw(request: string, body?: Buffer): Promise<string> {
  const tunnel = await connectTunnel(d.proxyPort, HOST, 443, tokenOf(d.proxyUrl));
  const s = tls.connect({ socket: tunnel as net.Socket, servername: HOST, ca: fs.readFileSync(d.caPath) });
  return new Promise((resolve, reject) => {
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      // Waits for "100 Continue" before sending the body, as curl does.
      if (body && got.startsWith('HTTP/1.1 100')) {
        s.write(body);
        body = undefined;
        got = '';
      }
    });
    s.once('end', () => resolve(got));
    s.once('error', reject);
    s.write(request);
  });
}

test('a POST with Expect: 100-continue gets its 100, then goes upstream whole and without the Expect header', async () => {
  const body = Buffer.alloc(200_000, 'x');
  const r = await raw(
    `POST /v1/upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    body,
  );
  expect(r).toMatch(/^HTTP\/1\.1 200/);
  expect(r).toContain(`"got":${body.length}`);
  const s = seen.find((x) => x.path === '/v1/upload')!;
  expect(s.body.length).toBe(body.length);
  expect(s.headers.expect).toBeUndefined();
});

test('a 103 Early Hints before the answer is skipped: the client gets the final 200 and its body', async () => {
  const r = await raw(`GET /hints HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
  expect(r).toMatch(/^HTTP\/1\.1 200/);
  expect(r).toContain('after hints');
});

test('repeated response headers all reach the client (each Set-Cookie on its own line)', async () => {
  const r = await raw(`GET /cookies HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
  expect(r).toMatch(/^HTTP\/1\.1 200/);
  expect(r).toMatch(/\r\nset-cookie: a=1; Path=\/\r\n/i);
  expect(r).toMatch(/\r\nset-cookie: b=2; Path=\/\r\n/i);
  expect(r).toMatch(/\r\nx-multi: one, two\r\n/i);
});

test('a request that fails on a new connection is answered 502 and not sent again', async () => {
  const r = await d.fetch(`https://${FRESH}/reset-new`, { method: 'POST', body: 'once' });
  expect(r.status).toBe(502);
  expect(JSON.parse(r.text).sluice.code).toBe('upstream_error');
  // No connection to this name was ever kept, so the one attempt was on a new connection: never repeated.
  expect(seen.filter((s) => s.path === '/reset-new')).toHaveLength(1);
});

test('a body the upstream ends by closing its connection (no length, no chunks) arrives whole', async () => {
  const r = await d.fetch(`https://${RAW}/v1/anything`);
  expect(r.status).toBe(200);
  expect(r.text).toBe('first part, and the rest until close');
});

test('the daemon prints no runtime warning (a deprecated undici option would print one on first use)', () => {
  expect(d.logs()).not.toMatch(/Warning:|\[UNDICI-|DEP0\d+/);
});
