/**
 * The built `sluice` dashboard end to end, driven in a private tmux server (issues 8 and 12): it is run as
 * a user runs it, in a 100×30 terminal, against a real daemon and a fake HTTPS upstream; the screen is
 * read with `capture-pane` and keys are sent with `send-keys`. Every assertion about the screen is paired
 * with what the daemon says over RPC (or what the requests through the proxy got), so the dashboard can
 * neither fake an action nor show a stale state.
 *
 * Ink writes no frames while `CI` is set (LIBRARY-NOTES §3.4), and vitest and `.ci/run` set it, so the
 * dashboard is started with `env -u CI`.
 *
 * The tests share one daemon and one dashboard and run in order; each sets up the state it needs (its
 * own credentials and destinations), except the reconnect test, which kills that daemon, so it is last
 * of the shared ones.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connectDaemon } from '../../src/shared/rpc/client.js';
import { DAEMON_NODE_FLAGS } from '../../src/daemon/runtime-flags.js';
import { BIN, shortTempDir, startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { waitFor, within } from '../fakes/wait-for.js';
import { findRow, focusPanel, headerLine, markedRow, panelRows, requireTmux, selectRow, shQuote, TmuxServer, type TmuxPane } from './tmux-driver.js';

const execFileP = promisify(execFile);

const ANT = 'api.anthropic.com';
const OAI = 'api.openai.com';
/** Bound of every wait for the screen or for requests. */
const WAIT_MS = 10_000;

let upstream: FakeUpstream;
/** The daemon the shared dashboard talks to; replaced by the reconnect test. */
let daemon: TestDaemon;
const daemons: TestDaemon[] = [];
let tmux: TmuxServer;
let dash: TmuxPane;
/** Homes in which the dashboard itself started a daemon (shut down in afterAll). */
const autoStartedHomes: string[] = [];
const children: ChildProcess[] = [];
const aborts: AbortController[] = [];

/**
 * The `sh -c` line that runs the built dashboard in tmux: without `CI` (Ink would draw nothing), in
 * `home`, on a free proxy port should it start a daemon, then says how it exited and stays on screen.
 */
function dashboardCommand(home: string, ...args: string[]): string {
  const cmd = [process.execPath, BIN.tui, ...args].map(shQuote).join(' ');
  return (
    `env -u CI -u CONTINUOUS_INTEGRATION -u SLUICE_SOCKET SLUICE_HOME=${shQuote(home)} SLUICE_PROXY_LISTEN=127.0.0.1:0 ${cmd}; ` +
    `echo "sluice exited with $?"; sleep 300`
  );
}

/** The environment for sluicectl against `home`. */
function cliEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SLUICE_HOME: home };
  delete env.SLUICE_SOCKET;
  return env;
}

/** Polls `fn` until it returns a truthy value (bounded; the shared helper). */
function until<T>(fn: () => T | Promise<T>, what: string, ms = WAIT_MS): Promise<NonNullable<T>> {
  return waitFor(fn, { what, timeoutMs: ms, intervalMs: 50 });
}

/** The number field's two lines (field and hint or error) as they show under the edited credential. */
function fieldLines(screen: string): string {
  const rows = panelRows(screen, 'Credentials') ?? [];
  const at = rows.findIndex((r) => r.includes('✎ '));
  return at === -1 ? '' : rows.slice(at, at + 2).join('\n');
}

/** A fake but realistic-looking secret. */
function fakeSecret(prefix: string): string {
  return `${prefix}REAL${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}xxxxxxxx`;
}

/** Shuts down a daemon the dashboard started in `home`: RPC first, then its pid file. */
async function stopAutoStarted(home: string): Promise<void> {
  try {
    const c = await connectDaemon({ socketPath: path.join(home, 'sluiced.sock'), timeoutMs: 3_000, connectTimeoutMs: 2_000 });
    await c.call('daemon.shutdown').catch(() => {});
    c.close();
  } catch {
    // not answering
  }
  try {
    const pid = Number(fs.readFileSync(path.join(home, 'sluiced.pid'), 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0) {
      const gone = () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      };
      if (await waitFor(gone, { what: `pid ${pid} to exit`, timeoutMs: 5_000, intervalMs: 50 }).catch(() => false)) return;
      process.kill(pid, 'SIGKILL');
    }
  } catch {
    // no pid file or already gone
  }
}

