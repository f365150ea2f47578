/**
 * The results file (`bench/results/<date>.json`) and the markdown table printed on stdout. Every ratio is
 * computed from figures measured in the same run; the targets of issue 9 are checked here.
 */
import type { ApprovalResult } from './approvals.js';
import type { CertResult } from './certs.js';
import type { LoadResult } from './load.js';
import type { ProfileSummary } from './profile.js';
import type { SseResult } from './sse.js';
import type { StreamsResult } from './streams.js';
import type { TargetName } from './targets.js';
import { fmt, round, signed, type Summary } from './util.js';

export type Level = 'c1' | 'c10' | 'c100';
export const LEVELS: Record<Level, number> = { c1: 1, c10: 10, c100: 100 };

export interface TargetCheck {
  id: string;
  description: string;
  target: string;
  measured: string;
  /** null: could not be measured in this run. */
  met: boolean | null;
}

export interface BenchResults {
  schema: 1;
  date: string;
  mode: 'quick' | 'full';
  duration_s: number;
  machine: { cpus: number; cpu_model: string; node: string; platform: string; mem_gb: number; loadavg_start: number; loadavg_end: number | null };
  setup: Record<string, string | number>;
  /** Targets that ran; a skipped one has a reason in `skipped`. */
  columns: TargetName[];
  skipped: Partial<Record<TargetName, string>>;
  throughput: Record<TargetName, Partial<Record<Level, LoadResult>> | null>;
  ratios: Partial<
    Record<
      Level,
      {
        sluice_over_direct_rps: number | null;
        sluice_over_mitmproxy_rps: number | null;
        sluice_over_relay_rps: number | null;
        sluice_over_relay_p99: number | null;
        sluice_over_relay_cpu: number | null;
      }
    >
  >;
  added_latency_c1: { p50_ms: number; p99_ms: number } | null;
  rpc: { idle: Summary | null; under_load: Partial<Record<Level, Summary>> };
  memory: { idle_rss_mb: number | null; after_load_rss_mb: number | null; end_rss_mb: number | null };
  sse: { direct: SseResult; sluice: SseResult; delta: Record<string, number> } | null;
  certs: CertResult | null;
  streams: StreamsResult | null;
  caps: { concurrency: number; off_rps: number[]; on_rps: number[]; off_mean_rps: number; on_mean_rps: number; on_vs_off_pct: number } | null;
  approvals: (ApprovalResult | { requests: number; error: string })[];
  targets: TargetCheck[];
  errors: { phase: string; error: string }[];
  notes: string[];
  profile?: ProfileSummary;
}

const ratio = (a: number | undefined, b: number | undefined): number | null => (a && b ? round(a / b, 3) : null);

