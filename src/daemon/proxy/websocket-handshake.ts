/**
 * Checks a client's WebSocket upgrade request before sluice spends anything on it. `ws` validates the same
 * headers, but only when the relay finally accepts the client: by then the upgrade held permits and an open
 * upstream socket, and a request `ws` refused left both behind (eight malformed upgrades held all eight slots
 * of a credential until restart). The rules here are ws's, except that only version 13 (RFC 6455) passes.
 */
import type http from 'node:http';

/** Base64 of 16 bytes: 22 characters and `==`. */
const KEY_RE = /^[+/0-9A-Za-z]{22}==$/;
/** A comma-separated list of RFC 9110 tokens. */
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const PROTOCOLS_RE = new RegExp(`^[ \\t]*${TOKEN}(?:[ \\t]*,[ \\t]*${TOKEN})*[ \\t]*$`);

/** Why `req` is not a valid WebSocket upgrade (a message for a 400 answer), or null when it is one. */
export function upgradeProblem(req: http.IncomingMessage): string | null {
  if (req.method !== 'GET') return 'a WebSocket upgrade must be a GET request';
  if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return 'the Upgrade header must be "websocket"';
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !KEY_RE.test(key)) return 'missing or invalid Sec-WebSocket-Key header (base64 of 16 bytes)';
  if (req.headers['sec-websocket-version'] !== '13') return 'missing or unsupported Sec-WebSocket-Version header (only 13 is supported)';
  const protocols = req.headers['sec-websocket-protocol'];
  if (protocols !== undefined) {
    if (!PROTOCOLS_RE.test(protocols)) return 'invalid Sec-WebSocket-Protocol header';
    const names = protocols.split(',').map((p) => p.trim());
    if (new Set(names).size !== names.length) return 'invalid Sec-WebSocket-Protocol header (a protocol is repeated)';
  }
  return null;
}
