/**
 * Credential pools end to end (DESIGN §7, issue 6), with real TLS: agent → sluice proxy (MITM) → fake
 * HTTPS upstream standing in for api.anthropic.com. Several accounts sit behind ONE pool phantom; the fake
 * upstream's `keyStatus` makes one account rate-limited / unauthorised by its real key. Every test drives
 * the daemon through a real failover (or checks that something must NOT fail over next to one that must),
 * so each of them fails when failover is switched off.
 *
 * Each test uses its own pool and credentials (names and secrets are unique), so the tests are independent
 * of each other's cooldowns; the restart test runs last and swaps the daemon.
 */
import zlib from 'node:zlib';
import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { PoolInfo, SluiceEvent } from '../../src/shared/protocol/events.js';
import { connectDaemon } from '../../src/shared/rpc/client.js';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { UPSTREAM_CA, startFakeUpstream, type FakeUpstream, type SeenRequest } from '../fakes/fake-upstream.js';
import { fakeSecret, seenText, waitFor } from './helpers.js';

const HOST = 'api.anthropic.com';
const OTHER = 'other.example';

let up: FakeUpstream;
let d: TestDaemon;

interface Member {
  name: string;
  secret: string;
  phantom: string;
}
interface Pool {
  name: string;
  phantom: string;
  m: Member[];
}

/** Creates credentials `<name>-a`, `<name>-b`, … bound to HOST (x-api-key) and pool `<name>` over them. */
async function makePool(name: string, opts: { n?: number; maxConcurrent?: number } = {}): Promise<Pool> {
  const m: Member[] = [];
  for (const l of ['a', 'b', 'c'].slice(0, opts.n ?? 2)) {
    const secret = fakeSecret('sk-ant-api03-');
    const c = await d.client.call('cred.add', {
      name: `${name}-${l}`,
      hosts: [HOST],
      header: 'x-api-key',
      // The POSTs below carry the pool phantom in the JSON body too: body injection is opt-in (issue 19).
      inject: ['header', 'body'],
      secret,
      ...(opts.maxConcurrent ? { max_concurrent: opts.maxConcurrent } : {}),
    });
    m.push({ name: c.name, secret, phantom: c.phantom });
  }
  const info = await d.client.call('pool.create', { name, members: m.map((x) => x.name) });
  expect(info.active).toBe(m[0]!.name);
  expect(info.members.map((x) => x.name)).toEqual(m.map((x) => x.name));
  return { name, phantom: info.phantom, m };
}

/** A request through the proxy carrying the pool phantom (header and, for POSTs, inside the JSON body). */
function send(p: Pool, path: string, init: { method?: string; host?: string; signal?: AbortSignal } = {}) {
  const method = init.method ?? 'POST';
  const body = method === 'POST' ? JSON.stringify({ model: 'claude', note: 'phantom in body', key: p.phantom }) : undefined;
  return d.fetch(`https://${init.host ?? HOST}${path}`, {
    method,
    headers: { 'x-api-key': p.phantom, ...(body ? { 'content-type': 'application/json' } : {}) },
    body,
    signal: init.signal,
  });
}

/** Requests the upstream saw at exactly `path` (query included), in arrival order. */
const seenAt = (path: string): SeenRequest[] => up.seen.filter((r) => r.path === path);
/** The real key a seen request carried. */
const keyOf = (r: SeenRequest) => String(r.headers['x-api-key'] ?? '');
/** Which member (by name) a seen request was sent with, or `?`. */
const memberOf = (p: Pool, r: SeenRequest) => p.m.find((x) => x.secret === keyOf(r))?.name ?? '?';

async function status(p: Pool): Promise<PoolInfo> {
  const r = await d.client.call('pool.status', { name: p.name });
  expect(r.pools).toHaveLength(1);
  return r.pools[0]!;
}
const memberStatus = (info: PoolInfo, name: string) => info.members.find((x) => x.name === name)!;

async function audit(event: string, pool?: string) {
  const rows = (await d.client.call('audit.tail', { n: 10_000 })).rows.filter((r) => r.event === event);
  return pool ? rows.filter((r) => (r.detail ?? '').startsWith(`${pool}:`) || (r.credential ?? '').startsWith(`${pool}/`)) : rows;
}

/** Subscribes on a second connection; returns the initial snapshot, the events seen so far and a closer. */
async function subscribe(types?: string[]) {
  const c = await connectDaemon({ socketPath: d.socket, timeoutMs: 10_000 });
  const events: SluiceEvent[] = [];
  c.onEvent((e) => events.push(e));
  const { snapshot } = await c.call('events.subscribe', types ? { types } : {});
  return { snapshot, events, close: () => c.close() };
}

/** Asserts `iso` lies in [from + ms, to + ms] (the daemon's clock read somewhere between from and to). */
function expectCooldown(iso: string | null, from: number, to: number, ms: number) {
  expect(iso).not.toBeNull();
  const t = Date.parse(iso!);
  expect(t).toBeGreaterThanOrEqual(from + ms - 5);
  expect(t).toBeLessThanOrEqual(to + ms + 5);
}

