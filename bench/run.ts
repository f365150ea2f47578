/**
 * `npm run bench`: direct vs a minimal Node relay vs sluice vs mitmproxy against one local fake HTTPS
 * upstream, in one run.
 *
 *   node dist-bench/bench/run.js [--quick] [--out FILE] [--profile] [--upstream-thread|--upstream-inline] [--no-mitmproxy]
 *
 * --quick            CI smoke: a few hundred requests per column, small stream counts (< 60 s)
 * --out FILE         where to write the JSON (default bench/results/<ISO date>.json)
 * --profile          run the daemon with --cpu-prof and add a summary of where its CPU time went
 * --upstream-thread  run the fake upstream in a worker thread of the bench process
 * --upstream-inline  run it on the load generator's own event loop (the setup of the issue 9 reference
 *                    figures; it makes the direct column share one loop with the load generator)
 *                    Default: the upstream runs in a process of its own, like a real provider.
 * --no-mitmproxy     skip the mitmproxy column even when mitmdump is installed
 *
 * Loopback only. Everything started here (daemon, mitmdump, upstream) is stopped at the end, on error, on
 * SIGINT/SIGTERM, and by a watchdog if a phase hangs. Progress goes to stderr, the markdown to stdout.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { REPO_ROOT } from '../test/fakes/repo-root.js';
import { approvalFanOut } from './approvals.js';
import { measureCerts } from './certs.js';
import { runLoad, type LoadResult } from './load.js';
import { RpcPinger } from './pinger.js';
import { summarizeProfile } from './profile.js';
import { derive, LEVELS, markdown, type BenchResults, type Level } from './report.js';
import { measureSse, sseDelta } from './sse.js';
import { soakStreams } from './streams.js';
import {
  directTarget,
  findMitmdump,
  mitmTarget,
  relayTarget,
  sluiceTarget,
  startUpstream,
  type Target,
  type TargetName,
  type UpstreamPlace,
} from './targets.js';
import { Cleanup, procCpuMs, procStats, round, sleep } from './util.js';

interface Plan {
  mode: 'quick' | 'full';
  /** Per throughput column: a fixed count (quick) or a fixed time (full). */
  load: { requests?: number; durationMs?: number; warmupRequests?: number; warmupMs?: number };
  sse: { streams: number; n: number; gap: number };
  streams: { n: number; batch: number };
  approvals: number[];
  certs: { sequential: number; burst: number; firstRequestHosts: string[] };
  caps: { rounds: number; requests?: number; durationMs?: number; concurrency: number };
  limitMs: number;
}

const FULL: Plan = {
  mode: 'full',
  load: { durationMs: 5000, warmupMs: 1000 },
  sse: { streams: 10, n: 50, gap: 20 },
  streams: { n: 1000, batch: 100 },
  approvals: [1000, 256],
  certs: { sequential: 15, burst: 20, firstRequestHosts: ['auth.openai.com', 'chatgpt.com', 'evil.example', 'api.openai.com'] },
  caps: { rounds: 2, durationMs: 3000, concurrency: 10 },
  limitMs: 8 * 60_000,
};

const QUICK: Plan = {
  mode: 'quick',
  load: { requests: 300, warmupRequests: 100 },
  sse: { streams: 2, n: 10, gap: 10 },
  streams: { n: 100, batch: 50 },
  approvals: [100],
  certs: { sequential: 3, burst: 3, firstRequestHosts: ['auth.openai.com'] },
  caps: { rounds: 1, requests: 300, concurrency: 10 },
  limitMs: 150_000,
};

function parseArgs(argv: string[]): { quick: boolean; out: string | null; profile: boolean; upstream: UpstreamPlace; noMitm: boolean } {
  const a = { quick: false, out: null as string | null, profile: false, upstream: 'process' as UpstreamPlace, noMitm: false };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    if (x === '--quick') a.quick = true;
    else if (x === '--profile') a.profile = true;
    else if (x === '--upstream-thread') a.upstream = 'thread';
    else if (x === '--upstream-inline') a.upstream = 'inline';
    else if (x === '--no-mitmproxy') a.noMitm = true;
    else if (x === '--out') a.out = argv[++i] ?? null;
    else if (x.startsWith('--out=')) a.out = x.slice(6);
    else {
      process.stderr.write(
        `bench: unknown argument ${x}\nusage: run.js [--quick] [--out FILE] [--profile] [--upstream-thread|--upstream-inline] [--no-mitmproxy]\n`,
      );
      process.exit(2);
    }
  }
  return a;
}

