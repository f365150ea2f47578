/** `sluicectl audit tail` against a fake daemon: the filters become RPC params, bad values never leave the CLI. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startFakeDaemon, type FakeDaemon } from '../unit/cli/fake-daemon.js';

const ROW = {
  id: 42,
  ts: '2026-12-02T18:55:01.123Z',
  event: 'request',
  client: '127.0.0.1:5000',
  host: 'api.openai.com',
  port: 443,
  method: 'POST',
  path: `/v1/responses/${'x'.repeat(150)}`,
  verdict: 'allow',
  rule_id: null,
  credential: 'work',
  status: 200,
  bytes: 10,
  duration_ms: 1.5,
  detail: 'ok',
  prev_hash: '0'.repeat(64),
  hash: 'a'.repeat(64),
};

describe('sluicectl audit tail', () => {
  let daemon: FakeDaemon;
  beforeAll(async () => {
    daemon = await startFakeDaemon({ 'audit.tail': () => ({ rows: [ROW] }) });
  });
  afterAll(() => daemon.close());
  const cli = (args: string[], env: Record<string, string> = {}) => runCli(['--socket', daemon.socketPath, 'audit', 'tail', ...args], { env });

  it('sends every filter to the daemon, so -n counts matching rows', async () => {
    const run = await cli(['-n', '5', '--cred', 'work', '--host', '*.openai.com', '--agent', 'codex', '--event', 'request', '--since', '2h']);
    expect(run.code, run.stderr).toBe(0);
    expect(daemon.callsTo('audit.tail').at(-1)).toEqual({ n: 5, cred: 'work', host: '*.openai.com', agent: 'codex', event: 'request', since: '2h' });
  });

  it('without filters sends only n', async () => {
    await cli([]);
    expect(daemon.callsTo('audit.tail').at(-1)).toEqual({ n: 20 });
  });

  it('prints local time by default and UTC with --utc, within 100 columns', async () => {
    const local = await cli([], { TZ: 'Asia/Kolkata' });
    expect(local.stdout).toContain('12-03 00:25:01');
    const utc = await cli(['--utc'], { TZ: 'Asia/Kolkata' });
    expect(utc.stdout).toContain('TIME (UTC)');
    expect(utc.stdout).toContain('12-02 18:55:01');
    for (const l of local.stdout.trimEnd().split('\n')) expect(l.length).toBeLessThanOrEqual(100);
  });

  it('--json prints the rows with their snake_case fields, unchanged', async () => {
    const run = await cli(['--json', '--event', 'request']);
    expect(JSON.parse(run.stdout)).toEqual({ rows: [ROW] });
  });

  it('refuses a bad --since or an empty filter with exit 2 and calls nothing', async () => {
    const before = daemon.callsTo('audit.tail').length;
    const bad = await cli(['--since', '10 minutes']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since must be a whole number and a unit');
    const empty = await cli(['--cred', '']);
    expect(empty.code).toBe(2);
    expect(daemon.callsTo('audit.tail').length).toBe(before);
  });

  it('help has an example and describes every filter', async () => {
    const run = await cli(['--help']);
    expect(run.stdout).toContain('Examples:');
    for (const flag of ['--utc', '--cred', '--host', '--agent', '--event', '--since']) expect(run.stdout).toContain(flag);
    expect(run.stdout).toMatch(/agent[\s\S]*run\s+--name/);
    expect(run.stdout).toMatch(/start\s+and\s+stop\s+rows/);
  });
});
