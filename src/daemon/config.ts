/**
 * Daemon settings from the environment (DESIGN §2). Invalid values either stop the daemon with a clear
 * message (anything security-relevant) or are ignored with a warning (the global cap, as in the original).
 */
import path from 'node:path';
import type { Verdict } from '../shared/protocol/entities.js';
import { DEFAULT_APPROVAL_TIMEOUT_MS, GLOBAL_CAP_MAX } from '../shared/protocol/limits.js';
import { resolveHome, resolveSocketPath } from '../shared/rpc/paths.js';

/** Default upper bound of a pool cooldown, in seconds (24 h). */
export const DEFAULT_MAX_COOLDOWN_S = 86_400;

/** One `SLUICE_RESOLVE` entry: connect to `addr:addrPort` for requests to `host:port`. */
export interface ResolveOverride {
  host: string;
  port: number;
  addr: string;
  addrPort: number;
}

/** Everything the daemon reads from its environment. */
export interface DaemonConfig {
  home: string;
  dbPath: string;
  masterKeyPath: string;
  caDir: string;
  socketPath: string;
  tokenPath: string;
  logPath: string;
  pidPath: string;
  /** The proxy's Unix socket (`$SLUICE_HOME/proxy.sock`, 0600), the way in for isolated agents. */
  proxySocketPath: string;
  proxyHost: string;
  proxyPort: number;
  proxyAuth: boolean;
  globalCap: number | null;
  /** The variable the global cap came from (null when neither was set to a valid value). */
  globalCapVar: string | null;
  /** Upper bound of any pool cooldown (`SLUICE_MAX_COOLDOWN_S`, default 24 h). */
  maxCooldownMs: number;
  approvalTimeoutMs: number;
  defaultVerdict: Verdict;
  upstreamCaPath: string | null;
  resolve: ResolveOverride[];
  /** How many hosts keep a leaf certificate and TLS context in memory (least recently used go first). */
  hostCacheSize: number;
  /** How long an upstream connection (TCP + TLS) may take before the client gets a 504. */
  upstreamConnectTimeoutMs: number;
  /** How long an upstream may take to send response headers once the request went out (then 504). */
  upstreamHeaderTimeoutMs: number;
  /** Request bytes all requests together may buffer (`SLUICE_MAX_BUFFERED_BYTES`, default 256 MiB). */
  maxBufferedBytes: number;
  warnings: string[];
}

/** Default of `SLUICE_MAX_BUFFERED_BYTES` (matches proxy/request-body.ts). */
const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024;

/** Default number of hosts whose certificate and TLS context stay cached. */
export const DEFAULT_HOST_CACHE_SIZE = 1000;
/** Default upstream connect timeout (TCP + TLS). */
export const DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;
/** Default response-header timeout: model calls can think for minutes before their first byte. */
export const DEFAULT_UPSTREAM_HEADER_TIMEOUT_MS = 600_000;