beforeAll(async () => {
  requireTmux();
  upstream = await startFakeUpstream();
  daemon = await startDaemon({ upstreamPort: upstream.port, home: shortTempDir('slt') });
  daemons.push(daemon);
  tmux = new TmuxServer();
  dash = await tmux.newSession('dash', dashboardCommand(daemon.home));
  await dash.waitForScreen(
    (s) => headerLine(s).includes('● connected') && headerLine(s).includes(`proxy 127.0.0.1:${daemon.proxyPort}`),
    'the dashboard to connect to the test daemon',
  );
});

afterAll(async () => {
  for (const ctl of aborts) ctl.abort();
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  // Answer whatever a failed test left pending so no request hangs, then tear everything down.
  try {
    for (const a of (await daemon.client.call('approval.list')).approvals) {
      await daemon.client.call('approval.resolve', { id: a.id, decision: 'deny' }).catch(() => {});
    }
  } catch {
    // the daemon may be gone
  }
  tmux?.kill();
  for (const d of daemons) await d.stop().catch(() => {});
  for (const home of autoStartedHomes) await stopAutoStarted(home);
  await upstream?.close();
  for (const home of new Set([...daemons.map((d) => d.home), ...autoStartedHomes])) fs.rmSync(home, { recursive: true, force: true });
});

