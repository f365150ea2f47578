/**
 * Real clients through sluice, unchanged (issue 11, plus the client-facing parts of 13 and 14): curl, git,
 * Python requests/httpx, a plain Node 20 fetch script, the official Anthropic and OpenAI SDKs, Claude Code
 * and the Codex CLI each run through the BUILT `sluicectl run -- …` with a phantom key against a fake
 * provider (test-CA certificate, reached through SLUICE_RESOLVE). Each test asserts that the answer
 * arrived and that the provider saw the REAL key and never the phantom (nor the proxy access token).
 *
 * The npm clients come from test/clients (`npm ci --prefix test/clients`, done by .ci/run): without them
 * those tests are skipped locally and fail in CI. The Python tests use whichever python3 can import the
 * library (.ci/run installs Debian's python3-httpx and python3-requests) and are skipped otherwise.
 *
 * Everything talks to 127.0.0.1 only: the daemon's default verdict is deny, so whatever else a client
 * tries to reach (telemetry, plugin sync, model lists) is refused by policy instead of leaving the machine.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, shortTempDir, startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { DEFAULT_ANSWER, FAKE_GIT_SHA, startProviderApi, type ProviderApi, type ProviderRequest } from '../fakes/provider-api.js';

const CLIENTS = path.join(ROOT, 'test', 'clients');
const NPM_BIN = path.join(CLIENTS, 'node_modules', '.bin');
const SCRIPTS = path.join(CLIENTS, 'scripts');
const CLAUDE = path.join(NPM_BIN, 'claude');
const CODEX = path.join(NPM_BIN, 'codex');
const NPM_CLIENTS_INSTALLED = [CLAUDE, CODEX, path.join(CLIENTS, 'node_modules', '@anthropic-ai', 'sdk'), path.join(CLIENTS, 'node_modules', 'openai')].every(
  (p) => fs.existsSync(p),
);
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/** The first python that can import `lib` (the pyenv/system `python3` on PATH, else Debian's). */
function pythonWith(lib: string): string | null {
  for (const py of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', `import ${lib}`], { stdio: 'ignore', timeout: 10_000 });
    if (r.status === 0) return py;
  }
  return null;
}
const PY_REQUESTS = pythonWith('requests');
const PY_HTTPX = pythonWith('httpx');

const ANT_REAL = `sk-ant-api03-REAL${randomBytes(20).toString('hex')}`;
const OAI_REAL = `sk-proj-REAL${randomBytes(20).toString('hex')}`;

let provider: ProviderApi;
let d: TestDaemon;
let antPhantom: string;
let oaiPhantom: string;
let vars: Record<string, string>;
let proxyToken: string;
let tmp: string;

/** Variables from the machine that would change what a client does; every client starts without them. */
const SCRUBBED =
  /^(https?_proxy|all_proxy|no_proxy|wss?_proxy|node_options|node_use_env_proxy|node_extra_ca_certs|ssl_cert_file|requests_ca_bundle|curl_ca_bundle|git_ssl_cainfo|codex_ca_certificate|codex_home|anthropic_.*|openai_.*|claude_.*|sluice_.*)$/i;