/** Everything a client got must be free of every member secret. */
function expectNoSecrets(p: Pool, r: { text: string; headers: unknown }) {
  for (const x of p.m) {
    expect(r.text).not.toContain(x.secret);
    expect(JSON.stringify(r.headers)).not.toContain(x.secret);
  }
}

async function inFlightZero(names: string[]) {
  return waitFor(
    async () => {
      const s = await d.client.call('stats.snapshot');
      const creds = s.credentials.filter((c) => names.includes(c.name));
      return s.global.in_flight === 0 && creds.length === names.length && creds.every((c) => c.in_flight === 0 && c.queued === 0) ? s : null;
    },
    `in_flight 0 for ${names.join(',')}`,
    5_000,
  );
}

beforeAll(async () => {
  up = await startFakeUpstream();
  d = await startDaemon({ upstreamPort: up.port });
  await d.client.call('rule.add', { verdict: 'allow', host: HOST });
  await d.client.call('rule.add', { verdict: 'allow', host: OTHER });
});

afterAll(async () => {
  await d?.stop();
  await up?.close();
});

describe('failover through the proxy', () => {
  test('429 on A: replayed on B, the client sees only the success, the agent phantom never changes', async () => {
    const p = await makePool('p');
    const [A, B] = p.m as [Member, Member];
    expect(p.phantom.startsWith('sk-ant-api03-')).toBe(true);
    expect(p.phantom).toContain('SLUICE');
    expect([A.phantom, B.phantom]).not.toContain(p.phantom);

    const r1 = await send(p, '/v1/p/1');
    expect(r1.status).toBe(200);
    const s1 = seenAt('/v1/p/1');
    expect(s1.map((r) => memberOf(p, r))).toEqual(['p-a']);
    expect(JSON.parse(s1[0]!.body).key).toBe(A.secret);

    const sub = await subscribe(['cred.failover', 'notice']);
    up.keyStatus.set(A.secret, { status: 429, headers: { 'x-account': 'A-limited' } });
    const t0 = Date.now();
    const r2 = await send(p, '/v1/p/2');
    const t1 = Date.now();
    // the client only ever sees the replay's answer: no 429, none of A's headers, no sluice refusal
    expect(r2.status).toBe(200);
    expect(JSON.parse(r2.text)).toEqual({ ok: true, path: '/v1/p/2', method: 'POST' });
    expect(r2.headers['x-account']).toBeUndefined();
    expect(r2.headers['retry-after']).toBeUndefined();
    expect(r2.headers['x-sluice-reason']).toBeUndefined();
    expectNoSecrets(p, r2);
    // upstream saw the same request twice: first with A's key, then with B's (body re-rewritten for B)
    const s2 = seenAt('/v1/p/2');
    expect(s2.map((r) => memberOf(p, r))).toEqual(['p-a', 'p-b']);
    expect(s2.map((r) => r.method)).toEqual(['POST', 'POST']);
    expect(JSON.parse(s2[0]!.body)).toEqual({ model: 'claude', note: 'phantom in body', key: A.secret });
    expect(JSON.parse(s2[1]!.body)).toEqual({ model: 'claude', note: 'phantom in body', key: B.secret });
    expect(s2[1]!.body).not.toContain(A.secret);
    expect(Number(s2[1]!.headers['content-length'])).toBe(Buffer.byteLength(s2[1]!.body));
    for (const r of s2) expect(seenText(r)).not.toContain('SLUICE');

    const st = await status(p);
    expect(st.active).toBe('p-b');
    expect(st.phantom).toBe(p.phantom); // byte-identical
    expect(memberStatus(st, 'p-a')).toMatchObject({ healthy: false, reason: 'rate_limited' });
    expectCooldown(memberStatus(st, 'p-a').cooldown_until, t0, t1, 60_000);
    expect(memberStatus(st, 'p-b')).toMatchObject({ healthy: true, cooldown_until: null });

    const rows = await audit('cred_failover', 'p');
    expect(rows.map((r) => r.detail)).toEqual(['p:p-a->p-b:rate_limited']);
    expect(await audit('pool_exhausted', 'p')).toEqual([]);
    // the request itself is audited once, as served by B with the replay's status
    const reqRows = (await audit('request')).filter((x) => x.path === '/v1/p/2');
    expect(reqRows).toHaveLength(1);
    expect(reqRows[0]).toMatchObject({ status: 200, credential: 'p-b', detail: 'completed' });
    // one cred.failover event and a warning notice for the TUI
    await waitFor(() => sub.events.some((e) => e.type === 'notice'), 'the failover notice');
    sub.close();
    expect(sub.events.filter((e) => e.type === 'cred.failover')).toEqual([
      expect.objectContaining({ pool: 'p', from: 'p-a', to: 'p-b', reason: 'rate_limited' }),
    ]);
    const notices = sub.events.flatMap((e) => (e.type === 'notice' ? [e.notice] : []));
    expect(notices).toEqual([expect.objectContaining({ level: 'warn', kind: 'cred_failover' })]);
    expect(notices[0]!.message).toContain('p-b');

    // the next request goes straight to B with the very same phantom
    const r3 = await send(p, '/v1/p/3');
    expect(r3.status).toBe(200);
    expect(seenAt('/v1/p/3').map((r) => memberOf(p, r))).toEqual(['p-b']);
    const listed = (await d.client.call('pool.list')).pools.find((x) => x.name === 'p')!;
    expect(listed.phantom).toBe(p.phantom);
    expect(listed.active).toBe('p-b');
  });

  test('retry-after: 7 → the member cools for 7 s, not 60', async () => {
    const p = await makePool('ra');
    up.keyStatus.set(p.m[0]!.secret, { status: 429, headers: { 'retry-after': '7' } });
    const t0 = Date.now();
    const r = await send(p, '/v1/ra/1');
    const t1 = Date.now();
    expect(r.status).toBe(200);
    expect(seenAt('/v1/ra/1').map((x) => memberOf(p, x))).toEqual(['ra-a', 'ra-b']);
    const st = await status(p);
    expect(st.active).toBe('ra-b');
    expect(memberStatus(st, 'ra-a')).toMatchObject({ healthy: false, reason: 'rate_limited' });
    expectCooldown(memberStatus(st, 'ra-a').cooldown_until, t0, t1, 7_000);
    expect((await audit('cred_failover', 'ra')).map((x) => x.detail)).toEqual(['ra:ra-a->ra-b:rate_limited']);
  });

  test('sticky: once A recovers (retry-after: 1) B stays active', async () => {
    const p = await makePool('st');
    up.keyStatus.set(p.m[0]!.secret, { status: 429, headers: { 'retry-after': '1' } });
    expect((await send(p, '/v1/st/1')).status).toBe(200);
    expect(seenAt('/v1/st/1').map((x) => memberOf(p, x))).toEqual(['st-a', 'st-b']);
    up.keyStatus.delete(p.m[0]!.secret);
    await waitFor(async () => memberStatus(await status(p), 'st-a').healthy, 'st-a to recover', 3_000, 50);
    const st = await status(p);
    expect(st.active).toBe('st-b');
    expect(st.members.every((x) => x.healthy)).toBe(true);
    expect((await send(p, '/v1/st/2')).status).toBe(200);
    expect(seenAt('/v1/st/2').map((x) => memberOf(p, x))).toEqual(['st-b']);
  });

  test('401 → auth failure, 300 s cooldown, replayed on B', async () => {
    const p = await makePool('au');
    up.keyStatus.set(p.m[0]!.secret, {
      status: 401,
      body: JSON.stringify({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } }),
    });
    const t0 = Date.now();
    const r = await send(p, '/v1/au/1');
    const t1 = Date.now();
    expect(r.status).toBe(200);
    expect(r.text).not.toContain('authentication_error');
    expect(seenAt('/v1/au/1').map((x) => memberOf(p, x))).toEqual(['au-a', 'au-b']);
    const st = await status(p);
    expect(st.active).toBe('au-b');
    expect(memberStatus(st, 'au-a')).toMatchObject({ healthy: false, reason: 'auth_failed' });
    expectCooldown(memberStatus(st, 'au-a').cooldown_until, t0, t1, 300_000);
    expect((await audit('cred_failover', 'au')).map((x) => x.detail)).toEqual(['au:au-a->au-b:auth_failed']);
  });

  test('5xx and a plain 403 do not cool the member (forwarded as is); a 403 with a quota body does', async () => {
    const p = await makePool('nx');
    const A = p.m[0]!;
    const cases: { status: number; headers?: Record<string, string>; body: string }[] = [
      { status: 500, body: '{"error":"upstream exploded"}' },
      { status: 503, headers: { 'retry-after': '30' }, body: '{"error":"overloaded, insufficient_quota"}' },
      { status: 529, body: '{"type":"error","error":{"type":"overloaded_error"}}' },
      { status: 403, body: '{"type":"error","error":{"type":"permission_error","message":"forbidden"}}' },
    ];
    for (const [i, c] of cases.entries()) {
      up.keyStatus.set(A.secret, c);
      const path = `/v1/nx/${c.status}/${i}`;
      const r = await send(p, path);
      expect(r.status).toBe(c.status);
      expect(r.text).toBe(c.body); // the upstream's own answer, byte for byte (403 body was read and re-sent)
      expect(r.headers['x-sluice-reason']).toBeUndefined();
      expect(seenAt(path).map((x) => memberOf(p, x))).toEqual(['nx-a']); // no replay
      const st = await status(p);
      expect(st.active).toBe('nx-a');
      expect(st.members.every((x) => x.healthy && x.cooldown_until === null)).toBe(true);
    }
    expect(await audit('cred_failover', 'nx')).toEqual([]);

    // control: the same member with a quota 403 does fail over
    up.keyStatus.set(A.secret, {
      status: 403,
      body: JSON.stringify({ error: { message: 'You exceeded your current quota', type: 'insufficient_quota', code: 'insufficient_quota' } }),
    });
    const t0 = Date.now();
    const r = await send(p, '/v1/nx/quota');
    const t1 = Date.now();
    expect(r.status).toBe(200);
    expect(seenAt('/v1/nx/quota').map((x) => memberOf(p, x))).toEqual(['nx-a', 'nx-b']);
    const st = await status(p);
    expect(st.active).toBe('nx-b');
    expect(memberStatus(st, 'nx-a')).toMatchObject({ healthy: false, reason: 'quota_exhausted' });
    expectCooldown(memberStatus(st, 'nx-a').cooldown_until, t0, t1, 60_000);
    expect((await audit('cred_failover', 'nx')).map((x) => x.detail)).toEqual(['nx:nx-a->nx-b:quota_exhausted']);
  });

  test('a quota 403 whose body came gzip-compressed is decoded before it is classified: fails over', async () => {
    const p = await makePool('gz');
    const [A] = p.m as [Member, Member];
    const body = JSON.stringify({ error: { message: 'You exceeded your current quota', type: 'insufficient_quota', code: 'insufficient_quota' } });
    up.keyStatus.set(A.secret, { status: 403, headers: { 'content-encoding': 'gzip' }, bodyBytes: zlib.gzipSync(body) });
    const r = await send(p, '/v1/gz/quota');
    expect(r.status).toBe(200);
    expect(seenAt('/v1/gz/quota').map((x) => memberOf(p, x))).toEqual(['gz-a', 'gz-b']);
    expect(memberStatus(await status(p), 'gz-a')).toMatchObject({ healthy: false, reason: 'quota_exhausted' });
  });

  test('all members cooling: pool_exhausted, and requests are still served by the member that recovers first', async () => {
    const p = await makePool('ex');
    const [A, B] = p.m as [Member, Member];
    up.keyStatus.set(A.secret, { status: 429, headers: { 'retry-after': '20' }, body: '{"who":"A limited"}' });
    up.keyStatus.set(B.secret, { status: 429, headers: { 'retry-after': '40' }, body: '{"who":"B limited"}' });

    // A fails → B (replay) fails too → every member cools; the client gets B's own answer, not a sluice error
    const t0 = Date.now();
    const r1 = await send(p, '/v1/ex/1');
    const t1 = Date.now();
    expect(r1.status).toBe(429);
    expect(r1.text).toBe('{"who":"B limited"}');
    expect(r1.headers['x-sluice-reason']).toBeUndefined();
    expect(seenAt('/v1/ex/1').map((x) => memberOf(p, x))).toEqual(['ex-a', 'ex-b']);
    expect((await audit('cred_failover', 'ex')).map((x) => x.detail)).toEqual(['ex:ex-a->ex-b:rate_limited']);
    expect((await audit('pool_exhausted', 'ex')).map((x) => x.detail)).toEqual(['ex:ex-b:rate_limited']);

    const st = await status(p);
    expect(st.members.every((x) => !x.healthy)).toBe(true);
    expectCooldown(memberStatus(st, 'ex-a').cooldown_until, t0, t1, 20_000);
    expectCooldown(memberStatus(st, 'ex-b').cooldown_until, t0, t1, 40_000);
    expect(st.active).toBe('ex-a'); // soonest to recover, although B was the current one

    // never fail hard: the next request goes to A (soonest) and the client gets A's answer
    const r2 = await send(p, '/v1/ex/2');
    expect(r2.status).toBe(429);
    expect(r2.text).toBe('{"who":"A limited"}');
    expect(seenAt('/v1/ex/2').map((x) => memberOf(p, x))).toEqual(['ex-a']);
    // Still the same exhaustion (within 30 s): no second pool_exhausted row (issue 22 #5).
    expect((await audit('pool_exhausted', 'ex')).length).toBe(1);

    // A's account works again (its cooldown has not run out): still served by A, with success
    up.keyStatus.delete(A.secret);
    const r3 = await send(p, '/v1/ex/3');
    expect(r3.status).toBe(200);
    expect(seenAt('/v1/ex/3').map((x) => memberOf(p, x))).toEqual(['ex-a']);
    up.keyStatus.delete(B.secret);
  });

  test('a pool phantom sent to a host its members are not bound to is blocked (phantom_leak), also after a failover', async () => {
    const p = await makePool('lk');
    up.keyStatus.set(p.m[0]!.secret, { status: 429 });
    expect((await send(p, '/v1/lk/1')).status).toBe(200);
    expect((await status(p)).active).toBe('lk-b');

    const r = await send(p, '/v1/lk/leak', { host: OTHER });
    expect(r.status).toBe(403);
    expect(r.headers['x-sluice-reason']).toBe('phantom_leak');
    expectNoSecrets(p, r);
    expect(seenAt('/v1/lk/leak')).toEqual([]);
    const leaks = (await audit('phantom_leak')).filter((x) => x.path === '/v1/lk/leak');
    expect(leaks).toHaveLength(1);
    expect(leaks[0]!.host).toBe(OTHER);
    expect(leaks[0]!.credential).toBe('lk/lk-b'); // the member the pool resolved to now
  });

  test('a 429 with a large (2 MiB) body still cools A and is replayed on B', async () => {
    const p = await makePool('bg');
    const A = p.m[0]!;
    up.keyStatus.set(A.secret, {
      status: 429,
      headers: { 'retry-after': '30' },
      body: JSON.stringify({ error: 'rate_limited', pad: 'x'.repeat(2 * 1024 * 1024) }),
    });
    try {
      const r = await send(p, '/v1/bg/1');
      // the cooldown is decided by the status line and headers; the failure's body size is irrelevant
      const st = await status(p);
      expect(memberStatus(st, 'bg-a')).toMatchObject({ healthy: false, reason: 'rate_limited' });
      expect(st.active).toBe('bg-b');
      expect(r.headers['x-sluice-reason']).toBeUndefined();
      expect(r.status).toBe(200);
      expect(seenAt('/v1/bg/1').map((x) => memberOf(p, x))).toEqual(['bg-a', 'bg-b']);
    } finally {
      up.keyStatus.delete(A.secret);
    }
    const r2 = await send(p, '/v1/bg/2');
    expect(r2.status).toBe(200);
    expect(seenAt('/v1/bg/2').map((x) => memberOf(p, x))).toEqual(['bg-b']);
  });
});

