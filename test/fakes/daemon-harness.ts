/**
 * Spawns the built daemon (`dist/daemon/main.js`) in a fresh temporary SLUICE_HOME, on a free proxy port,
 * with SLUICE_RESOLVE pointing the real provider host names at a fake upstream and SLUICE_UPSTREAM_CA
 * trusting the test CA. Returns an RPC client, the proxy URL (with the access token) and helpers to make
 * requests through the proxy with real TLS, trusting the daemon's own CA.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, ProxyAgent, request } from 'undici';
import { connectDaemon, type DaemonClient } from '../../src/shared/rpc/client.js';
import { DAEMON_NODE_FLAGS } from '../../src/daemon/runtime-flags.js';
import { UPSTREAM_CA } from './fake-upstream.js';
import { REPO_ROOT } from './repo-root.js';
import { sleep, within } from './wait-for.js';

/** Repo root (also right when this file runs compiled from `dist-bench/test/fakes/`). */
export const ROOT = REPO_ROOT;
/** Built entry points. */
export const BIN = {
  daemon: path.join(ROOT, 'dist/daemon/main.js'),
  cli: path.join(ROOT, 'dist/cli/main.js'),
  tui: path.join(ROOT, 'dist/tui/main.js'),
};

/** A running daemon under test. */
export interface TestDaemon {
  home: string;
  socket: string;
  proxyPort: number;
  proxyUrl: string;
  caPath: string;
  client: DaemonClient;
  proc: ChildProcess;
  logs(): string;
  env: NodeJS.ProcessEnv;
  /** Makes a request through the proxy. */
  fetch(
    url: string,
    init?: { method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal; auth?: string | null },
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }>;
  /** An undici dispatcher that goes through the proxy (for streaming tests). */
  dispatcher(auth?: string | null): ProxyAgent;
  stop(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Makes a short temp dir (Unix socket paths must stay under 108 bytes). */
export function shortTempDir(prefix = 'slc'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
}

/** Options for {@link startDaemon}. */
export interface StartOptions {
  upstreamPort?: number;
  home?: string;
  env?: Record<string, string>;
  /** Extra node flags placed before the daemon script (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  /** The daemon script to run (default: this checkout's `dist/daemon/main.js`); the A/B bench runs an older build. */
  bin?: string;
}

/** Starts the daemon and waits until its socket answers. */
export async function startDaemon(opts: StartOptions = {}): Promise<TestDaemon> {
  const home = opts.home ?? shortTempDir();
  fs.chmodSync(home, 0o700);
  const resolve = opts.upstreamPort
    ? ['api.anthropic.com', 'api.openai.com', 'auth.openai.com', 'evil.example', 'other.example']
        .map((h) => `${h}:443:127.0.0.1:${opts.upstreamPort}`)
        .join(',')
    : '';
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SLUICE_HOME: home,
    SLUICE_PROXY_LISTEN: '127.0.0.1:0',
    SLUICE_UPSTREAM_CA: UPSTREAM_CA,
    SLUICE_RESOLVE: resolve,
    SLUICE_LOG_LEVEL: 'debug',
    ...opts.env,
  };
  delete env.SLUICE_SOCKET;
  const proc = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...(opts.nodeArgs ?? []), opts.bin ?? BIN.daemon], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  proc.stdout!.on('data', (c: Buffer) => (logs += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (logs += c.toString()));
  const socket = path.join(home, 'sluiced.sock');
  // Generous: a start takes 1-2 s, but on a machine busy with other work it has been seen to take 20+.
  const deadline = Date.now() + 45_000;
  let client: DaemonClient | null = null;
  while (!client) {
    if (proc.exitCode !== null) throw new Error(`daemon exited (${proc.exitCode}):\n${logs}`);
    try {
      client = await connectDaemon({ socketPath: socket, timeoutMs: 10_000 });
    } catch {
      if (Date.now() > deadline) throw new Error(`daemon did not start:\n${logs}`);
      await sleep(50); // poll interval while the daemon starts (bounded by the deadline above)
    }
  }
  const env2 = await client.call('proxy.env');
  const status = await client.call('daemon.status');
  const proxyPort = Number(status.proxy.listen.split(':').pop());
  const caPem = fs.readFileSync(status.ca_path, 'utf8');
  const upstreamCa = fs.readFileSync(UPSTREAM_CA, 'utf8');
  const token = env2.proxy_url.match(/sluice:([^@]+)@/)?.[1] ?? null;
  const dispatcher = (auth: string | null = token) =>
    new ProxyAgent({
      uri: `http://127.0.0.1:${proxyPort}`,
      token: auth ? `Basic ${Buffer.from(`sluice:${auth}`).toString('base64')}` : undefined,
      requestTls: { ca: [caPem, upstreamCa] },
    });
  const defaultDispatcher = dispatcher();
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const d: TestDaemon = {
    home,
    socket,
    proxyPort,
    proxyUrl: env2.proxy_url,
    caPath: status.ca_path,
    client,
    proc,
    env,
    logs: () => logs,
    dispatcher,
    async fetch(url, init = {}) {
      const adHoc = init.auth !== undefined;
      const disp = adHoc ? dispatcher(init.auth) : defaultDispatcher;
      try {
        const res = await request(url, {
          method: (init.method ?? 'GET') as 'GET',
          headers: init.headers,
          body: init.body,
          dispatcher: disp,
          signal: init.signal,
        });
        const text = await res.body.text();
        return { status: res.statusCode, headers: res.headers as Record<string, string | string[] | undefined>, text };
      } finally {
        // A dispatcher made for one call (another token) is closed with it so no tunnel outlives the test.
        if (adHoc) void disp.destroy().catch(() => {});
      }
    },
    async stop() {
      client!.close();
      // destroy, not close: close() would wait for requests a test left hanging.
      await defaultDispatcher.destroy().catch(() => {});
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await within(exited, 12_000, 'the daemon to exit after SIGTERM').catch(() => {});
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
    },
    async kill(signal = 'SIGKILL') {
      client!.close();
      void defaultDispatcher.destroy().catch(() => {});
      proc.kill(signal);
      await exited;
    },
  };
  return d;
}

/** A plain agent that trusts the sluice CA (for direct TLS to the internal server in bypass tests). */
export function agentTrusting(caPem: string): Agent {
  return new Agent({ connect: { ca: caPem } });
}
