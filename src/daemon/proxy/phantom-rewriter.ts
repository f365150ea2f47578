/**
 * Finds phantoms in request text (header values, the URL, bodies) and decides what each becomes on the
 * way to `host`: the real secret when its credential is bound to `host` and may be injected at this site,
 * the phantom itself when it may not (the upstream sees a worthless token), and a leak (the request is
 * blocked) when it belongs to a credential bound elsewhere. A phantom-shaped token that matches no
 * credential is reported as unknown (the caller refuses the request: a stale phantom must not travel).
 */
import { PHANTOM_MARKER, PHANTOM_TOKEN_RE, phantomCore } from '../vault/phantom.js';

/** Where in a request a phantom was found; a credential is injected only at the sites it allows. */
export type InjectSite = 'header' | 'query' | 'body' | 'path';

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
  /** Where the secret may be injected (the credential's, or the pool member's, sites); absent = anywhere. */
  sites?: readonly InjectSite[];
  /** Sites where it is injected whatever `sites` says (a refresh grant's body at the token URL). */
  alwaysAt?: InjectSite;
}

/** Looks up a phantom core; undefined = not one of ours. */
export type PhantomLookup = (core: string) => PhantomTarget | undefined;

/** A bound phantom left in place because its credential is not injected at that site. */
export interface NotInjected {
  label: string;
  credential: string;
  site: InjectSite;
}

/** What a rewrite found. */
export interface RewriteReport {
  /** Secrets injected, keyed by `credential:slot`. */
  used: Map<string, PhantomTarget>;
  /** Credentials whose phantom appeared on a host they are not bound to. */
  leaked: PhantomTarget[];
  /** Bound phantoms left as phantoms because the site is not one of their credential's injection sites. */
  notInjected: NotInjected[];
  /** Phantom-shaped tokens that matched nothing we know (stale: removed or renamed credentials). */
  unknown: number;
  /** Where the unknown ones were found (`hidden` for an encoded form). */
  unknownAt: Set<InjectSite | 'hidden'>;
}

/** A fresh, empty report. */
export function newReport(): RewriteReport {
  return { used: new Map(), leaked: [], notInjected: [], unknown: 0, unknownAt: new Set() };
}

/** True when `text` may contain a phantom (a cheap pre-check before the regex). */
export function mayContainPhantom(text: string): boolean {
  return text.includes(PHANTOM_MARKER);
}

/** Records a leak once per credential. */
export function noteLeak(report: RewriteReport, target: PhantomTarget): void {
  if (!report.leaked.some((l) => l.credential === target.credential)) report.leaked.push(target);
}

/**
 * Rewrites every phantom in `text` found at `site`. `secretOf` is called only for bound credentials that
 * may be injected there. Leaked phantoms are reported and left in place (the caller blocks the request, so
 * they never travel); so are unknown ones. Without a `site` (WebSocket messages), sites are not checked and
 * unknown tokens are stripped, as before sites existed.
 */
export function rewritePhantoms(text: string, lookup: PhantomLookup, secretOf: (t: PhantomTarget) => string, report: RewriteReport, site?: InjectSite): string {
  if (!mayContainPhantom(text)) return text;
  return text.replace(PHANTOM_TOKEN_RE, (token) => {
    const target = lookup(phantomCore(token));
    if (!target || !token.endsWith(target.phantom)) {
      report.unknown++;
      if (site !== undefined) report.unknownAt.add(site);
      return site === undefined ? '' : token;
    }
    if (!target.bound) {
      noteLeak(report, target);
      return token;
    }
    if (site !== undefined && target.sites && !target.sites.includes(site) && target.alwaysAt !== site) {
      if (!report.notInjected.some((n) => n.credential === target.credential && n.site === site))
        report.notInjected.push({ label: target.label, credential: target.credential, site });
      return token;
    }
    report.used.set(`${target.credential}:${target.slot ?? 'secret'}`, target);
    return token.slice(0, token.length - target.phantom.length) + secretOf(target);
  });
}

/**
 * Classifies the phantoms in `text` without rewriting it: leaks and unknown tokens go to `report`. Used on
 * decoded forms of a request (percent-encoding, JSON escapes, a gzip body) that are forwarded as they
 * came: a phantom hidden that way is never swapped, but it must still be caught where it does not belong.
 */
export function scanPhantoms(text: string, lookup: PhantomLookup, report: RewriteReport): void {
  if (!mayContainPhantom(text)) return;
  for (const m of text.matchAll(PHANTOM_TOKEN_RE)) {
    const token = m[0];
    const target = lookup(phantomCore(token));
    if (!target || !token.endsWith(target.phantom)) {
      report.unknown++;
      report.unknownAt.add('hidden');
    } else if (!target.bound) noteLeak(report, target);
  }
}
