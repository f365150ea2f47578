/**
 * Shared set-up for the OAuth unit tests: a real vault over in-memory SQLite, the pool service, the token
 * exchange, a capturing logger, and OAuth secrets built from the fake token endpoint's real HS256 JWTs.
 */
import crypto from 'node:crypto';
import { AuditLog } from '../../../../src/daemon/audit/audit-log.js';
import { EventBus } from '../../../../src/daemon/events/event-bus.js';
import type { Logger } from '../../../../src/daemon/log.js';
import { TokenExchange } from '../../../../src/daemon/oauth/token-exchange.js';
import { MemberHealth } from '../../../../src/daemon/pool/member-health.js';
import { PoolService } from '../../../../src/daemon/pool/pool-service.js';
import { PoolsRepo } from '../../../../src/daemon/store/pools-repo.js';
import type { CredentialRow } from '../../../../src/daemon/store/credentials-repo.js';
import { signJwt } from '../../../fakes/fake-oauth.js';
import { memoryVault, type MemoryVault } from '../memory-vault.js';

export const API_HOST = 'api.openai.com';
export const TOKEN_HOST = 'auth.openai.com';
export const TOKEN_URL = `https://${TOKEN_HOST}/oauth/token`;
export const CODEX_CLAIM = 'https://api.openai.com/auth';

/** One log line as a test sees it. */
export interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, unknown> | undefined;
}

/** A logger that keeps every line (so tests can assert no secret reached a log call). */
export class CaptureLogger implements Logger {
  readonly lines: LogLine[] = [];
  debug(msg: string, fields?: Record<string, unknown>) {
    this.lines.push({ level: 'debug', msg, fields });
  }
  info(msg: string, fields?: Record<string, unknown>) {
    this.lines.push({ level: 'info', msg, fields });
  }
  warn(msg: string, fields?: Record<string, unknown>) {
    this.lines.push({ level: 'warn', msg, fields });
  }
  error(msg: string, fields?: Record<string, unknown>) {
    this.lines.push({ level: 'error', msg, fields });
  }
  text(): string {
    return JSON.stringify(this.lines);
  }
}

/** Real-looking tokens of one account: HS256 JWT access and id tokens with the Codex claim, opaque refresh. */
export interface RealTokens {
  access_token: string;
  refresh_token: string;
  id_token: string;
}

/** Fresh, unique real tokens for account `id`. */
export function realTokens(id: string, n = 0): RealTokens {
  const now = Math.floor(Date.now() / 1000);
  const auth = { [CODEX_CLAIM]: { chatgpt_account_id: id } };
  return {
    access_token: signJwt({ sub: id, n, iat: now, exp: now + 3600, ...auth }),
    refresh_token: `rt_${id}_${n}_${crypto.randomBytes(12).toString('hex')}`,
    id_token: signJwt({ sub: id, aud: ['app_test_client'], email: `${id}@example.test`, n, ...auth }),
  };
}

/** Everything the OAuth unit tests work with. */
export interface OAuthWorld extends MemoryVault {
  pools: PoolService;
  poolsRepo: PoolsRepo;
  health: MemberHealth;
  audit: AuditLog;
  bus: EventBus;
  log: CaptureLogger;
  exchange: TokenExchange;
  /** Adds an OAuth credential bound to the API host with the given real tokens (Codex auth.json shape). */
  addOAuth(name: string, t: RealTokens, extra?: { expires_at?: number | null; client_id?: string; token_url?: string }): CredentialRow;
  /** The sealed bytes of every credential, to prove nothing was saved. */
  sealedSnapshot(): Record<string, string>;
}

/** Builds the world over a fresh in-memory database. */
export function oauthWorld(): OAuthWorld {
  const m = memoryVault();
  const log = new CaptureLogger();
  const poolsRepo = new PoolsRepo(m.db);
  const health = new MemberHealth(m.clock);
  const audit = new AuditLog(m.db, m.clock, 0);
  const bus = new EventBus();
  const pools = new PoolService(poolsRepo, health, m.vault, audit, bus, m.clock, log, () => {});
  const exchange = new TokenExchange(m.vault, pools, m.clock, log);
  return {
    ...m,
    close: () => {
      audit.flush();
      m.close();
    },
    pools,
    poolsRepo,
    health,
    audit,
    bus,
    log,
    exchange,
    addOAuth(name, t, extra = {}) {
      const tokens: Record<string, unknown> = { ...t, account_id: `acct-${name}` };
      if (extra.expires_at !== undefined) tokens.expires_at = extra.expires_at;
      const doc: Record<string, unknown> = { OPENAI_API_KEY: null, tokens, last_refresh: new Date().toISOString() };
      if (extra.client_id) (doc.tokens as Record<string, unknown>).client_id = extra.client_id;
      return m.vault.add({ name, kind: 'oauth', hosts: [API_HOST], token_url: extra.token_url ?? TOKEN_URL, secret: JSON.stringify(doc) });
    },
    sealedSnapshot() {
      const rows = m.db.prepare('SELECT name, secret_iv, secret_ct, secret_tag FROM credentials ORDER BY name').all() as {
        name: string;
        secret_iv: Buffer;
        secret_ct: Buffer;
        secret_tag: Buffer;
      }[];
      return Object.fromEntries(rows.map((r) => [r.name, Buffer.concat([r.secret_iv, r.secret_ct, r.secret_tag]).toString('hex')]));
    },
  };
}

/** Decodes a JWT's header and payload (no verification). */
export function decodeJwt(token: string): { header: Record<string, unknown>; claims: Record<string, unknown>; signature: string } {
  const [h, p, s] = token.split('.');
  if (h === undefined || p === undefined || s === undefined || token.split('.').length !== 3) throw new Error(`not a JWT: ${token.slice(0, 12)}…`);
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>,
    signature: s,
  };
}

/** Every string in `secrets` that occurs in `text` (for readable failure messages). */
export function leaked(text: string, secrets: readonly string[]): string[] {
  return secrets.filter((s) => s.length > 0 && text.includes(s));
}
