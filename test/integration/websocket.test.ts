/**
 * WebSockets through the real proxy (issue 14, DESIGN §4/§6/§7): the upgrade goes through the same pipeline
 * as HTTP (proxy token, policy, approval, phantom → real secret in headers and query, leak block, permits,
 * audit), upstream first and only then the client, so refusals are real HTTP statuses on the upgrade;
 * frames are relayed both ways unbuffered with ping/pong and close codes preserved; client text messages
 * get the phantom swap (foreign phantoms stripped and audited), server messages get our secrets masked;
 * one permit per open socket released exactly once; pooled upgrades fail over on 401/429.
 *
 * Upstreams (all on 127.0.0.1, reached through SLUICE_RESOLVE):
 *   api.openai.com, api.anthropic.com, evil.example, other.example :443 → the echoing fake upstream
 *   chatgpt.com:443                                                   → a recording WebSocket upstream
 *   api.openai.com:8443                                               → an upstream with an untrusted cert
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { WebSocket } from 'ws';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { openWebSocket, tokenOf } from '../fakes/ws-through-proxy.js';
import { closed, nextMessage, nextPong, openWsAt, startWsRecorder, within, type WsOpen, type WsRecorder } from '../fakes/ws-helpers.js';
import { defaultResolvePairs, fakeSecret, rawConnect, resolveSpec, sleep, waitFor } from './helpers.js';

const OAI = 'api.openai.com';
const ANT = 'api.anthropic.com';
const REC = 'chatgpt.com';
const DENIED = 'evil.example';
const ASK = 'other.example';
const UNTRUSTED_PORT = 8443;

let upstream: FakeUpstream;
let untrusted: FakeUpstream;
let rec: WsRecorder;
let d: TestDaemon;
let token: string;

interface Cred {
  name: string;
  phantom: string;
  secret: string;
}

/** `o`: OpenAI key bound to api.openai.com; `c`: bound to chatgpt.com (the recorder); `a`: Anthropic key. */
let o: Cred;
let c: Cred;
let a: Cred;

async function addCred(name: string, host: string, opts: { max_concurrent?: number } = {}): Promise<Cred> {
  const isAnt = host === ANT;
  const secret = fakeSecret(isAnt ? 'sk-ant-api03-' : 'sk-proj-');
  const info = await d.client.call('cred.add', {
    name,
    hosts: [host],
    header: isAnt ? 'x-api-key' : 'authorization',
    format: isAnt ? undefined : 'Bearer {}',
    secret,
    max_concurrent: opts.max_concurrent,
    // One test puts the phantom in the upgrade URL's query, one in a message (a message counts as a body):
    // query and body injection are opt-in (issue 19).
    inject: ['header', 'query', 'body'],
  });
  return { name, phantom: info.phantom, secret };
}

beforeAll(async () => {
  upstream = await startFakeUpstream();
  untrusted = await startFakeUpstream({ untrusted: true });
  rec = await startWsRecorder();
  const resolve = [
    resolveSpec(upstream.port, defaultResolvePairs()),
    resolveSpec(rec.port, [[REC, 443]]),
    resolveSpec(untrusted.port, [[OAI, UNTRUSTED_PORT]]),
  ].join(',');
  d = await startDaemon({ upstreamPort: upstream.port, env: { SLUICE_RESOLVE: resolve, SLUICE_DEFAULT_VERDICT: 'ask' } });
  token = decodeURIComponent(tokenOf(d.proxyUrl) ?? '');
  expect(token).not.toBe('');
  await d.client.call('rule.add', { verdict: 'allow', host: OAI });
  await d.client.call('rule.add', { verdict: 'allow', host: ANT });
  await d.client.call('rule.add', { verdict: 'allow', host: REC });
  await d.client.call('rule.add', { verdict: 'deny', host: DENIED });
  await d.client.call('rule.add', { verdict: 'ask', host: ASK });
  o = await addCred('o', OAI);
  c = await addCred('c', REC);
  a = await addCred('a', ANT);
});

afterAll(async () => {
  for (const ws of live) ws.terminate();
  await d?.stop();
  await Promise.all([upstream?.close(), untrusted?.close(), rec?.close()]);
});

