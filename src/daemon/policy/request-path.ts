/**
 * The canonical form of a request path for policy matching. Upstreams resolve `..` segments, merge
 * repeated slashes and decode percent-escapes, so a rule must see the path the upstream will see:
 * `/v1/../admin`, `//admin` and `/%61dmin` all match `/admin/**`.
 */

/** Characters the URL parser and decoding leave alone (no `%`, `\\`, whitespace or controls). */
const PLAIN_PATH = /^\/[A-Za-z0-9\-_~!$&'()*+,;=:@./]*$/;
const DOT_SEGMENT = /(^|\/)\.\.?(\/|$)/;

/** Resolves dot segments (also `%2e`), collapses slashes and decodes escapes; drops any query string. */
export function normalizePath(raw: string): string {
  const q = raw.search(/[?#]/);
  const noQuery = q === -1 ? raw : raw.slice(0, q);
  // Nearly every real path is already canonical: nothing below would change it (checked per request).
  if (PLAIN_PATH.test(noQuery) && !noQuery.includes('//') && !DOT_SEGMENT.test(noQuery)) return noQuery;
  return canonicalPath(noQuery);
}

/** The full canonicalisation of a path without query (exported so tests can check the fast path against it). */
export function canonicalPath(noQuery: string): string {
  let p: string;
  try {
    // The WHATWG URL parser resolves `.`/`..` and their percent-encoded spellings.
    p = new URL(noQuery.replace(/\/{2,}/g, '/'), 'http://sluice.invalid').pathname;
  } catch {
    p = noQuery;
  }
  try {
    p = decodeURIComponent(p);
  } catch {
    // Malformed escapes stay as they are; the upstream will reject them too.
  }
  p = p.replace(/\/{2,}/g, '/');
  // Decoding can reveal new dot segments (`%2F..%2F`); resolve once more on the decoded form.
  if (DOT_SEGMENT.test(p)) {
    try {
      p = new URL(p, 'http://sluice.invalid').pathname;
    } catch {
      // keep p
    }
  }
  return p.startsWith('/') ? p : `/${p}`;
}
