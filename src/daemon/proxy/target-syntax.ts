/**
 * Syntax of request targets. Host names come from clients (CONNECT lines, Host headers, absolute URLs)
 * and end up in certificates, logs, approval prompts and rules, so anything that is not a plain DNS name
 * or IP literal is refused before it reaches any of those.
 */
import net from 'node:net';

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?';
const HOST_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);

/** True when `host` is a DNS name, an IPv4 literal or a bracketed/bare IPv6 literal. */
export function isValidHost(host: string): boolean {
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