describe('rotate and reset', () => {
  test('pool.rotate parks the active member (manual rotate, 300 s); later failovers skip it', async () => {
    const p = await makePool('ro', { n: 3 });
    const [, B] = p.m as [Member, Member, Member];
    expect((await send(p, '/v1/ro/0')).status).toBe(200);
    expect(seenAt('/v1/ro/0').map((x) => memberOf(p, x))).toEqual(['ro-a']);

    const t0 = Date.now();
    const rot = await d.client.call('pool.rotate', { name: 'ro' });
    const t1 = Date.now();
    expect(rot.from).toBe('ro-a');
    expect(rot.to).toBe('ro-b');
    expect(rot.pool.active).toBe('ro-b');
    expect(memberStatus(rot.pool, 'ro-a')).toMatchObject({ healthy: false, reason: 'manual rotate' });
    expectCooldown(memberStatus(rot.pool, 'ro-a').cooldown_until, t0, t1, 300_000);
    expect((await audit('cred_failover', 'ro')).map((x) => x.detail)).toEqual(['ro:ro-a->ro-b:manual rotate']);

    const r1 = await send(p, '/v1/ro/1');
    expect(r1.status).toBe(200);
    expect(seenAt('/v1/ro/1').map((x) => memberOf(p, x))).toEqual(['ro-b']);

    // B rate-limited: the next healthy after B is C (A is parked)
    up.keyStatus.set(B.secret, { status: 429 });
    const r2 = await send(p, '/v1/ro/2');
    expect(r2.status).toBe(200);
    expect(seenAt('/v1/ro/2').map((x) => memberOf(p, x))).toEqual(['ro-b', 'ro-c']);
    const st = await status(p);
    expect(st.active).toBe('ro-c');
    expect(memberStatus(st, 'ro-a').reason).toBe('manual rotate');
    expect(memberStatus(st, 'ro-b').reason).toBe('rate_limited');
    expect((await audit('cred_failover', 'ro')).map((x) => x.detail)).toEqual(['ro:ro-a->ro-b:manual rotate', 'ro:ro-b->ro-c:rate_limited']);
    up.keyStatus.delete(B.secret);
  });

  test('pool.reset clears every cooldown', async () => {
    const p = await makePool('rs');
    const A = p.m[0]!;
    up.keyStatus.set(A.secret, { status: 401 });
    expect((await send(p, '/v1/rs/1')).status).toBe(200);
    let st = await status(p);
    expect(st.active).toBe('rs-b');
    expect(memberStatus(st, 'rs-a')).toMatchObject({ healthy: false, reason: 'auth_failed' });
    // park B as well: now every member cools
    await d.client.call('pool.rotate', { name: 'rs' });
    st = await status(p);
    expect(st.members.every((x) => !x.healthy)).toBe(true);

    up.keyStatus.delete(A.secret);
    const reset = await d.client.call('pool.reset', { name: 'rs' });
    expect(reset.members).toEqual([
      { name: 'rs-a', healthy: true, cooldown_until: null, reason: null },
      { name: 'rs-b', healthy: true, cooldown_until: null, reason: null },
    ]);
    st = await status(p);
    expect(st.members.every((x) => x.healthy && x.cooldown_until === null)).toBe(true);
    expect(await audit('pool_reset')).toEqual(expect.arrayContaining([expect.objectContaining({ credential: 'rs' })]));

    // A is usable again: rotating away from B lands on A (not "exhausted"), and requests reach A
    const rot = await d.client.call('pool.rotate', { name: 'rs' });
    expect(rot.to).toBe('rs-a');
    const r = await send(p, '/v1/rs/2');
    expect(r.status).toBe(200);
    expect(seenAt('/v1/rs/2').map((x) => memberOf(p, x))).toEqual(['rs-a']);
  });
});

