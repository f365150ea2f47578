/**
 * Tunnels handled in-process. HTTPS to IP literals, for which clients send no SNI: sluice terminates TLS with
 * a certificate for the IP, requests run through the same pipeline as named hosts, and no listening server is
 * started per address (http-mitm-proxy would start one per IP, never close it, and copy every byte through
 * loopback); WebSockets take the same path. Plain HTTP inside a CONNECT tunnel is parsed from the tunnel's own
 * socket and belongs to that CONNECT (no second proxy login).
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { request } from 'undici';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startHttpsUpstream } from '../fakes/fake-upstream.js';
import type { LoopbackServer } from '../fakes/loopback-server.js';
import { listeningTcp, tcpSockets } from '../fakes/reliability-helpers.js';
import { nextMessage, openWsAt, startWsRecorder, type WsRecorder } from '../fakes/ws-helpers.js';
import { connectTunnel, tokenOf } from '../fakes/ws-through-proxy.js';
import { WebSocket, WebSocketServer } from 'ws';
import { waitFor, within } from '../fakes/wait-for.js';

let d: TestDaemon;
let upstream: LoopbackServer;
let rec: WsRecorder;
let plain: http.Server;
let plainPort = 0;
let auth = '';
let port = 0;

beforeAll(async () => {
  upstream = await startHttpsUpstream((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url, host: req.headers.host }));
  });
  rec = await startWsRecorder();
  plain = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url, host: req.headers.host }));
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  plainPort = (plain.address() as net.AddressInfo).port;
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
  plain?.closeAllConnections();
  await new Promise((r) => plain?.close(r));
});

/** TLS through a CONNECT tunnel to `ip:p`, verified against sluice's CA for the IP itself (no SNI). */
function tlsToIp(ip: string, p: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(port, '127.0.0.1', () =>
      raw.write(`CONNECT ${ip}:${p} HTTP/1.1\r\nHost: ${ip}:${p}\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`),
    );
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
  const r = await openWsAt({
    proxyPort: port,
    token: decodeURIComponent(tokenOf(d.proxyUrl) ?? ''),
    caPath: d.caPath,
    host: '127.0.0.1',
    port: rec.port,
    path: '/ws-by-ip',
  });
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
  // A deadline, not a wait: the behaviour under test is "answered or closed promptly".
  const text = await within(answer, 5000, 'the tunnel to answer or close').catch(() => 'still open after 5 s');
  expect(text === '' || /^HTTP\/1\.1 (431|400) /.test(text), JSON.stringify(text.slice(0, 60))).toBe(true);
  t.destroy();
});

/** A raw TCP conversation with the proxy: what it sent so far, and a wait for a pattern in it (5 s). */
async function rawConversation(): Promise<{ raw: net.Socket; text: () => string; until: (re: RegExp, what: string) => Promise<void> }> {
  const raw = net.connect(port, '127.0.0.1');
  let text = '';
  raw.on('data', (c: Buffer) => (text += c.toString()));
  await new Promise<void>((r) => raw.once('connect', () => r()));
  const until = async (re: RegExp, what: string) => {
    await waitFor(() => re.test(text), { what, timeoutMs: 5000 }).catch(() => {});
    expect(text, what).toMatch(re);
  };
  return { raw, text: () => text, until };
}

test('plain HTTP inside a CONNECT tunnel is proxied on the tunnel itself, two requests on one tunnel, both audited', async () => {
  const { raw, text, until } = await rawConversation();
  try {
    raw.write(`CONNECT 127.0.0.1:${plainPort} HTTP/1.1\r\nHost: 127.0.0.1:${plainPort}\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`);
    await until(/^HTTP\/1\.1 200/, 'the CONNECT answer');
    // No Proxy-Authorization inside: the requests belong to the authenticated CONNECT.
    raw.write(`GET /plain-in-tunnel/1 HTTP/1.1\r\nHost: 127.0.0.1:${plainPort}\r\n\r\n`);
    await until(/"path":"\/plain-in-tunnel\/1"/, 'the first answer');
    raw.write(`GET /plain-in-tunnel/2 HTTP/1.1\r\nHost: 127.0.0.1:${plainPort}\r\n\r\n`);
    await until(/"path":"\/plain-in-tunnel\/2"/, 'the second answer on the same tunnel');
    expect(text().match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    // The tunnel is parsed where it arrived: the daemon opened no connection to its own proxy port for it.
    expect(tcpSockets(d.proc.pid!).filter((s) => s.state === '01' && s.remote.port === port)).toEqual([]);
  } finally {
    raw.destroy();
  }
  const rows = (await d.client.call('audit.tail', { n: 20 })).rows.filter((r) => r.path?.startsWith('/plain-in-tunnel'));
  expect(rows.map((r) => [r.host, r.status, r.detail])).toEqual([
    ['127.0.0.1', 200, 'completed'],
    ['127.0.0.1', 200, 'completed'],
  ]);
});

test('a plain ws:// WebSocket inside a CONNECT tunnel is relayed', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws, req) => ws.on('message', (m) => ws.send(`echo:${m.toString()}:${req.url}`)));
  const wsPort = (wss.address() as net.AddressInfo).port;
  try {
    const tunnel = await connectTunnel(port, '127.0.0.1', wsPort, decodeURIComponent(tokenOf(d.proxyUrl) ?? ''));
    const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/plain-ws`, { createConnection: () => tunnel as net.Socket } as ConstructorParameters<
      typeof WebSocket
    >[2]);
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
        ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
      });
      ws.send('hi');
      expect(await nextMessage(ws)).toBe('echo:hi:/plain-ws');
    } finally {
      ws.terminate();
    }
  } finally {
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
  }
});

test('a connection that first sends a plain proxy request and then a CONNECT: requests inside the tunnel belong to it', async () => {
  const { raw, until } = await rawConversation();
  try {
    raw.write(`GET http://127.0.0.1:${plainPort}/before-connect HTTP/1.1\r\nHost: 127.0.0.1:${plainPort}\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`);
    await until(/"path":"\/before-connect"/, 'the plain proxy answer');
    raw.write(`CONNECT 127.0.0.1:${plainPort} HTTP/1.1\r\nHost: 127.0.0.1:${plainPort}\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`);
    await until(/200 Connection Established/, 'the CONNECT answer');
    raw.write(`GET /inside-after HTTP/1.1\r\nHost: 127.0.0.1:${plainPort}\r\n\r\n`);
    await until(/"path":"\/inside-after"/, 'the answer inside the tunnel (no second proxy login)');
  } finally {
    raw.destroy();
  }
});
