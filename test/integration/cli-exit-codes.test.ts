// Spawns the built sluicectl (dist/) against the fake daemon of test/unit/cli/fake-daemon.ts, so it runs with
// the integration tests (after the build), which keeps test/unit fast.
/** sluicectl exit codes: 3 without a daemon, 2 for usage errors (before anything is sent), 1 for daemon errors. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rpcError, runCli, startFakeDaemon, type FakeDaemon } from '../unit/cli/fake-daemon.js';
import { STATUS } from '../unit/cli/fixtures.js';

describe('sluicectl without a daemon', () => {
  it('exits 3 and says how to start the daemon when nothing answers on the socket', async () => {
    const run = await runCli(['status'], { env: { SLUICE_SOCKET: '/tmp/sluicectl-test-none.sock' } });
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^sluicectl: sluiced is not running .*sluicectl daemon start/);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('reports daemon_unreachable as JSON on stderr with --json, still exiting 3', async () => {
    const run = await runCli(['--json', 'cred', 'list', '--socket', '/tmp/sluicectl-test-none.sock']);
    expect(run.code).toBe(3);
    expect(JSON.parse(run.stderr)).toMatchObject({ error: { code: 'daemon_unreachable' } });
  });
});

describe('sluicectl usage errors', () => {
  let daemon: FakeDaemon;
  beforeAll(async () => {
    daemon = await startFakeDaemon({
      'daemon.status': () => STATUS,
      'cred.add': () => {
        throw new Error('must not be called');
      },
      'limits.set': () => ({ global: null, credentials: [] }),
      'cred.remove': () => {
        throw rpcError('not_found', 'no credential named ghost');
      },
    });
  });
  afterAll(() => daemon.close());

  const usage = async (args: string[], stdin?: string): Promise<string> => {
    const run = await runCli(['--socket', daemon.socketPath, ...args], stdin === undefined ? {} : { stdin });
    expect(run.code, run.stderr).toBe(2);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trim().split('\n');
    // One line with a hint, not yargs' whole help text.
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^sluicectl: .*see sluicectl ([a-z-]+ )*--help/);
    return lines[0]!;
  };

  it('exits 2 on an unknown command and suggests the closest one', async () => {
    expect(await usage(['statu'])).toContain('Did you mean status?');
    expect(await usage(['frobnicate'])).toContain('frobnicate');
  });

  it('exits 2 when no command is given or a group has no subcommand', async () => {
    await usage([]);
    expect(await usage(['cred'])).toContain('cred needs a subcommand');
  });

  it('exits 2 when cred add has no --host', async () => {
    expect(await usage(['cred', 'add', 'openai'], 'sk-real')).toMatch(/host/);
  });

  it('exits 2 for caps 0 and 300 with the reason, before anything reaches the daemon', async () => {
    const before = daemon.calls.length;
    expect(await usage(['cred', 'add', 'openai', '--host', 'api.openai.com', '--max-concurrent', '0'], 'sk-real')).toContain('between 1 and 256');
    expect(await usage(['limits', 'set', '--cred', 'openai', '--max-concurrent', '300'])).toContain('between 1 and 256');
    expect(await usage(['limits', 'set', '--global', '0'])).toContain('--global must be between');
    expect(await usage(['limits', 'set', '--max-concurrent', '4'])).toContain('need --cred');
    expect(await usage(['limits', 'set', '--queue-timeout-ms', 'soon', '--cred', 'x'])).toContain('whole number');
    expect(daemon.calls.length).toBe(before);
  });

  it('exits 2 for invalid JSON params to rpc', async () => {
    const before = daemon.calls.length;
    expect(await usage(['rpc', 'daemon.status', '{not json'])).toContain('not valid JSON');
    expect(await usage(['rpc', 'daemon.status', '[1,2]'])).toContain('JSON object');
    expect(daemon.calls.length).toBe(before);
  });

  it('exits 2 for run without a command and approval answers without an id or --next', async () => {
    expect(await usage(['run'])).toContain('run needs a command');
    expect(await usage(['approval', 'allow'])).toContain('--next');
  });

  it('prints a usage error as JSON on stderr with --json', async () => {
    const run = await runCli(['--json', '--socket', daemon.socketPath, 'limits', 'set', '--global', '0']);
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stderr)).toMatchObject({ error: { code: 'usage', message: expect.stringContaining('--global must be between') } });
  });

  it('exits 1 with the daemon message and code when the daemon refuses', async () => {
    const run = await runCli(['--socket', daemon.socketPath, 'cred', 'remove', 'ghost']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('sluicectl: no credential named ghost [not_found]\n');
    const json = await runCli(['--socket', daemon.socketPath, '--json', 'cred', 'remove', 'ghost']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr)).toEqual({ error: { code: 'not_found', message: 'no credential named ghost' } });
  });

  it('exits 1 when rpc names a method the daemon does not know', async () => {
    const run = await runCli(['--socket', daemon.socketPath, 'rpc', 'no.such', '{}']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^sluicectl: .*method_not_found/);
  });
});
