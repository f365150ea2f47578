/**
 * `sluicectl run --isolate` through the built binaries: the agent's only way out is the proxy, it cannot
 * reach sluice's own state, socket or process, everything else about its life is as usual, and each run is
 * a named agent with a token that dies with it. Real clients (curl, the Anthropic SDK, Claude Code) run
 * inside the sandbox against a fake provider standing in for api.anthropic.com.
 *
 * Skipped, with the reason printed, only where bubblewrap cannot create namespaces (no bwrap, or user
 * namespaces disabled by the kernel); CI installs bubblewrap.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, shortTempDir, startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { DEFAULT_ANSWER, startProviderApi, type ProviderApi } from '../fakes/provider-api.js';
import { waitFor } from '../integration/helpers.js';

function bwrapWorks(): string | null {
  const r = spawnSync('bwrap', ['--unshare-net', '--unshare-pid', '--dev-bind', '/', '/', '--proc', '/proc', 'true'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return `bwrap not installed (${(r.error as NodeJS.ErrnoException).code})`;
  return r.status === 0 ? null : `bwrap cannot create namespaces here: ${r.stderr.trim()}`;
}
const SKIP = process.platform === 'linux' ? bwrapWorks() : 'not Linux';
if (SKIP) console.warn(`isolation tests skipped: ${SKIP}`);

const CLIENTS = path.join(ROOT, 'test', 'clients');
const CLAUDE = path.join(CLIENTS, 'node_modules', '.bin', 'claude');
const SDK_SCRIPT = path.join(CLIENTS, 'scripts', 'anthropic-sdk.mjs');
const HAVE_CLIENTS = fs.existsSync(CLAUDE) && fs.existsSync(path.join(CLIENTS, 'node_modules', '@anthropic-ai', 'sdk'));

const REAL = `sk-ant-api03-REAL${randomBytes(20).toString('hex')}`;

let provider: ProviderApi;
let d: TestDaemon;
let phantom: string;
let tmp: string;

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A clean environment: none of the machine's proxy/CA/key variables; this daemon's home; a temp HOME. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const scrubbed =
    /^(https?_proxy|all_proxy|no_proxy|node_options|node_use_env_proxy|node_extra_ca_certs|ssl_cert_file|requests_ca_bundle|curl_ca_bundle|git_ssl_cainfo|anthropic_.*|openai_.*|claude_.*|sluice_.*)$/i;
  for (const [k, v] of Object.entries(process.env)) if (!scrubbed.test(k) && v !== undefined) env[k] = v;
  return { ...env, SLUICE_HOME: d.home, HOME: path.join(tmp, 'home'), ...extra };
}

/** Runs the built sluicectl with `args`, bounded by `timeoutMs`; `onStart` sees the child (to signal it). */
function sluicectl(
  args: string[],
  o: { env?: NodeJS.ProcessEnv; timeoutMs?: number; onStart?: (pid: number, stdout: () => string) => void } = {},
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN.cli, ...args], { env: o.env ?? cleanEnv(), cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (child.pid) o.onStart?.(child.pid, () => stdout);
  });
}

const isolated = (
  words: string[],
  o: { env?: Record<string, string>; name?: string; timeoutMs?: number; onStart?: (pid: number, stdout: () => string) => void } = {},
) =>
  sluicectl(['run', '--isolate', ...(o.name ? ['--name', o.name] : []), '--', ...words], { env: cleanEnv(o.env), timeoutMs: o.timeoutMs, onStart: o.onStart });

const show = (r: Ran) => `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout.slice(-2000)}\n--- stderr\n${r.stderr.slice(-2000)}`;

