/**
 * A WebSocket upgrade waiting for approval notices its client leaving, as an HTTP request does: the
 * approval prompt stops counting a waiter that is gone (nobody answers anything), whether the client's TLS
 * socket is destroyed, its TCP connection reset, or it half-closes. A client that stays gets the upgrade once
 * approved, and the bytes it sent while it waited (in the upgrade's own packet and after it) all reach the
 * upstream: watching the socket reads nothing that is then lost.
 *
 * Through the built daemon, both ways an agent reaches a WebSocket: a plain proxy request (`ws://` through
 * HTTP_PROXY, the socket Node hands over with nobody reading it: before the watch, a close or half-close there
 * went unnoticed until the approval was answered), and CONNECT + TLS to an `ask` host resolved to the fake
 * upstream's WebSocket echo.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { WebSocketServer } from 'ws';
import { listenOnLoopback, type LoopbackServer } from '../fakes/loopback-server.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { connectTunnel, tokenOf } from '../fakes/ws-through-proxy.js';
import { basicAuth, waitFor } from './helpers.js';

/** An ask host the fake upstream's certificate covers; each test uses a port of its own (its own prompt). */
const ASK = 'other.example';
const PORTS = { destroy: 8443, reset: 8444, halfClose: 8445, stays: 8446 } as const;
const KEY = Buffer.alloc(16, 9).toString('base64');

let up: FakeUpstream;
let d: TestDaemon;
let token: string | null;
/** A plain (ws://) WebSocket echo on 127.0.0.1, for the plain proxy path. */
let plain: LoopbackServer;

beforeAll(async () => {
  up = await startFakeUpstream();
  const wss = new WebSocketServer({ noServer: true });
  const server = http.createServer();
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m: Buffer, isBinary) => ws.send(isBinary ? m : `echo:${m.toString()}`))),
  );
  plain = await listenOnLoopback(server);
  const resolve = Object.values(PORTS)
    .map((p) => `${ASK}:${p}:127.0.0.1:${up.port}`)
    .join(',');
  d = await startDaemon({ upstreamPort: up.port, env: { SLUICE_RESOLVE: resolve } });
  token = decodeURIComponent(tokenOf(d.proxyUrl) ?? '');
  await d.client.call('rule.add', { verdict: 'ask', host: ASK });
  await d.client.call('rule.add', { verdict: 'ask', host: '127.0.0.1' });
});

afterAll(async () => {
  await d?.stop();
  await up?.close();
  await plain?.close();
});

