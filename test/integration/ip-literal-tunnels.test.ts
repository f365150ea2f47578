/**
 * HTTPS to IP literals, for which clients send no SNI: sluice terminates TLS in-process with a certificate
 * for the IP, requests run through the same pipeline as named hosts, and no listening server is started per
 * address (http-mitm-proxy would start one per IP, never close it, and copy every byte through loopback);
 * WebSockets take the same path.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { request } from 'undici';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startHttpsUpstream } from '../fakes/fake-upstream.js';
import type { LoopbackServer } from '../fakes/loopback-server.js';
import { listeningTcp } from '../fakes/reliability-helpers.js';
import { nextMessage, openWsAt, startWsRecorder, type WsRecorder } from '../fakes/ws-helpers.js';
import { tokenOf } from '../fakes/ws-through-proxy.js';

let d: TestDaemon;
let upstream: LoopbackServer;
let rec: WsRecorder;
let auth = '';
let port = 0;

beforeAll(async () => {
  upstream = await startHttpsUpstream((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url, host: req.headers.host }));
  });
  rec = await startWsRecorder();
  d = await startDaemon();
  await d.client.call('rule.add', { verdict: 'allow', host: '127.0.0.*' });
  const u = new URL(d.proxyUrl);
  port = Number(u.port);
  auth = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
});

afterAll(async () => {
  await d?.stop();
  await upstream?.close();
  await rec?.close();
});

/** TLS through a CONNECT tunnel to `ip:p`, verified against sluice's CA for the IP itself (no SNI). */
function tlsToIp(ip: string, p: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(port, '127.0.0.1', () => raw.write(`CONNECT ${ip}:${p} HTTP/1.1\r\nHost: ${ip}:${p}\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`));
    raw.once('error', reject);
    raw.once('data', (c: Buffer) => {
      if (!c.toString().startsWith('HTTP/1.1 200')) return reject(new Error(c.toString()));
      const t = tls.connect({ socket: raw, host: ip, ca: fs.readFileSync(d.caPath) });
      t.once('secureConnect', () => resolve(t));
      t.once('error', reject);
    });
  });
}

/** Sends one request on `t` and resolves with the status line's code. */
function statusOf(t: tls.TLSSocket, ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    t.on('data', (c: Buffer) => {
      text += c.toString();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) resolve(Number(m[1]));
    });
    t.once('error', reject);
    t.write(`GET /probe HTTP/1.1\r\nHost: ${ip}\r\nConnection: close\r\n\r\n`);
  });
}

test('a request to https://127.0.0.1:<port> goes through, with a certificate for the IP, and is audited', async () => {
  const res = await request(`https://127.0.0.1:${upstream.port}/by-ip?q=1`, { dispatcher: d.dispatcher() });
  expect(res.statusCode).toBe(200);
  expect(await res.body.json()).toEqual({ path: '/by-ip?q=1', host: `127.0.0.1:${upstream.port}` });
  const rows = (await d.client.call('audit.tail', { n: 10 })).rows.filter((r) => r.path === '/by-ip');
  expect(rows).toHaveLength(1);
  expect(rows[0]).toMatchObject({ host: '127.0.0.1', port: upstream.port, status: 200, detail: 'completed' });
});

test('tunnels to twenty different IPs start no listening server in the daemon', async () => {
  const pid = d.proc.pid!;
  const before = listeningTcp(pid).length;
  for (let i = 2; i < 22; i++) {
    const ip = `127.0.0.${i}`;
    const t = await tlsToIp(ip, 443);
    // Nothing listens at <ip>:443, so the answer is sluice's own 502 — after TLS for that IP succeeded.
    expect(await statusOf(t, ip)).toBe(502);
    t.destroy();
  }
  expect(listeningTcp(pid).length).toBe(before);
});

test('a WebSocket to wss://127.0.0.1:<port> is relayed through the IP-literal tunnel', async () => {
  const r = await openWsAt({ proxyPort: port, token: decodeURIComponent(tokenOf(d.proxyUrl) ?? ''), caPath: d.caPath, host: '127.0.0.1', port: rec.port, path: '/ws-by-ip' });
  expect(r.ws, `upgrade answered ${r.status} ${r.body}`).toBeDefined();
  const ws = r.ws!;
  try {
    ws.send('hello');
    expect(await nextMessage(ws)).toBe('echo:hello');
    expect(rec.upgrades.map((u) => u.path)).toContain('/ws-by-ip');
  } finally {
    ws.terminate();
  }
});

test('an oversized request header inside an IP-literal tunnel is answered 431/400 or closed promptly, never left hanging (as for named hosts)', async () => {
  const t = await tlsToIp('127.0.0.1', upstream.port);
  const answer = new Promise<string>((resolve) => {
    let text = '';
    t.on('data', (c: Buffer) => (text += c.toString()));
    t.once('close', () => resolve(text));
  });
  t.write(`GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'x'.repeat(100 * 1024)}\r\n\r\n`);
  const text = await Promise.race([answer, new Promise<string>((r) => setTimeout(() => r('still open after 5 s'), 5000))]);
  expect(text === '' || /^HTTP\/1\.1 (431|400) /.test(text), JSON.stringify(text.slice(0, 60))).toBe(true);
  t.destroy();
});
