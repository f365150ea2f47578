import http from 'node:http';
import type net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { UpstreamPool, type UpstreamConnection } from '../../../../src/daemon/proxy/upstream-pool.js';

let server: http.Server;
let port = 0;
const sockets = new Set<net.Socket>();
let accepted = 0;

beforeAll(async () => {
  server = http.createServer((_req, res) => res.end('ok'));
  server.on('connection', (s: net.Socket) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const target = () => ({ secure: false, host: '127.0.0.1', port, servername: undefined });

async function get(c: UpstreamConnection): Promise<string> {
  const r = await c.client.request({ method: 'GET', path: '/', headers: { host: 'example.test' } });
  return r.body.text();
}

function pool(maxIdlePerTarget?: number): UpstreamPool {
  return new UpstreamPool({ secureContext: tls.createSecureContext({}), connectTimeoutMs: 2000, maxIdlePerTarget });
}

test('a released connection is handed out again for the same target, marked as reused', async () => {
  const p = pool();
  const before = accepted;
  const a = p.acquire(target());
  expect(a.served).toBe(0);
  expect(await get(a)).toBe('ok');
  p.release(a, true);
  const b = p.acquire(target());
  expect(b).toBe(a);
  expect(b.served).toBe(1);
  expect(await get(b)).toBe('ok');
  p.release(b, true);
  expect(accepted - before).toBe(1);
  p.destroy();
});

test('a connection released after a failure is closed, never reused', async () => {
  const p = pool();
  const a = p.acquire(target());
  await get(a);
  p.release(a, false);
  expect(p.size).toBe(0);
  const b = p.acquire(target());
  expect(b).not.toBe(a);
  expect(b.served).toBe(0);
  p.destroy();
});

test('an idle connection the server closed is dropped, and the next request gets a new one (not a reused one)', async () => {
  const p = pool();
  const a = p.acquire(target());
  await get(a);
  p.release(a, true);
  for (const s of sockets) s.destroy();
  await new Promise((r) => setTimeout(r, 50));
  expect(p.size).toBe(0);
  const b = p.acquire(target());
  expect(b).not.toBe(a);
  expect(b.served).toBe(0);
  expect(await get(b)).toBe('ok');
  p.destroy();
});

test('idle connections per target are bounded; busy ones are never shared', async () => {
  const p = pool(1);
  const a = p.acquire(target());
  const b = p.acquire(target());
  expect(b).not.toBe(a);
  await Promise.all([get(a), get(b)]);
  p.release(a, true);
  p.release(b, true);
  expect(p.size).toBe(1);
  p.destroy();
  expect(p.size).toBe(0);
  expect(() => p.acquire(target())).toThrow(/closed/);
});

test('targets differing only in SNI name never share a connection', () => {
  const p = pool();
  const a = p.acquire({ secure: true, host: '127.0.0.1', port, servername: 'a.example' });
  p.release(a, true);
  const b = p.acquire({ secure: true, host: '127.0.0.1', port, servername: 'b.example' });
  expect(b).not.toBe(a);
  p.destroy();
});

test('a preconnected connection is the one the first request uses; a second preconnect opens nothing more', async () => {
  const p = pool();
  const before = accepted;
  p.preconnect(target());
  p.preconnect(target());
  await new Promise((r) => setTimeout(r, 50));
  expect(accepted - before).toBe(1);
  const a = p.acquire(target());
  expect(a.served).toBe(0);
  expect(await get(a)).toBe('ok');
  expect(accepted - before).toBe(1);
  p.release(a, true);
  p.destroy();
});

test('a preconnected connection nobody uses is closed after its wait; one that failed is not handed out', async () => {
  const p = new UpstreamPool({ secureContext: tls.createSecureContext({}), connectTimeoutMs: 2000, warmTtlMs: 100 });
  // Connections earlier tests closed are gone from the server's side by now.
  await new Promise((r) => setTimeout(r, 50));
  const open = sockets.size;
  p.preconnect(target());
  await new Promise((r) => setTimeout(r, 50));
  expect(sockets.size).toBe(open + 1);
  await new Promise((r) => setTimeout(r, 200));
  expect(sockets.size).toBe(open);
  // Nothing listens on port 1: the failed preconnect is forgotten and the request makes (and meets) its own.
  p.preconnect({ secure: false, host: '127.0.0.1', port: 1, servername: undefined });
  await new Promise((r) => setTimeout(r, 50));
  const c = p.acquire({ secure: false, host: '127.0.0.1', port: 1, servername: undefined });
  await expect(get(c)).rejects.toThrow(/ECONNREFUSED/);
  p.destroy();
});
