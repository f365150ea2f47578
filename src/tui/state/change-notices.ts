/**
 * Notices for changes made outside this dashboard (sluicectl, scripts, another dashboard): credentials,
 * caps, pools and rules. Pure: the state before an event and the event in, the notice (or null) out.
 * Changes this dashboard makes itself already get their own notice, so those are left out: a cap saved
 * from the number field (its save is in flight when the event arrives) and rules saved by answering a
 * prompt with "always" (source `approval`). Failovers and rotations have the daemon's own notice.
 */
import type { LimitsInfo } from '../../shared/protocol/entities.js';
import type { SluiceEvent } from '../../shared/protocol/events.js';
import type { DashboardState } from './dashboard-state.js';
import type { NoticeInput } from './notices.js';

const cap = (n: number | null) => (n === null ? 'unlimited' : String(n));

/** The notice for `e` given the state before it, or null when there is nothing to tell. */
export function changeNotice(before: DashboardState, e: SluiceEvent, at: number): NoticeInput | null {
  const notice = (message: string): NoticeInput => ({ level: 'info', kind: 'change', message, at });
  switch (e.type) {
    case 'cred.changed':
      return notice(`credential ${e.name} ${e.action}`);
    case 'rule.changed': {
      if (e.rule.source !== 'user') return null;
      const r = e.rule;
      const where = `${r.host}${r.port === null ? '' : `:${r.port}`}${r.method ? ` ${r.method}` : ''}${r.path ? ` ${r.path}` : ''}`;
      return notice(e.action === 'added' ? `rule ${r.id} added: ${r.verdict} ${where}` : `rule ${r.id} removed (${r.verdict} ${where})`);
    }
    case 'limits.changed':
      if (before.editor?.saving) return null;
      return limitsNotice(before.limits, e.limits, notice);
    case 'pool.changed': {
      const old = before.pools.find((p) => p.name === e.pool.name);
      const members = e.pool.members.map((m) => m.name).join(', ');
      if (!old) return notice(`pool ${e.pool.name} created: ${members}`);
      if (old.members.map((m) => m.name).join(', ') !== members) return notice(`pool ${e.pool.name} members: ${members}`);
      return null;
    }
    default:
      return null;
  }
}

function limitsNotice(old: LimitsInfo, next: LimitsInfo, notice: (m: string) => NoticeInput): NoticeInput | null {
  const parts: string[] = [];
  if (old.global !== next.global) parts.push(`global cap ${cap(old.global)} → ${cap(next.global)}`);
  const before = new Map(old.credentials.map((c) => [c.name, c]));
  for (const c of next.credentials) {
    const o = before.get(c.name);
    if (!o) continue;
    if (o.max_concurrent !== c.max_concurrent) parts.push(`${c.name} cap ${o.max_concurrent} → ${c.max_concurrent}`);
    if (o.queue_timeout_ms !== c.queue_timeout_ms) parts.push(`${c.name} queue wait ${o.queue_timeout_ms} → ${c.queue_timeout_ms} ms`);
  }
  return parts.length > 0 ? notice(`limits changed: ${parts.join(', ')}`) : null;
}
