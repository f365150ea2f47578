/**
 * Approval coalescing under a burst: N concurrent requests to one `ask` destination must open ONE prompt;
 * one `approval.resolve` answers every waiter. Requests beyond the broker's per-prompt waiter limit
 * (DESIGN §5: 256) are refused at once with 403, so they are counted separately.
 */
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import type { SluiceTarget } from './targets.js';
import { procStats, round, sleep } from './util.js';

export interface ApprovalResult {
  requests: number;
  prompts: number;
  waiters_at_resolve: number;
  refused_before_resolve: number;
  resolve_reported_waiters: number;
  resolve_rpc_ms: number;
  /** `approval.resolve` sent → last response received. */
  all_answered_ms: number;
  statuses: Record<string, number>;
  errors: number;
  settle_ms: number;
  /** Daemon RSS growth while the waiters waited, per waiter (connection and TLS state included). */
  rss_per_waiter_kb: number | null;
}

export async function approvalFanOut(s: SluiceTarget, n: number, host = 'other.example'): Promise<ApprovalResult> {
  const dispatcher = s.fresh();
  const rssBefore = procStats(s.daemon.proc.pid!)?.rss_mb ?? null;
  const statuses: Record<string, number> = {};
  let answered = 0;
  let errors = 0;
  let lastAnswer = 0;
  const t0 = performance.now();
  const all = Array.from({ length: n }, async () => {
    try {
      const res = await request(`https://${host}/v1/messages`, { dispatcher, headers: {} });
      await res.body.dump();
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
    } catch {
      errors++;
    }
    answered++;
    lastAnswer = performance.now();
  });
  // Wait until every request is either waiting on the prompt or already answered (refused).
  let prompts: { id: string; waiters: number }[] = [];
  const deadline = Date.now() + 60_000;
  for (;;) {
    prompts = (await s.daemon.client.call('approval.list')).approvals.filter((a) => a.host === host);
    const waiting = prompts.reduce((x, p) => x + p.waiters, 0);
    if (waiting + answered >= n && waiting > 0) break;
    if (Date.now() > deadline) throw new Error(`approval burst did not settle: ${waiting} waiting, ${answered} answered of ${n}`);
    await sleep(20);
  }
  const settle = performance.now() - t0;
  const refusedBefore = answered;
  const waiters = prompts.reduce((x, p) => x + p.waiters, 0);
  const rssWaiting = procStats(s.daemon.proc.pid!)?.rss_mb ?? null;
  const tr = performance.now();
  // Resolving lets every waiter go upstream at once; give the call room on a slow daemon.
  const r = await s.daemon.client.call('approval.resolve', { id: prompts[0]!.id, decision: 'allow_once' }, { timeoutMs: 120_000 });
  const rpcMs = performance.now() - tr;
  // More than one prompt means coalescing failed; answer the rest too so the bench does not hang.
  for (const p of prompts.slice(1))
    await s.daemon.client.call('approval.resolve', { id: p.id, decision: 'allow_once' }, { timeoutMs: 120_000 }).catch(() => {});
  await Promise.all(all);
  await dispatcher.destroy().catch(() => {});
  return {
    requests: n,
    prompts: prompts.length,
    waiters_at_resolve: waiters,
    refused_before_resolve: refusedBefore,
    resolve_reported_waiters: r.waiters,
    resolve_rpc_ms: round(rpcMs),
    all_answered_ms: round(lastAnswer - tr),
    statuses,
    errors,
    settle_ms: round(settle, 1),
    rss_per_waiter_kb: rssBefore !== null && rssWaiting !== null && waiters > 0 ? round(((rssWaiting - rssBefore) * 1024) / waiters, 1) : null,
  };
}
