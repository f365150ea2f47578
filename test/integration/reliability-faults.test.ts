/**
 * Reliability under faults (issue 10, "Faults"): a `kill -9` of the daemon in the middle of real load
 * (concurrent requests, streams, a pending approval, a steady trickle of audited requests) followed by a
 * restart on the same home; every kind of upstream failure (reset before headers, reset mid-stream, hang
 * with a client timeout, slow drip aborted, untrusted TLS, DNS failure); clients that leave while waiting
 * for an approval, for a queue slot or mid-stream; and disk trouble (DB locked by another process, master
 * key missing or wrong, a state directory anyone can write). The promise in each case: clients get clear
 * errors instead of hangs or fake successes, permits and waiters come back, and nothing stored is lost.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { daemonEnv, dumpDb, runDaemonOnce, settleWithin, socketAnswers, statsAtRest } from '../fakes/reliability-helpers.js';
import { defaultResolvePairs, fakeSecret, openStream, resolveSpec, sleep, waitFor, within } from './helpers.js';

const ANT = 'api.anthropic.com';
const OAI = 'api.openai.com';

let upstream: FakeUpstream;
const daemons: TestDaemon[] = [];
const dispatchers: ProxyAgent[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
});

afterAll(async () => {
  for (const disp of dispatchers) await disp.destroy().catch(() => {});
  for (const d of daemons) await d.stop().catch(() => {});
  await upstream?.close();
});

async function launch(opts: Parameters<typeof startDaemon>[0] = {}): Promise<TestDaemon> {
  const d = await startDaemon({ upstreamPort: upstream.port, ...opts });
  daemons.push(d);
  return d;
}

function dispatcherOf(d: TestDaemon): ProxyAgent {
  const disp = d.dispatcher();
  dispatchers.push(disp);
  return disp;
}

/** What a client ended up with: a status and a fully read body, or an error (before or during the body). */
type ClientOutcome = { kind: 'response'; status: number; text: string } | { kind: 'error'; stage: 'head' | 'body'; status?: number; message: string };

/** Sends a request and reads the whole body; never rejects. `onHead` fires when the head arrived. */
async function attempt(
  url: string,
  disp: ProxyAgent,
  opts: { headers?: Record<string, string>; signal?: AbortSignal; onHead?: (status: number) => void } = {},
): Promise<ClientOutcome> {
  let status: number | undefined;
  try {
    const res = await openStream(url, disp, { headers: opts.headers, signal: opts.signal });
    status = res.statusCode;
    opts.onHead?.(status);
    const text = await res.body.text();
    return { kind: 'response', status, text };
  } catch (err) {
    return { kind: 'error', stage: status === undefined ? 'head' : 'body', status, message: err instanceof Error ? err.message : String(err) };
  }
}

async function auditRowsFor(d: TestDaemon, pathPrefix: string) {
  const t = await d.client.call('audit.tail', { n: 2000 });
  return t.rows.filter((r) => r.event === 'request' && r.path?.startsWith(pathPrefix));
}

async function restingStats(d: TestDaemon, what: string) {
  await waitFor(() => statsAtRest(d.client), `${what}: stats back to in_flight 0, queued 0`, 10_000);
}

