/**
 * Which member of a pool serves the next request. Sticky: the current member stays while it may serve;
 * when it cools (or is past its daily budget), the next member after it (wrapping) that may serve takes
 * over; when none may, the one that recovers first serves (never fail hard) and the caller is told all
 * were cooling. A member the gate rules out even as a last resort (past its budget, or out of plan
 * allowance in a `--plan-limits-only` pool) is chosen only when every member is ruled out, and then the
 * caller is told so (`noneUsable`) and refuses the request instead of sending it.
 */
import { MemberHealth } from './member-health.js';

/** The choice and whether it had to fall back to a member that may not serve now. */
export interface ActiveChoice {
  member: string;
  allCooling: boolean;
  /** True when even the fallback may not serve (every member is ruled out as a last resort too). */
  noneUsable?: boolean;
}

/** What the resolver asks about a member. */
export interface MemberGate {
  /** 0 when `member` may serve now; else when it may again (epoch ms). */
  blockedUntil(member: string): number;
  /** False when `member` must not serve even when every other member is blocked too. */
  lastResort(member: string): boolean;
}

/** The gate of plain cooldowns: a cooling member is blocked until its cooldown ends and is always a last resort. */
export function healthGate(health: MemberHealth): MemberGate {
  return { blockedUntil: (m) => health.get(m)?.until ?? 0, lastResort: () => true };
}

/** Picks the active member. `members` is in pool order and must not be empty. */
export function chooseActive(members: readonly string[], current: string | null, gate: MemberHealth | MemberGate): ActiveChoice {
  const g = gate instanceof MemberHealth ? healthGate(gate) : gate;
  const start = current !== null && members.includes(current) ? members.indexOf(current) : 0;
  for (let i = 0; i < members.length; i++) {
    const m = members[(start + i) % members.length]!;
    if (g.blockedUntil(m) === 0) return { member: m, allCooling: false };
  }
  let best: string | null = null;
  let bestUntil = Infinity;
  for (const m of members) {
    if (!g.lastResort(m)) continue;
    const until = g.blockedUntil(m);
    if (until < bestUntil) {
      best = m;
      bestUntil = until;
    }
  }
  if (best === null) return { member: members[start]!, allCooling: true, noneUsable: true };
  return { member: best, allCooling: true };
}
