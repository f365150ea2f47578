/**
 * The approval broker through the real proxy: requests to a destination no rule covers (default verdict
 * `ask`) wait for a human. A burst to one host:port coalesces into ONE prompt with a waiter count, one
 * answer fans out to all, always-* persists exactly one rule, and timeout, disconnects, limits, the
 * per-rule opt-out and shutdown behave as DESIGN §5 says.
 *
 * Every test uses its own `other.example:PORT` destination (SLUICE_RESOLVE maps those ports to the fake
 * upstream), so prompts and rules of one test never meet another's.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ProxyAgent, request } from 'undici';
import fs from 'node:fs';
import { connectDaemon, RpcError, type DaemonClient } from '../../src/shared/rpc/client.js';
import type { SluiceEvent } from '../../src/shared/protocol/events.js';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, UPSTREAM_CA, type FakeUpstream } from '../fakes/fake-upstream.js';
import { basicAuth, defaultResolvePairs, resolveSpec, tokenOf, waitFor, within } from './helpers.js';

const H = 'other.example';
const PORTS = { burst: 2001, deny: 2002, detach: 2003, reattach: 2004, thousand: 2005, race: 2006, nocoalesce: 2007, limit256: 2008, events: 2009 };

let upstream: FakeUpstream;
let d: TestDaemon;
let disp: ProxyAgent;
let watcher: DaemonClient;
const events: SluiceEvent[] = [];

/** A dispatcher with as many connections as a test needs (undici's default is unbounded, say so anyway). */
function agentFor(daemon: TestDaemon, connections?: number): ProxyAgent {
  return new ProxyAgent({
    uri: `http://127.0.0.1:${daemon.proxyPort}`,
    token: basicAuth(tokenOf(daemon)),
    requestTls: { ca: [fs.readFileSync(daemon.caPath, 'utf8'), fs.readFileSync(UPSTREAM_CA, 'utf8')] },
    ...(connections ? { connections } : {}),
  });
}

interface Answer {
  status: number;
  text: string;
  error?: string;
}

/** One request to `other.example:port`; never rejects (an error becomes status -1). */
function fire(port: number, path: string, opts: { signal?: AbortSignal; agent?: ProxyAgent } = {}): Promise<Answer> {
  return request(`https://${H}:${port}${path}`, { dispatcher: opts.agent ?? disp, signal: opts.signal }).then(
    async (res) => ({ status: res.statusCode, text: await res.body.text() }),
    (err: unknown) => ({ status: -1, text: '', error: String(err) }),
  );
}

async function approvalsFor(daemon: TestDaemon, port: number) {
  return (await daemon.client.call('approval.list')).approvals.filter((a) => a.host === H && a.port === port);
}

/** Waits until exactly one prompt for `port` exists with `n` waiters; returns it. */
function onePromptWith(daemon: TestDaemon, port: number, n: number, timeoutMs = 10_000) {
  return waitFor(
    async () => {
      const a = await approvalsFor(daemon, port);
      if (a.length > 1) throw new Error(`${a.length} prompts for port ${port}`);
      return a.length === 1 && a[0]!.waiters === n ? a[0]! : null;
    },
    `one prompt for :${port} with ${n} waiters`,
    timeoutMs,
  );
}

async function rpcError(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RpcError);
    return err as RpcError;
  }
  throw new Error('the call succeeded but should have failed');
}

const eventsFor = (type: SluiceEvent['type'], pred: (e: SluiceEvent) => boolean = () => true) => events.filter((e) => e.type === type && pred(e));

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const pairs: [string, number][] = [...defaultResolvePairs(), ...Object.values(PORTS).map((p) => [H, p] as [string, number])];
  d = await startDaemon({ upstreamPort: upstream.port, env: { SLUICE_RESOLVE: resolveSpec(upstream.port, pairs) } });
  disp = agentFor(d);
  watcher = await connectDaemon({ socketPath: d.socket, timeoutMs: 10_000 });
  watcher.onEvent((e) => events.push(e));
  await watcher.call('events.subscribe', { types: ['approval.pending', 'approval.updated', 'approval.resolved', 'rule.changed'] });
});

afterAll(async () => {
  // deny whatever a failed test left pending so no request hangs, then tear down
  try {
    for (const a of (await d.client.call('approval.list')).approvals) await d.client.call('approval.resolve', { id: a.id, decision: 'deny' }).catch(() => {});
  } catch {
    // the daemon may already be gone
  }
  watcher?.close();
  await disp?.destroy().catch(() => {});
  await d?.stop();
  await upstream?.close();
});

