/**
 * Finds phantoms in request text (header values, the URL, bodies) and decides what each becomes on the
 * way to `host`: the real secret when its credential is bound to `host`, nothing (stripped) when it is
 * unknown, and a leak (the request is blocked) when it belongs to a credential bound elsewhere.
 */
import { PHANTOM_MARKER, PHANTOM_TOKEN_RE, phantomCore } from '../vault/phantom.js';

/** What a phantom resolves to for the current host. */
export interface PhantomTarget {
  /** Credential (or pool member) whose secret replaces the phantom. */
  credential: string;
  /** The exact phantom text the agent holds. */
  phantom: string;
  /** True when the credential may be sent to this host. */
  bound: boolean;
  /** The label used in audit rows (credential name, or `pool/member`). */
  label: string;
  /** The pool whose phantom this was, when the agent holds a pool phantom. */
  pool?: string;
  /** Which of the credential's secrets the phantom stands for (API key, OAuth access or refresh token). */
  slot?: 'secret' | 'access' | 'refresh';
}

/** Looks up a phantom core; undefined = not one of ours. */
export type PhantomLookup = (core: string) => PhantomTarget | undefined;

/** What a rewrite found. */
export interface RewriteReport {
  /** Secrets injected, keyed by `credential:slot`. */
  used: Map<string, PhantomTarget>;
  /** Credentials whose phantom appeared on a host they are not bound to. */
  leaked: PhantomTarget[];
  /** Phantom-shaped tokens that matched nothing we know. */
  stripped: number;
}

/** A fresh, empty report. */
export function newReport(): RewriteReport {
  return { used: new Map(), leaked: [], stripped: 0 };
}

/** True when `text` may contain a phantom (a cheap pre-check before the regex). */
export function mayContainPhantom(text: string): boolean {
  return text.includes(PHANTOM_MARKER);
}

/**
 * Rewrites every phantom in `text`. `secretOf` is called only for bound credentials. Leaked phantoms are
 * reported and left in place (the caller blocks the request, so they never travel).
 */
export function rewritePhantoms(text: string, lookup: PhantomLookup, secretOf: (t: PhantomTarget) => string, report: RewriteReport): string {
  if (!mayContainPhantom(text)) return text;
  return text.replace(PHANTOM_TOKEN_RE, (token) => {
    const target = lookup(phantomCore(token));
    if (!target || !token.endsWith(target.phantom)) {
      report.stripped++;
      return '';
    }
    if (!target.bound) {
      if (!report.leaked.some((l) => l.credential === target.credential)) report.leaked.push(target);
      return token;
    }
    report.used.set(`${target.credential}:${target.slot ?? 'secret'}`, target);
    return token.slice(0, token.length - target.phantom.length) + secretOf(target);
  });
}
