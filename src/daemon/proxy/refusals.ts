/**
 * Responses sluice writes itself instead of going upstream (403, 407, 429, 502, …). Bodies take the shape
 * the target provider's SDK understands, so an unmodified client reports (and backs off on) them properly.
 * No body ever contains a secret: messages are built from fixed text, names and numbers only.
 */
import type http from 'node:http';
import type { RefusalCode } from '../../shared/protocol/refusal-codes.js';

/** Which provider's error shape a host gets. */
export type Flavour = 'anthropic' | 'openai' | 'generic';

/** The error shape to use for `host`. */
export function flavourOf(host: string): Flavour {
  const h = host.toLowerCase();
  if (h === 'anthropic.com' || h.endsWith('.anthropic.com')) return 'anthropic';
  if (h === 'openai.com' || h.endsWith('.openai.com') || h === 'chatgpt.com' || h.endsWith('.chatgpt.com')) return 'openai';
  return 'generic';
}

/** A refusal: status, a machine-readable kind and a human message. */
export interface Refusal {
  status: number;
  /** sluice's own reason code, from the one catalogue (`src/shared/protocol/refusal-codes.ts`). */
  code: RefusalCode;
  message: string;
  retryAfterS?: number;
  extra?: Record<string, unknown>;
}

const ANTHROPIC_TYPE: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  415: 'invalid_request_error',
  503: 'overloaded_error',
  407: 'authentication_error',
  413: 'request_too_large',
  429: 'overloaded_error',
  502: 'api_error',
  504: 'api_error',
};
const OPENAI_TYPE: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'invalid_request_error',
  403: 'permission_error',
  415: 'invalid_request_error',
  503: 'server_error',
  407: 'invalid_request_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
  502: 'server_error',
  504: 'server_error',
};

/** The JSON body for `r` in the provider's shape, with a `sluice` object naming the reason. */
export function refusalBody(r: Refusal, flavour: Flavour): string {
  const sluice = { code: r.code, ...r.extra };
  if (flavour === 'anthropic') {
    return JSON.stringify({ type: 'error', error: { type: ANTHROPIC_TYPE[r.status] ?? 'api_error', message: r.message }, sluice });
  }
  if (flavour === 'openai') {
    return JSON.stringify({ error: { message: r.message, type: OPENAI_TYPE[r.status] ?? 'server_error', param: null, code: r.code }, sluice });
  }
  return JSON.stringify({ error: { type: r.code, message: r.message }, sluice });
}

/** Writes `r` to `res` (if nothing was written yet) and drains the request so keep-alive survives. */
export function writeRefusal(req: http.IncomingMessage, res: http.ServerResponse, r: Refusal, host: string): void {
  req.resume();
  if (res.headersSent || res.writableEnded || res.destroyed) {
    res.destroy();
    return;
  }
  const body = refusalBody(r, flavourOf(host));
  const headers: http.OutgoingHttpHeaders = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-sluice-reason': r.code,
  };
  if (r.retryAfterS !== undefined) headers['retry-after'] = String(r.retryAfterS);
  if (r.status === 407) headers['proxy-authenticate'] = 'Basic realm="sluice"';
  res.writeHead(r.status, headers);
  res.end(body);
}
