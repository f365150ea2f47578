/**
 * Helpers for the reliability and security suite (test/integration/reliability-*.test.ts): running the
 * built daemon and CLI as plain processes, reading a process's memory and listening sockets from /proc,
 * bounding how long client promises may take to settle, logical DB dumps (to prove "nothing changed"),
 * byte scans for secrets, and small load-generation utilities. Everything is loopback-only and bounded.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { DaemonClient } from '../../src/shared/rpc/client.js';
import { BIN } from './daemon-harness.js';
import { UPSTREAM_CA } from './fake-upstream.js';

/** What a finished child process left behind. */
export interface ProcResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/** Options of {@link runNode}: `onStdout` sees all stdout so far after each chunk; aborting `signal` stops the child (SIGTERM). */
export interface RunNodeOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
  onStdout?: (stdoutSoFar: string) => void;
  signal?: AbortSignal;
}

/** Runs `node <script> ...args` to completion (killed after `timeoutMs`), optionally feeding `input` on stdin. */
export function runNode(script: string, args: string[], opts: RunNodeOptions = {}): Promise<ProcResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, [script, ...args], { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], signal: opts.signal });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    // An aborted signal surfaces as an 'error' (AbortError) beside the normal 'exit'.
    p.on('error', () => {});
    p.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      opts.onStdout?.(stdout);
    });
    p.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    p.stdin!.on('error', () => {});
    p.stdin!.end(opts.input ?? '');
    const t = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, opts.timeoutMs ?? 15_000);
    p.once('exit', (code, signal) => {
      clearTimeout(t);
      // let the pipes drain
      setImmediate(() => resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - t0 }));
    });
  });
}

/** Runs `sluicectl` (the built CLI) against the daemon on `socket`. */
export function runCli(args: string[], socket: string, opts: Omit<RunNodeOptions, 'env'> & { env?: Record<string, string> } = {}): Promise<ProcResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, SLUICE_SOCKET: socket, NO_COLOR: '1', ...opts.env };
  return runNode(BIN.cli, args, { ...opts, env, timeoutMs: opts.timeoutMs ?? 15_000 });
}

/** The environment the harness gives a daemon on `home` (for daemons started without the harness). */
export function daemonEnv(home: string, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SLUICE_HOME: home,
    SLUICE_PROXY_LISTEN: '127.0.0.1:0',
    SLUICE_UPSTREAM_CA: UPSTREAM_CA,
    SLUICE_LOG_LEVEL: 'debug',
  };
  delete env.SLUICE_SOCKET;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Runs the daemon directly and waits for it to exit (for daemons expected to refuse to start). The 25 s
 * deadline is generous on purpose: a refusal takes about a second, but a node start on a busy machine can take 10+.
 */
export function runDaemonOnce(env: NodeJS.ProcessEnv, timeoutMs = 25_000): Promise<ProcResult> {
  return runNode(BIN.daemon, [], { env, timeoutMs });
}

/** True when something accepts connections on the Unix socket `p`. */
export function socketAnswers(p: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

/** Resident set size of `pid` in MiB, from /proc/<pid>/status. */
export function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

/** The inodes of the sockets `pid` holds open (from /proc/<pid>/fd). */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const f of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${f}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // fd closed meanwhile
    }
  }
  return inodes;
}

/** One TCP socket of a process, from /proc/net/tcp{,6}: its state (kernel hex code) and both ends. */
export interface TcpSocket {
  /** `0A` LISTEN, `01` ESTABLISHED, `08` CLOSE_WAIT, … */
  state: string;
  local: { address: string; port: number };
  remote: { address: string; port: number };
}

/** Every TCP socket `pid` holds a descriptor for. */
export function tcpSockets(pid: number): TcpSocket[] {
  const inodes = socketInodes(pid);
  const out: TcpSocket[] = [];
  const end = (s: string) => {
    const [hexAddr, hexPort] = s.split(':') as [string, string];
    return { address: hexToAddress(hexAddr), port: parseInt(hexPort, 16) };
  };
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const x = line.trim().split(/\s+/);
      if (x.length < 10 || !inodes.has(x[9]!)) continue;
      out.push({ state: x[3]!, local: end(x[1]!), remote: end(x[2]!) });
    }
  }
  return out;
}

/** How many of `pid`'s TCP sockets are in CLOSE_WAIT: the peer closed, `pid` still holds the descriptor. */
export function closeWaitTcp(pid: number): number {
  return tcpSockets(pid).filter((s) => s.state === '08').length;
}

/** Every TCP socket `pid` listens on, as `{address, port}` (from /proc/<pid>/fd and /proc/net/tcp{,6}). */
export function listeningTcp(pid: number): { address: string; port: number }[] {
  return tcpSockets(pid)
    .filter((s) => s.state === '0A')
    .map((s) => s.local);
}

function hexToAddress(hex: string): string {
  if (hex.length === 8) {
    const b = Buffer.from(hex, 'hex');
    return `${b[3]}.${b[2]}.${b[1]}.${b[0]}`;
  }
  // IPv6: four little-endian 32-bit words
  const words: string[] = [];
  for (let i = 0; i < 32; i += 8) {
    const w = Buffer.from(hex.slice(i, i + 8), 'hex')
      .reverse()
      .toString('hex');
    words.push(w.slice(0, 4), w.slice(4, 8));
  }
  const v6 = words.join(':');
  if (v6 === '0000:0000:0000:0000:0000:0000:0000:0001') return '::1';
  if (/^0000:0000:0000:0000:0000:ffff:/.test(v6)) {
    const b = Buffer.from(hex.slice(24), 'hex').reverse();
    return `::ffff:${b[3]}.${b[2]}.${b[1]}.${b[0]}`;
  }
  if (/^(0000:){7}0000$/.test(v6)) return '::';
  return v6;
}