/** Fills `ratios`, `added_latency_c1` and `targets` from the measured figures. */
export function derive(r: BenchResults): void {
  const d = r.throughput.direct;
  const s = r.throughput.sluice;
  const m = r.throughput.mitmproxy;
  const rl = r.throughput.relay;
  for (const lv of Object.keys(LEVELS) as Level[]) {
    if (!s?.[lv]) continue;
    r.ratios[lv] = {
      sluice_over_direct_rps: ratio(s[lv]!.rps, d?.[lv]?.rps),
      sluice_over_mitmproxy_rps: ratio(s[lv]!.rps, m?.[lv]?.rps),
      sluice_over_relay_rps: ratio(s[lv]!.rps, rl?.[lv]?.rps),
      sluice_over_relay_p99: ratio(s[lv]!.latency.p99_ms, rl?.[lv]?.latency.p99_ms),
      sluice_over_relay_cpu: ratio(s[lv]!.proxy_cpu_us_per_req ?? undefined, rl?.[lv]?.proxy_cpu_us_per_req ?? undefined),
    };
  }
  if (d?.c1 && s?.c1)
    r.added_latency_c1 = { p50_ms: round(s.c1.latency.p50_ms - d.c1.latency.p50_ms), p99_ms: round(s.c1.latency.p99_ms - d.c1.latency.p99_ms) };

  const t: TargetCheck[] = [];
  const c10 = r.ratios.c10;
  t.push({
    id: 'throughput_vs_mitmproxy',
    description: 'Throughput at concurrency 10: sluice vs mitmproxy',
    target: '≥ 3×',
    measured:
      c10?.sluice_over_mitmproxy_rps != null
        ? `${fmt(c10.sluice_over_mitmproxy_rps)}× (${fmt(s?.c10?.rps, 0)} vs ${fmt(m?.c10?.rps, 0)} req/s)`
        : `not measured${r.skipped.mitmproxy ? ` (${r.skipped.mitmproxy})` : ''}`,
    met: c10?.sluice_over_mitmproxy_rps != null ? c10.sluice_over_mitmproxy_rps >= 3 : null,
  });
  t.push({
    id: 'throughput_vs_direct',
    description: 'Throughput at concurrency 10: sluice vs direct',
    target: '≥ 60%',
    measured:
      c10?.sluice_over_direct_rps != null
        ? `${fmt(100 * c10.sluice_over_direct_rps, 0)}% (${fmt(s?.c10?.rps, 0)} vs ${fmt(d?.c10?.rps, 0)} req/s)`
        : 'not measured',
    met: c10?.sluice_over_direct_rps != null ? c10.sluice_over_direct_rps >= 0.6 : null,
  });
  t.push({
    id: 'throughput_vs_relay',
    description: 'Throughput at concurrency 10: sluice vs the minimal Node relay (issue 21)',
    target: '≥ 0.9×',
    measured:
      c10?.sluice_over_relay_rps != null ? `${fmt(c10.sluice_over_relay_rps)}× (${fmt(s?.c10?.rps, 0)} vs ${fmt(rl?.c10?.rps, 0)} req/s)` : 'not measured',
    met: c10?.sluice_over_relay_rps != null ? c10.sluice_over_relay_rps >= 0.9 : null,
  });
  t.push({
    id: 'p99_vs_relay',
    description: 'p99 latency at concurrency 10: sluice vs the minimal relay (issue 21)',
    target: '≤ 2×',
    measured:
      c10?.sluice_over_relay_p99 != null
        ? `${fmt(c10.sluice_over_relay_p99)}× (${fmt(s?.c10?.latency.p99_ms)} vs ${fmt(rl?.c10?.latency.p99_ms)} ms)`
        : 'not measured',
    met: c10?.sluice_over_relay_p99 != null ? c10.sluice_over_relay_p99 <= 2 : null,
  });
  t.push({
    id: 'cpu_vs_relay',
    description: 'Proxy CPU per request at concurrency 10: sluice vs the minimal relay (issue 21)',
    target: '≤ 1.2×',
    measured:
      c10?.sluice_over_relay_cpu != null
        ? `${fmt(c10.sluice_over_relay_cpu)}× (${fmt(s?.c10?.proxy_cpu_us_per_req, 0)} vs ${fmt(rl?.c10?.proxy_cpu_us_per_req, 0)} µs)`
        : 'not measured',
    met: c10?.sluice_over_relay_cpu != null ? c10.sluice_over_relay_cpu <= 1.2 : null,
  });
  const al = r.added_latency_c1;
  t.push({
    id: 'added_latency_c1',
    description: 'Added latency at concurrency 1 (sluice − direct)',
    target: 'p50 ≤ 0.5 ms, p99 ≤ 2 ms',
    measured: al ? `p50 ${signed(al.p50_ms, 3)} ms, p99 ${signed(al.p99_ms, 3)} ms` : 'not measured',
    met: al ? al.p50_ms <= 0.5 && al.p99_ms <= 2 : null,
  });
  const c = r.certs;
  t.push({
    id: 'first_request_new_host',
    description: 'First request to a new host, added over a direct first request (fresh connections)',
    target: '≤ 10 ms (issue 21; was 50 ms in issue 9)',
    measured: c
      ? `p50 ${signed(c.first_request.added_new_vs_direct_p50_ms)} ms, worst ${signed(c.first_request.added_new_vs_direct_max_ms)} ms (handshake alone: new ${fmt(c.handshake.new_host.p50_ms)} vs direct ${fmt(c.handshake.direct.p50_ms)} ms)`
      : 'not measured',
    met: c ? c.first_request.added_new_vs_direct_max_ms <= 10 && c.handshake.added_new_vs_direct_p50_ms <= 10 : null,
  });
  t.push({
    id: 'no_loop_block_minting',
    description:
      'Event loop not blocked by certificate work (daemon.status round trip while new hosts are minted one after another, and during the very first)',
    target: 'max ≤ 25 ms (a blocking RSA mint stalls 200–900 ms)',
    measured: c
      ? `max ${fmt(c.rpc_while_minting.max_ms)} ms (p50 ${fmt(c.rpc_while_minting.p50_ms)}, ${c.rpc_while_minting.n} calls); first certificate: max ${fmt(c.cold_first_mint.rpc.max_ms)} ms. For information, ${c.burst.hosts} new hosts at once: max ${fmt(c.burst.rpc.max_ms)} ms`
      : 'not measured',
    met: c ? Math.max(c.rpc_while_minting.max_ms, c.cold_first_mint.rpc.max_ms || 0) <= 25 : null,
  });
  const sse = r.sse;
  t.push({
    id: 'sse_no_buffering',
    description: 'SSE: each event within 2 ms of direct (per-event latency upstream → client, p99, sluice − direct)',
    target: '≤ 2 ms',
    measured: sse
      ? `event latency p99 ${signed(sse.delta.event_latency_p99_ms, 3)} ms (p50 ${signed(sse.delta.event_latency_p50_ms, 3)}); time to first event p50 ${signed(sse.delta.ttfe_p50_ms, 3)} ms (includes the request's own added latency)`
      : 'not measured',
    met: sse ? sse.delta.event_latency_p99_ms! <= 2 && sse.sluice.incomplete_streams === 0 : null,
  });
  const st = r.streams;
  const streamsOk = st && st.with_streams && st.after;
  t.push({
    id: 'streams_rss',
    description: `Daemon RSS with ${st?.streams ?? 1000} open streams`,
    target: '< 200 MB',
    measured: streamsOk
      ? `${fmt(st.with_streams!.rss_mb, 1)} MB: ${signed(st.with_streams!.rss_mb - (st.before?.rss_mb ?? NaN), 1)} MB over ${fmt(st.before?.rss_mb, 1)} MB just before (after the load runs; freshly started: ${fmt(r.memory.idle_rss_mb, 1)} MB); ${st.opened}/${st.streams} open, ${st.with_streams!.in_flight} in flight`
      : 'not measured',
    met: streamsOk ? st.with_streams!.rss_mb < 200 && st.opened === st.streams : null,
  });
  t.push({
    id: 'streams_released',
    description: 'After random client aborts: all permits released, no descriptor leak',
    target: 'in flight 0, fds back to baseline',
    measured: streamsOk
      ? `in flight ${st.after!.in_flight} (drained in ${st.drained_ms ?? '∞'} ms), fds ${st.before?.fds} → ${st.with_streams!.fds} → ${st.after!.fds}`
      : 'not measured',
    met: streamsOk ? st.after!.in_flight === 0 && Object.values(st.after!.per_credential_in_flight).every((x) => x === 0) && (st.fd_delta ?? 99) <= 2 : null,
  });
  for (const ap of r.approvals) {
    const ok = 'prompts' in ap ? ap : null;
    t.push({
      id: `coalescing_${ap.requests}`,
      description: `${ap.requests} concurrent asks to one destination → one prompt; one resolve answers all`,
      target: '1 prompt, all answered ≤ 500 ms after resolve',
      measured: ok
        ? `${ok.prompts} prompt(s), ${ok.waiters_at_resolve} waiting${ok.refused_before_resolve ? ` + ${ok.refused_before_resolve} refused at once (DESIGN §5 waiter limit 256)` : ''}; resolve → all answered in ${fmt(ok.all_answered_ms)} ms`
        : `failed: ${'error' in ap ? ap.error : '?'}`,
      met: ok ? ok.prompts === 1 && ok.all_answered_ms <= 500 && ok.errors === 0 : false,
    });
  }
  r.targets = t;
}