/** A masked client text frame (payload under 126 bytes), as a WebSocket client sends it. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/** The upgrade request for `path` on `ASK:port` (inside a tunnel), or on `127.0.0.1:port` as a plain proxy request. */
function upgradeRequest(port: number, path: string, viaPlainProxy = false): string {
  const target = viaPlainProxy ? `127.0.0.1:${port}` : `${ASK}:${port}`;
  const lines = [
    viaPlainProxy ? `GET http://${target}${path} HTTP/1.1` : `GET ${path} HTTP/1.1`,
    `Host: ${target}`,
    ...(viaPlainProxy ? [`Proxy-Authorization: ${basicAuth(token ?? '')}`] : []),
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${KEY}`,
    'Sec-WebSocket-Version: 13',
  ];
  return lines.join('\r\n') + '\r\n\r\n';
}

/** CONNECT to `ASK:port`, TLS inside (trusting the sluice CA); everything the proxy sends back is collected. */
async function tlsClient(port: number): Promise<{ tunnel: net.Socket; sock: tls.TLSSocket; received: () => Buffer }> {
  const tunnel = (await connectTunnel(d.proxyPort, ASK, port, token)) as net.Socket;
  tunnel.on('error', () => {});
  const sock = tls.connect({ socket: tunnel, servername: ASK, ca: fs.readFileSync(d.caPath) });
  sock.on('error', () => {});
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => resolve());
    sock.once('error', reject);
  });
  return { tunnel, sock, received: () => Buffer.concat(chunks) };
}

/** A plain TCP connection to the proxy (for `ws://` through HTTP_PROXY); everything it receives is collected. */
async function plainClient(): Promise<{ sock: net.Socket; received: () => Buffer }> {
  const sock = net.connect(d.proxyPort, '127.0.0.1');
  sock.on('error', () => {});
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  return { sock, received: () => Buffer.concat(chunks) };
}

async function promptFor(port: number, path: string) {
  return (await d.client.call('approval.list')).approvals.find((a) => (a.host === ASK || a.host === '127.0.0.1') && a.port === port && a.path === path);
}

/** Waits for the prompt of `port` to count one waiter. */
async function oneWaiter(port: number, path: string) {
  return waitFor(async () => {
    const p = await promptFor(port, path);
    return p && p.waiters === 1 ? p : null;
  }, `the approval prompt for ${ASK}:${port} with one waiter`);
}

/** Waits until nobody waits on the prompt any more (it lists 0 waiters, or is gone), with nobody answering it. */
async function noWaiter(port: number, path: string): Promise<void> {
  await waitFor(async () => {
    const p = await promptFor(port, path);
    return p === undefined || p.waiters === 0;
  }, `the approval prompt for ${ASK}:${port} to lose its waiter`);
}

describe('a plain-proxy WebSocket client that leaves while its upgrade waits for approval', () => {
  // Ports nothing listens on: the upgrade never gets past approval.
  test('its socket closed: the prompt drops the waiter without anyone answering', async () => {
    const c = await plainClient();
    c.sock.write(upgradeRequest(1, '/plain-close', true));
    const p = await oneWaiter(1, '/plain-close');
    c.sock.destroy();
    await noWaiter(1, '/plain-close');
    await expect(d.client.call('approval.resolve', { id: p.id, decision: 'deny' })).resolves.toMatchObject({ waiters: 0 });
  });

  test('its TCP connection reset (RST): the prompt drops the waiter', async () => {
    const c = await plainClient();
    c.sock.write(upgradeRequest(2, '/plain-reset', true));
    const p = await oneWaiter(2, '/plain-reset');
    c.sock.resetAndDestroy();
    await noWaiter(2, '/plain-reset');
    await d.client.call('approval.resolve', { id: p.id, decision: 'deny' });
  });

  test('it half-closes (FIN): the prompt drops the waiter and sluice closes its side', async () => {
    const c = await plainClient();
    let closed = false;
    c.sock.once('close', () => (closed = true));
    c.sock.write(upgradeRequest(3, '/plain-half', true));
    const p = await oneWaiter(3, '/plain-half');
    c.sock.end();
    try {
      await noWaiter(3, '/plain-half');
      await waitFor(() => closed, 'sluice closing the half-closed connection');
    } finally {
      c.sock.destroy();
    }
    await d.client.call('approval.resolve', { id: p.id, decision: 'deny' });
  });
});

describe('a tunnelled (TLS) WebSocket client that leaves while its upgrade waits for approval', () => {
  test('its TLS socket destroyed: the prompt drops the waiter without anyone answering', async () => {
    const c = await tlsClient(PORTS.destroy);
    c.sock.write(upgradeRequest(PORTS.destroy, '/ws-destroy'));
    const p = await oneWaiter(PORTS.destroy, '/ws-destroy');
    c.sock.destroy();
    await noWaiter(PORTS.destroy, '/ws-destroy');
    // The prompt was never answered: the waiter left on its own.
    await expect(d.client.call('approval.resolve', { id: p.id, decision: 'deny' })).resolves.toMatchObject({ waiters: 0 });
  });

  test('its TCP connection reset (RST): the prompt drops the waiter', async () => {
    const c = await tlsClient(PORTS.reset);
    c.sock.write(upgradeRequest(PORTS.reset, '/ws-reset'));
    const p = await oneWaiter(PORTS.reset, '/ws-reset');
    c.tunnel.resetAndDestroy();
    await noWaiter(PORTS.reset, '/ws-reset');
    await d.client.call('approval.resolve', { id: p.id, decision: 'deny' });
  });

  test('it half-closes (TLS close_notify + FIN): the prompt drops the waiter', async () => {
    const c = await tlsClient(PORTS.halfClose);
    c.sock.write(upgradeRequest(PORTS.halfClose, '/ws-half'));
    const p = await oneWaiter(PORTS.halfClose, '/ws-half');
    c.sock.end();
    try {
      await noWaiter(PORTS.halfClose, '/ws-half');
    } finally {
      c.sock.destroy();
    }
    await d.client.call('approval.resolve', { id: p.id, decision: 'deny' });
  });
});

test('control (plain proxy): a client that stays gets the upgrade once approved, and every byte it sent while waiting reaches the upstream', async () => {
  const c = await plainClient();
  try {
    c.sock.write(Buffer.concat([Buffer.from(upgradeRequest(plain.port, '/plain-stays', true)), textFrame('in-head')]));
    const p = await oneWaiter(plain.port, '/plain-stays');
    c.sock.write(textFrame('while-waiting'));
    // The watch reads what arrives while the upgrade waits; the frame must be in sluice's hands before the answer.
    await waitFor(() => c.sock.writableLength === 0, 'the second frame written');
    expect((await d.client.call('approval.resolve', { id: p.id, decision: 'allow_once' })).waiters).toBe(1);
    await waitFor(() => c.received().includes('echo:while-waiting'), 'both frames echoed back');
    const text = c.received().toString('latin1');
    expect(text.startsWith('HTTP/1.1 101')).toBe(true);
    expect(text.indexOf('echo:in-head')).toBeGreaterThan(0);
    expect(text.indexOf('echo:while-waiting')).toBeGreaterThan(text.indexOf('echo:in-head'));
  } finally {
    c.sock.destroy();
  }
});

test('control (tunnel): a client that stays gets the upgrade once approved, and every byte it sent while waiting reaches the upstream', async () => {
  const c = await tlsClient(PORTS.stays);
  try {
    // One frame in the upgrade's own packet (the upgrade's `head`), one sent while the upgrade waits.
    c.sock.write(Buffer.concat([Buffer.from(upgradeRequest(PORTS.stays, '/ws-stays')), textFrame('in-head')]));
    const p = await oneWaiter(PORTS.stays, '/ws-stays');
    c.sock.write(textFrame('while-waiting'));
    // Let the second frame reach sluice before the answer (it sits in sluice's hands until the upgrade is accepted).
    await waitFor(async () => c.sock.bytesWritten > 0 && c.sock.writableLength === 0, 'the second frame written');
    expect((await d.client.call('approval.resolve', { id: p.id, decision: 'allow_once' })).waiters).toBe(1);
    await waitFor(() => c.received().includes('echo:while-waiting'), 'both frames echoed back');
    const text = c.received().toString('latin1');
    expect(text.startsWith('HTTP/1.1 101')).toBe(true);
    expect(text.indexOf('echo:in-head')).toBeGreaterThan(0);
    expect(text.indexOf('echo:while-waiting')).toBeGreaterThan(text.indexOf('echo:in-head'));
  } finally {
    c.sock.destroy();
  }
});
