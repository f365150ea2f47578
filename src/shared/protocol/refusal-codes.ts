/**
 * The one catalogue of the reasons sluice answers a proxied request itself instead of forwarding it. Every
 * refusal the proxy writes carries one of these codes (in the `x-sluice-reason` header and the body's
 * `sluice.code`), with the HTTP status listed here; scripts and the dashboard match on the codes, so they are
 * never renamed or reused. The proxy's `Refusal.code` is typed by this list: a code that is not here does
 * not compile.
 */
export const REFUSALS = {
  // Access to the proxy itself.
  proxy_auth_required: { status: 407, summary: 'the proxy access token is missing or wrong' },
  not_via_proxy: { status: 403, summary: 'a TLS request reached the proxy without a CONNECT through it' },
  misdirected: { status: 421, summary: 'the Host header does not match the CONNECT target' },
  proxy_loop: { status: 400, summary: 'the request is aimed at the sluice proxy itself' },
  invalid_host: { status: 400, summary: 'the target is not a valid host, or an IPv4 address in a non-canonical form' },
  // Policy and approval.
  policy_denied: { status: 403, summary: 'a rule denies this destination' },
  approval_denied: { status: 403, summary: 'the user denied the request' },
  approval_timeout: { status: 403, summary: 'no one answered the approval prompt in time' },
  approval_too_many_waiting: { status: 403, summary: 'too many requests wait on this destination’s prompt' },
  approval_queue_full: { status: 403, summary: 'too many destinations wait for approval' },
  approval_shutdown: { status: 403, summary: 'sluice is shutting down' },
  // Credentials.
  phantom_leak: { status: 403, summary: 'a phantom was sent to a host its credential is not bound to' },
  unknown_phantom: { status: 401, summary: 'a phantom that matches no credential (removed or renamed?)' },
  cleartext_refused: { status: 403, summary: 'a real secret would have gone out over plain HTTP' },
  // Capacity.
  per_credential_cap: { status: 429, summary: 'the credential’s in-flight cap is reached' },
  global_cap: { status: 429, summary: 'the global in-flight cap is reached' },
  daily_budget: { status: 429, summary: 'the credential’s daily token or request budget is spent (retry-after: the next local midnight)' },
  plan_limits_exhausted: {
    status: 429,
    summary: 'every member of a --plan-limits-only pool is out of plan allowance (or budget); sluice will not spill into paid overage',
  },
  body_too_large: { status: 413, summary: 'the request body is too large for sluice to inspect' },
  buffer_budget: { status: 503, summary: 'sluice holds too many request bodies right now' },
  undecodable_body: { status: 415, summary: 'a request body in a content-encoding sluice cannot decode (400 when corrupt)' },
  // The upstream.
  upstream_error: { status: 502, summary: 'the upstream failed before answering' },
  upstream_tls: { status: 502, summary: 'the upstream’s certificate does not verify' },
  upstream_timeout: { status: 504, summary: 'the upstream did not connect or answer in time' },
  upstream_refused_upgrade: { status: 502, summary: 'the upstream refused the WebSocket upgrade (its own status is passed on)' },
  undecodable_response: { status: 502, summary: 'the upstream answered in a content-encoding sluice cannot decode' },
  token_response_unreadable: { status: 502, summary: 'a token-endpoint answer sluice cannot read' },
  websocket_bad_upgrade: { status: 400, summary: 'a malformed WebSocket upgrade request' },
  // sluice itself.
  internal: { status: 500, summary: 'sluice could not process the request' },
} as const satisfies Record<string, { status: number; summary: string }>;

/** A refusal code from {@link REFUSALS}. */
export type RefusalCode = keyof typeof REFUSALS;

/** True when `value` is a known refusal code. */
export function isRefusalCode(value: unknown): value is RefusalCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(REFUSALS, value);
}