describe('namespace and lifecycle', () => {
  test('pool and credential names share one namespace (both directions refused with already_exists)', async () => {
    const p = await makePool('ns');
    up.keyStatus.set(p.m[0]!.secret, { status: 429 });
    expect((await send(p, '/v1/ns/1')).status).toBe(200);
    expect((await status(p)).active).toBe('ns-b');

    await expect(d.client.call('cred.add', { name: 'ns', hosts: [HOST], header: 'x-api-key', secret: fakeSecret() })).rejects.toMatchObject({
      code: 'already_exists',
    });
    await expect(d.client.call('pool.create', { name: 'ns-a', members: ['ns-b'] })).rejects.toMatchObject({ code: 'already_exists' });
    // a credential already in a pool cannot join a second one
    await expect(d.client.call('pool.create', { name: 'ns2', members: ['ns-a'] })).rejects.toMatchObject({ code: 'in_use' });
    await expect(d.client.call('pool.create', { name: 'ns3', members: ['no-such-cred'] })).rejects.toMatchObject({ code: 'not_found' });

    const creds = (await d.client.call('cred.list')).credentials.map((c) => c.name);
    expect(creds).not.toContain('ns');
    const pools = (await d.client.call('pool.list')).pools.map((x) => x.name);
    expect(pools).not.toContain('ns-a');
    expect(pools).not.toContain('ns2');
    expect(pools).not.toContain('ns3');
    // the pool is untouched and still serves from B
    expect((await send(p, '/v1/ns/2')).status).toBe(200);
    expect(seenAt('/v1/ns/2').map((x) => memberOf(p, x))).toEqual(['ns-b']);
  });

  test('cred.remove of a live member is refused with in_use and deletes nothing; the pool still fails over onto it', async () => {
    const p = await makePool('rm');
    const [A, B] = p.m as [Member, Member];
    await expect(d.client.call('cred.remove', { name: 'rm-b' })).rejects.toMatchObject({ code: 'in_use' });
    await expect(d.client.call('cred.remove', { name: 'rm-a' })).rejects.toMatchObject({ code: 'in_use' });
    const creds = (await d.client.call('cred.list')).credentials.map((c) => c.name);
    expect(creds).toEqual(expect.arrayContaining(['rm-a', 'rm-b']));
    expect((await status(p)).members.map((x) => x.name)).toEqual(['rm-a', 'rm-b']);
    expect((await audit('cred_removed')).filter((x) => x.credential?.startsWith('rm-'))).toEqual([]);

    // B's secret is still in the vault: a failover onto it injects it
    up.keyStatus.set(A.secret, { status: 429 });
    const r = await send(p, '/v1/rm/1');
    expect(r.status).toBe(200);
    const seen = seenAt('/v1/rm/1');
    expect(seen.map((x) => memberOf(p, x))).toEqual(['rm-a', 'rm-b']);
    expect(keyOf(seen[1]!)).toBe(B.secret);
    up.keyStatus.delete(A.secret);
  });

  test('pool.remove leaves the member credentials working; the old pool phantom no longer resolves', async () => {
    const p = await makePool('pr');
    const [A, B] = p.m as [Member, Member];
    up.keyStatus.set(A.secret, { status: 429 });
    expect((await send(p, '/v1/pr/1')).status).toBe(200);
    expect(seenAt('/v1/pr/1').map((x) => memberOf(p, x))).toEqual(['pr-a', 'pr-b']);
    up.keyStatus.delete(A.secret);

    expect(await d.client.call('pool.remove', { name: 'pr' })).toEqual({ removed: 'pr' });
    expect((await d.client.call('pool.list')).pools.map((x) => x.name)).not.toContain('pr');
    await expect(d.client.call('pool.status', { name: 'pr' })).rejects.toMatchObject({ code: 'not_found' });
    const creds = (await d.client.call('cred.list')).credentials.map((c) => c.name);
    expect(creds).toEqual(expect.arrayContaining(['pr-a', 'pr-b']));

    // each member's own phantom still works
    for (const [i, x] of [A, B].entries()) {
      const r = await d.fetch(`https://${HOST}/v1/pr/own/${i}`, { headers: { 'x-api-key': x.phantom } });
      expect(r.status).toBe(200);
      expect(keyOf(seenAt(`/v1/pr/own/${i}`)[0]!)).toBe(x.secret);
    }
    // the removed pool's phantom injects nothing
    await send(p, '/v1/pr/gone');
    for (const r of seenAt('/v1/pr/gone')) {
      expect(seenText(r)).not.toContain(A.secret);
      expect(seenText(r)).not.toContain(B.secret);
    }
    // members are free again: removable, and poolable
    expect(await d.client.call('cred.remove', { name: 'pr-a' })).toEqual({ removed: 'pr-a' });
    const again = await d.client.call('pool.create', { name: 'pr2', members: ['pr-b'] });
    expect(again.members.map((x) => x.name)).toEqual(['pr-b']);
    expect(again.phantom).not.toBe(p.phantom);
  });
});