describe('coalescing (seed end-to-end case)', () => {
  test('a burst of 8 → ONE prompt with 8 waiters; always_allow lets all 8 through, persists one rule; later requests do not prompt', async () => {
    const port = PORTS.burst;
    expect((await d.client.call('daemon.status')).default_verdict).toBe('ask');
    const burst = Array.from({ length: 8 }, (_, i) => fire(port, `/appr/burst/${i}`));
    const prompt = await onePromptWith(d, port, 8);
    expect(prompt).toMatchObject({ host: H, port, method: 'GET' });
    expect(prompt.path).toMatch(/^\/appr\/burst\/\d$/);
    expect(Date.parse(prompt.expires_at)).toBeGreaterThan(Date.parse(prompt.created_at));
    // nothing reached the upstream while waiting
    expect(upstream.seen.some((s) => s.path.startsWith('/appr/burst/'))).toBe(false);
    const res = await d.client.call('approval.resolve', { id: prompt.id, decision: 'always_allow' });
    expect(res.waiters).toBe(8);
    const answers = await Promise.all(burst);
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(upstream.seen.filter((s) => s.path.startsWith('/appr/burst/'))).toHaveLength(8);
    const rules = (await d.client.call('rule.list')).rules.filter((r) => r.host === H && r.port === port);
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({ verdict: 'allow', source: 'approval' });
    // the broker told subscribers about exactly one prompt, and the final count
    await waitFor(() => eventsFor('approval.resolved', (e) => 'id' in e && e.id === prompt.id).length === 1, 'approval.resolved event');
    expect(eventsFor('approval.pending', (e) => e.type === 'approval.pending' && e.approval.port === port)).toHaveLength(1);
    const resolved = eventsFor('approval.resolved', (e) => 'id' in e && e.id === prompt.id)[0] as Extract<SluiceEvent, { type: 'approval.resolved' }>;
    expect(resolved.waiters).toBe(8);
    expect(resolved.decision).toBe('always_allow');
    // approval.updated carried the growing waiter count up to 8
    const updates = eventsFor('approval.updated', (e) => 'id' in e && e.id === prompt.id).map(
      (e) => (e as Extract<SluiceEvent, { type: 'approval.updated' }>).waiters,
    );
    expect(Math.max(...updates)).toBe(8);
    // answering again is a clear error
    expect((await rpcError(d.client.call('approval.resolve', { id: prompt.id, decision: 'deny' }))).code).toBe('already_resolved');
    // later requests go straight through: no prompt, still one rule
    const later = await Promise.all([fire(port, '/appr/burst/later1'), fire(port, '/appr/burst/later2')]);
    expect(later.map((a) => a.status)).toEqual([200, 200]);
    expect(await approvalsFor(d, port)).toEqual([]);
    expect(eventsFor('approval.pending', (e) => e.type === 'approval.pending' && e.approval.port === port)).toHaveLength(1);
    expect((await d.client.call('rule.list')).rules.filter((r) => r.host === H && r.port === port)).toHaveLength(1);
  });

  test('deny → 403 for every waiter with a message; the upstream saw nothing', async () => {
    const port = PORTS.deny;
    const burst = Array.from({ length: 8 }, (_, i) => fire(port, `/appr/deny/${i}`));
    const prompt = await onePromptWith(d, port, 8);
    expect((await d.client.call('approval.resolve', { id: prompt.id, decision: 'deny' })).waiters).toBe(8);
    const answers = await Promise.all(burst);
    for (const a of answers) {
      expect(a.status).toBe(403);
      expect(JSON.parse(a.text).error.message).toMatch(/denied/i);
    }
    expect(upstream.seen.some((s) => s.path.startsWith('/appr/deny/'))).toBe(false);
    // deny (not always_deny) persists nothing, so the next request asks again
    expect((await d.client.call('rule.list')).rules.filter((r) => r.port === port)).toEqual([]);
    const again = fire(port, '/appr/deny/again');
    const p2 = await onePromptWith(d, port, 1);
    expect(p2.id).not.toBe(prompt.id);
    await d.client.call('approval.resolve', { id: p2.id, decision: 'always_deny' });
    expect((await again).status).toBe(403);
    const rules = (await d.client.call('rule.list')).rules.filter((r) => r.port === port);
    expect(rules.map((r) => r.verdict)).toEqual(['deny']);
    expect((await fire(port, '/appr/deny/after-rule')).status).toBe(403);
    expect(await approvalsFor(d, port)).toEqual([]);
  });

  test('a waiter whose client disconnects detaches: waiters drop to 7 and the others are still answered', async () => {
    const port = PORTS.detach;
    const ctls = Array.from({ length: 8 }, () => new AbortController());
    const burst = ctls.map((c, i) => fire(port, `/appr/detach/${i}`, { signal: c.signal }));
    const prompt = await onePromptWith(d, port, 8);
    ctls[3]!.abort();
    await onePromptWith(d, port, 7);
    const res = await d.client.call('approval.resolve', { id: prompt.id, decision: 'allow_once' });
    expect(res.waiters).toBe(7);
    const answers = await Promise.all(burst);
    expect(answers[3]!.status).toBe(-1);
    expect(answers.filter((_, i) => i !== 3).map((a) => a.status)).toEqual(Array(7).fill(200));
    expect(upstream.seen.filter((s) => s.path.startsWith('/appr/detach/')).map((s) => s.path)).not.toContain('/appr/detach/3');
    // allow_once persisted nothing
    expect((await d.client.call('rule.list')).rules.filter((r) => r.port === port)).toEqual([]);
  });

  test('when the last waiter leaves, the prompt stays (0 waiting) and a later request re-attaches to it', async () => {
    const port = PORTS.reattach;
    const ctl = new AbortController();
    const first = fire(port, '/appr/reattach/1', { signal: ctl.signal });
    const prompt = await onePromptWith(d, port, 1);
    ctl.abort();
    expect((await first).status).toBe(-1);
    const empty = await onePromptWith(d, port, 0);
    expect(empty.id).toBe(prompt.id);
    const second = fire(port, '/appr/reattach/2');
    const again = await onePromptWith(d, port, 1);
    expect(again.id).toBe(prompt.id);
    expect((await d.client.call('approval.resolve', { id: prompt.id, decision: 'allow_once' })).waiters).toBe(1);
    expect((await second).status).toBe(200);
  });
});

