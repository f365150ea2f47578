/**
 * Many open SSE streams through sluice: the daemon's RSS and file descriptors with N streams open, then
 * every client aborts at a random moment; in-flight counts (global and per credential) must return to 0
 * and the descriptors to their baseline. Streams are spread over four credentials (per-credential cap 256).
 */
import { performance } from 'node:perf_hooks';
import { request, type Dispatcher } from 'undici';
import type { SluiceTarget } from './targets.js';
import { fdKinds, procStats, round, sleep } from './util.js';

export interface StreamsResult {
  streams: number;
  opened: number;
  open_failures: number;
  first_open_error: string | null;
  open_wall_ms: number;
  before: { rss_mb: number; fds: number } | null;
  with_streams: { rss_mb: number; fds: number; in_flight: number; per_credential_in_flight: Record<string, number> } | null;
  after: { rss_mb: number; fds: number; in_flight: number; per_credential_in_flight: Record<string, number> } | null;
  /** Time from the last abort until the daemon reported 0 in flight (null: never within the limit). */
  drained_ms: number | null;
  fd_delta: number | null;
  /** Descriptors by kind before and after (see fdKinds). */
  fd_kinds: { before: Record<string, number>; after: Record<string, number> } | null;
}

const CREDS = 4;

async function inFlight(s: SluiceTarget): Promise<{ global: number; per: Record<string, number> }> {
  const snap = await s.daemon.client.call('stats.snapshot');
  const per: Record<string, number> = {};
  for (const c of snap.credentials) per[c.name] = c.in_flight;
  return { global: snap.global.in_flight, per };
}

export async function soakStreams(s: SluiceTarget, n: number, batch: number, upstreamPort: number): Promise<StreamsResult> {
  const pid = s.daemon.proc.pid!;
  const phantoms: string[] = [];
  for (let i = 0; i < CREDS; i++) {
    const c = await s.daemon.client.call('cred.add', {
      name: `stream-${i}`,
      hosts: ['api.openai.com'],
      header: 'authorization',
      format: 'Bearer {}',
      max_concurrent: 256,
      secret: `sk-proj-bench-stream-secret-${i}-0123456789`,
    });
    phantoms.push(c.phantom);
  }
  await sleep(300);
  const before = procStats(pid);
  const kindsBefore = fdKinds(pid, upstreamPort);
  const dispatcher: Dispatcher = s.fresh();
  const controllers: AbortController[] = [];
  const ended: Promise<void>[] = [];
  let failures = 0;
  let firstError: string | null = null;
  const t0 = performance.now();
  for (let b = 0; b < n; b += batch) {
    const opening: Promise<void>[] = [];
    for (let i = b; i < Math.min(n, b + batch); i++) {
      const ac = new AbortController();
      controllers.push(ac);
      opening.push(
        (async () => {
          try {
            const res = await request('https://api.openai.com/sse?n=100000&gap=1000', {
              dispatcher,
              signal: ac.signal,
              headers: { authorization: `Bearer ${phantoms[i % CREDS]}` },
            });
            if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
            const first = new Promise<void>((resolve) => res.body.once('data', () => resolve()));
            res.body.on('data', () => {});
            ended.push(new Promise<void>((r) => res.body.once('close', () => r())));
            res.body.once('error', () => {});
            await first;
          } catch (err) {
            failures++;
            firstError ??= err instanceof Error ? err.message : String(err);
          }
        })(),
      );
    }
    await Promise.all(opening);
  }
  const openWall = performance.now() - t0;
  await sleep(500);
  const live = await inFlight(s);
  const withStreams = procStats(pid);

  // Every client goes away at a random moment within one second, in random order.
  const aborts = controllers.map((ac) => sleep(Math.random() * 1000).then(() => ac.abort()));
  await Promise.all(aborts);
  await Promise.race([Promise.all(ended), sleep(5000)]);
  const tAbort = performance.now();
  let drained: number | null = null;
  let after = await inFlight(s);
  while (performance.now() - tAbort < 15_000) {
    after = await inFlight(s);
    if (after.global === 0 && Object.values(after.per).every((x) => x === 0)) {
      drained = round(performance.now() - tAbort, 1);
      break;
    }
    await sleep(50);
  }
  await dispatcher.destroy().catch(() => {});
  // Give the kernel and the daemon a moment to close the torn-down sockets before counting descriptors.
  let afterStats = procStats(pid);
  for (let i = 0; i < 40 && before && afterStats && afterStats.fds > before.fds; i++) {
    await sleep(100);
    afterStats = procStats(pid);
  }
  return {
    streams: n,
    opened: n - failures,
    open_failures: failures,
    first_open_error: firstError,
    open_wall_ms: round(openWall, 1),
    before,
    with_streams: withStreams ? { ...withStreams, in_flight: live.global, per_credential_in_flight: live.per } : null,
    after: afterStats ? { ...afterStats, in_flight: after.global, per_credential_in_flight: after.per } : null,
    drained_ms: drained,
    fd_delta: before && afterStats ? afterStats.fds - before.fds : null,
    fd_kinds: { before: kindsBefore, after: fdKinds(pid, upstreamPort) },
  };
}
