/**
 * Syscalls per request of the relay and the daemon under the same closed loop (c=10, fixed count), counted
 * with `strace -c -f` attached to each process in turn. A kernel-side view of "what does sluice do per
 * request that the relay does not", steadier than timings on a busy machine. Linux only; needs strace.
 *
 *   node dist-bench/bench/syscalls.js [--bin DAEMON_SCRIPT] [--requests N]
 */
import { spawn } from 'node:child_process';
import { runLoad } from './load.js';
import { relayTarget, sluiceTarget, startUpstream, type Target } from './targets.js';
import { Cleanup, sleep } from './util.js';

const argv = process.argv.slice(2);
const bin = argv.includes('--bin') ? argv[argv.indexOf('--bin') + 1] : undefined;
const requests = argv.includes('--requests') ? Number(argv[argv.indexOf('--requests') + 1]) : 3000;

async function counted(t: Target, pid: number): Promise<string> {
  await runLoad({ url: t.url('/v1/messages'), dispatcher: t.dispatcher, headers: t.headers, concurrency: 10, requests: 500 });
  const st = spawn('strace', ['-c', '-f', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  st.stderr.on('data', (c: Buffer) => (out += c.toString()));
  await sleep(1000);
  const r = await runLoad({ url: t.url('/v1/messages'), dispatcher: t.dispatcher, headers: t.headers, concurrency: 10, requests });
  const done = new Promise((res) => st.once('exit', res));
  st.kill('SIGINT');
  await done;
  const lines = out.split('\n').filter((l) => /^\s*[\d.]+\s+[\d.]+\s+\d+\s+\d+/.test(l));
  const rows = lines.map((l) => {
    const f = l.trim().split(/\s+/);
    const calls = Number(f[3]);
    return `${f[f.length - 1]}=${(calls / r.requests).toFixed(2)}`;
  });
  return `${t.name}: ${r.requests} requests, per request: ${rows.join(' ')}`;
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const up = await startUpstream(cleanup, 'process');
    const relay = await relayTarget(cleanup, up.port);
    const s = await sluiceTarget(cleanup, { upstreamPort: up.port, extraHosts: [], bin });
    process.stdout.write((await counted(relay, relay.proc.pid!)) + '\n');
    process.stdout.write((await counted(s, s.daemon.proc.pid!)) + '\n');
  } finally {
    await cleanup.run();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