describe('answers from several clients', () => {
  test('concurrent always_allow from two RPC clients: one wins, the other gets already_resolved, one rule', async () => {
    const port = PORTS.race;
    const burst = Array.from({ length: 3 }, (_, i) => fire(port, `/appr/race/${i}`));
    const prompt = await onePromptWith(d, port, 3);
    const c1 = await connectDaemon({ socketPath: d.socket, timeoutMs: 5000 });
    const c2 = await connectDaemon({ socketPath: d.socket, timeoutMs: 5000 });
    try {
      const results = await Promise.allSettled([
        c1.call('approval.resolve', { id: prompt.id, decision: 'always_allow' }),
        c2.call('approval.resolve', { id: prompt.id, decision: 'always_allow' }),
      ]);
      const ok = results.filter((r) => r.status === 'fulfilled');
      const bad = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(ok).toHaveLength(1);
      expect((ok[0] as PromiseFulfilledResult<{ waiters: number }>).value.waiters).toBe(3);
      expect(bad).toHaveLength(1);
      expect((bad[0]!.reason as RpcError).code).toBe('already_resolved');
      expect((bad[0]!.reason as RpcError).message).toMatch(/already resolved/i);
    } finally {
      c1.close();
      c2.close();
    }
    expect((await Promise.all(burst)).map((a) => a.status)).toEqual([200, 200, 200]);
    expect((await d.client.call('rule.list')).rules.filter((r) => r.host === H && r.port === port)).toHaveLength(1);
  });

  test('resolving an unknown id → unknown_approval, and nothing else changes', async () => {
    const rulesBefore = (await d.client.call('rule.list')).rules.length;
    const e = await rpcError(d.client.call('approval.resolve', { id: 'ap_0000000000', decision: 'always_allow' }));
    expect(e.code).toBe('unknown_approval');
    expect((await d.client.call('rule.list')).rules.length).toBe(rulesBefore);
  });
});

