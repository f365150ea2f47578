/**
 * Phantom tokens: look-alikes of real secrets that agents hold instead. A phantom keeps the provider's
 * prefix (so SDK format checks pass) and carries the marker `SLUICE` followed by 40 random base62
 * characters; the marker makes phantoms cheap to find in any header, URL or body (one indexOf).
 */
import crypto from 'node:crypto';

/** The fixed marker inside every phantom. */
export const PHANTOM_MARKER = 'SLUICE';
const CORE_LEN = 40;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Matches a phantom core (marker + random part); the text before it is the provider prefix. */
export const PHANTOM_CORE_RE = new RegExp(`${PHANTOM_MARKER}[A-Za-z0-9]{${CORE_LEN}}`, 'g');

/**
 * Matches a whole phantom-looking token: an optional prefix run of token characters (dots included, so a
 * JWT-shaped phantom `header.payload.SLUICE…` is one token) plus the core.
 */
export const PHANTOM_TOKEN_RE = new RegExp(`[A-Za-z0-9_.-]*${PHANTOM_MARKER}[A-Za-z0-9]{${CORE_LEN}}`, 'g');

const HOST_PREFIXES: [RegExp, string][] = [
  [/anthropic\.com$/, 'sk-ant-api03-'],
  [/openai\.com$/, 'sk-proj-'],
  [/github\.com$/, 'ghp_'],
  [/slack\.com$/, 'xoxb-'],
];

/**
 * Well-known public key prefixes. Only these are copied from a secret: copying an arbitrary leading part
 * would put the first characters of the real secret into a phantom that is printed and logged.
 */
const KNOWN_PREFIXES = [
  'sk-ant-api03-',
  'sk-ant-oat01-',
  'sk-ant-admin01-',
  'sk-ant-',
  'sk-proj-',
  'sk-svcacct-',
  'sk-admin-',
  'sk-or-v1-',
  'github_pat_',
  'ghp_',
  'gho_',
  'ghu_',
  'ghs_',
  'glpat-',
  'xoxb-',
  'xoxp-',
  'hf_',
  'gsk_',
  'pplx-',
  'AIza',
  'sk-',
];

/** The provider prefix to give a phantom: a known prefix of the real secret, else one from the first host. */
export function phantomPrefix(secret: string, hosts: readonly string[]): string {
  const known = KNOWN_PREFIXES.find((p) => secret.startsWith(p));
  if (known) return known;
  for (const host of hosts) {
    for (const [re, prefix] of HOST_PREFIXES) if (re.test(host.replace(/^\*\./, ''))) return prefix;
  }
  return 'sk-';
}

/** A fresh random phantom with the given prefix. */
export function newPhantom(prefix: string): string {
  const bytes = crypto.randomBytes(CORE_LEN);
  let core = '';
  for (let i = 0; i < CORE_LEN; i++) core += ALPHABET[bytes[i]! % ALPHABET.length];
  return `${prefix}${PHANTOM_MARKER}${core}`;
}

/** Far-future expiry for phantom JWTs: the agent's copy never looks expired; sluice refreshes the real one. */
const PHANTOM_JWT_EXP = 4102444800;

/**
 * A JWT-shaped phantom for an OAuth access token. It carries `claims` (copied from the real token, so an
 * agent that reads claims such as an account id finds them) with a far-future `exp`, and its signature
 * segment is a phantom core, so it is found and resolved like any phantom. It never verifies as a JWT.
 */
export function newJwtPhantom(claims: Record<string, unknown>): string {
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ ...claims, exp: PHANTOM_JWT_EXP })).toString('base64url');
  return `${header}.${payload}.${newPhantom('')}`;
}

/** The core (marker + random part) of a phantom, which identifies it regardless of prefix. */
export function phantomCore(phantom: string): string {
  const i = phantom.lastIndexOf(PHANTOM_MARKER);
  return i === -1 ? phantom : phantom.slice(i);
}
