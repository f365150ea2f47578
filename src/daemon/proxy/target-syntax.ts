/**
 * Syntax of request targets. Host names come from clients (CONNECT lines, Host headers, absolute URLs)
 * and end up in policy, approval keys, credential binding, certificates, logs and the audit, so each is
 * brought to one canonical spelling here, once, and anything that is not a plain DNS name or IP literal
 * is refused before it reaches any of those. Two spellings of one destination must never be two
 * destinations: a rule written for `evil.example` has to catch `EVIL.example.` too.
 */
import net from 'node:net';
import { Lru } from '../ca/lru.js';

const LABEL = '[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?';
const HOST_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
/** A last label the WHATWG URL parser reads as a number (`1`, `0x7f`): the host is then an IPv4 address. */
const NUMERIC_LABEL_RE = /^(?:0x[0-9a-f]*|[0-9]+)$/;
/** An IPv4-mapped IPv6 address as the URL parser prints it (`::ffff:7f00:1`). */
const MAPPED_V4_RE = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/** Canonical forms of hosts seen recently (null: refused): an agent talks to a handful of hosts, thousands of times each. */
const canonicalCache = new Lru<string, string | null>(4096);

/**
 * The canonical spelling of a host, or null when it is not one sluice accepts. Canonical means: lower
 * case, no trailing dot, IPv4 only as a dotted quad of decimal numbers, IPv6 in brackets and compressed
 * (`[0:0::1]` → `[::1]`). Numeric, hex, octal and short IPv4 forms (`2130706433`, `0x7f000001`,
 * `0177.0.0.1`, `127.1`) are refused rather than normalised: a client that spells an address that way is
 * hiding it, and {@link hostProblem} tells it the form to use. An IPv4-mapped IPv6 address
 * (`[::ffff:127.0.0.1]`) is the IPv4 address it maps to, so rules written for `127.0.0.1` apply to it.
 * A bare IPv6 literal (no brackets, as in some CONNECT lines) is accepted and bracketed.
 */
export function canonicalHost(raw: string): string | null {
  const known = canonicalCache.get(raw);
  if (known !== undefined) return known;
  const c = computeCanonical(raw);
  canonicalCache.set(raw, c);
  return c;
}

function computeCanonical(raw: string): string | null {
  if (!raw || raw.length > 255) return null;
  let h = raw.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) return canonicalIpv6(h.slice(1, -1));
  if (h.includes(':')) return canonicalIpv6(h);
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (!h || h.length > 253) return null;
  if (net.isIPv4(h)) return h;
  const labels = h.split('.');
  // The URL parser (and so every browser, curl and Node's fetch) turns these into an IPv4 address.
  if (NUMERIC_LABEL_RE.test(labels[labels.length - 1]!)) return null;
  return HOST_RE.test(h) ? h : null;
}

function canonicalIpv6(inner: string): string | null {
  if (!net.isIPv6(inner)) return null;
  let printed: string;
  try {
    printed = new URL(`http://[${inner}]/`).hostname;
  } catch {
    return null;
  }
  const m = MAPPED_V4_RE.exec(printed.slice(1, -1));
  if (m) {
    const hi = parseInt(m[1]!, 16);
    const lo = parseInt(m[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return printed;
}

/**
 * Why `raw` is refused as a host, for the 400 `invalid_host` answer: names the canonical dotted-quad form
 * when `raw` is an IPv4 address in another spelling. Never contains anything but the host itself.
 */
export function hostProblem(raw: string): string {
  let asUrl: string | null = null;
  try {
    asUrl = new URL(`http://${raw}/`).hostname;
  } catch {
    asUrl = null;
  }
  const shown = JSON.stringify(raw.slice(0, 80));
  if (asUrl && net.isIPv4(asUrl)) return `sluice: host ${shown} is an IPv4 address in a non-canonical form; use ${asUrl}`;
  return raw ? `sluice: ${shown} is not a valid host name or IP address` : 'sluice: the request has no valid target host';
}

/** True when `host` is a DNS name or IP literal sluice accepts (see {@link canonicalHost}). */
export function isValidHost(host: string): boolean {
  return canonicalHost(host) !== null;
}

/** A CONNECT target split and canonicalised: host as {@link canonicalHost} gives it (IPv6 bracketed). */
export interface ConnectTarget {
  host: string;
  port: number;
}

const CONNECT_RE = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+):(\d{1,5})$/;

/** The canonical `{host, port}` of a CONNECT line's target `host:port` (port 1..65535), or null. */
export function parseConnectTarget(target: string | undefined): ConnectTarget | null {
  if (!target) return null;
  const m = CONNECT_RE.exec(target);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  const host = canonicalHost(m[1]!);
  return host === null ? null : { host, port };
}

/** True when `target` is a valid CONNECT target `host:port` (port 1..65535, host canonicalisable). */
export function validConnectTarget(target: string | undefined): boolean {
  return parseConnectTarget(target) !== null;
}

/** Where a request inside the proxy is going: canonical host (IPv6 bracketed), port and raw path. */
export interface RequestTarget {
  /** The canonical host, or '' when the authority is unusable (see `invalidHost`). */
  host: string;
  /** Only when `host` is '': the host exactly as the client spelled it (for the refusal message). */
  invalidHost?: string;
  port: number;
  /** The path and query exactly as the client sent them (never normalised: that is the upstream's job). */
  path: string;
}

const ABSOLUTE_RE = /^(https?|wss?):\/\/([^/?#]*)(.*)$/i;
const AUTHORITY_RE = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d{1,5}))?$/;

/**
 * The target of a request that reached the proxy: from an absolute-form URL (plain HTTP proxying) or else
 * the Host header. The default port follows the scheme of the URL, or of the connection (`secure`).
 * An unusable authority or a non-canonical host gives host '' (which admission refuses with 400).
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
  if (!m || port < 1 || port > 65535) return { host: '', invalidHost: authority, port: 0, path };
  const host = canonicalHost(m[1]!);
  return host === null ? { host: '', invalidHost: m[1]!, port, path } : { host, port, path };
}