describe('caps and concurrency', () => {
  test('per-credential caps apply to the member serving the pool, before and after a failover', async () => {
    const p = await makePool('cp', { maxConcurrent: 1 });
    const A = p.m[0]!;

    // A active with cap 1: one hanging request holds its permit, the next pooled request is refused
    const ac1 = new AbortController();
    const hang1 = send(p, '/hang?cp=1', { method: 'GET', signal: ac1.signal }).catch((e: unknown) => e);
    await waitFor(() => seenAt('/hang?cp=1').length === 1, 'the first /hang to reach the upstream');
    expect(keyOf(seenAt('/hang?cp=1')[0]!)).toBe(A.secret);
    const refused = await send(p, '/v1/cp/1');
    expect(refused.status).toBe(429);
    expect(refused.headers['x-sluice-reason']).toBe('per_credential_cap');
    expect(JSON.parse(refused.text).sluice).toMatchObject({ code: 'per_credential_cap', cap: 1 });
    expect(seenAt('/v1/cp/1')).toEqual([]);
    // sluice's own 429 is not the provider's: nothing cools
    let st = await status(p);
    expect(st.active).toBe('cp-a');
    expect(st.members.every((x) => x.healthy)).toBe(true);
    ac1.abort();
    await hang1;
    await inFlightZero(['cp-a', 'cp-b']);

    // A rate-limited: the hanging request is replayed onto B and holds B's single permit
    up.keyStatus.set(A.secret, { status: 429 });
    const ac2 = new AbortController();
    const hang2 = send(p, '/hang?cp=2', { method: 'GET', signal: ac2.signal }).catch((e: unknown) => e);
    await waitFor(() => seenAt('/hang?cp=2').length === 2, 'the /hang replay to reach the upstream');
    expect(seenAt('/hang?cp=2').map((x) => memberOf(p, x))).toEqual(['cp-a', 'cp-b']);
    const s = await d.client.call('stats.snapshot');
    expect(s.credentials.find((c) => c.name === 'cp-a')!.in_flight).toBe(0); // A's permit was handed back
    expect(s.credentials.find((c) => c.name === 'cp-b')!.in_flight).toBe(1);
    const refused2 = await send(p, '/v1/cp/2');
    expect(refused2.status).toBe(429);
    expect(JSON.parse(refused2.text).sluice).toMatchObject({ code: 'per_credential_cap', cap: 1 });
    expect(seenAt('/v1/cp/2')).toEqual([]);
    st = await status(p);
    expect(st.active).toBe('cp-b');
    ac2.abort();
    await hang2;
    await inFlightZero(['cp-a', 'cp-b']);
    up.keyStatus.delete(A.secret);
  });

  test("the replay keeps the request's own global slot: a global cap of 1 does not turn the failover into a 429", async () => {
    const p = await makePool('gl');
    const A = p.m[0]!;
    up.keyStatus.set(A.secret, { status: 429 });
    await d.client.call('limits.set', { global: 1 });
    try {
      const r = await send(p, '/v1/gl/1');
      const st = await status(p);
      expect(memberStatus(st, 'gl-a')).toMatchObject({ healthy: false, reason: 'rate_limited' });
      expect(st.active).toBe('gl-b');
      // one request in flight, well within the global cap of 1: the agent must see B's success
      expect(`${r.status} ${r.headers['x-sluice-reason'] ?? ''} ${r.text.slice(0, 100)}`).toBe(
        `200  ${JSON.stringify({ ok: true, path: '/v1/gl/1', method: 'POST' })}`,
      );
      expect(seenAt('/v1/gl/1').map((x) => memberOf(p, x))).toEqual(['gl-a', 'gl-b']);
    } finally {
      await d.client.call('limits.set', { global: null });
      up.keyStatus.delete(A.secret);
    }
    await inFlightZero(['gl-a', 'gl-b']);
  });

  test('200 concurrent requests during a failover: all succeed, none reaches A after the switch, no permit leaks', async () => {
    const p = await makePool('cc', { maxConcurrent: 256 });
    const A = p.m[0]!;
    // warm up: open 100 tunnels through the proxy (served by A) so the waves below start at once
    const warm = await Promise.all(Array.from({ length: 100 }, (_, i) => send(p, `/v1/cc/warm/${i}`, { method: 'GET' })));
    expect(warm.every((r) => r.status === 200)).toBe(true);
    up.keyStatus.set(A.secret, { status: 429, headers: { 'retry-after': '30' } });
    // B answers slowly so that wave 1's replays are still in flight while wave 2 starts
    const wave = (w: number) => Array.from({ length: 100 }, (_, i) => `/slow?ms=150&w=${w}&i=${i}`);
    const started = Date.now();
    const wave1 = wave(1).map((path) => send(p, path));
    // "after the switch" = after A's cooldown is visible over RPC; every request sent from then on must
    // be resolved to B
    await waitFor(async () => !memberStatus(await status(p), 'cc-a').healthy, 'cc-a to cool', 10_000, 5);
    const wave2 = wave(2).map((path) => send(p, path));
    const results = await Promise.all([...wave1, ...wave2]);
    const elapsed = Date.now() - started;

    expect(results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text.slice(0, 120)}`)).toEqual([]);
    for (const r of results) expectNoSecrets(p, r);
    for (const path of wave(2)) expect(seenAt(path).map((x) => memberOf(p, x))).toEqual(['cc-b']);
    let aHits = 0;
    for (const path of wave(1)) {
      const who = seenAt(path).map((x) => memberOf(p, x));
      // either went to B directly, or hit A once (resolved before the switch) and was replayed once on B
      expect([['cc-b'], ['cc-a', 'cc-b']]).toContainEqual(who);
      if (who[0] === 'cc-a') aHits++;
    }
    expect(aHits).toBeGreaterThanOrEqual(1);
    const st = await status(p);
    expect(st.active).toBe('cc-b');
    const rows = await audit('cred_failover', 'cc');
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(new Set(rows.map((x) => x.detail))).toEqual(new Set(['cc:cc-a->cc-b:rate_limited']));
    expect(await audit('pool_exhausted', 'cc')).toEqual([]);
    // identical notices within 30 s are not repeated, however many requests failed over
    const sub = await subscribe();
    sub.close();
    expect(sub.snapshot.notices.filter((n) => n.kind === 'cred_failover' && n.message.includes('pool cc:'))).toHaveLength(1);
    // bounded: everything settles and every permit comes back
    await inFlightZero(['cc-a', 'cc-b']);
    expect(elapsed).toBeLessThan(20_000);
    up.keyStatus.delete(A.secret);
  });
});

describe('streamed failures', () => {
  test('a streamed 429 cools A at response-header time, before its body ends; the next request goes to B', async () => {
    // A custom upstream: A's key gets a 429 whose (SSE) body stays open for 2.5 s; anything else gets 200.
    const tls = path.dirname(UPSTREAM_CA);
    const sa = fakeSecret('sk-ant-api03-');
    const sb = fakeSecret('sk-ant-api03-');
    const seen: { path: string; who: string }[] = [];
    const timers = new Set<NodeJS.Timeout>();
    const sockets = new Set<net.Socket>();
    const srv = https.createServer(
      { key: fs.readFileSync(path.join(tls, 'upstream-key.pem')), cert: fs.readFileSync(path.join(tls, 'upstream-cert.pem')) },
      (req, res) => {
        const k = String(req.headers['x-api-key'] ?? '');
        seen.push({ path: req.url ?? '', who: k === sa ? 'A' : k === sb ? 'B' : '?' });
        req.resume();
        if (k === sa) {
          res.writeHead(429, { 'content-type': 'text/event-stream', 'retry-after': '30' });
          res.write('event: error\ndata: {"type":"error","error":{"type":"rate_limit_error"}}\n\n');
          const t = setTimeout(() => res.end(), 2_500);
          timers.add(t);
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, path: req.url }));
      },
    );
    srv.on('connection', (s: net.Socket) => (sockets.add(s), s.once('close', () => sockets.delete(s))));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const d2 = await startDaemon({ upstreamPort: (srv.address() as net.AddressInfo).port });
    try {
      await d2.client.call('rule.add', { verdict: 'allow', host: HOST });
      await d2.client.call('cred.add', { name: 'sa', hosts: [HOST], header: 'x-api-key', secret: sa });
      await d2.client.call('cred.add', { name: 'sb', hosts: [HOST], header: 'x-api-key', secret: sb });
      const pool = await d2.client.call('pool.create', { name: 'sp', members: ['sa', 'sb'] });
      const first = d2.fetch(`https://${HOST}/v1/stream/1`, { headers: { 'x-api-key': pool.phantom } }).catch((e: unknown) => e);
      await waitFor(() => seen.some((x) => x.path === '/v1/stream/1'), 'the streamed request to reach A');
      // A's status line and headers are out; its body is still streaming for ~2.5 s
      const st = await waitFor(
        async () => {
          const info = (await d2.client.call('pool.status', { name: 'sp' })).pools[0]!;
          return memberStatus(info, 'sa').healthy ? null : info;
        },
        'sa to cool while its 429 body is still streaming',
        1_200,
        50,
      ).catch((e: unknown) => e as Error);
      const second = await d2.fetch(`https://${HOST}/v1/stream/2`, { headers: { 'x-api-key': pool.phantom } });
      const afterSecond = seen.filter((x) => x.path === '/v1/stream/2').map((x) => x.who);
      await first;
      expect(st).not.toBeInstanceOf(Error);
      expect((st as PoolInfo).active).toBe('sb');
      expect(second.status).toBe(200);
      expect(afterSecond).toEqual(['B']);
    } finally {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      srv.close();
      await d2.stop();
    }
  });
});

