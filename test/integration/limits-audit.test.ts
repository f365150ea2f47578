/**
 * Limit changes (what the dashboard's c/g/w fields and `sluicectl limits set` send) reach other clients at
 * once as `limits.changed` and leave audit rows; and a state directory the daemon cannot create stops it
 * with a message naming the directory.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SluiceEvent } from '../../src/shared/protocol/events.js';
import { connectDaemon, type DaemonClient } from '../../src/shared/rpc/client.js';
import { BIN, shortTempDir, startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { waitFor } from '../fakes/wait-for.js';

let up: FakeUpstream;
let d: TestDaemon;
let watcher: DaemonClient;
const events: SluiceEvent[] = [];

beforeAll(async () => {
  up = await startFakeUpstream();
  d = await startDaemon({ upstreamPort: up.port });
  await d.client.call('cred.add', { name: 'lim', hosts: ['api.anthropic.com'], secret: 'sk-ant-api03-LIMITSECRETxxxxxxxx' });
  watcher = await connectDaemon({ socketPath: d.socket });
  watcher.onEvent((e) => events.push(e));
  await watcher.call('events.subscribe', {});
});

afterAll(async () => {
  watcher?.close();
  await d?.stop();
  await up?.close();
});

/** Waits for `f` to return something (an event that arrived on the watcher's connection). */
function until<T>(f: () => T | undefined, ms = 5000): Promise<T> {
  return waitFor(() => f(), { what: 'the limits.changed event', timeoutMs: ms });
}

describe('limit changes', () => {
  test('a per-credential cap change is published to other clients at once and audited', async () => {
    await d.client.call('limits.set', { cred: 'lim', max_concurrent: 3 });
    const ev = await until(() =>
      events.find((e) => e.type === 'limits.changed' && e.limits.credentials.some((c) => c.name === 'lim' && c.max_concurrent === 3)),
    );
    expect(ev.type).toBe('limits.changed');
    const rows = (await d.client.call('audit.tail', { n: 20 })).rows;
    expect(rows.some((r) => r.event === 'cred_updated' && r.credential === 'lim' && /max_concurrent/.test(r.detail ?? ''))).toBe(true);
  });

  test('a global cap change (and back to unlimited) is published and audited', async () => {
    await d.client.call('limits.set', { global: 5 });
    await until(() => events.find((e) => e.type === 'limits.changed' && e.limits.global === 5));
    await d.client.call('limits.set', { global: null });
    await until(() => events.find((e) => e.type === 'limits.changed' && e.limits.global === null));
    const details = (await d.client.call('audit.tail', { n: 20 })).rows.filter((r) => r.event === 'limits_changed').map((r) => r.detail);
    expect(details).toEqual(expect.arrayContaining(['global=5', 'global=none']));
  });

  test('a queue wait change is published and audited', async () => {
    await d.client.call('limits.set', { cred: 'lim', queue_timeout_ms: 250 });
    await until(() => events.find((e) => e.type === 'limits.changed' && e.limits.credentials.some((c) => c.name === 'lim' && c.queue_timeout_ms === 250)));
    const rows = (await d.client.call('audit.tail', { n: 20 })).rows;
    expect(rows.some((r) => r.event === 'cred_updated' && /queue_timeout_ms/.test(r.detail ?? ''))).toBe(true);
  });
});

describe('state directory', () => {
  test('a state directory that cannot be created stops the daemon with a message naming it', () => {
    // Tests run as root, for whom permission bits do not stop writes; a path below a regular file cannot be
    // created by anyone.
    const file = path.join(shortTempDir(), 'a-file');
    fs.writeFileSync(file, 'x');
    const home = path.join(file, 'sluice');
    const r = spawnSync(process.execPath, [BIN.daemon], {
      env: { ...process.env, SLUICE_HOME: home, SLUICE_PROXY_LISTEN: '127.0.0.1:0' },
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`cannot use the state directory ${home}`);
  });
});
