/**
 * Issue 23: `sluicectl run` (and `eval "$(sluicectl env)"`) must not send loopback traffic through the
 * proxy, where it would wait in an approval prompt. Real daemon, real curl: a local HTTPS server on
 * 127.0.0.1 is reached directly, while an external host still goes through the proxy. The daemon's
 * default verdict is deny here, so a request that did go through the proxy would fail with 403 at once.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BIN, startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { UPSTREAM_CA, startFakeUpstream, startHttpsUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import type { LoopbackServer } from '../fakes/loopback-server.js';

const execFileP = promisify(execFile);
let up: FakeUpstream;
let local: LoopbackServer;
let d: TestDaemon;
let localHits = 0;

beforeAll(async () => {
  up = await startFakeUpstream();
  local = await startHttpsUpstream((_req, res) => {
    localHits++;
    res.end('local-ok');
  });
  d = await startDaemon({ upstreamPort: up.port, env: { SLUICE_DEFAULT_VERDICT: 'deny' } });
}, 30_000);

afterAll(async () => {
  await d?.stop();
  await local?.close();
  await up?.close();
});

/** curl under `sluicectl run`, trusting the test CA for the local server; stdout is body + status. */
async function curlThroughRun(url: string, env: Record<string, string | undefined> = {}): Promise<string> {
  return (await curlRun(url, env, ['--cacert', UPSTREAM_CA])).stdout;
}

async function curlRun(url: string, env: Record<string, string | undefined>, extra: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, SLUICE_SOCKET: d.socket, ...env };
  for (const k of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy']) delete childEnv[k];
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  try {
    const { stdout, stderr } = await execFileP(
      process.execPath,
      [BIN.cli, 'run', '--', 'curl', '-sS', '--max-time', '10', ...extra, '-o', '-', '-w', ' %{http_code}', url],
      { env: childEnv, timeout: 20_000 },
    );
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : -1 };
  }
}

describe('loopback bypasses the proxy under sluicectl run', () => {
  test('https://127.0.0.1:PORT and https://localhost:PORT are reached directly, with the user’s own NO_PROXY kept', async () => {
    // Each run registers and ends an agent (agent_started/agent_stopped rows); proxied traffic would add others.
    const traffic = async () => (await d.client.call('audit.tail', { n: 1000 })).rows.filter((r) => !r.event.startsWith('agent_')).length;
    const before = await traffic();
    expect(await curlThroughRun(`https://127.0.0.1:${local.port}/`, { NO_PROXY: 'corp.example', no_proxy: undefined })).toBe('local-ok 200');
    expect(await curlThroughRun(`https://localhost:${local.port}/`, { NO_PROXY: undefined, no_proxy: undefined })).toBe('local-ok 200');
    expect(localHits).toBe(2);
    // Nothing went through the proxy: no audit rows for these requests.
    expect(await traffic()).toBe(before);
  });

  test('an external host still goes through the proxy (denied by the default verdict here)', async () => {
    // Each run registers and ends an agent (agent_started/agent_stopped rows); proxied traffic would add others.
    const traffic = async () => (await d.client.call('audit.tail', { n: 1000 })).rows.filter((r) => !r.event.startsWith('agent_')).length;
    const before = await traffic();
    // The denial comes at CONNECT (curl reports the tunnel's 403) or on the request itself.
    const r = await curlRun('https://api.anthropic.com/v1/models', { NO_PROXY: undefined, no_proxy: undefined }, []);
    expect(`${r.stdout} ${r.stderr}`).toMatch(/403/);
    expect((await d.client.call('audit.tail', { n: 1000 })).rows.length).toBeGreaterThan(before);
  });
});