describe('restart', () => {
  test('SIGKILL + restart on the same home keeps the cooldown and the active member', async () => {
    const p = await makePool('zz');
    const [A] = p.m as [Member, Member];
    up.keyStatus.set(A.secret, { status: 401 });
    expect((await send(p, '/v1/zz/1')).status).toBe(200);
    const before = await status(p);
    expect(before.active).toBe('zz-b');
    expect(memberStatus(before, 'zz-a')).toMatchObject({ healthy: false, reason: 'auth_failed' });
    // a second pool cooled and then reset: the reset must be what is remembered
    const q = await makePool('zq');
    up.keyStatus.set(q.m[0]!.secret, { status: 401 });
    expect((await send(q, '/v1/zq/1')).status).toBe(200);
    up.keyStatus.delete(q.m[0]!.secret);
    expect(memberStatus(await status(q), 'zq-a').healthy).toBe(false);
    await d.client.call('pool.reset', { name: 'zq' });

    await d.kill('SIGKILL');
    d = await startDaemon({ upstreamPort: up.port, home: d.home });
    const after = await status(p);
    expect(after).toEqual(before); // phantom, active member, cooldown end and reason all remembered
    const q2 = await status(q);
    expect(q2.members.every((x) => x.healthy && x.cooldown_until === null)).toBe(true);
    expect(q2.active).toBe('zq-b');

    // A's account would answer now, but A is still cooling: the request goes to B
    up.keyStatus.delete(A.secret);
    const r = await send(p, '/v1/zz/2');
    expect(r.status).toBe(200);
    expect(seenAt('/v1/zz/2').map((x) => memberOf(p, x))).toEqual(['zz-b']);
  });
});
