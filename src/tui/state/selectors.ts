/**
 * Pure selectors: everything a panel shows, derived from the state and the injected `now`. Components
 * render these rows and never look at the raw protocol shapes, so what is shown is unit-testable.
 */
import type { ApprovalDecision, ApprovalInfo, CredentialInfo, CredentialStats } from '../../shared/protocol/entities.js';
import type { PoolInfo } from '../../shared/protocol/events.js';
import type { ConnectionState, DashboardState, EditTarget, PanelId } from './dashboard-state.js';
import type { CredentialUsage } from '../../shared/protocol/usage.js';
import { formatDuration } from '../display-format.js';
import { budgetSpent as isBudgetSpent, budgetView, headroomParts, tokenRateText, type BudgetView, type ToneText } from '../usage-format.js';
import { approvalTarget } from './event-reducer.js';

/** The keys of a panel's rows in display order. */
export function panelKeys(state: DashboardState, panel: PanelId): string[] {
  switch (panel) {
    case 'approvals':
      return state.approvals.map((a) => a.id);
    case 'credentials':
      return state.credentials.map((c) => c.name);
    case 'pools':
      return state.pools.map((p) => p.name);
  }
}

/** The selected row's key: the stored one while it exists, else the first row, else null. */
export function selectedKey(state: DashboardState, panel: PanelId): string | null {
  const keys = panelKeys(state, panel);
  const stored = state.selected[panel];
  if (stored !== null && keys.includes(stored)) return stored;
  return keys[0] ?? null;
}

/** The key `delta` rows away from the current selection, clamped to the list. */
export function movedKey(state: DashboardState, panel: PanelId, delta: number): string | null {
  const keys = panelKeys(state, panel);
  if (keys.length === 0) return null;
  const current = selectedKey(state, panel);
  const index = current === null ? 0 : keys.indexOf(current);
  const next = Math.min(keys.length - 1, Math.max(0, index + delta));
  return keys[next] ?? null;
}

/** The selected pending approval, if any. */
export function selectedApproval(state: DashboardState): ApprovalInfo | null {
  const key = selectedKey(state, 'approvals');
  return state.approvals.find((a) => a.id === key) ?? null;
}

/** The selected credential, if any. */
export function selectedCredential(state: DashboardState): CredentialInfo | null {
  const key = selectedKey(state, 'credentials');
  return state.credentials.find((c) => c.name === key) ?? null;
}

/** The selected pool, if any. */
export function selectedPool(state: DashboardState): PoolInfo | null {
  const key = selectedKey(state, 'pools');
  return state.pools.find((p) => p.name === key) ?? null;
}

/** One row of the approval queue. */
export interface ApprovalRow {
  id: string;
  target: string;
  waiters: number;
  method: string;
  path: string;
  ageMs: number;
  leftMs: number;
  /** The decision this dashboard sent and is waiting on, if any. */
  answering: ApprovalDecision | null;
  selected: boolean;
}

/** The approval queue, one row per destination, in arrival order. */
export function approvalRows(state: DashboardState, now: number): ApprovalRow[] {
  const selected = selectedKey(state, 'approvals');
  return state.approvals.map((a) => ({
    id: a.id,
    target: approvalTarget(a),
    waiters: a.waiters,
    method: a.method,
    // Which agents are asking (sluicectl run --name), after the first request's path.
    path: a.agents && a.agents.length > 0 ? `${a.path}  · ${a.agents.join(', ')}` : a.path,
    ageMs: Math.max(0, now - parseTime(a.created_at, now)),
    leftMs: Math.max(0, parseTime(a.expires_at, now) - now),
    answering: state.answering[a.id] ?? null,
    selected: a.id === selected,
  }));
}

/** One row of the credentials panel. */
export interface CredentialRow {
  name: string;
  inFlight: number;
  cap: number;
  queued: number;
  queueTimeoutMs: number;
  ok2xx: number;
  client4xx: number;
  server5xx: number;
  rejected: number;
  /** Time left on the longest pool cooldown of this credential, or null when it is not cooling. */
  cooldownLeftMs: number | null;
  /** OAuth: its refresh token was refused; it needs a new login. */
  needsLogin: boolean;
  /** Tokens per minute over the last 5 minutes (`1.2k tok/m`); null when idle or not reported. */
  tokenRate: string | null;
  /** Rate-limit headroom parts (`req 37/50`, `tok 61%`); empty when unknown. */
  headroom: ToneText[];
  /** The daily budget, when one is set. */
  budget: BudgetView | null;
  selected: boolean;
}

/** The credentials panel: live counters from `stats`, falling back to the credential list. */
export function credentialRows(state: DashboardState, now: number): CredentialRow[] {
  const stats = new Map<string, CredentialStats>((state.stats?.credentials ?? []).map((c) => [c.name, c]));
  const selected = selectedKey(state, 'credentials');
  const usage = usageMap(state);
  return state.credentials.map((c) => {
    const st = stats.get(c.name);
    const u = usage.get(c.name);
    return {
      name: c.name,
      inFlight: st?.in_flight ?? c.in_flight,
      cap: st?.cap ?? c.max_concurrent,
      queued: st?.queued ?? c.queued,
      queueTimeoutMs: st?.queue_timeout_ms ?? c.queue_timeout_ms,
      ok2xx: st?.status_2xx ?? 0,
      client4xx: st?.status_4xx ?? 0,
      server5xx: st?.status_5xx ?? 0,
      rejected: st?.rejected ?? 0,
      cooldownLeftMs: credentialCooldown(state.pools, c.name, now),
      needsLogin: c.needs_login === true,
      tokenRate: u ? tokenRateText(u.tokens_per_min) : null,
      headroom: headroomParts(u?.headroom),
      budget: u ? budgetView(u) : null,
      selected: c.name === selected,
    };
  });
}