/** The outcome of one client promise, and when it settled. */
export type Settled<T> = { ok: true; value: T; at: number } | { ok: false; error: unknown; at: number };

/**
 * Waits for every promise to settle, but no longer than `boundMs`; throws naming how many were still pending
 * (a client that hangs is a failure in itself).
 */
export async function settleWithin<T>(promises: Promise<T>[], boundMs: number, what: string): Promise<Settled<T>[]> {
  const results: (Settled<T> | undefined)[] = new Array(promises.length);
  const all = Promise.all(
    promises.map((p, i) =>
      p.then(
        (value) => void (results[i] = { ok: true, value, at: Date.now() }),
        (error: unknown) => void (results[i] = { ok: false, error, at: Date.now() }),
      ),
    ),
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), boundMs)))]);
  clearTimeout(timer);
  if (timedOut) {
    let pending = 0;
    for (let i = 0; i < promises.length; i++) if (results[i] === undefined) pending++;
    throw new Error(`${what}: ${pending} of ${promises.length} client promises still pending after ${boundMs} ms (a hang)`);
  }
  return results as Settled<T>[];
}

/** Every table of the SQLite DB at `file`, read-only, as sorted JSON rows (to prove "nothing changed"). */
export function dumpDb(file: string): Record<string, string[]> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const out: Record<string, string[]> = {};
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
    for (const { name } of tables) {
      out[name] = (db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[]).map((r) =>
        JSON.stringify(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Buffer.isBuffer(v) ? `hex:${v.toString('hex')}` : v]))),
      );
      out[name]!.sort();
    }
    out.__user_version = [String(db.pragma('user_version', { simple: true }))];
    return out;
  } finally {
    db.close();
  }
}

/** Stats are back to rest: nothing in flight or queued, globally and per credential. */
export async function statsAtRest(client: DaemonClient): Promise<boolean> {
  const s = await client.call('stats.snapshot');
  return s.global.in_flight === 0 && s.credentials.every((c) => c.in_flight === 0 && c.queued === 0);
}

/** The forms of a secret worth searching for: as is, base64, base64url and hex. */
export function secretForms(secret: string | Buffer): Buffer[] {
  const b = Buffer.isBuffer(secret) ? secret : Buffer.from(secret, 'utf8');
  const forms = [b, Buffer.from(b.toString('base64')), Buffer.from(b.toString('base64url')), Buffer.from(b.toString('hex'))];
  // base64 without padding too (a substring search then also finds it inside longer encodings)
  forms.push(Buffer.from(b.toString('base64').replace(/=+$/, '')));
  return forms;
}

/** Names of `haystacks` entries that contain any form of any needle: `label ⊃ needleName`. */
export function scanFor(needles: Record<string, Buffer[]>, haystacks: Record<string, Buffer | string>): string[] {
  const hits: string[] = [];
  for (const [label, hay] of Object.entries(haystacks)) {
    const h = Buffer.isBuffer(hay) ? hay : Buffer.from(hay, 'utf8');
    for (const [name, forms] of Object.entries(needles)) {
      if (forms.some((f) => f.length > 0 && h.includes(f))) hits.push(`${label} contains ${name}`);
    }
  }
  return hits;
}

/** Runs `fn` over `items` with at most `limit` at once; resolves with the results in order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** A percentile of `xs` (0..100). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Path of a file in a daemon home. */
export function inHome(home: string, ...p: string[]): string {
  return path.join(home, ...p);
}

/** The inspector WebSocket URL a process started with `--inspect=127.0.0.1:0` printed to stderr. */
export function inspectorUrl(logs: string): string | null {
  return /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+)/.exec(logs)?.[1] ?? null;
}

/**
 * Forces a full garbage collection in the inspected process (HeapProfiler.collectGarbage) and returns its
 * `process.memoryUsage()` afterwards, in MiB: a leak measurement free of GC timing noise.
 */
export async function heapAfterGc(wsUrl: string): Promise<{ heapUsed: number; rss: number; external: number }> {
  const { WebSocket } = await import('ws');
  const ws = new WebSocket(wsUrl);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let id = 0;
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve, reject) => {
      const my = ++id;
      const t = setTimeout(() => reject(new Error(`${method} timed out`)), 20_000);
      const onMsg = (data: Buffer) => {
        const m = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: unknown };
        if (m.id !== my) return;
        clearTimeout(t);
        ws.off('message', onMsg);
        if (m.error) reject(new Error(JSON.stringify(m.error)));
        else resolve(m.result);
      };
      ws.on('message', onMsg);
      ws.send(JSON.stringify({ id: my, method, params }));
    });
  try {
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    const r = (await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as { result: { value: string } };
    const m = JSON.parse(r.result.value) as { heapUsed: number; rss: number; external: number };
    const mb = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;
    return { heapUsed: mb(m.heapUsed), rss: mb(m.rss), external: mb(m.external) };
  } finally {
    ws.close();
  }
}
