/** Issue 22 #12 through the built daemon: always-allow on a prompt raised by an exact `ask` rule. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { waitFor } from './helpers.js';

const HOST = 'other.example';
let up: FakeUpstream;
let d: TestDaemon;

beforeAll(async () => {
  up = await startFakeUpstream();
  d = await startDaemon({ upstreamPort: up.port, env: { SLUICE_DEFAULT_VERDICT: 'deny' } });
});

afterAll(async () => {
  await d?.stop();
  await up?.close();
});

describe('issue 22 #12: always-allow next to an exact ask rule', () => {
  test('replaces the ask rule, lets every waiting request through, and says what was saved', async () => {
    const ask = await d.client.call('rule.add', { verdict: 'ask', host: HOST, port: 443 });
    const waiting = [d.fetch(`https://${HOST}/one`), d.fetch(`https://${HOST}/two`)];
    const prompt = await waitFor(async () => {
      const a = (await d.client.call('approval.list')).approvals.find((x) => x.host === HOST);
      return a && a.waiters === 2 ? a : null;
    }, 'a prompt with 2 waiters');
    const r = await d.client.call('approval.resolve', { id: prompt.id, decision: 'always_allow' });
    expect(r.waiters).toBe(2);
    expect(r.saved).toMatchObject({ replaced: ask.id });
    expect((await Promise.all(waiting)).map((x) => x.status)).toEqual([200, 200]);
    const rules = (await d.client.call('rule.list')).rules.filter((x) => x.host === HOST);
    expect(rules).toEqual([expect.objectContaining({ id: r.saved!.rule_id, verdict: 'allow', port: 443 })]);
    // The next request is allowed by the saved rule without a prompt.
    expect((await d.fetch(`https://${HOST}/three`)).status).toBe(200);
    expect((await d.client.call('approval.list')).approvals).toEqual([]);
  });
});
