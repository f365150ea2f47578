/**
 * Issue 22 #1–#2 through the built daemon: re-setting the global cap while requests are in flight, and a
 * request queued for one credential holding no global slot. Requests are held open at the fake upstream
 * (`/hang`) and aborted by the test; waits are polled conditions with deadlines.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { ProxyAgent } from 'undici';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { fakeSecret, openStream, waitFor } from './helpers.js';

const ANT = 'api.anthropic.com';
let upstream: FakeUpstream;
let d: TestDaemon;
let disp: ProxyAgent;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  d = await startDaemon({ upstreamPort: upstream.port });
  await d.client.call('rule.add', { verdict: 'allow', host: ANT });
  disp = d.dispatcher();
});

afterAll(async () => {
  await disp?.destroy().catch(() => {});
  await d?.stop();
  await upstream?.close();
});

const held = new Set<AbortController>();
afterEach(async () => {
  for (const c of held) c.abort();
  held.clear();
  await d.client.call('limits.set', { global: null });
  await waitFor(async () => (await d.client.call('stats.snapshot')).global.in_flight === 0, 'in_flight 0');
});

async function cred(name: string, opts: { max_concurrent?: number; queue_timeout_ms?: number } = {}) {
  const c = await d.client.call('cred.add', { name, hosts: [ANT], header: 'x-api-key', secret: fakeSecret(), ...opts });
  return { 'x-api-key': c.phantom };
}

function hold(headers: Record<string, string>) {
  const ctl = new AbortController();
  held.add(ctl);
  const settled = openStream(`https://${ANT}/hang`, disp, { headers, signal: ctl.signal }).then(
    async (res) => ({ status: res.statusCode, text: await res.body.text().catch(() => '') }),
    () => ({ status: -1, text: '' }),
  );
  return { ctl, settled };
}

async function call(headers: Record<string, string>) {
  const res = await openStream(`https://${ANT}/v1/messages`, disp, { headers });
  return { status: res.statusCode, text: await res.body.text() };
}

const globalInFlight = async () => (await d.client.call('stats.snapshot')).global.in_flight;

describe('issue 22 #1: limits set --global with the same value', () => {
  test('2 held under global cap 2, then `limits set --global 2` again: the next request still gets global_cap', async () => {
    const h = await cred('rc-same');
    await d.client.call('limits.set', { global: 2 });
    hold(h);
    hold(h);
    await waitFor(async () => (await globalInFlight()) === 2, 'two in flight');
    await d.client.call('limits.set', { global: 2 });
    const r = await call(h);
    expect(r.status).toBe(429);
    expect(JSON.parse(r.text).error.message).toBe('Server is at capacity. Retry shortly.');
    expect(await globalInFlight()).toBe(2);
  });

  test('raising 2 → 3 with 2 in flight admits exactly one more', async () => {
    const h = await cred('rc-raise');
    await d.client.call('limits.set', { global: 2 });
    hold(h);
    hold(h);
    await waitFor(async () => (await globalInFlight()) === 2, 'two in flight');
    await d.client.call('limits.set', { global: 3 });
    hold(h);
    await waitFor(async () => (await globalInFlight()) === 3, 'three in flight');
    expect((await call(h)).status).toBe(429);
  });
});

describe('issue 22 #2: a queued request holds no global slot', () => {
  test('with global cap 2, one request in flight on A and one queued for A, a request on B is admitted', async () => {
    const a = await cred('rc-qa', { max_concurrent: 1, queue_timeout_ms: 20_000 });
    const b = await cred('rc-qb');
    await d.client.call('limits.set', { global: 2 });
    hold(a);
    await waitFor(async () => (await globalInFlight()) === 1, 'A in flight');
    hold(a);
    await waitFor(async () => (await d.client.call('stats.snapshot')).credentials.find((c) => c.name === 'rc-qa')?.queued === 1, 'A queued');
    expect(await globalInFlight()).toBe(1);
    const r = await call(b);
    expect(r.status).toBe(200);
  });
});