/** Every client socket a test opened; afterEach terminates what a (failed) test left open. */
const live = new Set<WebSocket>();

afterEach(async () => {
  for (const ws of live) ws.terminate();
  live.clear();
  // Each test starts with no socket open anywhere (so permit counts and "newest socket" lookups are exact).
  await waitFor(async () => (await d.client.call('stats.snapshot')).global.in_flight === 0 && rec.sockets().length === 0, 'in_flight 0 between tests', 5000);
});

/** Opens a socket through the proxy (bounded) and tracks it for cleanup. */
async function open(host: string, path: string, headers?: Record<string, string>, port?: number): Promise<WsOpen> {
  const r = await within(openWsAt({ proxyPort: d.proxyPort, token, caPath: d.caPath, host, port, path, headers }), 15_000, `upgrade ${host}${path}`);
  if ('ws' in r) live.add(r.ws);
  return r;
}

/** Opens a socket and fails with the refusal when it was refused. */
async function mustOpen(host: string, path: string, headers?: Record<string, string>, port?: number): Promise<WebSocket> {
  const r = await open(host, path, headers, port);
  if (!('ws' in r)) throw new Error(`upgrade ${host}${path} refused: ${r.status} ${r.body}`);
  return r.ws;
}

/** Closes `ws` from the client side and waits until it is closed. */
async function closeClient(ws: WebSocket, code = 1000, reason = ''): Promise<void> {
  const done = closed(ws);
  ws.close(code, reason);
  await done;
  live.delete(ws);
}

const bearer = (cr: Cred) => ({ authorization: `Bearer ${cr.phantom}` });

async function stats() {
  return d.client.call('stats.snapshot');
}

async function credInFlight(name: string): Promise<number> {
  const s = await stats();
  const row = s.credentials.find((x) => x.name === name);
  if (!row) throw new Error(`no stats row for ${name}`);
  return row.in_flight;
}

async function auditRows(n = 200) {
  return (await d.client.call('audit.tail', { n })).rows;
}

/** Upgrades the echoing fake upstream saw on `path` (query included in `path`). */
const wsSeen = (pathPrefix: string) => upstream.seen.filter((r) => r.method === 'WS' && r.path.startsWith(pathPrefix));

describe('credentials on the upgrade', () => {
  test('the upgrade reaches upstream with the real key in the Authorization header, never the phantom', async () => {
    const ws = await mustOpen(OAI, '/v1/responses?t=hdr', bearer(o));
    const seen = wsSeen('/v1/responses?t=hdr');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.authorization).toBe(`Bearer ${o.secret}`);
    expect(JSON.stringify(seen[0]!.headers)).not.toContain(o.phantom);
    expect(JSON.stringify(seen[0]!.headers)).not.toContain('SLUICE');
    // The socket is live end to end.
    const reply = nextMessage(ws);
    ws.send('ping-text');
    expect(await reply).toBe('echo:ping-text');
    await closeClient(ws);
  });

  test('a phantom in the upgrade query (?key=) reaches upstream as the real key', async () => {
    const ws = await mustOpen(OAI, `/v1/realtime?key=${o.phantom}&t=query`);
    const seen = wsSeen('/v1/realtime');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.path).toBe(`/v1/realtime?key=${o.secret}&t=query`);
    expect(seen[0]!.path).not.toContain('SLUICE');
    await closeClient(ws);
  });

  test('a phantom bound to another host in the upgrade headers is blocked with 403 (phantom_leak) before upstream', async () => {
    const before = rec.upgrades.length;
    const r = await open(REC, '/leaky-upgrade', { 'x-api-key': a.phantom });
    expect('status' in r && r.status).toBe(403);
    if (!('status' in r)) return;
    expect(r.headers['x-sluice-reason']).toBe('phantom_leak');
    expect(r.body).not.toContain(a.secret);
    expect(rec.upgrades.length).toBe(before);
    const rows = await auditRows();
    expect(rows.some((x) => x.event === 'phantom_leak' && x.host === REC && x.path === '/leaky-upgrade' && x.credential === 'a')).toBe(true);
  });

  test('an upstream 401 on an unpooled upgrade reaches the client as 401 and releases the permit', async () => {
    const bad = await addCred('o401', OAI);
    upstream.keyStatus.set(bad.secret, { status: 401 });
    try {
      const r = await open(OAI, '/v1/responses?t=401', bearer(bad));
      expect('status' in r && r.status).toBe(401);
      expect(wsSeen('/v1/responses?t=401')).toHaveLength(1);
      expect(await credInFlight('o401')).toBe(0);
      expect((await stats()).global.in_flight).toBe(0);
    } finally {
      upstream.keyStatus.delete(bad.secret);
    }
  });
});