describe.skipIf(SKIP !== null)('sluicectl run --isolate', () => {
  beforeAll(async () => {
    tmp = shortTempDir('iso');
    fs.mkdirSync(path.join(tmp, 'home'), { recursive: true });
    provider = await startProviderApi();
    d = await startDaemon({ upstreamPort: provider.port });
    phantom = (await d.client.call('cred.add', { name: 'anthropic', hosts: ['api.anthropic.com'], header: 'x-api-key', secret: REAL })).phantom;
    await d.client.call('rule.add', { verdict: 'allow', host: 'api.anthropic.com' });
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
    await provider?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('curl inside reaches the provider through the proxy with the phantom swapped for the real key', async () => {
    const mark = provider.seen.length;
    const r = await isolated(['sh', '-c', `curl -sS --max-time 20 https://api.anthropic.com/hello -H "x-api-key: ${phantom}"`], { name: 'curler' });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('"ok":true');
    const seen = provider.seen.slice(mark);
    expect(seen.map((q) => q.headers['x-api-key'])).toEqual([REAL]);
    expect(r.stdout + r.stderr).not.toContain(REAL);
  });

  it('a direct connection fails at once: no route but the proxy', async () => {
    const r = await isolated([
      'sh',
      '-c',
      `curl -sS --max-time 5 --noproxy '*' -o /dev/null https://127.0.0.1:${provider.port}/hello; echo "curl=$?"; curl -sS --max-time 5 --noproxy '*' -o /dev/null https://1.1.1.1/; echo "curl=$?"`,
    ]);
    expect(r.code, show(r)).toBe(0);
    // 7: could not connect (nothing listens on the sandbox's loopback; no route anywhere else).
    expect(r.stdout.trim().split('\n')).toEqual(['curl=7', 'curl=7']);
  });

  it("sluice's state cannot be read or reached: master key, proxy token, database, RPC socket, daemon process", async () => {
    const home = d.home;
    const script = [
      `for f in ${home}/master.key ${home}/proxy-token ${home}/sluice.db ${home}/ca/ca-key.pem; do if cat "$f" >/dev/null 2>&1; then echo "READ $f"; else echo "no $f"; fi; done`,
      `ls -A ${home} | tr '\\n' ' '; echo`,
      `ls -A ${home}/ca | tr '\\n' ' '; echo`,
      `node ${BIN.cli} approval list >/dev/null 2>&1; echo "sluicectl=$?"`,
      `ps -e -o comm= | grep -c node || true`,
    ].join('; ');
    const r = await isolated(['sh', '-c', script]);
    expect(r.code, show(r)).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 4)).toEqual([`no ${home}/master.key`, `no ${home}/proxy-token`, `no ${home}/sluice.db`, `no ${home}/ca/ca-key.pem`]);
    expect(lines[4]!.trim().split(' ').sort()).toEqual(['ca', 'proxy.sock']);
    expect(lines[5]!.trim().split(' ').sort()).toEqual(['bundle.pem', 'ca.pem']);
    // 3: daemon not running — the RPC socket is not there to open.
    expect(lines[6]).toBe('sluicectl=3');
    // Only the sandbox's own node (its init) is visible; the daemon's process is in another pid namespace.
    expect(Number(lines[7])).toBe(1);
    // And the files are still there outside.
    expect(fs.existsSync(path.join(home, 'master.key'))).toBe(true);
  });

  it('keeps the working directory (read-write) and HOME, even under the private /tmp', async () => {
    // The test's working directory and HOME both live under /tmp, which the sandbox replaces.
    fs.writeFileSync(path.join(tmp, 'seen-inside.txt'), 'from outside');
    const r = await isolated(['sh', '-c', 'cat seen-inside.txt; echo; echo written > made-inside.txt; test -d "$HOME" && echo home-ok']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['from outside', 'home-ok']);
    expect(fs.readFileSync(path.join(tmp, 'made-inside.txt'), 'utf8')).toBe('written\n');
  });

  it.skipIf(spawnSync('python3', ['--version']).status !== 0)(
    'cannot type into the terminal it shares: TIOCSTI and TIOCLINUX are refused (EPERM), other tty ioctls are not',
    async () => {
      // Without the filter, TIOCSTI on this non-terminal stdin fails with ENOTTY (and on a terminal it would
      // queue the bytes for the user's shell to run after the agent exits); the seccomp filter answers first.
      const py = [
        'import fcntl, termios, errno',
        'for name, req in (("sti", termios.TIOCSTI), ("linux", 0x541c), ("tcgets", termios.TCGETS)):',
        '    try:',
        '        fcntl.ioctl(0, req, bytes(64)); print(name, "ok")',
        '    except OSError as e:',
        '        print(name, errno.errorcode[e.errno])',
      ].join('\n');
      const r = await isolated(['python3', '-c', py]);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual(['sti EPERM', 'linux EPERM', 'tcgets ENOTTY']);
    },
  );

  it('the exit code and signals pass through', async () => {
    const r = await isolated(['sh', '-c', 'exit 7']);
    expect(r.code, show(r)).toBe(7);
    let pid = 0;
    let out = (): string => '';
    const running = isolated(['sh', '-c', 'trap "echo got-term; exit 5" TERM; echo ready; sleep 20 & wait'], {
      onStart: (p, stdout) => {
        pid = p;
        out = stdout;
      },
    });
    // The trap is set once "ready" is printed.
    await waitFor(() => out().includes('ready'), 'the command to print ready', 20_000);
    process.kill(pid, 'SIGTERM');
    const s = await running;
    expect(s.stdout, show(s)).toContain('got-term');
    expect(s.code).toBe(5);
  });

  it('each run is a named agent: listed while it runs, named in what it did, its token dead afterwards', async () => {
    let token = '';
    const r = await isolated(
      [
        'sh',
        '-c',
        `echo "$HTTPS_PROXY"; curl -sS --max-time 20 -o /dev/null https://api.anthropic.com/hello -H "x-api-key: ${phantom}"; node ${BIN.cli} agents 2>&1 | tail -n +1 >/dev/null; echo done`,
      ],
      { name: 'reviewer' },
    );
    expect(r.code, show(r)).toBe(0);
    token = /sluice:([^@]+)@/.exec(r.stdout)?.[1] ?? '';
    expect(token).not.toBe('');
    expect(token).not.toBe(/sluice:([^@]+)@/.exec(d.proxyUrl)?.[1]);
    const snap = await d.client.call('events.subscribe', {});
    expect(snap.snapshot.recent_requests.some((q) => q.agent === 'reviewer' && q.path === '/hello')).toBe(true);
    // The audit row of the request names the agent too (and `audit tail --agent` finds it).
    await waitFor(
      async () =>
        (await d.client.call('audit.tail', { n: 50, agent: 'reviewer' })).rows.some(
          (row) => row.event === 'request' && row.path === '/hello' && row.agent === 'reviewer',
        ),
      'an audit row naming the agent',
    );
    // The run ended: it is no longer listed, and its token is refused.
    await waitFor(async () => (await d.client.call('agents.list')).agents.every((a) => a.name !== 'reviewer'), 'the run to be unregistered');
    const after = await d
      .fetch('https://api.anthropic.com/hello', { headers: { 'x-api-key': phantom }, auth: decodeURIComponent(token) })
      .catch((e: Error) => ({ status: 0, text: e.message }));
    expect(after.status === 407 || /407/.test(after.text)).toBe(true);
  });

  it.skipIf(!HAVE_CLIENTS)('an unmodified Anthropic SDK script and Claude Code (-p) answer from inside', { timeout: 90_000 }, async () => {
    const mark = provider.seen.length;
    const sdk = await isolated([process.execPath, SDK_SCRIPT], { env: { ANTHROPIC_API_KEY: phantom }, timeoutMs: 40_000 });
    expect(sdk.code, show(sdk)).toBe(0);
    expect(sdk.stdout).toContain(`json: ${DEFAULT_ANSWER}`);
    const claudeHome = path.join(tmp, 'claude-home');
    fs.mkdirSync(claudeHome, { recursive: true });
    const claude = await isolated([CLAUDE, '-p', 'say hi'], {
      env: { HOME: claudeHome, ANTHROPIC_API_KEY: phantom, DISABLE_AUTOUPDATER: '1', CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' },
      timeoutMs: 60_000,
    });
    expect(claude.code, show(claude)).toBe(0);
    expect(claude.stdout.trim()).toBe(DEFAULT_ANSWER);
    const seen = provider.seen.slice(mark);
    expect(seen.length).toBeGreaterThan(0);
    // @anthropic-ai/sdk 1.x sends its key as `Authorization: Bearer`, Claude Code as x-api-key: either way the real one.
    for (const q of seen)
      expect([q.headers['x-api-key'], q.headers.authorization], `${q.method} ${q.path}`).toContainEqual(
        expect.stringMatching(new RegExp(`^(Bearer )?${REAL}$`)),
      );
    expect(JSON.stringify(seen)).not.toContain(phantom);
  });
});

describe('sluicectl run --isolate without a sandbox', () => {
  it('exits 2 with one line saying what is missing, and runs nothing unfenced', async () => {
    const dir = shortTempDir('noiso');
    const marker = path.join(dir, 'ran');
    try {
      // A PATH without bwrap; the command is given by absolute path so only the missing sandbox can stop it.
      const r = await new Promise<Ran>((resolve, reject) => {
        const child = spawn(process.execPath, [BIN.cli, '--socket', path.join(dir, 'none.sock'), 'run', '--isolate', '--', '/usr/bin/touch', marker], {
          env: { PATH: dir, HOME: dir },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.once('error', reject);
        child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
      });
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/bubblewrap|macOS|Linux/);
      expect(fs.existsSync(marker)).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
