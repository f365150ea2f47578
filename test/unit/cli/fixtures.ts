/** Sample RPC results, shaped like the shared result types, for the fake daemon in CLI tests. */
import type { ApprovalInfo, CredentialInfo, DaemonStatus, StatsSnapshot } from '../../../src/shared/protocol/entities.js';
import type { ProxyEnv } from '../../../src/shared/protocol/results.js';

/** A `daemon.status` result. */
export const STATUS: DaemonStatus = {
  version: '0.1.0',
  pid: 4242,
  uptime_s: 75,
  started_at: '2026-01-01T00:00:00.000Z',
  proxy: { listen: '127.0.0.1:8787', auth: 'on' },
  socket: '/tmp/x.sock',
  ca_path: '/tmp/ca.pem',
  home: '/tmp/home',
  default_verdict: 'ask',
  approval_timeout_ms: 120_000,
  counts: { credentials: 1, rules: 2, pools: 0, pending_approvals: 0, in_flight: 0 },
};

/** A `proxy.env` result whose values need quoting in every shell. */
export const PROXY_ENV: ProxyEnv = {
  proxy_url: 'http://sluice:tok@127.0.0.1:8787',
  ca_path: '/tmp/ca.pem',
  ca_bundle_path: '/tmp/bundle.pem',
  bootstrap_path: '/tmp/boot.cjs',
  vars: {
    HTTPS_PROXY: 'http://sluice:tok@127.0.0.1:8787',
    SSL_CERT_FILE: "/tmp/it's a\\dir/ca.pem",
  },
};

/** What the daemon answers `agents.register` with (`sluicectl run`): a per-run token inside {@link PROXY_ENV}. */
export const REGISTERED = {
  agent: { id: '0123456789ab', name: 'node', started_at: '2026-01-01T00:00:00.000Z', in_flight: 0, requests: 0 },
  env: PROXY_ENV,
  proxy_socket: '/tmp/x/proxy.sock',
  fence: { state_dirs: [], readable: [], hidden: [] },
};

/** A credential as `cred.add` returns it. */
export function credential(name: string, extra: Partial<CredentialInfo> = {}): CredentialInfo {
  return {
    name,
    kind: 'api-key',
    hosts: ['api.openai.com'],
    header: 'authorization',
    format: 'Bearer {}',
    max_concurrent: 8,
    queue_timeout_ms: 0,
    phantom: `sk-sluice-phantom-${name}`,
    in_flight: 0,
    queued: 0,
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
    ...extra,
  };
}

/** A pending approval created at `created_at`. */
export function approval(id: string, host: string, createdAt: string, waiters: number): ApprovalInfo {
  return {
    id,
    host,
    port: 443,
    method: 'POST',
    path: '/v1/messages',
    waiters,
    created_at: createdAt,
    expires_at: '2099-01-01T00:00:00.000Z',
  };
}

/** A `stats.snapshot` result with one credential. */
export const STATS: StatsSnapshot = {
  global: { in_flight: 3, cap: null, requests_total: 120, requests_per_s: 1.5, rejected: 2 },
  credentials: [
    {
      name: 'openai',
      in_flight: 3,
      queued: 1,
      cap: 8,
      queue_timeout_ms: 0,
      total: 120,
      status_2xx: 100,
      status_3xx: 0,
      status_4xx: 15,
      status_5xx: 5,
      errors: 0,
      rejected: 2,
    },
  ],
};
