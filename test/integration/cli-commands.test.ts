// Spawns the built sluicectl (dist/) against the fake daemon of test/unit/cli/fake-daemon.ts, so it runs with
// the integration tests (after the build), which keeps test/unit fast.
/** sluicectl commands against a fake daemon: the params they send and what they print. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startFakeDaemon, type FakeDaemon } from '../unit/cli/fake-daemon.js';
import { approval, credential, PROXY_ENV, STATS, STATUS } from '../unit/cli/fixtures.js';

const SECRET = 'sk-live-DO-NOT-PRINT-0123456789';
// env adds loopback to the caller's own NO_PROXY; these tests run without one.
const NO_USER_NO_PROXY = { NO_PROXY: undefined, no_proxy: undefined };

describe('sluicectl commands', () => {
  let daemon: FakeDaemon;
  let pending = [approval('ap-new', 'api.openai.com', '2026-01-01T00:00:05.000Z', 2), approval('ap-old', 'api.anthropic.com', '2026-01-01T00:00:01.000Z', 8)];
  beforeAll(async () => {
    daemon = await startFakeDaemon({
      'daemon.status': () => STATUS,
      'proxy.env': () => PROXY_ENV,
      'cred.add': (p) => credential(String(p.name), { hosts: p.hosts as string[] }),
      'cred.update': (p) => credential(String(p.name)),
      'approval.list': () => ({ approvals: pending }),
      'approval.resolve': (p) => ({ id: p.id, decision: p.decision, waiters: pending.find((a) => a.id === p.id)?.waiters ?? 0 }),
      'rule.add': (p) => ({ id: 7, port: null, method: null, path: null, source: 'user', created_at: 'x', ...p }),
      'limits.set': (p) => ({ global: p.global ?? null, credentials: [] }),
      'stats.snapshot': () => STATS,
      'audit.verify': () => ({ ok: false, rows: 12, first_bad_id: 5, reason: 'hash mismatch' }),
      'cred.list': () => ({ credentials: [credential('openai')] }),
    });
  });
  afterAll(() => daemon.close());
  const cli = (args: string[], stdin?: string, env: Record<string, string | undefined> = {}) =>
    runCli(['--socket', daemon.socketPath, ...args], stdin === undefined ? { env } : { stdin, env });

  it('cred add reads the secret from stdin, sends it only in the params and prints the phantom, never the secret', async () => {
    const run = await cli(['cred', 'add', 'openai', '--host', 'api.openai.com', '--host', '*.openai.com', '--max-concurrent', '4'], `${SECRET}\n\n`);
    expect(run.code, run.stderr).toBe(0);
    expect(daemon.callsTo('cred.add').at(-1)).toEqual({
      name: 'openai',
      kind: 'api-key',
      hosts: ['api.openai.com', '*.openai.com'],
      max_concurrent: 4,
      secret: SECRET,
    });
    expect(run.stdout).toBe('added openai; phantom: sk-sluice-phantom-openai\n');
    expect(run.stdout + run.stderr).not.toContain(SECRET);
  });

  it('cred add refuses an empty secret with exit 2 and sends nothing', async () => {
    const before = daemon.callsTo('cred.add').length;
    const run = await cli(['cred', 'add', 'openai', '--host', 'api.openai.com'], '\n');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('secret is empty');
    expect(daemon.callsTo('cred.add').length).toBe(before);
  });

  it('cred update sends a secret only with --secret-stdin', async () => {
    await cli(['cred', 'update', 'openai', '--max-concurrent', '2'], SECRET);
    expect(daemon.callsTo('cred.update').at(-1)).toEqual({ name: 'openai', max_concurrent: 2 });
    const run = await cli(['cred', 'update', 'openai', '--secret-stdin'], SECRET);
    expect(run.code).toBe(0);
    expect(daemon.callsTo('cred.update').at(-1)).toEqual({ name: 'openai', secret: SECRET });
    expect(run.stdout + run.stderr).not.toContain(SECRET);
  });

  it('--json prints exactly the RPC result', async () => {
    const status = await cli(['--json', 'status']);
    expect(JSON.parse(status.stdout)).toEqual(STATUS);
    const added = await cli(['cred', 'add', 'gh', '--host', 'api.github.com', '--json'], SECRET);
    expect(JSON.parse(added.stdout)).toEqual(credential('gh', { hosts: ['api.github.com'] }));
    expect(added.stdout).not.toContain(SECRET);
  });

  it('status prints a human summary without --json', async () => {
    const run = await cli(['status']);
    expect(run.stdout).toContain('sluiced 0.1.0  pid 4242  up 1m15s');
    expect(run.stdout).toContain('127.0.0.1:8787');
  });

  it('env prints sh export lines with single-quoted values', async () => {
    const run = await cli(['env'], undefined, NO_USER_NO_PROXY);
    expect(run.stdout).toBe(
      "export HTTPS_PROXY='http://sluice:tok@127.0.0.1:8787'\n" +
        "export SSL_CERT_FILE='/tmp/it'\\''s a\\dir/ca.pem'\n" +
        "export NO_PROXY='localhost,127.0.0.1,::1'\nexport no_proxy='localhost,127.0.0.1,::1'\n",
    );
  });

  it('env --shell fish prints set -gx lines with fish escapes', async () => {
    const run = await cli(['env', '--shell', 'fish'], undefined, NO_USER_NO_PROXY);
    expect(run.stdout).toBe(
      "set -gx HTTPS_PROXY 'http://sluice:tok@127.0.0.1:8787';\n" +
        "set -gx SSL_CERT_FILE '/tmp/it\\'s a\\\\dir/ca.pem';\n" +
        "set -gx NO_PROXY 'localhost,127.0.0.1,::1';\nset -gx no_proxy 'localhost,127.0.0.1,::1';\n",
    );
  });

  it('env --json prints the vars object', async () => {
    const run = await cli(['env', '--json'], undefined, NO_USER_NO_PROXY);
    expect(JSON.parse(run.stdout)).toEqual({ ...PROXY_ENV.vars, NO_PROXY: 'localhost,127.0.0.1,::1', no_proxy: 'localhost,127.0.0.1,::1' });
  });

  it('approval allow --next resolves the oldest pending prompt and prints its waiter count', async () => {
    const run = await cli(['approval', 'allow', '--next']);
    expect(run.code, run.stderr).toBe(0);
    expect(daemon.callsTo('approval.resolve').at(-1)).toEqual({ id: 'ap-old', decision: 'allow_once' });
    expect(run.stdout).toBe('allowed api.anthropic.com:443 (applied to 8 requests)\n');
  });

  it('approval deny ID --always sends always_deny for that id', async () => {
    const run = await cli(['approval', 'deny', 'ap-new', '--always']);
    expect(daemon.callsTo('approval.resolve').at(-1)).toEqual({ id: 'ap-new', decision: 'always_deny' });
    expect(run.stdout).toBe('always denied api.openai.com:443 (applied to 2 requests)\n');
  });

  it('approval allow --next exits 1 when nothing is pending', async () => {
    const saved = pending;
    pending = [];
    try {
      const before = daemon.callsTo('approval.resolve').length;
      const run = await cli(['approval', 'allow', '--next']);
      expect(run.code).toBe(1);
      expect(run.stderr).toBe('sluicectl: nothing pending\n');
      expect(daemon.callsTo('approval.resolve').length).toBe(before);
    } finally {
      pending = saved;
    }
  });

  it('rule add sends the verdict, glob, narrowing options and coalesce:false for --no-coalesce', async () => {
    const run = await cli(['rule', 'add', 'ask', '*.example.com', '--port', '8443', '--method', 'post', '--path', '/v1/*', '--no-coalesce']);
    expect(run.code, run.stderr).toBe(0);
    expect(daemon.callsTo('rule.add').at(-1)).toEqual({
      verdict: 'ask',
      host: '*.example.com',
      port: 8443,
      method: 'POST',
      path: '/v1/*',
      coalesce: false,
    });
  });

  it('limits set --global none sends null (unlimited)', async () => {
    const run = await cli(['limits', 'set', '--global', 'none']);
    expect(run.code, run.stderr).toBe(0);
    expect(daemon.callsTo('limits.set').at(-1)).toEqual({ global: null });
    expect(run.stdout).toContain('global cap: unlimited');
  });

  it('stats prints the global line and a row per credential', async () => {
    const run = await cli(['stats']);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toBe('global  in-flight 3/unlimited  requests 120 (1.5/s)  rejected 2');
    expect(lines[1]).toMatch(/^NAME\s+IN-FLIGHT\s+QUEUED\s+2XX\s+4XX\s+5XX\s+REJECTED$/);
    expect(lines[2]!.split(/\s+/)).toEqual(['openai', '3/8', '1', '100', '15', '5', '2']);
  });

  it('audit verify exits 1 when the chain is broken, with and without --json', async () => {
    const run = await cli(['audit', 'verify']);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('BROKEN at row 5');
    const json = await cli(['audit', 'verify', '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, first_bad_id: 5 });
  });

  it('rpc passes the parsed JSON object as params and prints the result as JSON', async () => {
    const run = await cli(['rpc', 'limits.set', '{"global":12}']);
    expect(run.code, run.stderr).toBe(0);
    expect(daemon.callsTo('limits.set').at(-1)).toEqual({ global: 12 });
    expect(JSON.parse(run.stdout)).toEqual({ global: 12, credentials: [] });
  });

  it('daemon start leaves a running daemon alone and exits 0', async () => {
    const run = await cli(['daemon', 'start']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('sluiced is already running (pid 4242)\n');
  });

  it('doctor exits 1 and lists what is missing from an environment without the proxy settings', async () => {
    const bare = {
      HTTPS_PROXY: undefined,
      https_proxy: undefined,
      HTTP_PROXY: undefined,
      http_proxy: undefined,
      NODE_EXTRA_CA_CERTS: undefined,
      SSL_CERT_FILE: undefined,
    };
    const run = await cli(['doctor'], undefined, bare);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('MISSING  HTTPS_PROXY is not set');
    expect(run.stdout).toContain('MISSING  NODE_EXTRA_CA_CERTS is not set');
    const withProxy = await cli(['doctor'], undefined, { ...bare, HTTPS_PROXY: PROXY_ENV.vars.HTTPS_PROXY });
    expect(withProxy.stdout).toContain('ok       HTTPS_PROXY points at the proxy on 127.0.0.1:8787');
    expect(withProxy.stdout + withProxy.stderr).not.toContain('tok@');
  });
});
