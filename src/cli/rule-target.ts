/**
 * What `rule add` accepts as its HOST: a host glob, `host:port`, or a URL (`https://api.openai.com/`),
 * read as the host plus `--port`. Anything that cannot be read that way unambiguously (a URL with a path,
 * a port that disagrees with `--port`) is refused with the exact command to type instead.
 */
import { UsageError } from './exit-codes.js';

/** HTTP methods a rule's `--method` may name (RFC 9110 plus PATCH). */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

/** Host globs that match every destination. */
const MATCH_ALL = new Set(['*', '**', '*.*', '*:*']);

/** True when `host` matches every destination (so an allow rule would turn every prompt off). */
export function matchesEverything(host: string): boolean {
  return MATCH_ALL.has(host.trim());
}

/** The host glob and port `rule add` sends, after reading URL and `host:port` forms. */
export interface RuleTarget {
  host: string;
  port: number | undefined;
  /** How the input was read, when it was not a plain glob (shown to the user). */
  readAs: string | null;
}

const DEFAULT_PORTS: Record<string, number> = { 'https:': 443, 'http:': 80, 'wss:': 443, 'ws:': 80 };

/** Reads `host` (and `--port`) into a {@link RuleTarget}, or throws a usage error naming the form to type. */
export function ruleTarget(verdict: string, host: string, port: number | undefined): RuleTarget {
  let h = host.trim();
  let p: number | undefined;
  let path: string | null = null;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(h);
  if (scheme) {
    let url: URL;
    try {
      url = new URL(h);
    } catch {
      throw new UsageError(`HOST is a host name or glob, not ${JSON.stringify(host)}: sluicectl rule add ${verdict} HOST [--port P]`);
    }
    const defaultPort = DEFAULT_PORTS[url.protocol];
    if (defaultPort === undefined) throw new UsageError(`HOST is a host name or glob; ${url.protocol}// URLs are not proxied`);
    h = url.hostname.replace(/^\[|\]$/g, '');
    p = url.port === '' ? defaultPort : Number(url.port);
    if (url.pathname !== '/' || url.search !== '') path = url.pathname;
  } else {
    const m = /^([^:[\]]+):(\d+)$/.exec(h) ?? /^\[([^\]]+)\]:(\d+)$/.exec(h);
    if (m) {
      h = m[1]!;
      p = Number(m[2]);
    }
  }
  if (p !== undefined && (p < 1 || p > 65535)) throw new UsageError(`the port in ${host} must be between 1 and 65535`);
  const form = `sluicectl rule add ${verdict} ${h}${p !== undefined || port !== undefined ? ` --port ${port ?? p}` : ''}`;
  if (path !== null) throw new UsageError(`a rule names a host, not a URL path: type ${form} --path '${path === '/' ? '/*' : `${path}*`}'`);
  if (p !== undefined && port !== undefined && p !== port) {
    throw new UsageError(`${host} says port ${p} but --port says ${port}: type sluicectl rule add ${verdict} ${h} --port PORT`);
  }
  const finalPort = port ?? p;
  return { host: h, port: finalPort, readAs: h !== host ? `${h}${finalPort !== undefined ? ` --port ${finalPort}` : ''}` : null };
}

/** `--method` upper-cased, or a usage error listing the methods a rule can name. */
export function ruleMethod(method: string | undefined): string | undefined {
  if (method === undefined) return undefined;
  const m = method.trim().toUpperCase();
  if (!(HTTP_METHODS as readonly string[]).includes(m)) {
    throw new UsageError(`--method must be one of ${HTTP_METHODS.join(', ')} (got ${JSON.stringify(method)})`);
  }
  return m;
}