describe('kill -9 under load, then restart on the same home', () => {
  test('in-flight clients get errors within a bound; credentials, rules, pools, cooldowns, caps and the audit chain survive intact', async () => {
    const d = await launch({ env: { SLUICE_APPROVAL_TIMEOUT_MS: '60000' } });
    const c = d.client;
    await c.call('rule.add', { verdict: 'allow', host: ANT });
    await c.call('rule.add', { verdict: 'allow', host: OAI });
    await c.call('rule.add', { verdict: 'deny', host: 'evil.example', path: '/blocked/**' });
    const mainSecret = fakeSecret('sk-ant-api03-');
    const main = await c.call('cred.add', { name: 'main', hosts: [ANT], header: 'x-api-key', secret: mainSecret, max_concurrent: 64, queue_timeout_ms: 250 });
    const paSecret = fakeSecret('sk-proj-');
    const pbSecret = fakeSecret('sk-proj-');
    await c.call('cred.add', { name: 'pa', hosts: [OAI], header: 'authorization', format: 'Bearer {}', secret: paSecret });
    await c.call('cred.add', { name: 'pb', hosts: [OAI], header: 'authorization', format: 'Bearer {}', secret: pbSecret });
    const pool = await c.call('pool.create', { name: 'pool', members: ['pa', 'pb'] });
    await c.call('limits.set', { global: 100 });
    await c.call('limits.set', { cred: 'pb', max_concurrent: 5 });
    // Cool pa for an hour through a real failover (retry-after: 3600), so the cooldown is one the daemon learnt.
    upstream.keyStatus.set(paSecret, { status: 429, headers: { 'retry-after': '3600' } });
    const disp = dispatcherOf(d);
    const fo = await attempt(`https://${OAI}/v1/failover`, disp, { headers: { authorization: `Bearer ${pool.phantom}` } });
    upstream.keyStatus.delete(paSecret);
    expect(fo).toMatchObject({ kind: 'response', status: 200 });

    const before = {
      creds: (await c.call('cred.list')).credentials.map((x) => ({
        name: x.name,
        kind: x.kind,
        hosts: x.hosts,
        header: x.header,
        format: x.format,
        phantom: x.phantom,
        max_concurrent: x.max_concurrent,
        queue_timeout_ms: x.queue_timeout_ms,
      })),
      rules: (await c.call('rule.list')).rules,
      pools: (await c.call('pool.status', {})).pools,
      limits: await c.call('limits.get'),
    };
    const cooled = before.pools[0]!.members.find((m) => m.name === 'pa')!;
    expect(cooled).toMatchObject({ healthy: false, reason: 'rate_limited' });
    expect(Date.parse(cooled.cooldown_until!)).toBeGreaterThan(Date.now() + 3000_000);
    expect(before.pools[0]!.active).toBe('pb');

    // Load: 12 requests parked at the upstream, 6 slow ones, 4 long SSE streams, one pending approval,
    // and a trickle of short requests that keeps audit rows flowing until the moment of the kill.
    const headers = { 'x-api-key': main.phantom };
    const heads = new Set<number>();
    const inflight: Promise<ClientOutcome>[] = [];
    let streamsStarted = 0;
    for (let i = 0; i < 12; i++) inflight.push(attempt(`https://${ANT}/hang?k=${i}`, disp, { headers }));
    for (let i = 0; i < 6; i++) inflight.push(attempt(`https://${ANT}/slow?ms=20000&k=${i}`, disp, { headers }));
    for (let i = 0; i < 4; i++)
      inflight.push(attempt(`https://${ANT}/sse?n=2000&gap=20&k=${i}`, disp, { headers, onHead: (s) => (heads.add(s), streamsStarted++) }));
    inflight.push(attempt(`https://${OAI}/hang?pooled=1`, disp, { headers: { authorization: `Bearer ${pool.phantom}` } }));
    inflight.push(attempt('https://other.example/needs-approval', disp));
    let killed = false;
    let trickleOk = 0;
    const trickle = (async () => {
      for (let i = 0; !killed; i++) {
        const r = await attempt(`https://${ANT}/v1/trickle/${i}`, disp, { headers });
        if (r.kind === 'response' && r.status === 200) trickleOk++;
      }
    })();
    await waitFor(async () => (await c.call('stats.snapshot')).global.in_flight >= 23, '23 requests in flight', 15_000);
    await waitFor(async () => (await c.call('approval.list')).approvals.some((a) => a.host === 'other.example' && a.waiters === 1), 'the pending approval');
    await waitFor(() => streamsStarted === 4, 'the four streams to start');
    await waitFor(() => trickleOk >= 5, 'a few trickle requests');
    const rowsBefore = await c.call('audit.verify');
    expect(rowsBefore.ok).toBe(true);

    await d.kill('SIGKILL');
    killed = true;
    const killedAt = Date.now();
    const settled = await settleWithin(inflight, 5000, 'clients in flight when the daemon was killed');
    await settleWithin([trickle], 5000, 'the trickle loop');
    for (const s of settled) {
      expect(s.ok).toBe(true);
      const o = (s as { value: ClientOutcome }).value;
      // Every one of them failed visibly: no status at all, or a stream that broke (never a clean end).
      expect(o.kind, JSON.stringify(o)).toBe('error');
      expect(s.at - killedAt).toBeLessThan(5000);
    }
    expect([...heads]).toEqual([200]);

    // Restart on the same home.
    const d2 = await launch({ home: d.home });
    const c2 = d2.client;
    const after = {
      creds: (await c2.call('cred.list')).credentials.map((x) => ({
        name: x.name,
        kind: x.kind,
        hosts: x.hosts,
        header: x.header,
        format: x.format,
        phantom: x.phantom,
        max_concurrent: x.max_concurrent,
        queue_timeout_ms: x.queue_timeout_ms,
      })),
      rules: (await c2.call('rule.list')).rules,
      pools: (await c2.call('pool.status', {})).pools,
      limits: await c2.call('limits.get'),
    };
    expect(after.creds).toEqual(before.creds);
    expect(after.rules).toEqual(before.rules);
    expect(after.pools).toEqual(before.pools); // same active member, same cooldown_until and reason
    expect(after.limits.global).toBe(100);
    expect(after.limits.credentials.map((x) => [x.name, x.max_concurrent, x.queue_timeout_ms])).toEqual(
      before.limits.credentials.map((x) => [x.name, x.max_concurrent, x.queue_timeout_ms]),
    );
    // Nothing in flight survives a crash, and the stale approval is gone.
    expect(await statsAtRest(c2)).toBe(true);
    expect((await c2.call('approval.list')).approvals).toEqual([]);

    // The audit chain: intact, at least as long as what was verified before the kill, no half-written rows.
    const v = await c2.call('audit.verify');
    expect(v).toMatchObject({ ok: true, first_bad_id: null });
    expect(v.rows).toBeGreaterThanOrEqual(rowsBefore.rows);
    const db = new Database(path.join(d.home, 'sluice.db'), { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const agg = db.prepare('SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM audit_log').get() as { n: number; lo: number; hi: number };
      expect(agg.hi - agg.lo + 1).toBe(agg.n); // no holes: whole batches or nothing
      const bad = db
        .prepare(
          "SELECT count(*) AS n FROM audit_log WHERE ts IS NULL OR event IS NULL OR length(hash) != 64 OR length(prev_hash) != 64 OR hash GLOB '*[^0-9a-f]*'",
        )
        .get() as { n: number };
      expect(bad.n).toBe(0);
    } finally {
      db.close();
    }

    // The stored secrets still decrypt and go to the right member; the cooled member is still skipped.
    const disp2 = dispatcherOf(d2);
    const from = upstream.seen.length;
    expect(await attempt(`https://${ANT}/v1/after-crash`, disp2, { headers })).toMatchObject({ kind: 'response', status: 200 });
    expect(await attempt(`https://${OAI}/v1/after-crash-pool`, disp2, { headers: { authorization: `Bearer ${pool.phantom}` } })).toMatchObject({
      kind: 'response',
      status: 200,
    });
    const seen = upstream.seen.slice(from);
    expect(seen.find((s) => s.path === '/v1/after-crash')?.headers['x-api-key']).toBe(mainSecret);
    expect(seen.find((s) => s.path === '/v1/after-crash-pool')?.headers.authorization).toBe(`Bearer ${pbSecret}`);
    expect((await c2.call('audit.verify')).ok).toBe(true);
  });
});

describe('upstream faults', () => {
  let d: TestDaemon;
  let bad: FakeUpstream;
  let disp: ProxyAgent;
  let phantom = '';
  let oaiPhantom = '';

  beforeAll(async () => {
    bad = await startFakeUpstream({ untrusted: true });
    // api.openai.com goes to an upstream whose certificate no trusted CA signed; nonexistent.invalid has no override.
    const pairs = defaultResolvePairs().filter(([h]) => h !== OAI);
    d = await launch({ env: { SLUICE_RESOLVE: `${resolveSpec(upstream.port, pairs)},${OAI}:443:127.0.0.1:${bad.port}` } });
    await d.client.call('rule.add', { verdict: 'allow', host: ANT });
    await d.client.call('rule.add', { verdict: 'allow', host: OAI });
    await d.client.call('rule.add', { verdict: 'allow', host: '*.invalid' });
    phantom = (await d.client.call('cred.add', { name: 'up', hosts: [ANT], header: 'x-api-key', secret: fakeSecret() })).phantom;
    oaiPhantom = (await d.client.call('cred.add', { name: 'tls', hosts: [OAI], header: 'authorization', format: 'Bearer {}', secret: fakeSecret('sk-proj-') }))
      .phantom;
    disp = dispatcherOf(d);
  });

  afterAll(async () => {
    await bad?.close();
  });

  /** After a fault: permits back, upstream request closed, and the audit row does not claim success. */
  async function released(what: string, pathPrefix: string) {
    await restingStats(d, what);
    await waitFor(() => upstream.open() === 0, `${what}: the upstream request closed`);
    const rows = await waitFor(async () => {
      const r = await auditRowsFor(d, pathPrefix);
      return r.length > 0 ? r : null;
    }, `${what}: its audit row`);
    expect(rows, what).toHaveLength(1);
    expect(rows[0]!.detail, what).not.toBe('completed');
    return rows[0]!;
  }

  test('reset before headers → 502 upstream_error', async () => {
    const o = await attempt(`https://${ANT}/reset?f=1`, disp, { headers: { 'x-api-key': phantom } });
    expect(o).toMatchObject({ kind: 'response', status: 502 });
    expect(JSON.parse((o as { text: string }).text).sluice.code).toBe('upstream_error');
    const row = await released('reset', '/reset');
    expect(row.detail).toMatch(/^upstream_request_error:(ECONNRESET|EPIPE)$/);
  });

  test('reset mid-stream → the client body errors (a broken stream, never a clean 200)', async () => {
    const o = await attempt(`https://${ANT}/reset-mid?f=2`, disp, { headers: { 'x-api-key': phantom } });
    expect(o).toMatchObject({ kind: 'error', stage: 'body', status: 200 });
    const row = await released('reset-mid', '/reset-mid');
    expect(row.detail).toMatch(/^upstream_response_error/);
  });

  test('hang with a client timeout → the client gives up, the daemon tears the upstream request down', async () => {
    const from = upstream.seen.length;
    const o = await attempt(`https://${ANT}/hang?f=3`, disp, { headers: { 'x-api-key': phantom }, signal: AbortSignal.timeout(600) });
    expect(o.kind).toBe('error');
    expect(upstream.seen.slice(from).some((s) => s.path.startsWith('/hang'))).toBe(true); // it really reached upstream
    const row = await released('hang', '/hang');
    expect(row.detail).toBe('client_aborted');
  });

  test('slow drip (/sse?n=20&gap=200) aborted after the first event → released at once, not after the drip ends', async () => {
    const ctl = new AbortController();
    const t0 = Date.now();
    const res = await openStream(`https://${ANT}/sse?n=20&gap=200`, disp, { headers: { 'x-api-key': phantom }, signal: ctl.signal });
    expect(res.statusCode).toBe(200);
    for await (const chunk of res.body) {
      expect(Buffer.from(chunk as Buffer).toString()).toContain('"i":0');
      break;
    }
    ctl.abort();
    await restingStats(d, 'slow drip');
    await waitFor(() => upstream.open() === 0, 'slow drip: upstream closed');
    expect(Date.now() - t0).toBeLessThan(3000); // the stream alone would take 4 s
    const rows = await auditRowsFor(d, '/sse');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.detail).toBe('client_aborted');
  });

  test('TLS failure (untrusted upstream certificate) → 502 upstream_tls, nothing reached the server', async () => {
    const o = await attempt(`https://${OAI}/v1/tls?f=5`, disp, { headers: { authorization: `Bearer ${oaiPhantom}` } });
    expect(o).toMatchObject({ kind: 'response', status: 502 });
    expect(JSON.parse((o as { text: string }).text).sluice.code).toBe('upstream_tls');
    expect(bad.seen).toHaveLength(0);
    const row = await released('tls', '/v1/tls');
    expect(row.detail).toMatch(/^upstream_request_error:\w*(CERT|SELF_SIGNED|UNABLE)/);
  });

  test('DNS failure (nonexistent.invalid, allowed by a rule) → 502/504 with a clear error', async () => {
    const o = await attempt('https://nonexistent.invalid/v1/dns?f=6', disp, { signal: AbortSignal.timeout(20_000) });
    expect(o.kind).toBe('response');
    const r = o as { status: number; text: string };
    expect([502, 504]).toContain(r.status);
    const body = JSON.parse(r.text) as { sluice: { code: string }; error: { message: string } };
    expect(body.sluice.code).toBe('upstream_error');
    expect(body.error.message).toContain('nonexistent.invalid');
    const row = await released('dns', '/v1/dns');
    expect(row.detail).toMatch(/^upstream_request_error:(ENOTFOUND|EAI_AGAIN)$/);
  });

  test('after all of it the daemon serves normally and the chain verifies', async () => {
    const o = await attempt(`https://${ANT}/v1/ok`, disp, { headers: { 'x-api-key': phantom } });
    expect(o).toMatchObject({ kind: 'response', status: 200 });
    expect((await d.client.call('audit.verify')).ok).toBe(true);
    await restingStats(d, 'end');
  });
});

