/**
 * Alternating A/B runs of two daemon builds against the minimal relay, for judging one change at a time on a
 * busy machine (single runs move ±10% here; ratios within one round and CPU per request are steadier).
 *
 *   node dist-bench/bench/ab.js --a OLD/dist/daemon/main.js [--b NEW/dist/daemon/main.js] [--rounds 3] [--ms 4000]
 *                               [--c 10] [--no-load] [--no-certs] [--profile DIR]
 *
 * Each round starts a fresh daemon per build (order alternates: A B, B A, …) and, for each, measures
 *  - first complete requests to hosts it has never seen (new tunnel, new leaf, new upstream connection)
 *    against a direct new TLS connection, and the CONNECT + handshake for fresh `*.bench.test` names;
 *  - a c=10 closed loop through the relay, then through the daemon: req/s, p99, proxy CPU µs/request.
 * The fake upstream and the relay run in their own processes, as in `npm run bench`. Loopback only; bounded.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Agent, request, type Dispatcher } from 'undici';
import { connectTls } from './certs.js';
import { runLoad, type LoadResult } from './load.js';
import { relayTarget, sluiceTarget, startUpstream, UPSTREAM_CA_PEM, type Target } from './targets.js';
import { Cleanup, procCpuMs, round, summarize } from './util.js';

interface Args {
  a: string;
  b: string | undefined;
  rounds: number;
  ms: number;
  c: number;
  load: boolean;
  certs: boolean;
  profile: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { a: '', b: undefined, rounds: 3, ms: 4000, c: 10, load: true, certs: true, profile: null };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    const next = () => argv[++i] ?? '';
    if (x === '--a') a.a = next();
    else if (x === '--b') a.b = next();
    else if (x === '--rounds') a.rounds = Number(next());
    else if (x === '--ms') a.ms = Number(next());
    else if (x === '--c') a.c = Number(next());
    else if (x === '--no-load') a.load = false;
    else if (x === '--no-certs') a.certs = false;
    else if (x === '--profile') a.profile = next();
    else throw new Error(`unknown argument ${x}`);
  }
  if (!a.a) throw new Error('--a DAEMON_SCRIPT is required');
  return a;
}

const log = (m: string) => process.stderr.write(`[ab ${(performance.now() / 1000).toFixed(1)}s] ${m}\n`);

async function timed(d: Dispatcher, url: string, headers: Record<string, string>): Promise<number> {
  try {
    const t0 = performance.now();
    const res = await request(url, { dispatcher: d, headers });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`);
    return performance.now() - t0;
  } finally {
    await d.destroy().catch(() => {});
  }
}

/** User and system CPU ms of a process so far (utime, stime). */
function userSys(pid: number): [number, number] {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [Number(f[11]) * 10, Number(f[12]) * 10];
  } catch {
    return [NaN, NaN];
  }
}

async function load(t: Target, c: number, ms: number, pid: number | null): Promise<LoadResult & { user_sys_us?: [number, number] }> {
  let cpu0: number | null = null;
  let cpu: number | null = null;
  let us0: [number, number] = [NaN, NaN];
  let us: [number, number] = [NaN, NaN];
  const r = await runLoad({
    url: t.url('/v1/messages'),
    dispatcher: t.dispatcher,
    headers: t.headers,
    concurrency: c,
    durationMs: ms,
    warmup: { durationMs: 1000 },
    onMeasureStart: () => {
      cpu0 = pid ? procCpuMs(pid) : null;
      if (pid) us0 = userSys(pid);
    },
    onMeasureEnd: () => {
      const cpu1 = pid ? procCpuMs(pid) : null;
      if (pid) {
        const u = userSys(pid);
        us = [u[0] - us0[0], u[1] - us0[1]];
      }
      if (cpu0 !== null && cpu1 !== null) cpu = cpu1 - cpu0;
    },
  });
  r.proxy_cpu_us_per_req = cpu !== null && r.requests ? round((cpu * 1000) / r.requests, 1) : null;
  return { ...r, user_sys_us: [round((us[0] * 1000) / r.requests, 1), round((us[1] * 1000) / r.requests, 1)] };
}