describe('frames', () => {
  test('messages flow both ways promptly, one frame at a time (no buffering)', async () => {
    const ws = await mustOpen(REC, '/flow', bearer(c));
    // Client → server → client round trips; each message reaches upstream on its own, right away.
    const sent: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      sent.push(t0);
      const reply = nextMessage(ws, 2000);
      ws.send(`m${i}`);
      expect(await reply).toBe(`echo:m${i}`);
      // Each reply comes back before the next message is sent, which is what proves no batching; the bound
      // only catches a timer-based flush and is wide enough for a busy two-core machine.
      expect(Date.now() - t0).toBeLessThan(2000);
    }
    const up = rec.messages.slice(-5);
    expect(up.map((m) => m.text)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    for (let i = 0; i < 5; i++) expect(up[i]!.at - sent[i]!).toBeLessThan(2000);
    // Server-initiated messages, 150 ms apart: each must arrive on its own, soon after it was sent.
    const server = rec.sockets().at(-1)!;
    const arrivals: { text: string; at: number }[] = [];
    ws.on('message', (m: Buffer) => arrivals.push({ text: m.toString(), at: Date.now() }));
    const sentAt: number[] = [];
    for (let i = 0; i < 3; i++) {
      sentAt.push(Date.now());
      server.send(`push${i}`);
      await waitFor(() => arrivals.length === i + 1, `server push ${i} at the client`, 5000, 5);
      // About time: the pushes are spaced out so that each must be delivered on its own, not with the next.
      if (i < 2) await sleep(150);
    }
    expect(arrivals.map((x) => x.text)).toEqual(['push0', 'push1', 'push2']);
    for (let i = 0; i < 3; i++) expect(arrivals[i]!.at - sentAt[i]!).toBeLessThan(2000);
    await closeClient(ws);
  });

  test('a phantom in a client text message reaches upstream as the real secret (and comes back masked)', async () => {
    const ws = await mustOpen(REC, '/swap', bearer(c));
    const reply = nextMessage(ws);
    ws.send(`{"api_key":"${c.phantom}","n":1}`);
    expect(await reply).toBe(`echo:{"api_key":"${c.phantom}","n":1}`);
    const got = rec.messages.at(-1)!.text;
    expect(got).toBe(`{"api_key":"${c.secret}","n":1}`);
    expect(got).not.toContain('SLUICE');
    await closeClient(ws);
  });

  test('a phantom of a credential bound to another host in a client message is stripped and audited as phantom_leak', async () => {
    const ws = await mustOpen(REC, '/msg-leak', bearer(c));
    const reply = nextMessage(ws);
    ws.send(`steal ${a.phantom} now`);
    const echoed = await reply;
    const got = rec.messages.at(-1)!.text;
    expect(got).toBe('steal  now');
    expect(got).not.toContain(a.phantom);
    expect(got).not.toContain(a.secret);
    expect(echoed).toBe('echo:steal  now');
    const row = await waitFor(
      async () => (await auditRows()).find((x) => x.event === 'phantom_leak' && x.host === REC && x.path === '/msg-leak'),
      'phantom_leak audit row',
      3000,
    );
    expect(row.credential).toBe('a');
    expect(row.method).toBe('WS');
    expect(JSON.stringify(row)).not.toContain(a.secret);
    // The socket keeps working after a stripped message.
    const again = nextMessage(ws);
    ws.send('still here');
    expect(await again).toBe('echo:still here');
    await closeClient(ws);
  });

  test('a server message carrying one of our real secrets reaches the client with the phantom instead', async () => {
    const ws = await mustOpen(REC, '/mask', bearer(c));
    const server = rec.sockets().at(-1)!;
    const m1 = nextMessage(ws);
    server.send(`{"token":"${c.secret}"}`);
    const got = await m1;
    expect(got).toBe(`{"token":"${c.phantom}"}`);
    expect(got).not.toContain(c.secret);
    // Another credential's secret (not bound to this host) is masked too: no real secret ever reaches the agent.
    const m2 = nextMessage(ws);
    server.send(`x ${a.secret} y`);
    expect(await m2).toBe(`x ${a.phantom} y`);
    // Text without secrets passes untouched.
    const m3 = nextMessage(ws);
    server.send('plain text ✓');
    expect(await m3).toBe('plain text ✓');
    await closeClient(ws);
  });

  test('a ping from the client reaches upstream and its pong comes back (and the reverse)', async () => {
    const ws = await mustOpen(REC, '/ping', bearer(c));
    const pong = nextPong(ws);
    ws.ping('hello-ping-1');
    expect(await pong).toBe('hello-ping-1');
    expect(rec.pings).toContain('hello-ping-1');
    // Upstream → client ping, answered by the client, and the pong reaches upstream.
    const server = rec.sockets().at(-1)!;
    const clientPing = within(new Promise<string>((r) => ws.once('ping', (b: Buffer) => r(b.toString()))), 3000, 'ping at the client');
    const serverPong = within(new Promise<string>((r) => server.once('pong', (b: Buffer) => r(b.toString()))), 3000, 'pong at the upstream');
    server.ping('from-upstream-2');
    expect(await clientPing).toBe('from-upstream-2');
    expect(await serverPong).toBe('from-upstream-2');
    await closeClient(ws);
  });

  test('an upstream close code and reason (4001 bye) reach the client', async () => {
    const ws = await mustOpen(OAI, '/v1/responses?t=close', bearer(o));
    const done = closed(ws);
    ws.send('close-me');
    expect(await done).toEqual({ code: 4001, reason: 'bye' });
    live.delete(ws);
  });

  test('a client close code and reason reach upstream', async () => {
    const ws = await mustOpen(REC, '/client-close', bearer(c));
    const before = rec.closes.length;
    await closeClient(ws, 4002, 'client done');
    await waitFor(() => rec.closes.length > before, 'upstream close', 3000);
    expect(rec.closes.at(-1)).toEqual({ code: 4002, reason: 'client done' });
  });
});