describe('client faults', () => {
  let d: TestDaemon;
  let disp: ProxyAgent;

  beforeAll(async () => {
    d = await launch();
    await d.client.call('rule.add', { verdict: 'allow', host: ANT });
    disp = dispatcherOf(d);
  });

  test('abort during the approval wait: the waiter count drops with each client, nothing is held, rows say client_aborted', async () => {
    const from = upstream.seen.length;
    const ctls = [0, 1, 2].map(() => new AbortController());
    const outcomes = ctls.map((ctl, i) => attempt(`https://other.example/approve-abort/${i}`, disp, { signal: ctl.signal }));
    const waiters = async () => (await d.client.call('approval.list')).approvals.find((a) => a.host === 'other.example')?.waiters;
    await waitFor(async () => (await waiters()) === 3, '3 waiters');
    ctls[0]!.abort();
    ctls[1]!.abort();
    await waitFor(async () => (await waiters()) === 1, 'waiters drop to 1');
    ctls[2]!.abort();
    await waitFor(async () => ((await waiters()) ?? 0) === 0, 'waiters drop to 0');
    for (const o of await settleWithin(outcomes, 3000, 'aborted approval waiters')) expect((o as { value: ClientOutcome }).value.kind).toBe('error');
    await restingStats(d, 'approval abort');
    expect(upstream.seen.slice(from).filter((s) => s.path.startsWith('/approve-abort'))).toEqual([]);
    const rows = await waitFor(async () => {
      const r = await auditRowsFor(d, '/approve-abort');
      return r.length === 3 ? r : null;
    }, 'three audit rows');
    expect(rows.map((r) => r.detail)).toEqual(['client_aborted', 'client_aborted', 'client_aborted']);
    const pending = (await d.client.call('approval.list')).approvals.find((a) => a.host === 'other.example');
    if (pending) await d.client.call('approval.resolve', { id: pending.id, decision: 'deny' });
  });

  test('abort during the queue wait: queued drops to 0 long before the queue timeout; the holder keeps its slot', async () => {
    const q = await d.client.call('cred.add', {
      name: 'q',
      hosts: [ANT],
      header: 'x-api-key',
      secret: fakeSecret(),
      max_concurrent: 1,
      queue_timeout_ms: 20_000,
    });
    const headers = { 'x-api-key': q.phantom };
    const holderCtl = new AbortController();
    const holder = attempt(`https://${ANT}/hang?queue=holder`, disp, { headers, signal: holderCtl.signal });
    const stat = async () => (await d.client.call('stats.snapshot')).credentials.find((x) => x.name === 'q')!;
    await waitFor(async () => (await stat()).in_flight === 1, 'the holder in flight');
    const ctls = [0, 1].map(() => new AbortController());
    const queued = ctls.map((ctl, i) => attempt(`https://${ANT}/v1/queued/${i}`, disp, { headers, signal: ctl.signal }));
    await waitFor(async () => (await stat()).queued === 2, 'two queued');
    const t0 = Date.now();
    for (const ctl of ctls) ctl.abort();
    await waitFor(async () => (await stat()).queued === 0, 'queued back to 0');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await stat()).in_flight).toBe(1);
    await settleWithin(queued, 3000, 'aborted queued clients');
    expect(upstream.seen.filter((s) => s.path.startsWith('/v1/queued/'))).toEqual([]);
    holderCtl.abort();
    await settleWithin([holder], 3000, 'the holder');
    await restingStats(d, 'queue abort');
  });

  test('abort mid-stream: in_flight back to 0 and the upstream stream closed', async () => {
    const ms = await d.client.call('cred.add', { name: 'ms', hosts: [ANT], header: 'x-api-key', secret: fakeSecret() });
    const ctl = new AbortController();
    const res = await openStream(`https://${ANT}/sse?n=500&gap=10&mid=1`, disp, { headers: { 'x-api-key': ms.phantom }, signal: ctl.signal });
    let n = 0;
    for await (const _ of res.body) if (++n >= 3) break;
    ctl.abort();
    await restingStats(d, 'mid-stream abort');
    await waitFor(() => upstream.open() === 0, 'upstream stream closed');
    const rows = await waitFor(async () => {
      const r = await auditRowsFor(d, '/sse');
      return r.length === 1 ? r : null;
    }, 'its audit row');
    expect(rows[0]).toMatchObject({ credential: 'ms', status: 200, detail: 'client_aborted' });
  });
});

