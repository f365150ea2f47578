/**
 * Syntax of request targets. Host names come from clients (CONNECT lines, Host headers, absolute URLs)
 * and end up in certificates, logs, approval prompts and rules, so anything that is not a plain DNS name
 * or IP literal is refused before it reaches any of those.
 */
import net from 'node:net';
import { Lru } from '../ca/lru.js';

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?';
const HOST_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);

/** Verdicts for hosts seen recently: an agent talks to a handful of hosts, thousands of times each. */
const verdicts = new Lru<string, boolean>(4096);

/** True when `host` is a DNS name, an IPv4 literal or a bracketed/bare IPv6 literal. */
export function isValidHost(host: string): boolean {
  const known = verdicts.get(host);
  if (known !== undefined) return known;
  const ok = checkHost(host);
  verdicts.set(host, ok);
  return ok;
}

function checkHost(host: string): boolean {
  if (!host || host.length > 253) return false;
  if (host.startsWith('[') && host.endsWith(']')) return net.isIPv6(host.slice(1, -1));
  return net.isIP(host) !== 0 || HOST_RE.test(host);
}

/** True when `target` is a valid CONNECT target `host:port` (port 1..65535). */
export function validConnectTarget(target: string | undefined): boolean {
  if (!target) return false;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(target);
  if (!m) return false;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 && isValidHost(m[1]!);
}

/** Where a request inside the proxy is going: host (lower case, IPv6 bracketed), port and raw path. */
export interface RequestTarget {
  host: string;
  port: number;
  /** The path and query exactly as the client sent them (never normalised: that is the upstream's job). */
  path: string;
}

const ABSOLUTE_RE = /^(https?|wss?):\/\/([^/?#]*)(.*)$/i;
const AUTHORITY_RE = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d{1,5}))?$/;

/**
 * The target of a request that reached the proxy: from an absolute-form URL (plain HTTP proxying) or else
 * the Host header. The default port follows the scheme of the URL, or of the connection (`secure`).
 * An unusable authority gives host '' (which {@link isValidHost} refuses).
 */
export function requestTarget(url: string | undefined, hostHeader: string | undefined, secure: boolean): RequestTarget {
  const raw = url || '/';
  const abs = ABSOLUTE_RE.exec(raw);
  const authority = abs ? abs[2]! : (hostHeader ?? '');
  const tlsScheme = abs ? /^(https|wss)$/i.test(abs[1]!) : secure;
  const m = AUTHORITY_RE.exec(authority);
  const rest = abs ? abs[3]! : raw;
  const path = abs && !rest.startsWith('/') ? '/' + rest : rest;
  const port = m?.[2] ? Number(m[2]) : tlsScheme ? 443 : 80;
  if (!m || port < 1 || port > 65535) return { host: '', port: 0, path };
  return { host: m[1]!.toLowerCase(), port, path };
}