describe('permits', () => {
  test('an open socket holds one permit (global and per credential) and closing releases it exactly once', async () => {
    const ws = await mustOpen(OAI, '/v1/responses?t=permit', bearer(o));
    await waitFor(async () => (await stats()).global.in_flight === 1, 'global in_flight 1 while open', 3000);
    expect(await credInFlight('o')).toBe(1);
    // Still held while idle: the permit rides with the socket, not with the upgrade. About time: the socket
    // sits idle for 200 ms and the permit must not be released meanwhile.
    await sleep(200);
    expect((await stats()).global.in_flight).toBe(1);
    expect(await credInFlight('o')).toBe(1);
    await closeClient(ws);
    await waitFor(async () => (await stats()).global.in_flight === 0 && (await credInFlight('o')) === 0, 'in_flight 0 after close', 10_000);
    // About time: a second (double) release would show up as a count below 0 within a few ms; give it 150.
    await sleep(150);
    expect((await stats()).global.in_flight).toBe(0);
    expect(await credInFlight('o')).toBe(0);
  });

  test('a client abort (terminate) releases the permit and closes the upstream socket', async () => {
    const ws = await mustOpen(REC, '/abort', bearer(c));
    await waitFor(async () => (await credInFlight('c')) === 1 && rec.sockets().length === 1, 'socket open at upstream with a permit', 3000);
    const before = rec.closes.length;
    ws.terminate();
    live.delete(ws);
    await waitFor(() => rec.sockets().length === 0 && rec.closes.length > before, 'the upstream socket closed after the client abort', 5000);
    await waitFor(async () => (await credInFlight('c')) === 0 && (await stats()).global.in_flight === 0, 'in_flight 0 after abort', 10_000);
    // About time: a second (double) release would show up as a count below 0 within a few ms; give it 150.
    await sleep(150);
    expect(await credInFlight('c')).toBe(0);
    expect((await stats()).global.in_flight).toBe(0);
  });

  test('cap 1: a second socket is refused with 429 on the upgrade while the first is open, accepted after it closes', async () => {
    const one = await addCred('one', OAI, { max_concurrent: 1 });
    const first = await mustOpen(OAI, '/v1/responses?t=cap1', bearer(one));
    const second = await open(OAI, '/v1/responses?t=cap2', bearer(one));
    expect('status' in second && second.status).toBe(429);
    if (!('status' in second)) return;
    expect(second.headers['x-sluice-reason']).toBe('per_credential_cap');
    expect(second.headers['retry-after']).toBeDefined();
    expect(JSON.parse(second.body).error.message).toContain('cap: 1');
    expect(wsSeen('/v1/responses?t=cap2')).toHaveLength(0);
    // The first socket is unaffected.
    const reply = nextMessage(first);
    first.send('still open');
    expect(await reply).toBe('echo:still open');
    await closeClient(first);
    await waitFor(async () => (await credInFlight('one')) === 0, 'permit released', 3000);
    const third = await mustOpen(OAI, '/v1/responses?t=cap3', bearer(one));
    // Released exactly once: with the third socket open, the cap is full again.
    const fourth = await open(OAI, '/v1/responses?t=cap4', bearer(one));
    expect('status' in fourth && fourth.status).toBe(429);
    await closeClient(third);
  });
});

