/**
 * A client opening a tunnel lets sluice open the upstream connection its first request will need,
 * in parallel with the client's TLS handshake (issue 21: first request to a new host). Only where policy allows the
 * destination outright: a tunnel to an `ask` or `deny` host opens nothing upstream before anyone says yes.
 */
import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { listenOnLoopback, type LoopbackServer } from '../fakes/loopback-server.js';
import { connectTunnel, tokenOf } from '../fakes/ws-through-proxy.js';
import { REPO_ROOT } from '../fakes/repo-root.js';

const TLS_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'tls');
const ALLOWED = 'api.anthropic.com';
const ASKED = 'api.openai.com';
const DENIED = 'evil.example';
let upstream: LoopbackServer;
/** Connections the upstream accepted, by SNI name. */
const accepted = new Map<string, number>();
let d: TestDaemon;

beforeAll(async () => {
  const server = https.createServer(
    { key: fs.readFileSync(path.join(TLS_DIR, 'upstream-key.pem')), cert: fs.readFileSync(path.join(TLS_DIR, 'upstream-cert.pem')) },
    (_req, res) => res.end('ok'),
  );
  server.on('secureConnection', (s: tls.TLSSocket) => {
    const name = String(s.servername);
    accepted.set(name, (accepted.get(name) ?? 0) + 1);
  });
  upstream = await listenOnLoopback(server);
  const resolve = [ALLOWED, ASKED, DENIED].map((h) => `${h}:443:127.0.0.1:${upstream.port}`).join(',');
  d = await startDaemon({ env: { SLUICE_RESOLVE: resolve } });
  await d.client.call('rule.add', { verdict: 'allow', host: ALLOWED });
  await d.client.call('rule.add', { verdict: 'ask', host: ASKED });
  await d.client.call('rule.add', { verdict: 'deny', host: DENIED });
});

afterAll(async () => {
  await d?.stop();
  await upstream?.close();
});

/** CONNECT and a TLS handshake with sluice, and no request. */
async function handshakeOnly(host: string): Promise<tls.TLSSocket> {
  const tunnel = await connectTunnel(d.proxyPort, host, 443, tokenOf(d.proxyUrl));
  const s = tls.connect({ socket: tunnel as net.Socket, servername: host, ca: fs.readFileSync(d.caPath) });
  await new Promise<void>((resolve, reject) => {
    s.once('secureConnect', resolve);
    s.once('error', reject);
  });
  return s;
}

test('a tunnel to an allowed host opens one upstream connection before its first request, and that request uses it', async () => {
  const s = await handshakeOnly(ALLOWED);
  await expect.poll(() => accepted.get(ALLOWED) ?? 0, { timeout: 3000 }).toBe(1);
  const r = await d.fetch(`https://${ALLOWED}/v1/messages`);
  expect(r.status).toBe(200);
  expect(accepted.get(ALLOWED)).toBe(1);
  s.destroy();
});

test('tunnels to ask and deny hosts open nothing upstream', async () => {
  const a = await handshakeOnly(ASKED);
  const b = await handshakeOnly(DENIED);
  await new Promise((r) => setTimeout(r, 300));
  expect(accepted.get(ASKED) ?? 0).toBe(0);
  expect(accepted.get(DENIED) ?? 0).toBe(0);
  a.destroy();
  b.destroy();
});
