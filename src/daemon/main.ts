#!/usr/bin/env -S node --max-semi-space-size=8
/**
 * `sluiced`: the daemon entry point. Foreground by default (JSON-line logs on stderr and in
 * `$SLUICE_HOME/sluiced.log`); `--detach` starts a background daemon, waits until its socket answers,
 * prints where it listens and exits. Exit codes: 0 ok, 1 could not start, 2 usage.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connectDaemon } from '../shared/rpc/client.js';
import { socketPathProblem } from '../shared/rpc/paths.js';
import { ConfigError, loadConfig, type DaemonConfig } from './config.js';
import { JsonLogger } from './log.js';
import { answers } from './rpc/rpc-server.js';
import { ListenError } from './proxy/proxy-server.js';
import { Daemon, VERSION } from './daemon.js';
import { DAEMON_NODE_FLAGS } from './runtime-flags.js';

const USAGE = `usage: sluiced [--detach] [--version] [--help]

Runs the sluice daemon: the credential-injecting proxy and the RPC socket.
  --detach   start in the background, wait until it answers, print its addresses
Environment: SLUICE_HOME, SLUICE_SOCKET, SLUICE_PROXY_LISTEN, SLUICE_PROXY_AUTH, SLUICE_DEFAULT_VERDICT,
SLUICE_APPROVAL_TIMEOUT_MS, SLUICE_MAX_GLOBAL_CONCURRENT, SLUICE_UPSTREAM_CA, SLUICE_RESOLVE,
SLUICE_MASTER_KEY_FILE, SLUICE_LOG_LEVEL, SLUICE_UPSTREAM_CONNECT_TIMEOUT_MS, SLUICE_UPSTREAM_HEADER_TIMEOUT_MS,
SLUICE_HOST_CACHE_SIZE (see README).`;

function fail(message: string, code = 1): never {
  process.stderr.write(`sluiced: ${message}\n`);
  process.exit(code);
}

async function detach(cfg: DaemonConfig): Promise<void> {
  if (await answers(cfg.socketPath)) {
    process.stdout.write(`sluiced is already running (socket ${cfg.socketPath})\n`);
    return;
  }
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, fileURLToPath(import.meta.url)], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, SLUICE_DETACHED: '1' },
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')).slice(-4000));
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
  const deadline = Date.now() + 15_000;
  for (;;) {
    const done = await Promise.race([exited.then((c) => ({ exit: c })), new Promise<null>((r) => setTimeout(() => r(null), 100))]);
    if (done) {
      // A daemon that refused to start says why in one `sluiced: …` line: pass that line on as it is.
      const lines = stderr.trim().split('\n');
      if (lines.length === 1 && lines[0]!.startsWith('sluiced: ')) fail(lines[0]!.slice('sluiced: '.length));
      fail(`the daemon exited during startup (code ${done.exit}):\n${stderr.trim()}`);
    }
    if (await answers(cfg.socketPath, 500)) break;
    if (Date.now() > deadline) {
      // Leave nothing behind: a daemon that does not answer in time is stopped, not left running unseen.
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      fail(`the daemon did not answer on ${cfg.socketPath} within 15 s; it was stopped (see ${cfg.logPath})`);
    }
  }
  const client = await connectDaemon({ socketPath: cfg.socketPath, timeoutMs: 5000 });
  const st = await client.call('daemon.status');
  client.close();
  child.stderr!.destroy();
  child.unref();
  process.stdout.write(`sluiced started (pid ${st.pid}); proxy ${st.proxy.listen} (auth ${st.proxy.auth}); socket ${st.socket}\n`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) return void process.stdout.write(USAGE + '\n');
  if (args.includes('--version')) return void process.stdout.write(VERSION + '\n');
  const unknown = args.filter((a) => a !== '--detach');
  if (unknown.length > 0) fail(`unknown argument ${unknown[0]}\n${USAGE}`, 2);

  let cfg: DaemonConfig;
  try {
    cfg = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
  const sockProblem = socketPathProblem(cfg.socketPath);
  if (sockProblem) fail(sockProblem, 2);
  if (args.includes('--detach')) return detach(cfg);

  const detached = process.env.SLUICE_DETACHED === '1';
  try {
    fs.mkdirSync(cfg.home, { recursive: true, mode: 0o700 });
    fs.accessSync(cfg.home, fs.constants.W_OK);
  } catch (err) {
    fail(
      `cannot use the state directory ${cfg.home} (${(err as NodeJS.ErrnoException).code ?? 'error'}): it must be a writable directory you own; set SLUICE_HOME to another one`,
    );
  }
  const log = new JsonLogger(cfg.logPath, undefined, !detached);
  for (const w of cfg.warnings) log.warn(w);

  let daemon: Daemon;
  try {
    daemon = await Daemon.start(cfg, log);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof ListenError) {
      // One line on the terminal (fail's): the log line goes to the log file only.
      new JsonLogger(cfg.logPath, undefined, false).error('could not start', { reason: message });
      log.close();
      fail(message);
    }
    log.error('could not start', { reason: message });
    fail(message);
  }
  daemon.onStopped = () => {
    log.close();
    process.exit(0);
  };
  log.info('sluiced started', {
    version: VERSION,
    pid: process.pid,
    proxy: `${daemon.proxyAddress.host}:${daemon.proxyAddress.port}`,
    proxy_auth: cfg.proxyAuth ? 'on' : 'off (SLUICE_PROXY_AUTH=off: any local process may use the proxy)',
    socket: cfg.socketPath,
    home: cfg.home,
    ca: daemon.parts.ca.certPath,
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void daemon.shutdown());
  if (detached) process.stderr.on('error', () => {});
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