const log = (msg: string) => process.stderr.write(`[bench ${(performance.now() / 1000).toFixed(1)}s] ${msg}\n`);

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const plan = args.quick ? QUICK : FULL;
  const cleanup = new Cleanup();
  const started = performance.now();
  const date = new Date().toISOString();
  let exitCode = 0;

  process.on('exit', () => cleanup.killAll());
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping`);
      void cleanup.run().finally(() => process.exit(130));
    });
  }
  const watchdog = setTimeout(() => {
    log(`time limit of ${plan.limitMs / 1000} s reached: stopping`);
    void cleanup.run().finally(() => process.exit(3));
  }, plan.limitMs);
  watchdog.unref();

  const cpus = os.cpus();
  const r: BenchResults = {
    schema: 1,
    date,
    mode: plan.mode,
    duration_s: 0,
    machine: {
      cpus: cpus.length,
      cpu_model: cpus[0]?.model ?? 'unknown',
      node: process.versions.node,
      platform: `${os.platform()} ${os.release()}`,
      mem_gb: round(os.totalmem() / 2 ** 30, 1),
      loadavg_start: round(os.loadavg()[0]!, 2),
      loadavg_end: null,
    },
    setup: {},
    columns: [],
    skipped: {},
    throughput: { direct: null, relay: null, sluice: null, mitmproxy: null },
    ratios: {},
    added_latency_c1: null,
    rpc: { idle: null, under_load: {} },
    memory: { idle_rss_mb: null, after_load_rss_mb: null, end_rss_mb: null },
    sse: null,
    certs: null,
    streams: null,
    caps: null,
    approvals: [],
    targets: [],
    errors: [],
    notes: [],
  };
  const phase = async (name: string, fn: () => Promise<void>) => {
    log(name);
    try {
      await fn();
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      log(`${name} FAILED: ${msg}`);
      r.errors.push({ phase: name, error: msg });
      exitCode = 1;
    }
  };
  let sluiceLogs: (() => string) | null = null;
  const profileDir = args.profile ? fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-profile-')) : null;

  try {
    // ---- setup ----------------------------------------------------------------------------------------
    const up = await startUpstream(cleanup, args.upstream);
    log(`fake upstream on 127.0.0.1:${up.port} (${up.where})`);
    const direct = directTarget(cleanup, up.port);
    const relay = await relayTarget(cleanup, up.port);
    const relayPid = relay.proc.pid ?? null;
    log(`minimal relay pid ${relayPid}`);
    // h0 is the daemon's first certificate; the burst hosts sit in their own parent domains, because
    // http-mitm-proxy serialises certificate work per wildcard name (*.bench.test) with a semaphore.
    const seqHosts = Array.from({ length: plan.certs.sequential }, (_, i) => `h${i + 1}.bench.test`);
    const burstHosts = Array.from({ length: plan.certs.burst }, (_, i) => `b.d${i + 1}.bench.test`);
    const certHosts = ['h0.bench.test', ...seqHosts, ...burstHosts];
    const sluice = await sluiceTarget(cleanup, {
      upstreamPort: up.port,
      extraHosts: certHosts,
      nodeArgs: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
    });
    const pid = sluice.daemon.proc.pid!;
    sluiceLogs = sluice.daemon.logs;
    log(`sluice daemon pid ${pid}, proxy 127.0.0.1:${sluice.daemon.proxyPort}`);
    const targets: Target[] = [direct, relay, sluice];
    let mitmPid: number | null = null;
    const mitmBin = args.noMitm ? null : findMitmdump();
    if (mitmBin) {
      try {
        const mt = await mitmTarget(cleanup, up.port, mitmBin);
        targets.push(mt);
        r.setup.mitmproxy = `mitmdump ${mt.version}, regular mode, upstream verified with the test CA`;
        mitmPid = mt.proc.pid ?? null;
        log(`mitmproxy ${mt.version} pid ${mt.proc.pid}`);
      } catch (err) {
        r.skipped.mitmproxy = `mitmdump failed to start: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
      }
    } else {
      r.skipped.mitmproxy = args.noMitm ? 'disabled with --no-mitmproxy' : 'mitmdump is not installed (apt-get install mitmproxy to add this column)';
    }
    r.columns = targets.map((t) => t.name);
    r.setup = {
      ...r.setup,
      upstream: `fake HTTPS upstream (test CA) in the ${up.where}; 48-byte JSON at /v1/messages, SSE at /sse`,
      relay: 'bench/min-relay.ts in its own process: CONNECT, TLS with one fixed certificate, keep-alive forwarding, nothing else',
      load: plan.load.requests
        ? `closed loop, ${plan.load.requests} requests per column after ${plan.load.warmupRequests} warm-up`
        : `closed loop, ${plan.load.durationMs! / 1000} s per column after ${plan.load.warmupMs! / 1000} s warm-up`,
      client: 'undici 6: Agent (direct) / ProxyAgent with requestTls.ca (proxies), keep-alive',
      sluice: `daemon in its own process (${sluice.daemon.proc.spawnargs.slice(1).join(' ')}), SLUICE_LOG_LEVEL=info, per-credential cap 256, no global cap`,
      sluice_pid: pid,
      sluice_profile: profileDir ?? 'off',
    };
    if (r.skipped.mitmproxy) r.notes.push(`mitmproxy column skipped: ${r.skipped.mitmproxy}.`);
    const pinger = await RpcPinger.connect(sluice.daemon.socket);
    cleanup.add('pinger', () => pinger.close());

    await sleep(300);
    r.memory.idle_rss_mb = procStats(pid)?.rss_mb ?? null;
    r.rpc.idle = await pinger.measure(plan.mode === 'quick' ? 50 : 300);

    // ---- certificates first, while every host is still new ----------------------------------------
    await phase('certificates: first connection to new hosts', async () => {
      r.certs = await measureCerts({
        sluice,
        upstreamPort: up.port,
        pinger,
        coldHost: 'h0.bench.test',
        sequentialHosts: seqHosts,
        burstHosts,
        firstRequestHosts: plan.certs.firstRequestHosts,
      });
    });

    // ---- SSE, before the load runs grow the daemon heap ----------------------------------------------
    await phase('SSE: time to first event and per-event latency', async () => {
      const a = await measureSse(direct, plan.sse.streams, plan.sse.n, plan.sse.gap);
      const b = await measureSse(sluice, plan.sse.streams, plan.sse.n, plan.sse.gap);
      r.sse = { direct: a, sluice: b, delta: sseDelta(a, b) };
    });

    // ---- throughput ---------------------------------------------------------------------------------
    for (const t of targets) r.throughput[t.name] = {};
    for (const lv of Object.keys(LEVELS) as Level[]) {
      const c = LEVELS[lv];
      for (const t of targets) {
        await phase(`throughput ${t.name} c=${c}`, async () => {
          const proxyPid = t.name === 'sluice' ? pid : t.name === 'mitmproxy' ? mitmPid : t.name === 'relay' ? relayPid : null;
          let cpu0: number | null = null;
          let cpuUsed: number | null = null;
          const res: LoadResult = await runLoad({
            url: t.url('/v1/messages'),
            dispatcher: t.dispatcher,
            headers: t.headers,
            concurrency: c,
            requests: plan.load.requests,
            durationMs: plan.load.durationMs,
            warmup: { requests: plan.load.warmupRequests ? Math.max(plan.load.warmupRequests, 2 * c) : undefined, durationMs: plan.load.warmupMs },
            onMeasureStart: () => {
              if (proxyPid) cpu0 = procCpuMs(proxyPid);
              // Not during c=10: that column's CPU per request is judged against the relay's, which serves no RPC.
              if (t.name === 'sluice' && lv !== 'c10') pinger.start(10);
            },
            onMeasureEnd: () => {
              const cpu1 = proxyPid ? procCpuMs(proxyPid) : null;
              if (cpu0 !== null && cpu1 !== null) cpuUsed = cpu1 - cpu0;
            },
          });
          if (proxyPid) res.proxy_cpu_us_per_req = cpuUsed !== null && res.requests > 0 ? round((cpuUsed * 1000) / res.requests, 1) : null;
          if (t.name === 'sluice' && lv !== 'c10') r.rpc.under_load[lv] = await pinger.stop();
          r.throughput[t.name]![lv] = res;
          log(
            `  ${t.name} c=${c}: ${res.rps} req/s, p50 ${res.latency.p50_ms} ms, p99 ${res.latency.p99_ms} ms${res.errors || res.ok < res.requests ? `, ${res.errors} errors, statuses ${JSON.stringify(res.statuses)}` : ''}`,
          );
        });
      }
    }
    r.memory.after_load_rss_mb = procStats(pid)?.rss_mb ?? null;

    // ---- caps on vs off -----------------------------------------------------------------------------
    await phase('caps: global cap 10,000 vs unset', async () => {
      const off: number[] = [];
      const on: number[] = [];
      const run = async () =>
        (
          await runLoad({
            url: sluice.url('/v1/messages'),
            dispatcher: sluice.dispatcher,
            headers: sluice.headers,
            concurrency: plan.caps.concurrency,
            requests: plan.caps.requests,
            durationMs: plan.caps.durationMs,
            warmup: { requests: plan.caps.requests ? 50 : undefined, durationMs: plan.caps.durationMs ? 300 : undefined },
          })
        ).rps;
      for (let i = 0; i < plan.caps.rounds; i++) {
        await sluice.daemon.client.call('limits.set', { global: null });
        off.push(await run());
        await sluice.daemon.client.call('limits.set', { global: 10_000 });
        on.push(await run());
      }
      await sluice.daemon.client.call('limits.set', { global: null });
      const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
      r.caps = {
        concurrency: plan.caps.concurrency,
        off_rps: off,
        on_rps: on,
        off_mean_rps: round(mean(off), 1),
        on_mean_rps: round(mean(on), 1),
        on_vs_off_pct: round((100 * (mean(on) - mean(off))) / mean(off), 2),
      };
    });

    // ---- many open streams --------------------------------------------------------------------------
    await phase(`streams: ${plan.streams.n} open SSE streams, then random aborts`, async () => {
      r.streams = await soakStreams(sluice, plan.streams.n, plan.streams.batch, up.port);
    });

    // ---- approval fan-out ---------------------------------------------------------------------------
    for (const n of plan.approvals) {
      await phase(`approvals: ${n} concurrent asks to one destination`, async () => {
        try {
          r.approvals.push(await approvalFanOut(sluice, n));
        } catch (err) {
          r.approvals.push({ requests: n, error: err instanceof Error ? err.message : String(err) });
          throw err;
        }
      });
    }
    if (plan.approvals.some((n) => n > 256)) {
      r.notes.push(
        'Approval fan-out: DESIGN §5 limits a prompt to 256 waiters, so of 1,000 concurrent asks 256 wait on the one prompt and the rest are refused at once with 403 "too many waiting"; the 256-ask run shows every waiter answered by one resolve.',
      );
    }
    r.memory.end_rss_mb = procStats(pid)?.rss_mb ?? null;
  } catch (err) {
    const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
    log(`setup failed: ${msg}`);
    r.errors.push({ phase: 'setup', error: err instanceof Error ? err.message : String(err) });
    exitCode = 1;
  }

  // ---- teardown, then the report ------------------------------------------------------------------
  const daemonLogs = sluiceLogs?.() ?? '';
  const anyFailure =
    r.errors.length > 0 || Object.values(r.throughput).some((lv) => Object.values(lv ?? {}).some((x) => x && (x.errors > 0 || x.ok < x.requests)));
  if (anyFailure && daemonLogs) {
    const tail = daemonLogs.trimEnd().split('\n').slice(-30).join('\n');
    log(`something failed; the daemon's last log lines:\n${tail}`);
  }
  log('stopping everything');
  await cleanup.run();
  if (profileDir) {
    const files = fs.existsSync(profileDir) ? fs.readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')) : [];
    if (files.length) r.profile = summarizeProfile(path.join(profileDir, files.sort().at(-1)!));
    else r.notes.push(`no CPU profile was written to ${profileDir}`);
  }
  r.duration_s = round((performance.now() - started) / 1000, 1);
  r.machine.loadavg_end = round(os.loadavg()[0]!, 2);
  if (Math.max(r.machine.loadavg_start, r.machine.loadavg_end) > r.machine.cpus) {
    r.notes.push(
      `The machine was busy with other work (1-minute load average ${r.machine.loadavg_start} at the start, ${r.machine.loadavg_end} at the end, on ${r.machine.cpus} CPUs): absolute figures and tail latencies are inflated; the proxy CPU per request is the steadier comparison.`,
    );
  }
  derive(r);
  const out = args.out ? path.resolve(args.out) : path.join(REPO_ROOT, 'bench', 'results', `${date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(r, null, 2) + '\n');
  process.stdout.write(markdown(r));
  process.stdout.write(`\nResults: ${path.relative(process.cwd(), out) || out}\n`);
  clearTimeout(watchdog);
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