describe('policy, access and approval on the upgrade', () => {
  test('a deny rule answers 403 on the upgrade and never reaches upstream', async () => {
    const r = await open(DENIED, '/ws-denied');
    expect('status' in r && r.status).toBe(403);
    if (!('status' in r)) return;
    expect(r.headers['x-sluice-reason']).toBe('policy_denied');
    expect(wsSeen('/ws-denied')).toHaveLength(0);
  });

  test('without the proxy token the CONNECT is refused with 407', async () => {
    await expect(
      within(
        openWebSocket({ proxyPort: d.proxyPort, token: null, caPath: d.caPath, host: OAI, path: '/v1/responses?t=noauth', headers: bearer(o) }),
        10_000,
        'open without token',
      ),
    ).rejects.toThrow(/407/);
    const raw = await rawConnect(d.proxyPort, `${OAI}:443`);
    expect(raw.status).toBe(407);
    expect(wsSeen('/v1/responses?t=noauth')).toHaveLength(0);
  });

  test('an ask destination holds the upgrade until approval, then proceeds after allow_once', async () => {
    let settled = false;
    const pending = open(ASK, '/ws-ask').finally(() => (settled = true));
    const approval = await waitFor(
      async () => (await d.client.call('approval.list')).approvals.find((x) => x.host === ASK && x.port === 443),
      'the approval prompt',
      5000,
    );
    expect(approval.path).toBe('/ws-ask');
    // About time: while the prompt is open the upgrade must stay held; watch it for 200 ms.
    await sleep(200);
    expect(settled).toBe(false);
    expect(wsSeen('/ws-ask')).toHaveLength(0);
    const res = await d.client.call('approval.resolve', { id: approval.id, decision: 'allow_once' });
    expect(res.waiters).toBe(1);
    const r = await pending;
    if (!('ws' in r)) throw new Error(`refused after approval: ${r.status} ${r.body}`);
    expect(wsSeen('/ws-ask')).toHaveLength(1);
    const reply = nextMessage(r.ws);
    r.ws.send('approved');
    expect(await reply).toBe('echo:approved');
    await closeClient(r.ws);
  });

  test('an upstream with an untrusted certificate answers 502 on the upgrade', async () => {
    const r = await open(OAI, '/v1/responses?t=untrusted', bearer(o), UNTRUSTED_PORT);
    expect('status' in r && r.status).toBe(502);
    if (!('status' in r)) return;
    expect(r.headers['x-sluice-reason']).toBe('upstream_tls');
    expect(untrusted.seen).toHaveLength(0);
    expect(r.body).not.toContain(o.secret);
    await waitFor(async () => (await credInFlight('o')) === 0, 'permit released after 502', 3000);
  });
});