describe('opt-out and limits', () => {
  test('a rule with coalesce:false and verdict ask gives one prompt per request', async () => {
    const port = PORTS.nocoalesce;
    const rule = await d.client.call('rule.add', { verdict: 'ask', host: H, port, coalesce: false });
    expect(rule.coalesce).toBe(false);
    const reqs = Array.from({ length: 3 }, (_, i) => fire(port, `/appr/nocoalesce/${i}`));
    const prompts = await waitFor(async () => {
      const a = await approvalsFor(d, port);
      return a.length === 3 ? a : null;
    }, 'three prompts');
    expect(prompts.map((p) => p.waiters)).toEqual([1, 1, 1]);
    expect(new Set(prompts.map((p) => p.path)).size).toBe(3);
    for (const p of prompts) expect((await d.client.call('approval.resolve', { id: p.id, decision: 'allow_once' })).waiters).toBe(1);
    expect((await Promise.all(reqs)).map((a) => a.status)).toEqual([200, 200, 200]);
  });

  test('256 waiters per prompt: the 257th request gets 403 "too many"', async () => {
    const port = PORTS.limit256;
    const agent = agentFor(d, 300);
    try {
      const waiting = Array.from({ length: 256 }, (_, i) => fire(port, `/appr/256/${i}`, { agent }));
      const prompt = await onePromptWith(d, port, 256, 20_000);
      const extra = await fire(port, '/appr/256/extra', { agent });
      expect(extra.status).toBe(403);
      expect(JSON.parse(extra.text).error.message).toMatch(/too many/i);
      // the refused one did not join the prompt
      expect((await approvalsFor(d, port))[0]!.waiters).toBe(256);
      expect((await d.client.call('approval.resolve', { id: prompt.id, decision: 'deny' })).waiters).toBe(256);
      const answers = await Promise.all(waiting);
      expect(answers.every((a) => a.status === 403)).toBe(true);
    } finally {
      await agent.destroy().catch(() => {});
    }
  }, 30_000);

  test('the queue is one list in arrival order, each entry with host:port, first method + path and its waiters', async () => {
    const order = [2012, 2010, 2011];
    const reqs: Promise<Answer>[] = [];
    for (const [i, port] of order.entries()) {
      reqs.push(fire(port, `/appr/order/${i}`));
      await waitFor(async () => (await approvalsFor(d, port)).length === 1, `prompt for :${port}`);
    }
    reqs.push(fire(2010, '/appr/order/again'));
    await onePromptWith(d, 2010, 2);
    const list = (await d.client.call('approval.list')).approvals.filter((a) => order.includes(a.port));
    expect(list.map((a) => a.port)).toEqual(order);
    expect(list.map((a) => a.path)).toEqual(['/appr/order/0', '/appr/order/1', '/appr/order/2']);
    expect(list.map((a) => a.waiters)).toEqual([1, 2, 1]);
    for (const a of list) await d.client.call('approval.resolve', { id: a.id, decision: 'deny' });
    expect((await Promise.all(reqs)).map((a) => a.status)).toEqual([403, 403, 403, 403]);
  });

  test('at most 50 pending prompts: the 51st destination gets 403 "approval queue full"', async () => {
    const ports = Array.from({ length: 50 }, (_, i) => 3000 + i);
    const agent = agentFor(d, 60);
    try {
      const waiting = ports.map((p) => fire(p, '/appr/50', { agent }));
      await waitFor(async () => (await d.client.call('approval.list')).approvals.length === 50, '50 pending prompts', 15_000);
      const extra = await fire(3050, '/appr/50', { agent });
      expect(extra.status).toBe(403);
      expect(JSON.parse(extra.text).error.message).toMatch(/queue full/i);
      expect(await approvalsFor(d, 3050)).toEqual([]);
      for (const a of (await d.client.call('approval.list')).approvals) await d.client.call('approval.resolve', { id: a.id, decision: 'deny' });
      expect((await Promise.all(waiting)).every((a) => a.status === 403)).toBe(true);
    } finally {
      await agent.destroy().catch(() => {});
    }
  }, 30_000);

  test('400 concurrent requests (over the 256-waiter cap) → one prompt; one resolve and the waiter limit answer every one of them', async () => {
    // DESIGN §5 caps a prompt at 256 waiters, so of 400 concurrent requests 256 wait on the one prompt and
    // the rest are refused at once ("too many waiting"). What must hold: one prompt, no request left hanging,
    // one resolve answers all that wait. The answer is `deny` so the fan-out is measured without 256 new
    // upstream connections (allow fan-out is covered by the burst test above). 400 rather than 1,000: the
    // extra 600 only repeated the refusal, at the price of 600 more TLS handshakes (43 s on a busy machine).
    const port = PORTS.thousand;
    const N = 400;
    const refused = N - 256;
    const agent = agentFor(d, N + 100);
    try {
      const pendingBefore = eventsFor('approval.pending', (e) => e.type === 'approval.pending' && e.approval.port === port).length;
      let settled = 0;
      const all = Array.from({ length: N }, (_, i) =>
        fire(port, `/appr/1000/${i}`, { agent }).then((a) => {
          settled++;
          return a;
        }),
      );
      const prompt = await waitFor(
        async () => {
          const a = await approvalsFor(d, port);
          if (a.length > 1) throw new Error('more than one prompt');
          return a.length === 1 && a[0]!.waiters === 256 && settled === refused ? a[0]! : null;
        },
        `256 waiters and ${refused} refused`,
        25_000,
        100,
      );
      const res = await d.client.call('approval.resolve', { id: prompt.id, decision: 'deny' });
      expect(res.waiters).toBe(256);
      const answers = await Promise.all(all);
      expect(answers.every((a) => a.status === 403)).toBe(true);
      const messages = answers.map((a) => JSON.parse(a.text).error.message as string);
      expect(messages.filter((m) => /too many/i.test(m))).toHaveLength(refused);
      expect(messages.filter((m) => /denied/i.test(m))).toHaveLength(256);
      expect(upstream.seen.some((x) => x.path.startsWith('/appr/1000/'))).toBe(false);
      expect(eventsFor('approval.pending', (e) => e.type === 'approval.pending' && e.approval.port === port).length - pendingBefore).toBe(1);
    } finally {
      await agent.destroy().catch(() => {});
    }
  }, 40_000);
});

