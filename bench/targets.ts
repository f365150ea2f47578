/**
 * The ways to reach the fake upstream: direct (undici Agent trusting the test CA), through a minimal Node
 * TLS-terminating relay (its own process: the floor for a Node MITM), through the sluice daemon (its own
 * process, as in production; ProxyAgent with the sluice CA and proxy token, the phantom in `x-api-key`, real
 * host names mapped with SLUICE_RESOLVE), and through mitmproxy (`mitmdump`, its own process, when
 * installed). Each target names the URL it requests and the headers it sends.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Agent, ProxyAgent, type Dispatcher } from 'undici';
import { startDaemon, type TestDaemon } from '../test/fakes/daemon-harness.js';
import { startFakeUpstream, UPSTREAM_CA } from '../test/fakes/fake-upstream.js';
import { type Cleanup, freePort, sleep, waitForPort } from './util.js';

export type TargetName = 'direct' | 'relay' | 'sluice' | 'mitmproxy';

/** One way of reaching the upstream. */
export interface Target {
  name: TargetName;
  /** Full URL for an upstream path such as `/v1/messages`. */
  url(p: string): string;
  headers: Record<string, string>;
  /** The shared keep-alive dispatcher for load runs. */
  dispatcher: Dispatcher;
  /** A fresh dispatcher (new connections), for first-connection measurements. */
  fresh(): Dispatcher;
}

export const UPSTREAM_CA_PEM = (): string => fs.readFileSync(UPSTREAM_CA, 'utf8');

/** Where the fake upstream runs. */
export type UpstreamPlace = 'process' | 'thread' | 'inline';

/**
 * Starts the fake upstream: in its own process (the default: a real provider shares no event loop with the
 * load generator or the proxies), in a worker thread, or on this thread's event loop (`inline`, the setup of
 * the issue 9 reference figures, which makes the direct column share one loop with the load generator).
 */
export async function startUpstream(cleanup: Cleanup, place: UpstreamPlace): Promise<{ port: number; where: string; pid: number | null }> {
  if (place === 'inline') {
    const up = await startFakeUpstream({ record: false });
    cleanup.add('fake upstream', () => up.close());
    return { port: up.port, where: "bench process, on the load generator's event loop", pid: null };
  }
  if (place === 'process') {
    const child = await spawnWithPort(cleanup, 'fake upstream process', new URL('./upstream-process.js', import.meta.url), []);
    return { port: child.port, where: 'own process', pid: child.proc.pid ?? null };
  }
  const worker = new Worker(new URL('./upstream-worker.js', import.meta.url));
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`upstream worker exited (${code})`)));
    worker.once('message', (m: { port: number }) => resolve(m.port));
  });
  cleanup.add('fake upstream worker', async () => {
    const closed = new Promise<void>((r) => worker.once('message', () => r()));
    worker.postMessage('close');
    await Promise.race([closed, sleep(3000)]);
    await worker.terminate();
  });
  return { port, where: 'bench process, own worker thread', pid: null };
}

/**
 * Runs a bench helper script (`node FILE ARGS`) that prints `{"port":N}` on its first stdout line; it exits
 * when its stdin closes, so it never outlives the bench even if cleanup is skipped.
 */
async function spawnWithPort(
  cleanup: Cleanup,
  name: string,
  file: URL,
  args: string[],
  nodeArgs: string[] = [],
): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, [...nodeArgs, fileURLToPath(file), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  cleanup.track(proc);
  cleanup.add(name, async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    await Promise.race([exited, sleep(3000)]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 15 s: ${stderr}`)), 15_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}): ${stderr}`));
    });
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n')[0];
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line!) as { port: number }).port);
      } catch {
        reject(new Error(`${name} printed ${line}`));
      }
    });
  });
  return { proc, port };
}

/**
 * The minimal relay (bench/min-relay.ts) in its own process: CONNECT, TLS with one fixed certificate the test
 * CA signed, keep-alive forwarding. Requests name the real provider host, like sluice's column.
 */
export async function relayTarget(cleanup: Cleanup, upstreamPort: number, nodeArgs: string[] = []): Promise<Target & { proc: ChildProcess }> {
  const { proc, port } = await spawnWithPort(cleanup, 'minimal relay', new URL('./min-relay.js', import.meta.url), [String(upstreamPort)], nodeArgs);
  const ca = UPSTREAM_CA_PEM();
  const make = () => new ProxyAgent({ uri: `http://127.0.0.1:${port}`, requestTls: { ca: [ca] } });
  const dispatcher = make();
  cleanup.add('relay dispatcher', () => dispatcher.destroy());
  return { name: 'relay', url: (p) => `https://api.anthropic.com${p}`, headers: { 'x-api-key': 'sk-ant-relay-bench' }, dispatcher, fresh: make, proc };
}

/** Direct HTTPS to the fake upstream. */
export function directTarget(cleanup: Cleanup, upstreamPort: number): Target {
  const ca = UPSTREAM_CA_PEM();
  const make = () => new Agent({ connect: { ca } });
  const dispatcher = make();
  cleanup.add('direct dispatcher', () => dispatcher.destroy());
  return { name: 'direct', url: (p) => `https://127.0.0.1:${upstreamPort}${p}`, headers: { 'x-api-key': 'sk-ant-direct-bench' }, dispatcher, fresh: make };
}

