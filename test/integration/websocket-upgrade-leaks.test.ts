/**
 * WebSocket upgrades never leak permits. A malformed upgrade (missing or invalid Sec-WebSocket-Key, a
 * version other than 13) is refused with 400 before admission: no permit, nothing upstream; before, each
 * one took a permit and opened the upstream, then `ws` answered 400 and nothing released them, so eight of
 * them held all eight slots of a credential until restart. A client that half-closes while the upstream
 * connection is being made gets its permit released and the upstream closed.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { WebSocketServer } from 'ws';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { listenOnLoopback, type LoopbackServer } from '../fakes/loopback-server.js';
import { nextMessage } from '../fakes/ws-helpers.js';
import { openWebSocket } from '../fakes/ws-through-proxy.js';
import { basicAuth, fakeSecret, tokenOf, tunnelRaw, waitFor } from './helpers.js';

const OAI = 'api.openai.com';
let d: TestDaemon;
let up: FakeUpstream;
let slow: LoopbackServer;
/** Upgrade requests the slow WebSocket server has received, and its sockets still open. */
let slowUpgrades = 0;
const slowOpen = new Set<net.Socket>();
let release: () => void = () => {};
let auth = { authorization: '' };

beforeAll(async () => {
  up = await startFakeUpstream();
  // A plain WebSocket server that holds every upgrade until the test lets it go (a slow upstream connect).
  const wss = new WebSocketServer({ noServer: true });
  const server = http.createServer();
  server.on('connection', (s: net.Socket) => {
    slowOpen.add(s);
    s.once('close', () => slowOpen.delete(s));
  });
  server.on('upgrade', (req, socket, head) => {
    slowUpgrades++;
    const prev = release;
    release = () => {
      prev();
      if (!socket.destroyed) wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(`echo:${m.toString()}`)));
    };
  });
  slow = await listenOnLoopback(server);
  d = await startDaemon({ upstreamPort: up.port });
  await d.client.call('rule.add', { verdict: 'allow', host: OAI });
  await d.client.call('rule.add', { verdict: 'allow', host: '127.0.0.1' });
  const c = await d.client.call('cred.add', {
    name: 'oai',
    hosts: [OAI],
    header: 'authorization',
    format: 'Bearer {}',
    secret: fakeSecret('sk-proj-'),
    max_concurrent: 8,
  });
  auth = { authorization: `Bearer ${c.phantom}` };
});

afterAll(async () => {
  await d?.stop();
  await up?.close();
  await slow?.close();
});

async function inFlight(): Promise<{ cred: number; global: number }> {
  const s = await d.client.call('stats.snapshot');
  return { cred: s.credentials.find((c) => c.name === 'oai')?.in_flight ?? -1, global: s.global.in_flight };
}

const GOOD_KEY = Buffer.alloc(16, 7).toString('base64');

test('ten malformed upgrades are refused 400 before admission: no permit taken, nothing upstream; a valid upgrade then works', async () => {
  const bad: [string, Record<string, string>][] = [
    ['no-key', { 'Sec-WebSocket-Version': '13' }],
    ['short-key', { 'Sec-WebSocket-Key': 'c2hvcnQ=', 'Sec-WebSocket-Version': '13' }],
    ['junk-key', { 'Sec-WebSocket-Key': 'not base64 at all!!!!!==', 'Sec-WebSocket-Version': '13' }],
    ['long-key', { 'Sec-WebSocket-Key': Buffer.alloc(20, 1).toString('base64'), 'Sec-WebSocket-Version': '13' }],
    ['version-8', { 'Sec-WebSocket-Key': GOOD_KEY, 'Sec-WebSocket-Version': '8' }],
    ['version-14', { 'Sec-WebSocket-Key': GOOD_KEY, 'Sec-WebSocket-Version': '14' }],
    ['no-version', { 'Sec-WebSocket-Key': GOOD_KEY }],
    ['bad-protocol', { 'Sec-WebSocket-Key': GOOD_KEY, 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Protocol': 'a b,,' }],
    ['no-key-2', { 'Sec-WebSocket-Version': '13' }],
    ['version-0', { 'Sec-WebSocket-Key': GOOD_KEY, 'Sec-WebSocket-Version': '0' }],
  ];
  const seenBefore = up.seen.length;
  const answers: string[] = [];
  for (const [name, headers] of bad) {
    const lines = [
      `GET /v1/bad-upgrade/${name} HTTP/1.1`,
      `Host: ${OAI}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Authorization: ${auth.authorization}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    const text = await tunnelRaw(d, OAI, lines.join('\r\n') + '\r\n\r\n');
    expect(text.split('\r\n')[0], name).toMatch(/^HTTP\/1\.1 400 /);
    answers.push(text);
  }
  await waitFor(
    async () => {
      const f = await inFlight();
      return f.cred === 0 && f.global === 0;
    },
    'in_flight 0 after the malformed upgrades',
    3000,
  );
  expect(up.seen.slice(seenBefore).filter((r) => r.path.startsWith('/v1/bad-upgrade'))).toEqual([]);
  for (const text of answers) expect(text).toContain('websocket_bad_upgrade');
  const rows = (await d.client.call('audit.tail', { n: 50 })).rows.filter((r) => r.path?.startsWith('/v1/bad-upgrade/'));
  expect(rows).toHaveLength(bad.length);
  expect(rows.every((r) => r.status === 400 && r.verdict === 'websocket_bad_upgrade')).toBe(true);
  const r = await openWebSocket({ proxyPort: d.proxyPort, token: tokenOf(d), caPath: d.caPath, host: OAI, path: '/v1/after-bad', headers: auth });
  expect('ws' in r, JSON.stringify(r)).toBe(true);
  if ('ws' in r) {
    expect((await inFlight()).cred).toBe(1);
    r.ws.send('hi');
    expect(await nextMessage(r.ws)).toBe('echo:hi');
    r.ws.close();
  }
  await waitFor(async () => (await inFlight()).cred === 0, 'in_flight 0 after the valid socket closed');
});

test('a client that half-closes while the upstream connection is being made: permit released, upstream closed, audited', async () => {
  const before = slowUpgrades;
  const globalBefore = (await inFlight()).global;
  const s = net.connect(d.proxyPort, '127.0.0.1');
  s.on('error', () => {});
  s.resume();
  await new Promise<void>((r) => s.once('connect', () => r()));
  const target = `127.0.0.1:${slow.port}`;
  s.write(
    [
      `GET http://${target}/half-close HTTP/1.1`,
      `Host: ${target}`,
      `Proxy-Authorization: ${basicAuth(tokenOf(d))}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${GOOD_KEY}`,
      'Sec-WebSocket-Version: 13',
    ].join('\r\n') + '\r\n\r\n',
  );
  try {
    await waitFor(() => slowUpgrades > before, 'the upgrade reaching the slow upstream');
    expect((await inFlight()).global).toBe(globalBefore + 1);
    // Half-close: the client sends FIN and keeps its read side open.
    s.end();
    // About time: the proxy must notice the FIN before the upstream answers; give it 200 ms with nothing else moving.
    await new Promise((r) => setTimeout(r, 200));
    release();
    await waitFor(async () => (await inFlight()).global === globalBefore, 'the permit released', 3000);
    await waitFor(() => slowOpen.size === 0, 'the upstream connection closed');
    const row = await waitFor(async () => (await d.client.call('audit.tail', { n: 50 })).rows.find((r) => r.path === '/half-close'), 'the audit row');
    expect(row).toMatchObject({ host: '127.0.0.1', port: slow.port, detail: 'client_left_during_upgrade' });
  } finally {
    s.destroy();
  }
});
