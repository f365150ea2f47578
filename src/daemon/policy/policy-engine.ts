/**
 * Rules → verdict, as a pure function over an immutable snapshot. Precedence among matching rules:
 * deny beats allow beats ask (a specific deny carves a hole in a broad allow; an allow answers a broad ask);
 * no matching rule gives the default verdict. Every decision says which rule made it and why.
 */
import type { RuleInfo, Verdict } from '../../shared/protocol/entities.js';
import { hostMatches, pathMatches } from './host-glob.js';
import { normalizePath } from './request-path.js';

/** The parts of a request policy looks at. */
export interface PolicyRequest {
  host: string;
  port: number;
  method: string;
  /** URL path without the query string. */
  path: string;
}

/** The outcome of evaluation, with the rule that made it (null for the default). */
export interface PolicyDecision {
  verdict: Verdict;
  rule_id: number | null;
  coalesce: boolean;
  reason: string;
}

const RANK: Record<Verdict, number> = { deny: 3, allow: 2, ask: 1 };

/** True when `rule` matches `req`. */
export function ruleMatches(rule: RuleInfo, req: PolicyRequest): boolean {
  if (rule.port !== null && rule.port !== req.port) return false;
  if (rule.method !== null && rule.method.toUpperCase() !== req.method.toUpperCase()) return false;
  if (!hostMatches(rule.host, req.host)) return false;
  if (rule.path !== null && !pathMatches(rule.path, req.path)) return false;
  return true;
}

/** Evaluates rules against a request. Holds one immutable snapshot; `replace` swaps it atomically. */
export class PolicyEngine {
  private rules: readonly RuleInfo[];

  constructor(
    rules: readonly RuleInfo[],
    private readonly defaultVerdict: Verdict,
  ) {
    this.rules = Object.freeze([...rules]);
  }

  /** Swaps in a new rule snapshot. */
  replace(rules: readonly RuleInfo[]): void {
    this.rules = Object.freeze([...rules]);
  }

  /** The verdict for `req` (its path is matched in canonical form, see request-path.ts). */
  evaluate(raw: PolicyRequest): PolicyDecision {
    const req: PolicyRequest = { host: raw.host, port: raw.port, method: raw.method, path: normalizePath(raw.path) };
    let best: RuleInfo | undefined;
    let coalesce = true;
    for (const r of this.rules) {
      if (!ruleMatches(r, req)) continue;
      if (!r.coalesce) coalesce = false;
      if (!best || RANK[r.verdict] > RANK[best.verdict]) best = r;
    }
    if (!best) {
      return {
        verdict: this.defaultVerdict,
        rule_id: null,
        coalesce,
        reason: `no rule matches ${req.host}:${req.port}; default verdict is ${this.defaultVerdict}`,
      };
    }
    return { verdict: best.verdict, rule_id: best.id, coalesce, reason: ruleReason(best) };
  }
}

/** Rules are immutable snapshots, so each one's reason text is built once, not per request. */
const reasons = new WeakMap<RuleInfo, string>();

function ruleReason(r: RuleInfo): string {
  let s = reasons.get(r);
  if (s === undefined) reasons.set(r, (s = `rule ${r.id} (${r.verdict} ${describe(r)})`));
  return s;
}

/** A one-line human description of a rule's matcher. */
export function describe(r: RuleInfo): string {
  let s = r.host;
  if (r.port !== null) s += `:${r.port}`;
  if (r.method !== null) s += ` ${r.method.toUpperCase()}`;
  if (r.path !== null) s += ` ${r.path}`;
  return s;
}