describe('timeout', () => {
  let t: TestDaemon;
  beforeAll(async () => {
    t = await startDaemon({ upstreamPort: upstream.port, env: { SLUICE_APPROVAL_TIMEOUT_MS: '500' } });
  });
  afterAll(async () => {
    await t?.stop();
  });

  test('no answer within SLUICE_APPROVAL_TIMEOUT_MS → 403 for every waiter, saying it timed out', async () => {
    expect((await t.client.call('daemon.status')).approval_timeout_ms).toBe(500);
    const seen: SluiceEvent[] = [];
    t.client.onEvent((e) => seen.push(e));
    await t.client.call('events.subscribe', { types: ['approval.resolved'] });
    const agent = agentFor(t);
    try {
      const reqs = Array.from({ length: 4 }, (_, i) =>
        request(`https://${H}/appr/timeout/${i}`, { dispatcher: agent }).then(async (r) => ({ status: r.statusCode, text: await r.body.text() })),
      );
      const answers = await Promise.all(reqs);
      for (const a of answers) {
        expect(a.status).toBe(403);
        expect(JSON.parse(a.text).error.message).toMatch(/timed out/i);
      }
      expect((await t.client.call('approval.list')).approvals).toEqual([]);
      expect(upstream.seen.some((s) => s.path.startsWith('/appr/timeout/'))).toBe(false);
      // (normally one prompt with 4 waiters; a straggler arriving after the timeout would open a second one)
      await waitFor(
        () =>
          seen
            .filter((e) => e.type === 'approval.resolved' && e.reason === 'timeout')
            .reduce((n, e) => n + (e.type === 'approval.resolved' ? e.waiters : 0), 0) === 4,
        'timeout approval.resolved events covering 4 waiters',
      );
      expect((await t.client.call('rule.list')).rules).toEqual([]);
    } finally {
      await agent.destroy().catch(() => {});
    }
  });
});

describe('shutdown', () => {
  let s: TestDaemon;
  beforeAll(async () => {
    s = await startDaemon({ upstreamPort: upstream.port });
  });
  afterAll(async () => {
    await s?.stop();
  });

  test('daemon.shutdown denies every pending approval (403) and the daemon exits cleanly', async () => {
    const agent = agentFor(s);
    try {
      const reqs = Array.from({ length: 3 }, (_, i) =>
        request(`https://${H}/appr/shutdown/${i}`, { dispatcher: agent }).then(
          async (r) => ({ status: r.statusCode, text: await r.body.text() }),
          (err: unknown) => ({ status: -1, text: String(err) }),
        ),
      );
      await waitFor(async () => (await s.client.call('approval.list')).approvals[0]?.waiters === 3, 'three waiters');
      const exited = new Promise<number | null>((r) => s.proc.once('exit', (code) => r(code)));
      expect(await s.client.call('daemon.shutdown')).toEqual({ ok: true });
      const answers = await Promise.all(reqs);
      for (const a of answers) {
        expect(a.status, a.text).toBe(403);
        expect(JSON.parse(a.text).error.message).toMatch(/shutting down/i);
      }
      expect(await within(exited, 15_000, 'the daemon to exit after daemon.shutdown').catch(() => 'still running')).toBe(0);
      expect(upstream.seen.some((x) => x.path.startsWith('/appr/shutdown/'))).toBe(false);
    } finally {
      await agent.destroy().catch(() => {});
    }
  }, 30_000);
});