/** The sluice daemon plus what the bench needs to drive it. */
export interface SluiceTarget extends Target {
  daemon: TestDaemon;
  token: string;
  caPem: string;
  phantom: string;
}

/** Names the fake upstream's certificate covers, mapped to it through SLUICE_RESOLVE. */
export const CERT_HOSTS = ['api.anthropic.com', 'api.openai.com', 'auth.openai.com', 'chatgpt.com', 'evil.example', 'other.example'];

/** Starts the daemon (its own process), adds the bench credential and rules. */
export async function sluiceTarget(
  cleanup: Cleanup,
  o: { upstreamPort: number; extraHosts: string[]; env?: Record<string, string>; nodeArgs?: string[]; bin?: string },
): Promise<SluiceTarget> {
  const resolve = [...CERT_HOSTS, ...o.extraHosts].map((h) => `${h}:443:127.0.0.1:${o.upstreamPort}`).join(',');
  const daemon = await startDaemon({
    upstreamPort: o.upstreamPort,
    // info is the production default; the harness's debug level would log every connection.
    env: { SLUICE_LOG_LEVEL: 'info', SLUICE_RESOLVE: resolve, ...o.env },
    nodeArgs: o.nodeArgs,
    bin: o.bin,
  });
  cleanup.track(daemon.proc);
  cleanup.add('sluice daemon', async () => {
    await daemon.stop();
    fs.rmSync(daemon.home, { recursive: true, force: true });
  });
  const c = daemon.client;
  const cred = await c.call('cred.add', {
    name: 'bench',
    hosts: ['api.anthropic.com'],
    header: 'x-api-key',
    max_concurrent: 256,
    secret: 'sk-ant-api03-bench-real-secret-0123456789',
  });
  for (const host of ['api.anthropic.com', 'api.openai.com', 'auth.openai.com', 'chatgpt.com', 'evil.example', '*.bench.test']) {
    await c.call('rule.add', { verdict: 'allow', host });
  }
  await c.call('rule.add', { verdict: 'ask', host: 'other.example' });
  const token = /sluice:([^@]+)@/.exec(daemon.proxyUrl)?.[1] ?? '';
  const caPem = fs.readFileSync(daemon.caPath, 'utf8');
  const dispatcher = daemon.dispatcher();
  cleanup.add('sluice dispatcher', () => dispatcher.destroy());
  return {
    name: 'sluice',
    url: (p) => `https://api.anthropic.com${p}`,
    headers: { 'x-api-key': cred.phantom },
    dispatcher,
    fresh: () => daemon.dispatcher(),
    daemon,
    token,
    caPem,
    phantom: cred.phantom,
  };
}

/** The mitmdump binary, or null when it is not installed. */
export function findMitmdump(): string | null {
  const r = spawnSync('mitmdump', ['--version'], { encoding: 'utf8', timeout: 20_000 });
  if (r.error || r.status !== 0) return null;
  return 'mitmdump';
}

/** mitmproxy in regular (forward proxy) mode, verifying the upstream with the test CA. */
export async function mitmTarget(cleanup: Cleanup, upstreamPort: number, bin: string): Promise<Target & { proc: ChildProcess; version: string }> {
  const confdir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-mitm-'));
  cleanup.add('mitmproxy confdir', () => fs.rmSync(confdir, { recursive: true, force: true }));
  const port = await freePort();
  const version = /Mitmproxy:\s*(\S+)/.exec(spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? 'unknown';
  const proc = spawn(
    bin,
    [
      '-q',
      '--listen-host',
      '127.0.0.1',
      '--listen-port',
      String(port),
      '--set',
      `confdir=${confdir}`,
      '--set',
      `ssl_verify_upstream_trusted_ca=${UPSTREAM_CA}`,
      '--set',
      'flow_detail=0',
      '--set',
      'termlog_verbosity=error',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  cleanup.track(proc);
  cleanup.add('mitmproxy', async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  try {
    await waitForPort(port, 30_000, () => proc.exitCode === null);
  } catch (err) {
    throw new Error(`mitmdump did not start: ${(err as Error).message}\n${stderr}`);
  }
  const caFile = path.join(confdir, 'mitmproxy-ca-cert.pem');
  for (let i = 0; i < 100 && !fs.existsSync(caFile); i++) await sleep(100);
  const ca = fs.readFileSync(caFile, 'utf8');
  const make = () => new ProxyAgent({ uri: `http://127.0.0.1:${port}`, requestTls: { ca: [ca] } });
  const dispatcher = make();
  cleanup.add('mitmproxy dispatcher', () => dispatcher.destroy());
  return {
    name: 'mitmproxy',
    // The upstream certificate has an IP SAN for 127.0.0.1, which mitmproxy verifies against the test CA.
    url: (p) => `https://127.0.0.1:${upstreamPort}${p}`,
    headers: { 'x-api-key': 'sk-ant-mitm-bench' },
    dispatcher,
    fresh: make,
    proc,
    version,
  };
}
