/**
 * Usage, rate-limit headroom and daily budgets as clients see them (issue 24). Token counts are normalised
 * across providers so one budget means the same thing everywhere:
 * - `input_tokens`: every prompt token the provider reported, cached ones included (Anthropic: input_tokens +
 *   cache_creation_input_tokens + cache_read_input_tokens; OpenAI: prompt_tokens / input_tokens);
 * - `cached_tokens`: the part of `input_tokens` served from the provider's cache (Anthropic:
 *   cache_read_input_tokens; OpenAI: *_tokens_details.cached_tokens);
 * - `output_tokens`: completion / output tokens;
 * - a budget's "tokens" are `input_tokens + output_tokens`.
 * None of these shapes can hold a secret.
 */

/** Counts over some period. */
export interface UsageTotals {
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
}

/** One rate-limit window a provider reported (`*-limit`, `*-remaining`, `*-reset`). */
export interface HeadroomWindow {
  limit: number;
  remaining: number;
  /** When the window resets (ISO-8601 UTC), when the provider said. */
  reset_at: string | null;
}

/** The latest rate-limit state a credential's responses reported. */
export interface Headroom {
  requests: HeadroomWindow | null;
  tokens: HeadroomWindow | null;
  input_tokens: HeadroomWindow | null;
  output_tokens: HeadroomWindow | null;
  /** Anthropic subscription limits (`anthropic-ratelimit-unified-*`): status and per-window utilisation 0..1. */
  unified: { status: string | null; windows: { name: string; utilization: number; reset_at: string | null }[] } | null;
  /** The smallest fraction left (remaining/limit, or 1 − utilisation) over all windows, 0..1; null when none known. */
  fraction_left: number | null;
  updated_at: string;
}

/** A credential's usage, budget and headroom right now. */
export interface CredentialUsage {
  name: string;
  /** Tokens (input + output) per minute over the last 5 minutes. */
  tokens_per_min: number;
  /** Since the last local midnight (what daily budgets count). */
  today: UsageTotals;
  budget: { daily_tokens: number | null; daily_requests: number | null };
  headroom: Headroom | null;
}

/** What `usage.snapshot` groups by. */
export type UsageGroupBy = 'cred' | 'pool' | 'agent' | 'model';

/** One row of `usage.snapshot`: a credential, pool, agent or model name (`-` when unknown) and its totals. */
export interface UsageRow extends UsageTotals {
  key: string;
}

/** Result of `usage.snapshot`. */
export interface UsageSnapshot {
  by: UsageGroupBy;
  since: string;
  rows: UsageRow[];
  credentials: CredentialUsage[];
}