function usageMap(state: DashboardState): Map<string, CredentialUsage> {
  return new Map(state.usage.map((u) => [u.name, u]));
}

function credentialCooldown(pools: readonly PoolInfo[], name: string, now: number): number | null {
  let left: number | null = null;
  for (const p of pools) {
    for (const m of p.members) {
      if (m.name !== name || m.cooldown_until === null) continue;
      const ms = parseTime(m.cooldown_until, now) - now;
      if (ms > 0 && (left === null || ms > left)) left = ms;
    }
  }
  return left;
}

/** One pool member as shown: `cooling` while its cooldown runs, `down` when unhealthy without one. */
export interface PoolMemberView {
  name: string;
  active: boolean;
  health: 'ok' | 'cooling' | 'down';
  cooldownLeftMs: number | null;
  reason: string | null;
  /** Rate-limit headroom parts; empty while cooling (the countdown says more) or when unknown. */
  headroom: ToneText[];
  /** Past a daily budget: the pool moves on to a member with budget left. */
  budgetSpent: boolean;
}

/** One row of the pools panel: members in pool order. */
export interface PoolRow {
  name: string;
  /** Pool options worth seeing: `rotate <20%` (`--rotate-below`), `plan-only` (`--plan-limits-only`). */
  flags: string[];
  members: PoolMemberView[];
  selected: boolean;
}

/** The pools panel. Health is judged against `now`, so a cooldown that has run out shows as ok at once. */
export function poolRows(state: DashboardState, now: number): PoolRow[] {
  const selected = selectedKey(state, 'pools');
  const usage = usageMap(state);
  return state.pools.map((p) => ({
    name: p.name,
    flags: poolFlags(p),
    selected: p.name === selected,
    members: p.members.map((m) => {
      const left = m.cooldown_until === null ? 0 : parseTime(m.cooldown_until, now) - now;
      const health: PoolMemberView['health'] = left > 0 ? 'cooling' : m.healthy || m.cooldown_until !== null ? 'ok' : 'down';
      const u = usage.get(m.name);
      return {
        name: m.name,
        active: m.name === p.active,
        health,
        cooldownLeftMs: left > 0 ? left : null,
        reason: m.reason,
        headroom: health === 'cooling' ? [] : headroomParts(u?.headroom),
        budgetSpent: u ? isBudgetSpent(u) : false,
      };
    }),
  }));
}

function poolFlags(p: PoolInfo): string[] {
  const flags: string[] = [];
  if (typeof p.rotate_below === 'number' && Number.isFinite(p.rotate_below)) flags.push(`rotate <${p.rotate_below}%`);
  if (p.plan_limits_only === true) flags.push('plan-only');
  return flags;
}

/** What the header shows. */
export interface HeaderView {
  connection: ConnectionState;
  resyncing: boolean;
  listen: string | null;
  auth: 'on' | 'off' | null;
  version: string | null;
  requestsPerS: number | null;
  inFlight: number;
  globalCap: number | null;
  queued: number;
  pending: number;
}

/** The header: daemon, proxy, rate and global in-flight/cap. */
export function headerView(state: DashboardState): HeaderView {
  const creds = state.stats?.credentials ?? [];
  return {
    connection: state.connection,
    resyncing: state.connection.phase === 'connected' && state.sync !== 'live',
    listen: state.daemon?.proxy.listen ?? null,
    auth: state.daemon?.proxy.auth ?? null,
    version: state.daemon?.version ?? null,
    requestsPerS: state.stats?.global.requests_per_s ?? null,
    inFlight: state.stats?.global.in_flight ?? 0,
    globalCap: state.stats ? state.stats.global.cap : state.limits.global,
    queued: creds.reduce((sum, c) => sum + c.queued, 0),
    pending: state.approvals.length,
  };
}

/** The connection state in words with its tone; a reconnect attempt still reads "disconnected". */
export function connectionLabel(view: HeaderView, now: number): { text: string; tone: 'ok' | 'warn' | 'bad' } {
  const c = view.connection;
  if (c.phase === 'disconnected') {
    const next = c.retryAt === null ? '' : `, next try in ${formatDuration(Math.max(0, c.retryAt - now) + 999)}`;
    return { text: `✗ disconnected — reconnecting (${c.reason}${next})`, tone: 'bad' };
  }
  if (c.phase === 'connecting') {
    return c.attempt > 0 ? { text: `✗ disconnected — reconnecting (attempt ${c.attempt})`, tone: 'bad' } : { text: connectingText(c.since, now), tone: 'warn' };
  }
  if (view.resyncing) return { text: '● connected, syncing', tone: 'warn' };
  return { text: '● connected', tone: 'ok' };
}

/** After this long, "connecting…" says what it is waiting for. */
export const CONNECTING_EXPLAIN_MS = 2_000;

function connectingText(since: number | undefined, now: number): string {
  if (since === undefined || now - since < CONNECTING_EXPLAIN_MS) return '… connecting';
  return `… connecting: waiting ${formatDuration(now - since)} for sluiced to answer on its socket (is it running? sluicectl status)`;
}

/** The current value of a setting as the number field's pre-fill ('' = unlimited global cap). */
export function currentSettingText(state: DashboardState, target: EditTarget): string {
  if (target.kind === 'global-cap') {
    const cap = state.stats ? state.stats.global.cap : state.limits.global;
    return cap === null ? '' : String(cap);
  }
  const row = credentialRows(state, 0).find((r) => r.name === target.cred);
  if (!row) return '';
  return String(target.kind === 'cred-cap' ? row.cap : row.queueTimeoutMs);
}

function parseTime(iso: string, fallback: number): number {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : fallback;
}