describe('sluice dashboard in tmux', () => {
  test('a burst of 8 to an ask destination shows ONE approval row with 8 waiters; `a` lets all 8 through and the row vanishes', async () => {
    expect((await daemon.client.call('daemon.status')).default_verdict).toBe('ask');
    expect((await daemon.client.call('rule.list')).rules.some((r) => r.host === ANT)).toBe(false);
    const ctl = new AbortController();
    aborts.push(ctl);
    let settled = 0;
    const burst = Array.from({ length: 8 }, (_, i) =>
      daemon.fetch(`https://${ANT}/slow?ms=10&n=${i}`, { signal: ctl.signal }).then(
        (r) => {
          settled++;
          return r.status;
        },
        () => {
          settled++;
          return -1;
        },
      ),
    );

    const screen = await dash.waitForScreen((s) => /×8\b/.test(findRow(s, 'Approvals', `${ANT}:443`) ?? ''), `one approval row for ${ANT}:443 with ×8`);
    const rows = (panelRows(screen, 'Approvals') ?? []).filter((r) => r.trim() !== '');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain(`${ANT}:443`);
    expect(rows[0]).toMatch(/×8\s+GET\s+\/slow/);
    expect(screen).toContain('1 pending, 8 requests waiting');
    const pending = (await daemon.client.call('approval.list')).approvals;
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ host: ANT, port: 443, waiters: 8 });
    // nobody has been let through yet: the answer is what releases them
    expect(settled).toBe(0);

    await focusPanel(dash, 'Approvals');
    await selectRow(dash, 'Approvals', `${ANT}:443`);
    await dash.type('a');

    const statuses = await within(Promise.all(burst), WAIT_MS, 'the 8 requests to finish after `a`');
    expect(statuses).toEqual(Array(8).fill(200));
    const after = await dash.waitForScreen(
      (s) => findRow(s, 'Approvals', `${ANT}:443`) === undefined && (panelRows(s, 'Approvals') ?? []).some((r) => r.includes('no destination is waiting')),
      'the approval row to vanish',
    );
    expect(after).toContain('none pending');
    expect((await daemon.client.call('approval.list')).approvals).toEqual([]);
    // allow once: no rule was saved
    expect((await daemon.client.call('rule.list')).rules.some((r) => r.host === ANT)).toBe(false);
  });

  test('`r` on a pool moves the active marker to the next member, on screen and in pool.status', async () => {
    for (const name of ['a', 'b']) {
      await daemon.client.call('cred.add', { name, hosts: [ANT], header: 'x-api-key', secret: fakeSecret('sk-ant-api03-') });
    }
    await daemon.client.call('pool.create', { name: 'duo', members: ['a', 'b'] });
    expect((await daemon.client.call('pool.status', { name: 'duo' })).pools[0]?.active).toBe('a');
    const before = await dash.waitForScreen((s) => /▶a ok/.test(findRow(s, 'Pools', 'duo') ?? ''), 'pool duo with a active');
    expect(findRow(before, 'Pools', 'duo')).not.toContain('▶b');

    await focusPanel(dash, 'Pools');
    await selectRow(dash, 'Pools', 'duo');
    await dash.type('r');

    const after = await dash.waitForScreen((s) => /▶b ok/.test(findRow(s, 'Pools', 'duo') ?? ''), 'the active marker on b');
    expect(findRow(after, 'Pools', 'duo')).not.toContain('▶a');
    expect(findRow(after, 'Pools', 'duo')).toMatch(/ a cooling .*manual rotate/);
    expect((await daemon.client.call('pool.status', { name: 'duo' })).pools[0]?.active).toBe('b');
  });

  test('`c` edits a cap inline: over 256 is refused as you type; 2 is saved, sluicectl and watch see it, the 3rd request gets 429 cap: 2', async () => {
    await daemon.client.call('rule.add', { verdict: 'allow', host: OAI });
    const cred = await daemon.client.call('cred.add', {
      name: 'capped',
      hosts: [OAI],
      header: 'authorization',
      format: 'Bearer {}',
      secret: fakeSecret('sk-proj-'),
    });
    const headers = { authorization: `Bearer ${cred.phantom}` };
    const capOf = async () => (await daemon.client.call('limits.get')).credentials.find((c) => c.name === 'capped')?.max_concurrent;
    expect(await capOf()).toBe(8);
    await dash.waitForScreen((s) => /\bcap 8\b/.test(findRow(s, 'Credentials', 'capped') ?? ''), 'the capped row with cap 8');

    // sluicectl watch, subscribed (its snapshot line says so) before anything changes
    const watch = spawn(process.execPath, [BIN.cli, 'watch', '--type', 'limits.changed', '--snapshot'], {
      env: cliEnv(daemon.home),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(watch);
    let watchOut = '';
    watch.stdout!.on('data', (c: Buffer) => (watchOut += c.toString()));
    watch.stderr!.on('data', (c: Buffer) => (watchOut += c.toString()));
    await until(() => watchOut.includes('"type":"snapshot"'), 'sluicectl watch to subscribe');

    await focusPanel(dash, 'Credentials');
    await selectRow(dash, 'Credentials', 'capped');
    await dash.type('c');
    await dash.waitForScreen((s) => s.includes('✎ cap for capped: 8'), 'the cap field pre-filled with 8');

    // out of bounds: the reason shows while typing, before any save is tried
    await dash.type('300');
    const bad = await dash.waitForScreen((s) => s.includes('✎ cap for capped: 300'), 'the field to show 300');
    expect(fieldLines(bad)).toMatch(/✗ .*between 1 and 256/);
    await dash.press('Enter');
    // enter did not save: the field stays open with its value and still takes digits
    await dash.press('BSpace', 'BSpace', 'BSpace');
    await dash.type('2');
    const fixed = await dash.waitForScreen((s) => /✎ cap for capped: 2▏/.test(s), 'the field to show 2');
    expect(fieldLines(fixed)).not.toMatch(/✗/);
    expect(fieldLines(fixed)).toContain('applies to the next request; in-flight requests keep their slots');
    expect(await capOf()).toBe(8);
    expect(watchOut).not.toContain('"type":"limits.changed"');

    await dash.press('Enter');
    const saved = await dash.waitForScreen(
      (s) => !s.includes('✎ cap for capped') && /\bcap 2\b/.test(findRow(s, 'Credentials', 'capped') ?? ''),
      'the field to close and the row to show cap 2',
    );
    expect(findRow(saved, 'Credentials', 'capped')).toMatch(/\b0\/2\b/);

    const { stdout } = await execFileP(process.execPath, [BIN.cli, 'limits', 'get', '--json'], { env: cliEnv(daemon.home), timeout: WAIT_MS });
    const limits = JSON.parse(stdout) as { credentials: { name: string; max_concurrent: number }[] };
    expect(limits.credentials.find((c) => c.name === 'capped')?.max_concurrent).toBe(2);
    const line = await until(() => watchOut.split('\n').find((l) => l.includes('"type":"limits.changed"')), 'sluicectl watch to print limits.changed');
    const event = JSON.parse(line) as { type: string; limits: { credentials: { name: string; max_concurrent: number }[] } };
    expect(event.limits.credentials.find((c) => c.name === 'capped')?.max_concurrent).toBe(2);

    // the new cap governs the next requests: two hang in flight, the third is refused naming cap 2
    const ctl = new AbortController();
    aborts.push(ctl);
    const held = [0, 1].map(() => daemon.fetch(`https://${OAI}/hang`, { headers, signal: ctl.signal }).catch(() => null));
    await dash.waitForScreen((s) => /\b2\/2\b/.test(findRow(s, 'Credentials', 'capped') ?? ''), 'capped at 2/2 in flight');
    expect((await daemon.client.call('stats.snapshot')).credentials.find((c) => c.name === 'capped')?.in_flight).toBe(2);
    const third = await within(daemon.fetch(`https://${OAI}/v1/chat/completions`, { headers }), WAIT_MS, 'the third request');
    expect(third.status).toBe(429);
    expect(third.text).toContain('cap: 2');
    ctl.abort();
    await within(Promise.all(held), WAIT_MS, 'the held requests to end');
    watch.kill('SIGTERM');
  });

  test('when the daemon dies the header says "disconnected"; a new daemon on the same home is picked up by itself', async () => {
    const old = daemon;
    await old.kill();
    await dash.waitForScreen((s) => headerLine(s).includes('disconnected'), 'the header to say disconnected');

    daemon = await startDaemon({ home: old.home, upstreamPort: upstream.port });
    daemons.push(daemon);
    expect(daemon.proxyPort).not.toBe(old.proxyPort);
    const back = await dash.waitForScreen(
      (s) => headerLine(s).includes('● connected') && headerLine(s).includes(`proxy 127.0.0.1:${daemon.proxyPort}`),
      'the header to show the new daemon connected',
      15_000,
    );
    expect(headerLine(back)).not.toContain('disconnected');
    // subscribed again, not just connected: a change made on the new daemon shows up live
    await daemon.client.call('cred.add', { name: 'reborn', hosts: [ANT], header: 'x-api-key', secret: fakeSecret('sk-ant-api03-') });
    await dash.waitForScreen((s) => findRow(s, 'Credentials', 'reborn') !== undefined, 'a credential added after the restart to appear');
  });

  test('with no daemon running, the dashboard starts one and says so; q quits and leaves it running', async () => {
    const home = shortTempDir('slt');
    autoStartedHomes.push(home);
    const pane = await tmux.newSession('autostart', dashboardCommand(home));
    const screen = await pane.waitForScreen(
      (s) => headerLine(s).includes('● connected') && (panelRows(s, 'Notices') ?? []).some((r) => r.includes('started sluiced in the background')),
      'the dashboard to start a daemon and say so',
      20_000,
    );
    expect(markedRow(screen, 'Approvals')).toBeUndefined();
    const client = await connectDaemon({ socketPath: path.join(home, 'sluiced.sock'), timeoutMs: 5_000, connectTimeoutMs: 2_000 });
    try {
      const status = await client.call('daemon.status');
      expect(status.proxy.listen).toMatch(/^127\.0\.0\.1:\d+$/);
      // The background daemon runs with the daemon's Node flags (heap sizing; see runtime-flags.ts).
      const cmdline = fs.readFileSync(`/proc/${status.pid}/cmdline`, 'utf8').split('\0');
      for (const flag of DAEMON_NODE_FLAGS) expect(cmdline).toContain(flag);
    } finally {
      client.close();
    }

    await pane.type('q');
    const after = await pane.waitForScreen((s) => s.includes('sluice exited with'), 'the dashboard to exit');
    expect(after).toContain('sluice exited with 0');
    expect(after).toContain('no daemon is running; starting sluiced');
    // the daemon it started keeps running after the dashboard quits
    const again = await connectDaemon({ socketPath: path.join(home, 'sluiced.sock'), timeoutMs: 5_000, connectTimeoutMs: 2_000 });
    again.close();
  });

  test('with --no-start and no daemon, the dashboard refuses and exits 3', async () => {
    const home = shortTempDir('slt');
    autoStartedHomes.push(home); // in case it wrongly starts one
    const pane = await tmux.newSession('nostart', dashboardCommand(home, '--no-start'));
    const screen = await pane.waitForScreen((s) => s.includes('sluice exited with'), 'the dashboard to exit');
    expect(screen).toContain('sluice exited with 3');
    expect(screen).toContain('--no-start was given');
    expect(fs.existsSync(path.join(home, 'sluiced.pid'))).toBe(false);
    await expect(connectDaemon({ socketPath: path.join(home, 'sluiced.sock'), connectTimeoutMs: 1_000 })).rejects.toMatchObject({ code: 'daemon_unreachable' });
  });
});