function pp(x: Summary | undefined | null, digits = 2): string {
  return x ? `${fmt(x.p50_ms, digits)} / ${fmt(x.p99_ms, digits)}` : '–';
}

/** The markdown report. */
export function markdown(r: BenchResults): string {
  const L: string[] = [];
  const d = r.throughput.direct;
  const s = r.throughput.sluice;
  const m = r.throughput.mitmproxy;
  const rl = r.throughput.relay;
  L.push(`## sluice bench — ${r.date} (${r.mode}, ${fmt(r.duration_s, 0)} s)`);
  L.push('');
  L.push(
    `${r.machine.cpus} × ${r.machine.cpu_model}, Node ${r.machine.node}, ${r.machine.platform}, load average ${r.machine.loadavg_start} at the start. Upstream: ${r.setup.upstream}. Load: ${r.setup.load}.`,
  );
  if (r.skipped.mitmproxy) L.push(`mitmproxy column skipped: ${r.skipped.mitmproxy}.`);
  L.push('');
  L.push('### Throughput and latency (small JSON responses, keep-alive)');
  L.push('');
  const x = (v: number | null | undefined) => (v != null ? fmt(v) + '×' : '–');
  L.push(
    '| concurrency | direct req/s | relay req/s | sluice req/s | mitmproxy req/s | sluice/direct | sluice/relay | sluice/mitmproxy | direct p50 / p99 ms | relay p50 / p99 ms | sluice p50 / p99 ms | mitmproxy p50 / p99 ms |',
  );
  L.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const lv of Object.keys(LEVELS) as Level[]) {
    const rt = r.ratios[lv];
    const err = [d?.[lv], rl?.[lv], s?.[lv], m?.[lv]].some((y) => y && (y.errors > 0 || y.ok < y.requests)) ? ' ⚠' : '';
    L.push(
      `| ${LEVELS[lv]}${err} | ${fmt(d?.[lv]?.rps, 0)} | ${fmt(rl?.[lv]?.rps, 0)} | ${fmt(s?.[lv]?.rps, 0)} | ${m ? fmt(m[lv]?.rps, 0) : 'skipped'} | ${x(rt?.sluice_over_direct_rps)} | ${x(rt?.sluice_over_relay_rps)} | ${x(rt?.sluice_over_mitmproxy_rps)} | ${pp(d?.[lv]?.latency)} | ${pp(rl?.[lv]?.latency)} | ${pp(s?.[lv]?.latency)} | ${m ? pp(m[lv]?.latency) : '–'} |`,
    );
  }
  const warn = (Object.entries(r.throughput) as [TargetName, Partial<Record<Level, LoadResult>> | null][]).flatMap(([name, lvls]) =>
    Object.entries(lvls ?? {})
      .filter(([, x]) => x && (x.errors > 0 || x.ok < x.requests))
      .map(
        ([lv, x]) => `${name} ${lv}: ${x!.errors} errors, statuses ${JSON.stringify(x!.statuses)}${x!.first_error ? `, first error: ${x!.first_error}` : ''}`,
      ),
  );
  if (warn.length) L.push('', `⚠ ${warn.join('; ')}`);
  if (s || m) {
    L.push(
      '',
      'Proxy process CPU time per request (µs, user + system, from /proc): ' +
        (Object.keys(LEVELS) as Level[])
          .map(
            (lv) =>
              `c=${LEVELS[lv]}: relay ${fmt(rl?.[lv]?.proxy_cpu_us_per_req, 0)}, sluice ${fmt(s?.[lv]?.proxy_cpu_us_per_req, 0)} (${x(r.ratios[lv]?.sluice_over_relay_cpu)} the relay)${m ? `, mitmproxy ${fmt(m[lv]?.proxy_cpu_us_per_req, 0)}` : ''}`,
          )
          .join('; ') +
        '.',
    );
  }
  if (r.added_latency_c1)
    L.push(
      '',
      `Added latency at concurrency 1 (sluice − direct): **p50 ${signed(r.added_latency_c1.p50_ms, 3)} ms, p99 ${signed(r.added_latency_c1.p99_ms, 3)} ms**.`,
    );
  L.push('');
  L.push('### Daemon');
  L.push('');
  L.push('| | value |');
  L.push('|---|---:|');
  L.push(
    `| RSS idle / after the load runs / at the end | ${fmt(r.memory.idle_rss_mb, 1)} / ${fmt(r.memory.after_load_rss_mb, 1)} / ${fmt(r.memory.end_rss_mb, 1)} MB |`,
  );
  L.push(`| \`daemon.status\` round trip idle, p50 / p99 | ${pp(r.rpc.idle, 3)} ms |`);
  for (const lv of Object.keys(LEVELS) as Level[])
    if (r.rpc.under_load[lv])
      L.push(
        `| \`daemon.status\` round trip during the sluice c=${LEVELS[lv]} run, p50 / p99 / max | ${pp(r.rpc.under_load[lv], 3)} / ${fmt(r.rpc.under_load[lv]!.max_ms)} ms |`,
      );
  if (r.caps)
    L.push(
      `| global cap 10,000 vs unset at c=${r.caps.concurrency} (per-credential cap 256 in both) | ${fmt(r.caps.on_mean_rps, 0)} vs ${fmt(r.caps.off_mean_rps, 0)} req/s (${signed(r.caps.on_vs_off_pct, 1)}%) |`,
    );
  if (r.sse) {
    const a = r.sse.direct;
    const b = r.sse.sluice;
    L.push('');
    L.push(`### SSE (${a.streams} streams × ${a.events_per_stream} events, ${a.gap_ms} ms apart, warm connection)`);
    L.push('');
    L.push('| ms | direct | sluice | sluice − direct |');
    L.push('|---|---:|---:|---:|');
    L.push(`| time to first event p50 | ${fmt(a.ttfe.p50_ms, 3)} | ${fmt(b.ttfe.p50_ms, 3)} | ${signed(r.sse.delta.ttfe_p50_ms, 3)} |`);
    L.push(
      `| per-event latency (upstream send → client) p50 | ${fmt(a.event_latency.p50_ms, 3)} | ${fmt(b.event_latency.p50_ms, 3)} | ${signed(r.sse.delta.event_latency_p50_ms, 3)} |`,
    );
    L.push(
      `| per-event latency p99 | ${fmt(a.event_latency.p99_ms, 3)} | ${fmt(b.event_latency.p99_ms, 3)} | ${signed(r.sse.delta.event_latency_p99_ms, 3)} |`,
    );
    L.push(
      `| per-event latency max | ${fmt(a.event_latency.max_ms, 3)} | ${fmt(b.event_latency.max_ms, 3)} | ${signed(r.sse.delta.event_latency_max_ms, 3)} |`,
    );
    L.push(`| mean inter-event gap | ${fmt(a.mean_gap_ms, 3)} | ${fmt(b.mean_gap_ms, 3)} | ${signed(r.sse.delta.mean_gap_ms, 3)} |`);
  }
  if (r.certs) {
    const c = r.certs;
    L.push('');
    L.push('### First connection to a new host (certificate minting)');
    L.push('');
    L.push('| ms | p50 | max |');
    L.push('|---|---:|---:|');
    L.push(`| direct: new TCP + TLS connection to the upstream | ${fmt(c.handshake.direct.p50_ms)} | ${fmt(c.handshake.direct.max_ms)} |`);
    L.push(`| sluice: CONNECT + TLS handshake, new host (mints) | ${fmt(c.handshake.new_host.p50_ms)} | ${fmt(c.handshake.new_host.max_ms)} |`);
    L.push(`| sluice: CONNECT + TLS handshake, cached host | ${fmt(c.handshake.cached_host.p50_ms)} | ${fmt(c.handshake.cached_host.max_ms)} |`);
    L.push(
      `| sluice: ${c.burst.hosts} new hosts at once (per host; wall ${fmt(c.burst.wall_ms)}) | ${fmt(c.burst.per_host.p50_ms)} | ${fmt(c.burst.per_host.max_ms)} |`,
    );
    L.push(
      `| direct: first request on a new connection | ${fmt(c.first_request.direct_new_connection.p50_ms)} | ${fmt(c.first_request.direct_new_connection.max_ms)} |`,
    );
    L.push(
      `| sluice: first request to a new host (${c.first_request.hosts.join(', ')}) | ${fmt(c.first_request.new_host.p50_ms)} | ${fmt(c.first_request.new_host.max_ms)} |`,
    );
    L.push(
      `| sluice: first request on a new tunnel to a cached host | ${fmt(c.first_request.cached_host_new_connection.p50_ms)} | ${fmt(c.first_request.cached_host_new_connection.max_ms)} |`,
    );
    L.push(
      `| \`daemon.status\` round trip while minting one host after another (p50 / p99 \\| max) | ${pp(c.rpc_while_minting, 3)} | ${fmt(c.rpc_while_minting.max_ms)} |`,
    );
    L.push(`| \`daemon.status\` round trip during the ${c.burst.hosts}-host burst (p50 / p99 \\| max) | ${pp(c.burst.rpc, 3)} | ${fmt(c.burst.rpc.max_ms)} |`);
    L.push(
      `| the daemon's very first certificate: handshake (\\| RPC round trip max meanwhile) | ${fmt(c.cold_first_mint.handshake_ms)} | ${fmt(c.cold_first_mint.rpc.max_ms)} |`,
    );
  }
  if (r.streams) {
    const st = r.streams;
    L.push('');
    L.push(`### ${st.streams} open SSE streams, then random client aborts`);
    L.push('');
    L.push('| | before | with streams | after aborts |');
    L.push('|---|---:|---:|---:|');
    L.push(`| daemon RSS MB | ${fmt(st.before?.rss_mb, 1)} | ${fmt(st.with_streams?.rss_mb, 1)} | ${fmt(st.after?.rss_mb, 1)} |`);
    L.push(`| daemon file descriptors | ${st.before?.fds ?? '–'} | ${st.with_streams?.fds ?? '–'} | ${st.after?.fds ?? '–'} |`);
    L.push(`| in flight (global) | 0 | ${st.with_streams?.in_flight ?? '–'} | ${st.after?.in_flight ?? '–'} |`);
    L.push('');
    if (st.fd_kinds) {
      const kinds = (k: Record<string, number>) =>
        Object.entries(k)
          .sort()
          .map(([n, v]) => `${n} ${v}`)
          .join(', ');
      L.push(`Descriptors by kind before: ${kinds(st.fd_kinds.before)}; after: ${kinds(st.fd_kinds.after)}.`);
      L.push('');
    }
    L.push(
      `Opened ${st.opened}/${st.streams} in ${fmt(st.open_wall_ms, 0)} ms${st.open_failures ? ` (${st.open_failures} failed: ${st.first_open_error})` : ''}; in flight back to 0 ${st.drained_ms === null ? 'NOT within 15 s' : `${fmt(st.drained_ms, 0)} ms after the last abort`}.`,
    );
  }
  if (r.approvals.length) {
    L.push('');
    L.push('### Approval fan-out');
    L.push('');
    L.push(
      '| concurrent asks | prompts | waiting at resolve | refused before (waiter limit) | resolve RPC ms | resolve → all answered ms | RSS per waiter KB | statuses |',
    );
    L.push('|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const a of r.approvals) {
      if ('error' in a) {
        L.push(`| ${a.requests} | failed: ${a.error} | | | | | | |`);
        continue;
      }
      L.push(
        `| ${a.requests} | ${a.prompts} | ${a.waiters_at_resolve} | ${a.refused_before_resolve} | ${fmt(a.resolve_rpc_ms)} | ${fmt(a.all_answered_ms)} | ${fmt(a.rss_per_waiter_kb, 1)} | ${JSON.stringify(a.statuses)}${a.errors ? `, ${a.errors} errors` : ''} |`,
      );
    }
  }
  L.push('');
  L.push('### Targets (issues 9 and 21)');
  L.push('');
  L.push('| target | wanted | measured | met |');
  L.push('|---|---|---|:---:|');
  for (const t of r.targets) L.push(`| ${t.description} | ${t.target} | ${t.measured} | ${t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'} |`);
  if (r.profile) {
    const p = r.profile;
    L.push('');
    L.push(`### Daemon CPU profile (${p.file})`);
    L.push('');
    L.push(`Profiled ${fmt(p.total_ms / 1000, 1)} s: idle ${fmt(p.idle_ms / 1000, 1)} s, GC ${fmt(p.gc_ms / 1000, 1)} s.`);
    L.push('');
    L.push('| area | self ms | % of busy |');
    L.push('|---|---:|---:|');
    for (const a of p.areas) L.push(`| ${a.area} | ${fmt(a.self_ms, 0)} | ${fmt(a.pct_of_busy, 1)} |`);
    L.push('');
    L.push('| function (self time) | self ms | % of busy |');
    L.push('|---|---:|---:|');
    for (const f of p.top_functions) L.push(`| \`${f.fn}\` | ${fmt(f.self_ms, 0)} | ${fmt(f.pct_of_busy, 1)} |`);
  }
  if (r.notes.length) L.push('', ...r.notes.map((n) => `- ${n}`));
  if (r.errors.length) L.push('', '### Errors', '', ...r.errors.map((e) => `- ${e.phase}: ${e.error}`));
  L.push('');
  return L.join('\n');
}
