/**
 * The model name a usage bucket is keyed by comes from the upstream's response, so a hostile or broken
 * upstream chooses it: it could be 100 KB long, or carry control characters, escape sequences or bidi
 * overrides, and it is stored in SQLite, returned by `usage.snapshot` and drawn in terminals. This is the
 * one normalisation every model name goes through before it is used (in `UsageService.record`). Pure.
 */

/** Longest model name kept, in characters (real ones are under 64: `claude-sonnet-4-5-20250929`, `gpt-4o-2024-08-06`). */
export const MAX_MODEL_NAME_CHARS = 128;

/** What each character outside printable ASCII becomes (one per code point, so an emoji is one `?`). */
const REPLACEMENT = '?';

/**
 * `text` as a model name that is safe to store and draw: surrounding whitespace trimmed (a trailing newline
 * is not junk), then every code point outside printable ASCII (U+0020 to U+007E: control characters, DEL,
 * the ESC of escape sequences, bidi and zero-width marks, lone surrogates, any non-ASCII letter) replaced by
 * `?`, then cut to {@link MAX_MODEL_NAME_CHARS} characters. Null (unknown model) when nothing but `?` and
 * spaces is left.
 *
 * Call it on text the secret masker has already seen, whole: cutting first could keep the start of a real
 * secret the masker then no longer recognises. Replacing rather than dropping means no new substring is
 * formed, so masked text stays free of secrets (unless a secret contained `?` itself).
 */
export function normalizeModelName(text: string | null): string | null {
  if (text === null) return null;
  const printable = text.trim().replace(/[^\x20-\x7e]/gu, REPLACEMENT);
  const cut = printable.slice(0, MAX_MODEL_NAME_CHARS).trimEnd();
  return /[^? ]/.test(cut) ? cut : null;
}