describe('pools', () => {
  test('a 429 on the upgrade cools the active member and the upgrade is retried once on the next member', async () => {
    const pa = await addCred('pa', ANT);
    const pb = await addCred('pb', ANT);
    const pool = await d.client.call('pool.create', { name: 'wsp', members: ['pa', 'pb'] });
    expect(pool.active).toBe('pa');
    upstream.keyStatus.set(pa.secret, { status: 429 });
    try {
      const ws = await mustOpen(ANT, '/v1/pool-ws', { 'x-api-key': pool.phantom });
      const seen = wsSeen('/v1/pool-ws');
      expect(seen.map((s) => s.headers['x-api-key'])).toEqual([pa.secret, pb.secret]);
      const reply = nextMessage(ws);
      ws.send('on b');
      expect(await reply).toBe('echo:on b');
      const rows = await auditRows();
      expect(rows.some((x) => x.event === 'cred_failover' && x.detail === 'wsp:pa->pb:rate_limited')).toBe(true);
      const st = await d.client.call('pool.status', { name: 'wsp' });
      expect(st.pools[0]!.active).toBe('pb');
      expect(st.pools[0]!.members.find((m) => m.name === 'pa')!.healthy).toBe(false);
      await closeClient(ws);
      const row = await waitFor(async () => (await auditRows()).find((x) => x.event === 'websocket' && x.path === '/v1/pool-ws'), 'websocket audit row', 3000);
      expect(row.credential).toBe('pb');
    } finally {
      upstream.keyStatus.delete(pa.secret);
    }
  });

  test('a failed-over socket holds a permit of the member serving it, not of the cooled one', async () => {
    // DESIGN §6: for a pool the cap that applies is the member's own; the HTTP replay moves the permit too.
    const pc = await addCred('pc', ANT);
    const pd = await addCred('pd', ANT);
    const pool = await d.client.call('pool.create', { name: 'wsp2', members: ['pc', 'pd'] });
    upstream.keyStatus.set(pc.secret, { status: 429 });
    try {
      const ws = await mustOpen(ANT, '/v1/pool-permit', { 'x-api-key': pool.phantom });
      expect(wsSeen('/v1/pool-permit').at(-1)!.headers['x-api-key']).toBe(pd.secret);
      await waitFor(async () => (await stats()).global.in_flight === 1, 'global in_flight 1', 3000);
      expect({ pc: await credInFlight('pc'), pd: await credInFlight('pd') }).toEqual({ pc: 0, pd: 1 });
      await closeClient(ws);
    } finally {
      upstream.keyStatus.delete(pc.secret);
    }
  });
});

describe('audit', () => {
  test('a finished socket leaves one websocket audit row (written when it closes)', async () => {
    const ws = await mustOpen(OAI, '/v1/audit-ws?x=1', bearer(o));
    const reply = nextMessage(ws);
    ws.send('for the audit');
    await reply;
    // No row while the socket is open: audit.tail writes every queued row before it reads (an explicit
    // flush), so a row queued at upgrade time would be seen here without waiting.
    expect((await auditRows()).filter((x) => x.event === 'websocket' && x.path === '/v1/audit-ws')).toHaveLength(0);
    await closeClient(ws);
    const row = await waitFor(async () => (await auditRows()).find((x) => x.event === 'websocket' && x.path === '/v1/audit-ws'), 'websocket audit row', 3000);
    expect(row).toMatchObject({ host: OAI, port: 443, method: 'GET', credential: 'o', status: 101, verdict: 'allow' });
    expect(row.bytes).toBeGreaterThan(0);
    // About time: a duplicate row (a second close handler) would be queued within a few ms; give it 150.
    await sleep(150);
    const all = (await auditRows()).filter((x) => x.event === 'websocket' && x.path === '/v1/audit-ws');
    expect(all).toHaveLength(1);
    const text = JSON.stringify(all);
    expect(text).not.toContain(o.secret);
    expect(text).not.toContain(o.phantom);
  });
});