interface Row {
  round: number;
  build: 'A' | 'B';
  first_req_added_ms?: number[];
  handshake_new_ms?: number[];
  handshake_cached_ms?: number[];
  relay?: { rps: number; p99: number; cpu: number | null; us?: [number, number] };
  sluice?: { rps: number; p99: number; cpu: number | null; us?: [number, number] };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const cleanup = new Cleanup();
  process.on('exit', () => cleanup.killAll());
  const watchdog = setTimeout(() => {
    log('time limit reached');
    void cleanup.run().finally(() => process.exit(3));
  }, 15 * 60_000);
  watchdog.unref();
  const rows: Row[] = [];
  try {
    const up = await startUpstream(cleanup, 'process');
    const relay = await relayTarget(cleanup, up.port, args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}/relay`] : []);
    const upstreamCa = UPSTREAM_CA_PEM();
    const builds: Array<['A' | 'B', string | undefined]> = [
      ['A', args.a],
      ['B', args.b],
    ];
    let hostSeq = 0;
    for (let round = 1; round <= args.rounds; round++) {
      const order = round % 2 === 1 ? builds : [...builds].reverse();
      for (const [name, bin] of order) {
        const hs = Array.from({ length: 6 }, () => `ab${++hostSeq}.bench.test`);
        const local = new Cleanup();
        try {
          const nodeArgs = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}/${name}`] : [];
          const s = await sluiceTarget(local, { upstreamPort: up.port, extraHosts: hs, bin, nodeArgs });
          const pid = s.daemon.proc.pid!;
          const row: Row = { round, build: name };
          if (args.certs) {
            // Warm the daemon's one-time costs (first mint, first upstream connection) on a name of its own.
            await timed(s.fresh(), 'https://api.anthropic.com/v1/messages', s.headers);
            await connectTls(s.daemon.proxyPort, s.token, `warm${hostSeq}.bench.test`, s.caPem).catch(() => 0);
            row.first_req_added_ms = [];
            for (const h of ['auth.openai.com', 'chatgpt.com', 'evil.example']) {
              const d = await timed(new Agent({ connect: { ca: upstreamCa } }), `https://127.0.0.1:${up.port}/v1/messages`, {});
              const n = await timed(s.fresh(), `https://${h}/v1/messages`, {});
              row.first_req_added_ms.push(round3(n - d));
            }
            row.handshake_new_ms = [];
            row.handshake_cached_ms = [];
            for (const h of hs) {
              row.handshake_new_ms.push(round3(await connectTls(s.daemon.proxyPort, s.token, h, s.caPem)));
              row.handshake_cached_ms.push(round3(await connectTls(s.daemon.proxyPort, s.token, h, s.caPem)));
            }
          }
          if (args.load) {
            const rl = await load(relay, args.c, args.ms, relay.proc.pid ?? null);
            const sl = await load(s, args.c, args.ms, pid);
            row.relay = { rps: rl.rps, p99: rl.latency.p99_ms, cpu: rl.proxy_cpu_us_per_req ?? null, us: rl.user_sys_us };
            row.sluice = { rps: sl.rps, p99: sl.latency.p99_ms, cpu: sl.proxy_cpu_us_per_req ?? null, us: sl.user_sys_us };
            if (sl.ok < sl.requests || sl.errors) log(`  ${name}: errors ${sl.errors}, statuses ${JSON.stringify(sl.statuses)} ${sl.first_error}`);
          }
          rows.push(row);
          log(`round ${round} ${name}: ${JSON.stringify(row)}`);
        } finally {
          await local.run();
        }
      }
    }
  } finally {
    await cleanup.run();
    clearTimeout(watchdog);
  }
  // Summary: per build, the mean of the per-round ratios.
  const mean = (x: number[]) => (x.length ? x.reduce((p, q) => p + q, 0) / x.length : NaN);
  const out: string[] = [
    '| build | round | sluice req/s | relay req/s | ratio | sluice p99 | relay p99 | sluice CPU µs/req (user+sys) | relay CPU (user+sys) | CPU ratio | first req added ms | new-host handshake p50 ms | cached p50 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|',
  ];
  for (const r of rows) {
    const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
    out.push(
      `| ${r.build} | ${r.round} | ${f(r.sluice?.rps, 0)} | ${f(r.relay?.rps, 0)} | ${f(r.sluice && r.relay ? r.sluice.rps / r.relay.rps : null)} | ${f(r.sluice?.p99)} | ${f(r.relay?.p99)} | ${f(r.sluice?.cpu, 0)} (${r.sluice?.us?.map((x) => x.toFixed(0)).join('+') ?? ''}) | ${f(r.relay?.cpu, 0)} (${r.relay?.us?.map((x) => x.toFixed(0)).join('+') ?? ''}) | ${f(r.sluice?.cpu && r.relay?.cpu ? r.sluice.cpu / r.relay.cpu : null)} | ${r.first_req_added_ms?.map((x) => x.toFixed(1)).join(' / ') ?? '–'} | ${f(r.handshake_new_ms ? summarize(r.handshake_new_ms).p50_ms : null)} | ${f(r.handshake_cached_ms ? summarize(r.handshake_cached_ms).p50_ms : null)} |`,
    );
  }
  for (const b of ['A', 'B'] as const) {
    const rs = rows.filter((r) => r.build === b && r.sluice && r.relay);
    const fr = rows.filter((r) => r.build === b).flatMap((r) => r.first_req_added_ms ?? []);
    out.push(
      `\n${b}: throughput ratio ${mean(rs.map((r) => r.sluice!.rps / r.relay!.rps)).toFixed(3)}, CPU ratio ${mean(rs.map((r) => r.sluice!.cpu! / r.relay!.cpu!)).toFixed(3)}, sluice CPU ${mean(rs.map((r) => r.sluice!.cpu!)).toFixed(1)} µs, p99 ratio ${mean(rs.map((r) => r.sluice!.p99 / r.relay!.p99)).toFixed(2)}, first request added p50 ${fr.length ? summarize(fr).p50_ms.toFixed(1) : '–'} / max ${fr.length ? Math.max(...fr).toFixed(1) : '–'} ms`,
    );
  }
  process.stdout.write(out.join('\n') + '\n');
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`ab: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
