/**
 * Host and path glob matching (picomatch). Hosts match case-insensitively; a glob is compiled once and cached,
 * so matching on the request path costs a Map lookup plus a regex test.
 */
import picomatch from 'picomatch';
import { SluiceError } from '../../shared/protocol/error-codes.js';

type Matcher = (s: string) => boolean;
const hostCache = new Map<string, Matcher>();
const pathCache = new Map<string, Matcher>();

function compile(cache: Map<string, Matcher>, glob: string, nocase: boolean): Matcher {
  let m = cache.get(glob);
  if (!m) {
    if (!/[*?[{!]/.test(glob)) {
      const literal = nocase ? glob.toLowerCase() : glob;
      m = nocase ? (s) => s.toLowerCase() === literal : (s) => s === literal;
    } else {
      m = picomatch(glob, { nocase, dot: true });
    }
    cache.set(glob, m);
  }
  return m;
}

/** True when `host` matches the host glob (`*.example.com`, `api.*.com`, literal names). */
export function hostMatches(glob: string, host: string): boolean {
  return compile(hostCache, glob, true)(host);
}

/** True when the URL path (without query) matches the path glob (`/v1/**`). */
export function pathMatches(glob: string, path: string): boolean {
  return compile(pathCache, glob, false)(path);
}

/** Throws `invalid_glob` when `glob` cannot be compiled. */
export function assertValidGlob(glob: string, what: 'host' | 'path'): void {
  try {
    // strictBrackets: an unbalanced `[` or `{` would otherwise compile to a pattern that silently matches
    // nothing, and a deny rule written that way would never apply.
    picomatch.makeRe(glob, { nocase: what === 'host', strictBrackets: true });
  } catch (err) {
    throw new SluiceError('invalid_glob', `invalid ${what} glob ${JSON.stringify(glob)}`, { cause: err });
  }
}
