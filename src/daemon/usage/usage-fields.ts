/**
 * Raw usage fields as providers report them, merged event by event, and their normalisation into the
 * shared {@link UsageTotals} meaning (see src/shared/protocol/usage.ts). Pure; one shape-driven reader for
 * all three APIs, so a proxy in front of either provider (or a new model) needs no table of hosts:
 * - Anthropic Messages: `usage.{input_tokens, cache_creation_input_tokens, cache_read_input_tokens, output_tokens}`
 *   at the top of a JSON body, in `message.usage` of `message_start`, at the top of `message_delta`;
 * - OpenAI Chat Completions: `usage.{prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens}`;
 * - OpenAI Responses: `response.usage.{input_tokens, output_tokens, input_tokens_details.cached_tokens}`
 *   (`usage` at the top of a non-streamed body).
 */

/** The fields seen so far; each is the latest non-null value reported (Anthropic's counts are cumulative). */
export interface RawUsage {
  model: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cache_creation_input_tokens: number | null;
  cache_read_input_tokens: number | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  /** `prompt_tokens_details.cached_tokens` (Chat) or `input_tokens_details.cached_tokens` (Responses). */
  details_cached_tokens: number | null;
}

/** Normalised counts of one response. */
export interface ParsedUsage {
  model: string | null;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
}

/** An empty {@link RawUsage}. */
export function emptyRaw(): RawUsage {
  return {
    model: null,
    input_tokens: null,
    output_tokens: null,
    cache_creation_input_tokens: null,
    cache_read_input_tokens: null,
    prompt_tokens: null,
    completion_tokens: null,
    details_cached_tokens: null,
  };
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A non-negative safe integer, else null (a provider bug or a hostile upstream must not poison the totals). */
function count(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

/**
 * The model a value names, as the upstream sent it. Not cut or cleaned here: `UsageService.record` masks the
 * whole name first and then normalises it (`model-name.ts`), since cutting before the masker could keep the
 * start of a real secret it no longer recognises.
 */
function modelName(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/**
 * Merges the usage and model one parsed JSON value carries into `raw`: a body, an SSE event's data or a
 * WebSocket message. Looks at the top level, `message` (Anthropic `message_start`) and `response` (OpenAI
 * Responses events). True when it carried any usage field.
 */
export function mergeUsage(raw: RawUsage, value: unknown): boolean {
  if (!isObj(value)) return false;
  let found = false;
  for (const holder of [value, value.message, value.response]) {
    if (!isObj(holder)) continue;
    const m = modelName(holder.model);
    if (m) raw.model = m;
    if (isObj(holder.usage)) found = mergeFields(raw, holder.usage) || found;
  }
  return found;
}

function mergeFields(raw: RawUsage, u: Obj): boolean {
  let found = false;
  const take = (key: Exclude<keyof RawUsage, 'model'>, v: unknown): void => {
    const n = count(v);
    if (n === null) return;
    raw[key] = n;
    found = true;
  };
  take('input_tokens', u.input_tokens);
  take('output_tokens', u.output_tokens);
  take('cache_creation_input_tokens', u.cache_creation_input_tokens);
  take('cache_read_input_tokens', u.cache_read_input_tokens);
  take('prompt_tokens', u.prompt_tokens);
  take('completion_tokens', u.completion_tokens);
  if (isObj(u.prompt_tokens_details)) take('details_cached_tokens', u.prompt_tokens_details.cached_tokens);
  if (isObj(u.input_tokens_details)) take('details_cached_tokens', u.input_tokens_details.cached_tokens);
  return found;
}

/** True when `raw` holds any token count. */
export function hasTokens(raw: RawUsage): boolean {
  return (
    raw.input_tokens !== null ||
    raw.output_tokens !== null ||
    raw.prompt_tokens !== null ||
    raw.completion_tokens !== null ||
    raw.cache_creation_input_tokens !== null ||
    raw.cache_read_input_tokens !== null
  );
}

/**
 * The normalised counts: input = every prompt token, cached ones included (Anthropic reports the cache
 * parts apart from `input_tokens`; OpenAI's counts include them); cached = the part served from cache.
 */
export function normalise(raw: RawUsage): ParsedUsage {
  const input = raw.prompt_tokens ?? (raw.input_tokens ?? 0) + (raw.cache_creation_input_tokens ?? 0) + (raw.cache_read_input_tokens ?? 0);
  return {
    model: raw.model,
    input_tokens: input,
    output_tokens: raw.completion_tokens ?? raw.output_tokens ?? 0,
    cached_tokens: raw.cache_read_input_tokens ?? raw.details_cached_tokens ?? 0,
  };
}
