/**
 * The shared set-up of the reliability-bad-input files: a fake upstream recording requests, a daemon pointed
 * at it, an allow rule and one credential for api.anthropic.com, and a dispatcher through the proxy.
 */
import type { ProxyAgent } from 'undici';
import { startDaemon, type TestDaemon } from './daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { fakeSecret } from '../integration/helpers.js';

/** The host the bad-input credential is bound to. */
export const BAD_INPUT_HOST = 'api.anthropic.com';

/** What {@link startBadInputDaemon} starts. */
export interface BadInputDaemon {
  upstream: FakeUpstream;
  d: TestDaemon;
  phantom: string;
  disp: ProxyAgent;
}

/** Starts the upstream, the daemon, the rule and the credential. */
export async function startBadInputDaemon(): Promise<BadInputDaemon> {
  const upstream = await startFakeUpstream({ record: true });
  const d = await startDaemon({ upstreamPort: upstream.port });
  await d.client.call('rule.add', { verdict: 'allow', host: BAD_INPUT_HOST });
  const phantom = (
    await d.client.call('cred.add', { name: 'bad-input', hosts: [BAD_INPUT_HOST], header: 'x-api-key', secret: fakeSecret(), max_concurrent: 64 })
  ).phantom;
  return { upstream, d, phantom, disp: d.dispatcher() };
}

/** Stops what {@link startBadInputDaemon} started (any part may be missing when start-up failed). */
export async function stopBadInputDaemon(s: Partial<BadInputDaemon>): Promise<void> {
  await s.disp?.destroy().catch(() => {});
  await s.d?.stop();
  await s.upstream?.close();
}