/** A whole number from `env[name]` within [min, max], else `fallback` when unset; throws a clear error otherwise. */
function wholeNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number, unit: string): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} must be a whole number of ${unit} from ${min} to ${max}`);
  }
  return n;
}

/** A configuration problem the daemon cannot start with. */
export class ConfigError extends Error {}

/** Parses `SLUICE_RESOLVE` (`host:port:addr[:addrport][,…]`). */
export function parseResolve(spec: string): ResolveOverride[] {
  const out: ResolveOverride[] = [];
  for (const raw of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const parts = raw.split(':');
    if (parts.length < 3 || parts.length > 4) throw new ConfigError(`SLUICE_RESOLVE entry ${JSON.stringify(raw)} is not host:port:addr[:addrport]`);
    const [host, port, addr, addrPort] = parts as [string, string, string, string | undefined];
    const p = Number(port);
    const ap = addrPort === undefined ? p : Number(addrPort);
    if (!host || !addr || !Number.isInteger(p) || p < 1 || p > 65535 || !Number.isInteger(ap) || ap < 1 || ap > 65535) {
      throw new ConfigError(`SLUICE_RESOLVE entry ${JSON.stringify(raw)} has an invalid host or port`);
    }
    out.push({ host: host.toLowerCase(), port: p, addr, addrPort: ap });
  }
  return out;
}

function parseListen(spec: string): { host: string; port: number } {
  const i = spec.lastIndexOf(':');
  const host = i === -1 ? '127.0.0.1' : spec.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(i === -1 ? spec : spec.slice(i + 1));
  if (!host || !Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`SLUICE_PROXY_LISTEN ${JSON.stringify(spec)} is not host:port`);
  return { host, port };
}

/** Reads the daemon configuration from `env`. Throws {@link ConfigError} on values it cannot run with. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const warnings: string[] = [];
  const home = resolveHome(env);
  const listen = parseListen(env.SLUICE_PROXY_LISTEN ?? '127.0.0.1:8787');

  let globalCap: number | null = null;
  let globalCapVar: string | null = null;
  // An empty value counts as unset, so an exported-but-empty SLUICE_ variable does not mask the seed's name.
  const capName = env.SLUICE_MAX_GLOBAL_CONCURRENT ? 'SLUICE_MAX_GLOBAL_CONCURRENT' : 'PROXY_MAX_GLOBAL_CONCURRENT';
  const capRaw = env[capName];
  if (capRaw !== undefined && capRaw !== '') {
    const n = Number(capRaw);
    if (Number.isInteger(n) && n > 0 && n <= GLOBAL_CAP_MAX) {
      globalCap = n;
      globalCapVar = capName;
    } else warnings.push(`${capName}=${JSON.stringify(capRaw)} is not a whole number between 1 and ${GLOBAL_CAP_MAX}; ignoring it (no global cap)`);
  }

  let maxCooldownMs = DEFAULT_MAX_COOLDOWN_S * 1000;
  if (env.SLUICE_MAX_COOLDOWN_S) {
    const n = Number(env.SLUICE_MAX_COOLDOWN_S);
    if (!Number.isInteger(n) || n < 1 || n > 30 * 86_400) throw new ConfigError('SLUICE_MAX_COOLDOWN_S must be a whole number of seconds (1 to 2592000)');
    maxCooldownMs = n * 1000;
  }

  let approvalTimeoutMs = DEFAULT_APPROVAL_TIMEOUT_MS;
  if (env.SLUICE_APPROVAL_TIMEOUT_MS) {
    const n = Number(env.SLUICE_APPROVAL_TIMEOUT_MS);
    if (!Number.isInteger(n) || n < 1 || n > 24 * 3600_000)
      throw new ConfigError('SLUICE_APPROVAL_TIMEOUT_MS must be a whole number of milliseconds (1 to 86400000)');
    approvalTimeoutMs = n;
  }

  const dv = env.SLUICE_DEFAULT_VERDICT ?? 'ask';
  if (dv !== 'allow' && dv !== 'deny' && dv !== 'ask') throw new ConfigError('SLUICE_DEFAULT_VERDICT must be allow, deny or ask');

  const authRaw = (env.SLUICE_PROXY_AUTH ?? 'on').toLowerCase();
  if (!['on', 'off', '1', '0', 'true', 'false'].includes(authRaw)) throw new ConfigError('SLUICE_PROXY_AUTH must be on or off');

  let maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES;
  if (env.SLUICE_MAX_BUFFERED_BYTES) {
    const n = Number(env.SLUICE_MAX_BUFFERED_BYTES);
    if (!Number.isInteger(n) || n < 1024 || n > 64 * 1024 ** 3)
      throw new ConfigError('SLUICE_MAX_BUFFERED_BYTES must be a whole number of bytes (1024 to 68719476736)');
    maxBufferedBytes = n;
  }

  return {
    home,
    dbPath: path.join(home, 'sluice.db'),
    masterKeyPath: env.SLUICE_MASTER_KEY_FILE ? path.resolve(env.SLUICE_MASTER_KEY_FILE) : path.join(home, 'master.key'),
    caDir: path.join(home, 'ca'),
    socketPath: resolveSocketPath(env),
    tokenPath: path.join(home, 'proxy-token'),
    logPath: path.join(home, 'sluiced.log'),
    pidPath: path.join(home, 'sluiced.pid'),
    proxySocketPath: path.join(home, 'proxy.sock'),
    proxyHost: listen.host,
    proxyPort: listen.port,
    proxyAuth: !['off', '0', 'false'].includes(authRaw),
    globalCap,
    globalCapVar,
    maxCooldownMs,
    approvalTimeoutMs,
    defaultVerdict: dv,
    upstreamCaPath: env.SLUICE_UPSTREAM_CA ? path.resolve(env.SLUICE_UPSTREAM_CA) : null,
    resolve: env.SLUICE_RESOLVE ? parseResolve(env.SLUICE_RESOLVE) : [],
    hostCacheSize: wholeNumber(env, 'SLUICE_HOST_CACHE_SIZE', DEFAULT_HOST_CACHE_SIZE, 1, 1_000_000, 'hosts'),
    upstreamConnectTimeoutMs: wholeNumber(env, 'SLUICE_UPSTREAM_CONNECT_TIMEOUT_MS', DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS, 1, 3_600_000, 'milliseconds'),
    upstreamHeaderTimeoutMs: wholeNumber(env, 'SLUICE_UPSTREAM_HEADER_TIMEOUT_MS', DEFAULT_UPSTREAM_HEADER_TIMEOUT_MS, 1, 24 * 3_600_000, 'milliseconds'),
    maxBufferedBytes,
    warnings,
  };
}