describe('disk trouble', () => {
  let home = '';
  let secret = '';
  let phantom = '';
  let dump0: Record<string, string[]> = {};

  beforeAll(async () => {
    const d = await launch();
    home = d.home;
    secret = fakeSecret();
    await d.client.call('rule.add', { verdict: 'allow', host: ANT });
    phantom = (await d.client.call('cred.add', { name: 'disk', hosts: [ANT], header: 'x-api-key', secret })).phantom;
    expect((await d.fetch(`https://${ANT}/v1/disk-setup`, { headers: { 'x-api-key': phantom } })).status).toBe(200);
    await d.stop();
    expect(d.proc.exitCode).toBe(0);
    dump0 = dumpDb(path.join(home, 'sluice.db'));
    expect(dump0.credentials).toHaveLength(1);
  });

  /** The daemon refused: non-zero exit soon, a one-line `sluiced:` reason matching `re`, nothing listening, DB unchanged. */
  async function expectRefusal(re: RegExp, extraEnv: Record<string, string> = {}) {
    const r = await runDaemonOnce(daemonEnv(home, extraEnv), 20_000);
    expect(r.timedOut, 'the daemon should exit, not keep running').toBe(false);
    expect(r.code).not.toBe(0);
    const reason = r.stderr.split('\n').find((l) => l.startsWith('sluiced:')) ?? '';
    expect(reason, r.stderr).toMatch(re);
    expect(await socketAnswers(path.join(home, 'sluiced.sock'))).toBe(false);
    expect(dumpDb(path.join(home, 'sluice.db'))).toEqual(dump0);
    return r;
  }

  test('master key missing → refuses, naming the key file; no new key is made; the DB is untouched', async () => {
    const key = path.join(home, 'master.key');
    fs.renameSync(key, key + '.away');
    try {
      await expectRefusal(new RegExp(`master key ${key.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is missing`));
      expect(fs.existsSync(key)).toBe(false);
    } finally {
      fs.renameSync(key + '.away', key);
    }
  });

  test('master key wrong (32 other bytes) → refuses; the DB is untouched', async () => {
    const key = path.join(home, 'master.key');
    const real = fs.readFileSync(key);
    try {
      fs.writeFileSync(key, Buffer.from(real.map((b) => b ^ 0x5a)), { mode: 0o600 });
      await expectRefusal(/master key .*master\.key is not the key this database was sealed with/);
    } finally {
      fs.writeFileSync(key, real, { mode: 0o600 });
    }
  });

  test('state dir writable by group/others (0777) → refuses; the DB is untouched', async () => {
    fs.chmodSync(home, 0o777);
    try {
      await expectRefusal(/writable by group or others/);
    } finally {
      fs.chmodSync(home, 0o700);
    }
  });

  test('with the key and modes restored, everything stored is still there and works', async () => {
    const d = await launch({ home });
    const from = upstream.seen.length;
    expect((await d.fetch(`https://${ANT}/v1/disk-after`, { headers: { 'x-api-key': phantom } })).status).toBe(200);
    expect(upstream.seen.slice(from).find((s) => s.path === '/v1/disk-after')?.headers['x-api-key']).toBe(secret);
    expect((await d.client.call('audit.verify')).ok).toBe(true);
    await d.stop();
    dump0 = dumpDb(path.join(home, 'sluice.db'));
  });

  test('DB locked by another process (BEGIN EXCLUSIVE): refuses with a clear message, or serves and says so — and loses nothing', async () => {
    const dbFile = path.join(home, 'sluice.db');
    const holder = new Database(dbFile, { timeout: 100 });
    holder.exec('BEGIN EXCLUSIVE');
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      holder.exec('COMMIT');
      holder.close();
    };
    const problems: string[] = [];
    try {
      // Give it 8 s (a normal start takes 1-2 s): it starts, refuses, or is still waiting for the lock.
      const launching = launch({ home }).then(
        (x) => ({ started: x }),
        (err: unknown) => ({ refused: err instanceof Error ? err.message : String(err) }),
      );
      // A deadline, on purpose: "still waiting after 8 s" is one of the outcomes this test tells apart.
      const early = await within(launching, 8000, 'the daemon to start or refuse').catch(() => null);
      let d: TestDaemon | null = null;
      if (early === null) {
        // Branch 3: it waits for the lock. Release it: it must then start, having said why it waited.
        release();
        const late = await launching;
        expect('started' in late, JSON.stringify(late).slice(0, 500)).toBe(true);
        const waited = (late as { started: TestDaemon }).started;
        expect(waited.logs()).toMatch(/lock|busy/i);
        await waited.stop();
      } else if ('refused' in early) {
        // Branch 1: it refused. The reason must say the database is locked.
        expect(early.refused).toMatch(/sluiced: .*(locked|busy)/i);
        expect(early.refused).toContain('sluice.db');
      } else d = early.started;
      if (d) {
        // Branch 2: it started anyway. It must say so, keep serving, and not crash on its first write.
        if (!/lock|busy|read-only|in memory/i.test(d.logs())) problems.push('the daemon started on a locked database without saying so in its log');
        const r = await d
          .fetch(`https://${ANT}/v1/while-locked`, { headers: { 'x-api-key': phantom }, signal: AbortSignal.timeout(15_000) })
          .catch((e: unknown) => ({ status: -1, text: String(e) }));
        if (r.status !== 200) problems.push(`a request while the DB was locked got ${r.status}: ${r.text.slice(0, 200)}`);
        const t0 = Date.now();
        // About time: the daemon must stay up for 8 s while the database stays locked (polled every 100 ms).
        while (Date.now() - t0 < 8000 && d.proc.exitCode === null) await sleep(100);
        if (d.proc.exitCode !== null) {
          const tail = d.logs().split('\n').filter(Boolean).slice(-12).join('\n');
          problems.push(`the daemon died (exit ${d.proc.exitCode}) ${Date.now() - t0} ms after serving a request while the DB was locked; log tail:\n${tail}`);
        }
        release();
        if (d.proc.exitCode === null) {
          const rows = await waitFor(
            async () => {
              const x = await auditRowsFor(d!, '/v1/while-locked');
              return x.length > 0 ? x : null;
            },
            'the audit row of the request served while locked',
            10_000,
          ).catch(() => []);
          if (rows.length !== 1)
            problems.push(`the audit row of the request served while the DB was locked is missing after the lock was released (${rows.length} rows)`);
          await d.stop();
        }
      }
      release();
      // Whatever happened: everything stored before is still there, the chain verifies, the secret works.
      const again = await launch({ home });
      const creds = (await again.client.call('cred.list')).credentials;
      expect(creds.map((x) => [x.name, x.phantom])).toEqual([['disk', phantom]]);
      const v = await again.client.call('audit.verify');
      expect(v.ok).toBe(true);
      const dumpNow = dumpDb(dbFile);
      for (const table of ['credentials', 'rules', 'credential_pools', 'credential_health', 'settings']) expect(dumpNow[table], table).toEqual(dump0[table]);
      // every audit row that existed before is still there, unchanged
      for (const row of dump0.audit_log!) expect(dumpNow.audit_log).toContain(row);
      const from = upstream.seen.length;
      expect((await again.fetch(`https://${ANT}/v1/after-lock`, { headers: { 'x-api-key': phantom } })).status).toBe(200);
      expect(upstream.seen.slice(from).find((s) => s.path === '/v1/after-lock')?.headers['x-api-key']).toBe(secret);
    } finally {
      release();
    }
    expect(problems).toEqual([]);
  }, 60_000);
});