/** A clean environment for a client: the machine's minus proxy/CA/key variables, our daemon's home, a temp HOME. */
function clientEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!SCRUBBED.test(k) && v !== undefined) env[k] = v;
  return { ...env, SLUICE_HOME: d.home, HOME: path.join(tmp, 'home'), ...extra };
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command (in its own process group, killed whole on timeout), feeding `input` on stdin. */
function runProcess(file: string, args: string[], o: { env: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: o.env, cwd: o.cwd ?? tmp, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin.on('error', () => {});
    child.stdin.end(o.input ?? '');
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, o.timeoutMs ?? 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      killGroup(); // anything the command left behind in its group
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** Runs the built sluicectl. */
function sluicectl(args: string[], o: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<Ran> {
  return runProcess(process.execPath, [BIN.cli, ...args], { env: o.env ?? clientEnv(), input: o.input, timeoutMs: o.timeoutMs, cwd: o.cwd });
}

/** `sluicectl run -- …` with a clean client environment plus `env`. */
function runThroughSluice(words: string[], o: { env?: Record<string, string>; input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<Ran> {
  return sluicectl(['run', '--', ...words], { env: clientEnv(o.env), input: o.input, timeoutMs: o.timeoutMs, cwd: o.cwd });
}

function show(r: Ran): string {
  return `exit ${r.code}${r.timedOut ? ' (timed out)' : ''}\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`;
}

/** Requests the provider saw since `mark` (a `seen.length` taken before the client ran). */
const since = (mark: number): ProviderRequest[] => provider.seen.slice(mark);

/**
 * The requests carry the real key in `header` (x-api-key, or a Bearer authorization) and no phantom or
 * proxy token anywhere in their headers, bodies or WebSocket messages.
 */
function expectRealKeyOnly(reqs: ProviderRequest[], header: 'x-api-key' | 'authorization' | 'anthropic-any'): void {
  expect(reqs.length).toBeGreaterThan(0);
  for (const r of reqs) {
    const where = `${r.method} ${r.path}`;
    if (header === 'x-api-key') expect(r.headers['x-api-key'], where).toBe(ANT_REAL);
    else if (header === 'authorization') expect(r.headers.authorization, where).toBe(`Bearer ${OAI_REAL}`);
    // @anthropic-ai/sdk 1.x sends its API key as `Authorization: Bearer`, older clients as x-api-key.
    else expect([r.headers['x-api-key'], r.headers.authorization], where).toContainEqual(expect.stringMatching(new RegExp(`^(Bearer )?${ANT_REAL}$`)));
    expect(r.headers['proxy-authorization']).toBeUndefined();
  }
  const dump = JSON.stringify(reqs);
  expect(dump).not.toContain(antPhantom);
  expect(dump).not.toContain(oaiPhantom);
  expect(dump).not.toContain(proxyToken);
}

/** The text deltas of an Anthropic SSE stream, joined. */
function anthropicSseText(raw: string): { text: string; deltas: number } {
  let text = '';
  let deltas = 0;
  for (const line of raw.split('\n')) {
    if (!line.startsWith('data: ')) continue;
    const ev = JSON.parse(line.slice(6)) as { type?: string; delta?: { type?: string; text?: string } };
    if (ev.type === 'content_block_delta' && ev.delta?.type === 'text_delta') {
      deltas++;
      text += ev.delta.text ?? '';
    }
  }
  return { text, deltas };
}

beforeAll(async () => {
  tmp = shortTempDir('slc-cl');
  fs.mkdirSync(path.join(tmp, 'home'), { recursive: true });
  provider = await startProviderApi();
  d = await startDaemon({ upstreamPort: provider.port, env: { SLUICE_DEFAULT_VERDICT: 'deny' } });
  antPhantom = (await d.client.call('cred.add', { name: 'anthropic', hosts: ['api.anthropic.com'], header: 'x-api-key', secret: ANT_REAL })).phantom;
  oaiPhantom = (await d.client.call('cred.add', { name: 'openai', hosts: ['api.openai.com'], header: 'authorization', format: 'Bearer {}', secret: OAI_REAL }))
    .phantom;
  await d.client.call('rule.add', { verdict: 'allow', host: 'api.anthropic.com' });
  await d.client.call('rule.add', { verdict: 'allow', host: 'api.openai.com' });
  const env = await d.client.call('proxy.env');
  vars = env.vars;
  proxyToken = decodeURIComponent(/sluice:([^@]+)@/.exec(env.proxy_url)![1]!);
});

afterAll(async () => {
  await d?.stop();
  await provider?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('sluicectl env', () => {
  it('prints the proxy (with token), CA, bundle and Node bootstrap variables; the bundle is the system roots plus the sluice CA', async () => {
    const r = await sluicectl(['env', '--json']);
    expect(r.code, show(r)).toBe(0);
    const printed = JSON.parse(r.stdout) as Record<string, string>;
    // env adds loopback to NO_PROXY (issue 23); the test environment has no NO_PROXY of its own.
    expect(printed).toEqual({ ...vars, NO_PROXY: 'localhost,127.0.0.1,::1', no_proxy: 'localhost,127.0.0.1,::1' });
    for (const k of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy']) expect(printed[k]).toBe(d.proxyUrl);
    expect(printed.NODE_EXTRA_CA_CERTS).toBe(d.caPath);
    expect(printed.NODE_OPTIONS).toMatch(/^--import=.*\/dist\/bootstrap\/node-proxy\.js$/);
    expect(printed.NODE_USE_ENV_PROXY).toBe('1');
    for (const k of ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO']) expect(printed[k]).toBe(printed.SSL_CERT_FILE);
    const bundle = fs.readFileSync(printed.SSL_CERT_FILE!, 'utf8');
    expect(bundle).toContain(fs.readFileSync(d.caPath, 'utf8').trim());
    // Other HTTPS keeps verifying: every system root is still in the bundle, plus exactly one more.
    const system = SYSTEM_BUNDLES.find((f) => fs.existsSync(f));
    if (system) {
      const count = (s: string) => s.split('-----BEGIN CERTIFICATE-----').length - 1;
      expect(count(bundle)).toBe(count(fs.readFileSync(system, 'utf8')) + 1);
    }
    const sh = await sluicectl(['env']);
    expect(sh.stdout).toContain(`export HTTPS_PROXY='${d.proxyUrl}'`);
  });
});

describe('system clients through sluicectl run', () => {
  it('curl: streamed Messages answer through the proxy with the CA bundle; the provider saw the real key', async () => {
    const mark = provider.seen.length;
    const body = JSON.stringify({ model: 'claude-test-model', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'say hi' }] });
    const r = await runThroughSluice(
      [
        'curl',
        '-sS',
        '-N',
        '--fail-with-body',
        '--max-time',
        '20',
        'https://api.anthropic.com/v1/messages',
        '-H',
        `x-api-key: ${antPhantom}`,
        '-H',
        'anthropic-version: 2023-06-01',
        '-H',
        'content-type: application/json',
        '-d',
        body,
      ],
      { timeoutMs: 25_000 },
    );
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('event: message_start');
    expect(r.stdout).toContain('event: message_stop');
    const { text, deltas } = anthropicSseText(r.stdout);
    expect(text).toBe(DEFAULT_ANSWER);
    expect(deltas).toBeGreaterThan(1);
    expectRealKeyOnly(since(mark), 'x-api-key');
  });

  it('curl without the sluice CA in its bundle refuses the intercepted connection, and nothing reaches the provider', async () => {
    const system = SYSTEM_BUNDLES.find((f) => fs.existsSync(f));
    if (!system) return;
    const mark = provider.seen.length;
    const env = clientEnv({ HTTPS_PROXY: vars.HTTPS_PROXY!, CURL_CA_BUNDLE: system });
    const r = await runProcess('curl', ['-sS', '--max-time', '15', '--cacert', system, 'https://api.anthropic.com/hello', '-H', `x-api-key: ${antPhantom}`], {
      env,
    });
    expect(r.code, show(r)).toBe(60); // peer certificate cannot be authenticated
    expect(since(mark)).toEqual([]);
  });

  it('git: ls-remote over HTTPS through the proxy, bundle trusted, extra header phantom swapped', async () => {
    const mark = provider.seen.length;
    const r = await runThroughSluice(['git', '-c', `http.extraHeader=x-api-key: ${antPhantom}`, 'ls-remote', 'https://api.anthropic.com/some.git'], {
      env: { GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' },
      timeoutMs: 25_000,
    });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain(`${FAKE_GIT_SHA}\trefs/heads/main`);
    const reqs = since(mark);
    expect(reqs.map((q) => `${q.method} ${q.path}`)).toEqual(['GET /some.git/info/refs?service=git-upload-pack']);
    expectRealKeyOnly(reqs, 'x-api-key');
  });

  for (const [lib, py] of [
    ['requests', PY_REQUESTS],
    ['httpx', PY_HTTPX],
  ] as const) {
    it.skipIf(!py)(`Python ${lib}: HTTPS_PROXY + REQUESTS_CA_BUNDLE/SSL_CERT_FILE, no code changes (${py ?? 'not installed'})`, async () => {
      const mark = provider.seen.length;
      const r = await runThroughSluice([py!, path.join(SCRIPTS, 'python-client.py'), lib], { env: { ANTHROPIC_API_KEY: antPhantom }, timeoutMs: 25_000 });
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toContain(`${lib} status 200: ${DEFAULT_ANSWER}`);
      expectRealKeyOnly(since(mark), 'x-api-key');
    });
  }

  it('plain Node fetch (no proxy code) goes through sluice thanks to the NODE_OPTIONS bootstrap', async () => {
    const mark = provider.seen.length;
    const r = await runThroughSluice([process.execPath, path.join(SCRIPTS, 'plain-fetch.mjs')], { env: { ANTHROPIC_API_KEY: antPhantom }, timeoutMs: 25_000 });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain(`status 200: ${DEFAULT_ANSWER}`);
    expect(r.stderr).not.toContain('EnvHttpProxyAgent is experimental');
    expectRealKeyOnly(since(mark), 'x-api-key');
  });

  it('the same fetch script without sluicectl run bypasses the proxy even with HTTPS_PROXY set, and never reaches the provider', async () => {
    const mark = provider.seen.length;
    const auditBefore = (await d.client.call('audit.tail', { n: 1 })).rows.at(-1)?.id ?? 0;
    // What a user has after exporting the proxy and CA variables by hand, without the bootstrap. DNS is
    // pinned to 127.0.0.1 so the bypassing request cannot leave this machine.
    const env = clientEnv({ ANTHROPIC_API_KEY: antPhantom, FETCH_TIMEOUT_MS: '8000', NODE_OPTIONS: `--import=${path.join(SCRIPTS, 'pin-dns-loopback.mjs')}` });
    for (const k of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'NODE_EXTRA_CA_CERTS']) env[k] = vars[k];
    const r = await runProcess(process.execPath, [path.join(SCRIPTS, 'plain-fetch.mjs')], { env, timeoutMs: 20_000 });
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr).toContain('fetch failed');
    expect(since(mark)).toEqual([]);
    const newRows = (await d.client.call('audit.tail', { n: 5 })).rows.filter((e) => e.id > auditBefore && e.event === 'request');
    expect(newRows).toEqual([]);
  });
});

describe('sluicectl doctor', () => {
  it('passes the environment sluicectl run gives a command', async () => {
    const r = await sluicectl(['doctor', '--', 'node', 'agent.js']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('environment sluicectl run would give node:');
    expect(r.stdout).toContain('ok       HTTPS_PROXY points at the proxy');
    expect(r.stdout).toContain('ok       NODE_OPTIONS preloads the sluice fetch bootstrap');
    expect(r.stdout).not.toContain('MISSING');
    expect(r.stdout + r.stderr).not.toContain(proxyToken);
  });

  it('reports a shell without the proxy and CA variables', async () => {
    const r = await sluicectl(['doctor']);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toContain('MISSING  HTTPS_PROXY is not set');
    expect(r.stdout).toContain('MISSING  HTTP_PROXY is not set');
    expect(r.stdout).toContain('MISSING  NODE_EXTRA_CA_CERTS is not set');
    expect(r.stdout).toContain('MISSING  SSL_CERT_FILE is not set');
  });

  it('reports NO_PROXY covering a bound host, which sluicectl run would pass on to the command', async () => {
    const r = await sluicectl(['doctor', '--', 'claude'], { env: clientEnv({ NO_PROXY: 'localhost,.anthropic.com' }) });
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toContain('MISSING  NO_PROXY bypasses the proxy for bound hosts: api.anthropic.com');
  });

  it('reports CA variables that do not hold the sluice CA, a stale lower-case proxy and a missing fetch bootstrap', async () => {
    const system = SYSTEM_BUNDLES.find((f) => fs.existsSync(f)) ?? '/dev/null';
    const env = clientEnv({ ...vars, REQUESTS_CA_BUNDLE: system, https_proxy: 'http://127.0.0.1:9', NODE_OPTIONS: '--max-old-space-size=512' });
    const r = await sluicectl(['doctor'], { env });
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toContain(`MISSING  REQUESTS_CA_BUNDLE (${system}) does not include the sluice CA`);
    expect(r.stdout).toContain('MISSING  https_proxy points at 127.0.0.1:9');
    expect(r.stdout).toContain('MISSING  NODE_OPTIONS does not preload the sluice fetch bootstrap');
    expect(r.stdout).toContain('ok       SSL_CERT_FILE includes the sluice CA');
  });

  it('run keeps the user’s own NODE_OPTIONS after the bootstrap', async () => {
    const r = await runThroughSluice([process.execPath, '-e', 'console.log(process.env.NODE_OPTIONS)'], { env: { NODE_OPTIONS: '--max-old-space-size=1024' } });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout.trim()).toBe(`${vars.NODE_OPTIONS} --max-old-space-size=1024`);
  });
});

describe.skipIf(!NPM_CLIENTS_INSTALLED && !process.env.CI)('npm clients through sluicectl run (test/clients)', () => {
  it('the clients are installed (npm ci --prefix test/clients)', () => {
    expect(NPM_CLIENTS_INSTALLED, 'run: npm ci --prefix test/clients').toBe(true);
  });

  it('@anthropic-ai/sdk script, unchanged: JSON and streamed messages', async () => {
    const mark = provider.seen.length;
    const r = await runThroughSluice([process.execPath, path.join(SCRIPTS, 'anthropic-sdk.mjs')], {
      env: { ANTHROPIC_API_KEY: antPhantom },
      timeoutMs: 25_000,
    });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain(`json: ${DEFAULT_ANSWER}`);
    expect(r.stdout).toMatch(new RegExp(`stream \\(([2-9]|\\d{2,}) deltas\\): ${DEFAULT_ANSWER.replace(/[.,]/g, '\\$&')}`));
    const reqs = since(mark);
    expect(reqs.map((q) => `${q.method} ${q.path}`)).toEqual(['POST /v1/messages', 'POST /v1/messages']);
    // This SDK version sends the key as a bearer token: the phantom there was swapped all the same.
    for (const q of reqs) expect(q.headers.authorization).toBe(`Bearer ${ANT_REAL}`);
    expectRealKeyOnly(reqs, 'anthropic-any');
  });

  it('openai SDK script, unchanged: chat completions, responses, streamed responses', async () => {
    const mark = provider.seen.length;
    const r = await runThroughSluice([process.execPath, path.join(SCRIPTS, 'openai-sdk.mjs')], { env: { OPENAI_API_KEY: oaiPhantom }, timeoutMs: 25_000 });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain(`chat: ${DEFAULT_ANSWER}`);
    expect(r.stdout).toContain(`responses: ${DEFAULT_ANSWER}`);
    expect(r.stdout).toMatch(/responses stream \(([2-9]|\d{2,}) deltas\): Hi from/);
    const reqs = since(mark);
    expect(reqs.map((q) => `${q.method} ${q.path}`)).toEqual(['POST /v1/chat/completions', 'POST /v1/responses', 'POST /v1/responses']);
    expectRealKeyOnly(reqs, 'authorization');
  });

  /** Claude Code's environment: the phantom as its key, a throwaway HOME, no updater, no telemetry. */
  const claudeEnv = (): Record<string, string> => {
    const home = path.join(tmp, 'claude-home');
    fs.mkdirSync(home, { recursive: true });
    return {
      HOME: home,
      ANTHROPIC_API_KEY: antPhantom,
      DISABLE_AUTOUPDATER: '1',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    };
  };

  it('Claude Code: claude -p "say hi" gets its streamed answer; the provider saw the real key', { timeout: 60_000 }, async () => {
    const mark = provider.seen.length;
    const env = claudeEnv();
    const r = await runThroughSluice([CLAUDE, '-p', 'say hi'], { env, cwd: env.HOME, timeoutMs: 50_000 });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout.trim()).toBe(DEFAULT_ANSWER);
    const reqs = since(mark);
    const messages = reqs.filter((q) => q.method === 'POST' && q.path.startsWith('/v1/messages'));
    expect(messages.length).toBeGreaterThan(0);
    expect(messages.some((q) => (JSON.parse(q.body) as { stream?: boolean }).stream === true)).toBe(true);
    expect(reqs.every((q) => q.host === 'api.anthropic.com')).toBe(true);
    expectRealKeyOnly(reqs, 'x-api-key');
  });

  it('Claude Code: the stream reaches it event by event (stream-json with partial messages)', { timeout: 60_000 }, async () => {
    const mark = provider.seen.length;
    const env = claudeEnv();
    const r = await runThroughSluice([CLAUDE, '-p', 'say hi', '--output-format', 'stream-json', '--verbose', '--include-partial-messages'], {
      env,
      cwd: env.HOME,
      timeoutMs: 50_000,
    });
    expect(r.code, show(r)).toBe(0);
    const events = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { type: string; event?: { type?: string; delta?: { type?: string; text?: string } }; result?: string });
    const deltas = events.filter((e) => e.type === 'stream_event' && e.event?.type === 'content_block_delta' && e.event.delta?.type === 'text_delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.map((e) => e.event!.delta!.text).join('')).toBe(DEFAULT_ANSWER);
    expect(events.find((e) => e.type === 'result')?.result).toBe(DEFAULT_ANSWER);
    expectRealKeyOnly(since(mark), 'x-api-key');
  });

  it('Codex CLI: login --with-api-key (phantom on stdin), then exec answers over the Responses WebSocket, no HTTPS fallback', { timeout: 90_000 }, async () => {
    const home = path.join(tmp, 'codex-home');
    const codexHome = path.join(home, '.codex');
    fs.mkdirSync(codexHome, { recursive: true });
    const env = { HOME: home, CODEX_HOME: codexHome };
    const login = await runThroughSluice([CODEX, 'login', '--with-api-key'], { env, input: oaiPhantom, cwd: home, timeoutMs: 20_000 });
    expect(login.code, show(login)).toBe(0);
    // Codex stores what it was given: the phantom, worthless anywhere but through sluice.
    const auth = fs.readFileSync(path.join(codexHome, 'auth.json'), 'utf8');
    expect(auth, show(login)).toContain(oaiPhantom);
    expect(auth).not.toContain(OAI_REAL);

    const mark = provider.seen.length;
    const r = await runThroughSluice([CODEX, 'exec', '--skip-git-repo-check', 'say hi'], { env, cwd: home, timeoutMs: 50_000 });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout, show(r)).toContain(DEFAULT_ANSWER);
    expect(r.stderr, show(r)).not.toMatch(/Falling back from WebSockets|Reconnecting/);
    const reqs = since(mark);
    const seenLines = reqs.map((q) => `${q.transport} ${q.method} ${q.host}${q.path} ${q.status}`).join('\n');
    const ws = reqs.filter((q) => q.transport === 'ws');
    expect(ws.length, seenLines).toBeGreaterThan(0);
    for (const q of ws) {
      expect(q.host).toBe('api.openai.com');
      expect(q.path).toBe('/v1/responses');
      expect(q.status).toBe(101);
    }
    const creates = ws.flatMap((q) => q.messages).map((m) => JSON.parse(m) as { type?: string; input?: unknown });
    expect(creates.length).toBeGreaterThan(0);
    expect(creates.every((m) => m.type === 'response.create')).toBe(true);
    expect(JSON.stringify(creates.map((m) => m.input))).toContain('say hi');
    // Over the WebSocket only: no HTTPS Responses request at all.
    expect(
      reqs.filter((q) => q.transport === 'https' && q.path.startsWith('/v1/responses')),
      seenLines,
    ).toEqual([]);
    expectRealKeyOnly(reqs, 'authorization');
  });
});

describe('across every client', () => {
  it('the provider never saw a phantom or the proxy access token; the daemon logged no secret and no token', () => {
    const dump = provider.dump();
    expect(dump).not.toContain(antPhantom);
    expect(dump).not.toContain(oaiPhantom);
    expect(dump).not.toContain(proxyToken);
    const logFile = path.join(d.home, 'sluiced.log');
    const logs = d.logs() + (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of [ANT_REAL, OAI_REAL, proxyToken]) expect(logs).not.toContain(secret);
  });
});
