/**
 * Issue 23: `sluicectl pool add-member` / `remove-member` through the built CLI and daemon, with real TLS
 * through the proxy. Membership changes keep the pool's phantom (agents hold it), the new member really
 * serves requests, and the last member cannot be removed.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { runCli } from '../fakes/reliability-helpers.js';
import { fakeSecret } from './helpers.js';

const HOST = 'api.anthropic.com';
let up: FakeUpstream;
let d: TestDaemon;
const secrets: Record<string, string> = {};

async function addCred(name: string): Promise<void> {
  secrets[name] = fakeSecret('sk-ant-api03-');
  await d.client.call('cred.add', { name, hosts: [HOST], header: 'x-api-key', secret: secrets[name] });
}

/** Sends one request with `phantom` and returns the name of the credential whose real key reached upstream. */
async function servedBy(phantom: string, path: string): Promise<string> {
  const r = await d.fetch(`https://${HOST}${path}`, { headers: { 'x-api-key': phantom } });
  expect(r.status).toBe(200);
  const seen = up.seen.filter((s) => s.path === path).at(-1);
  const key = String(seen?.headers['x-api-key'] ?? '');
  return Object.entries(secrets).find(([, s]) => s === key)?.[0] ?? `unknown key`;
}

beforeAll(async () => {
  up = await startFakeUpstream();
  d = await startDaemon({ upstreamPort: up.port });
  await d.client.call('rule.add', { verdict: 'allow', host: HOST });
  for (const n of ['m-a', 'm-b', 'm-c', 'other-x']) await addCred(n);
  await d.client.call('pool.create', { name: 'mp', members: ['m-a'] });
  await d.client.call('pool.create', { name: 'other', members: ['other-x'] });
}, 30_000);

afterAll(async () => {
  await d?.stop();
  await up?.close();
});

describe('pool membership', () => {
  test('add-member appends a credential and keeps the phantom; the new member serves after a rotate', async () => {
    const before = (await d.client.call('pool.status', { name: 'mp' })).pools[0]!;
    const r = await runCli(['pool', 'add-member', 'mp', 'm-b'], d.socket);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('added m-b to pool mp; members: m-a, m-b (phantom unchanged)');
    const after = (await d.client.call('pool.status', { name: 'mp' })).pools[0]!;
    expect(after.phantom).toBe(before.phantom);
    expect(after.members.map((m) => m.name)).toEqual(['m-a', 'm-b']);
    expect(await servedBy(after.phantom, '/v1/add-1')).toBe('m-a');
    await d.client.call('pool.rotate', { name: 'mp' });
    expect(await servedBy(after.phantom, '/v1/add-2')).toBe('m-b');
  });

  test('add-member refuses a credential of another pool, an unknown one and a duplicate, changing nothing', async () => {
    for (const [cred, text] of [
      ['other-x', 'already a member of pool other'],
      ['nope', 'no credential named nope'],
      ['m-a', 'already a member of pool mp'],
    ] as const) {
      const r = await runCli(['pool', 'add-member', 'mp', cred], d.socket);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(text);
    }
    expect((await d.client.call('pool.status', { name: 'mp' })).pools[0]!.members.map((m) => m.name)).toEqual(['m-a', 'm-b']);
  });

  test('remove-member keeps the phantom; the last member is refused', async () => {
    const phantom = (await d.client.call('pool.status', { name: 'mp' })).pools[0]!.phantom;
    await d.client.call('pool.reset', { name: 'mp' });
    const r = await runCli(['pool', 'remove-member', 'mp', 'm-a'], d.socket);
    expect(r.code, r.stderr).toBe(0);
    const after = (await d.client.call('pool.status', { name: 'mp' })).pools[0]!;
    expect(after.phantom).toBe(phantom);
    expect(after.members.map((m) => m.name)).toEqual(['m-b']);
    expect(await servedBy(phantom, '/v1/remove-1')).toBe('m-b');
    // m-a left the pool, so it can now be removed as a credential.
    await d.client.call('cred.remove', { name: 'm-a' });

    const last = await runCli(['pool', 'remove-member', 'mp', 'm-b'], d.socket);
    expect(last.code).toBe(1);
    expect(last.stderr).toContain('m-b is the last member of pool mp');
    expect((await d.client.call('pool.status', { name: 'mp' })).pools[0]!.members.map((m) => m.name)).toEqual(['m-b']);
    expect(await servedBy(phantom, '/v1/remove-2')).toBe('m-b');
  });

  test('each membership change writes an audit row', async () => {
    const rows = (await d.client.call('audit.tail', { n: 200 })).rows.map((row) => row.event);
    expect(rows).toContain('pool_member_added');
    expect(rows).toContain('pool_member_removed');
  });
});
