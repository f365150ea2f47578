/**
 * CPU per request of each thread of the daemon (and of the relay) under a c=10 closed loop: shows how much
 * of "proxy CPU µs/request" is the event loop and how much GC helpers, the libuv pool or the WAL worker.
 *
 *   node dist-bench/bench/threads.js [--bin DAEMON_SCRIPT] [--ms N]
 */
import fs from 'node:fs';
import { runLoad } from './load.js';
import { relayTarget, sluiceTarget, startUpstream, type Target } from './targets.js';
import { Cleanup } from './util.js';

const argv = process.argv.slice(2);
const bin = argv.includes('--bin') ? argv[argv.indexOf('--bin') + 1] : undefined;
const ms = argv.includes('--ms') ? Number(argv[argv.indexOf('--ms') + 1]) : 4000;

function threads(pid: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      m.set(`${tid}:${name}`, (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // thread gone
    }
  }
  return m;
}

async function measure(t: Target, pid: number): Promise<string> {
  let a = new Map<string, number>();
  let b = new Map<string, number>();
  const r = await runLoad({
    url: t.url('/v1/messages'),
    dispatcher: t.dispatcher,
    headers: t.headers,
    concurrency: 10,
    durationMs: ms,
    warmup: { durationMs: 1000 },
    onMeasureStart: () => (a = threads(pid)),
    onMeasureEnd: () => (b = threads(pid)),
  });
  const byName = new Map<string, number>();
  for (const [k, v] of b) {
    const tid = k.split(':')[0];
    const name = tid === String(pid) ? 'main' : `${k.split(':').slice(1).join(':')}#${tid}`;
    byName.set(name, (byName.get(name) ?? 0) + v - (a.get(k) ?? 0));
  }
  const parts = [...byName].filter(([, v]) => v > 0).map(([n, v]) => `${n}=${((v * 1000) / r.requests).toFixed(1)}`);
  return `${t.name}: ${r.rps} req/s, µs/request by thread: ${parts.join(' ')}`;
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const up = await startUpstream(cleanup, 'process');
    const relay = await relayTarget(cleanup, up.port);
    const s = await sluiceTarget(cleanup, { upstreamPort: up.port, extraHosts: [], bin });
    for (let i = 0; i < 2; i++) {
      process.stdout.write((await measure(relay, relay.proc.pid!)) + '\n');
      process.stdout.write((await measure(s, s.daemon.proc.pid!)) + '\n');
    }
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
