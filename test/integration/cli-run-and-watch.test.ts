// Spawns the built sluicectl (dist/) against the fake daemon of test/unit/cli/fake-daemon.ts, so it runs with
// the integration tests (after the build), which keeps test/unit fast.
/** Long-lived sluicectl commands: `run` (child process, exit status), `watch` (event stream) and `daemon stop`. */
import { afterEach, describe, expect, it } from 'vitest';
import { finished, linesPrinted, runCli, startCli, startFakeDaemon, type FakeConnection, type FakeDaemon } from '../unit/cli/fake-daemon.js';
import { REGISTERED, STATUS } from '../unit/cli/fixtures.js';

let daemon: FakeDaemon | undefined;
afterEach(async () => {
  await daemon?.close();
  daemon = undefined;
});

const event = (seq: number, type: string, extra: Record<string, unknown> = {}) => ({ seq, type, ...extra });
const send = (conn: FakeConnection, ...events: unknown[]) => {
  for (const e of events) conn.notify('event', e);
};

describe('sluicectl run', () => {
  it('runs the command with the proxy env and exits with its exit code', async () => {
    daemon = await startFakeDaemon({ 'agents.register': () => REGISTERED });
    const run = await runCli(['--socket', daemon.socketPath, 'run', '--', process.execPath, '-e', 'console.log(process.env.HTTPS_PROXY); process.exit(7)']);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('http://sluice:tok@127.0.0.1:8787\n');
    expect(run.code).toBe(7);
  });

  it('exits 128+N when the command is killed by signal N', async () => {
    daemon = await startFakeDaemon({ 'agents.register': () => REGISTERED });
    const run = await runCli(['--socket', daemon.socketPath, 'run', '--', process.execPath, '-e', "process.kill(process.pid, 'SIGTERM')"]);
    expect(run.code).toBe(128 + 15);
  });

  it('forwards SIGTERM to the command instead of dying first', async () => {
    daemon = await startFakeDaemon({ 'agents.register': () => REGISTERED });
    // The child ends by itself after 3 s, so a broken forwarder cannot leave it running after the test.
    const script =
      "process.on('SIGTERM', () => { console.log('child got SIGTERM'); process.exit(42); }); console.log('ready'); setTimeout(() => process.exit(0), 3000);";
    const child = startCli(['--socket', daemon.socketPath, 'run', '--', process.execPath, '-e', script]);
    const done = finished(child);
    await linesPrinted(child, 1);
    child.kill('SIGTERM');
    const run = await done;
    expect(run.stdout).toBe('ready\nchild got SIGTERM\n');
    expect(run.code).toBe(42);
  });
});

describe('sluicectl watch', () => {
  it('prints each event as one JSON line, passing --type filters to events.subscribe', async () => {
    daemon = await startFakeDaemon({
      'events.subscribe': (_p, conn) => {
        conn.afterReply(() => send(conn, event(1, 'stats', { stats: { n: 1 } }), event(2, 'notice', { notice: { message: 'hi' } })));
        return { seq: 0, snapshot: {} };
      },
    });
    const child = startCli(['--socket', daemon.socketPath, 'watch', '--type', 'stats', '--type', 'notice']);
    const done = finished(child);
    const lines = await linesPrinted(child, 2);
    child.kill('SIGINT');
    const run = await done;
    expect(run.code).toBe(0);
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([event(1, 'stats', { stats: { n: 1 } }), event(2, 'notice', { notice: { message: 'hi' } })]);
    expect(daemon.callsTo('events.subscribe')).toEqual([{ types: ['stats', 'notice'] }]);
  });

  it('re-subscribes after a seq jump and after a gap event', async () => {
    let subscribes = 0;
    daemon = await startFakeDaemon({
      'events.subscribe': (_p, conn) => {
        subscribes += 1;
        if (subscribes === 1) conn.afterReply(() => send(conn, event(1, 'stats'), event(5, 'stats')));
        if (subscribes === 2) conn.afterReply(() => send(conn, event(11, 'stats'), event(12, 'gap', { dropped: 3 })));
        if (subscribes === 3) conn.afterReply(() => send(conn, event(21, 'notice')));
        return { seq: subscribes === 1 ? 0 : subscribes === 2 ? 10 : 20 };
      },
    });
    const child = startCli(['--socket', daemon.socketPath, 'watch']);
    const done = finished(child);
    const lines = await linesPrinted(child, 5);
    child.kill('SIGINT');
    expect((await done).code).toBe(0);
    expect(lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([1, 5, 11, 12, 21]);
    expect(subscribes).toBe(3);
  });

  it('exits 3 with a message when the daemon goes away', async () => {
    daemon = await startFakeDaemon({
      'events.subscribe': (_p, conn) => {
        conn.afterReply(() => {
          send(conn, event(1, 'stats'));
          setTimeout(() => conn.destroy(), 50);
        });
        return { seq: 0, snapshot: {} };
      },
    });
    const run = await runCli(['--socket', daemon.socketPath, 'watch']);
    expect(run.stdout).toBe(JSON.stringify(event(1, 'stats')) + '\n');
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('sluiced went away');
  });
});

describe('sluicectl daemon stop', () => {
  it('asks for shutdown and returns once the socket stops answering', async () => {
    let stopped = false;
    const d = await startFakeDaemon({
      'daemon.status': () => STATUS,
      'daemon.shutdown': () => {
        // Like the real daemon: answer first, go away shortly after.
        setTimeout(() => {
          stopped = true;
          void d.close();
        }, 300);
        return { ok: true };
      },
    });
    const run = await runCli(['--socket', d.socketPath, 'daemon', 'stop']);
    expect(run.code, run.stderr).toBe(0);
    expect(stopped).toBe(true);
    expect(run.stdout).toBe('sluiced stopped\n');
  });
});
