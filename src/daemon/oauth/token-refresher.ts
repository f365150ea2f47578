/**
 * Proactive OAuth refresh: shortly before a member's access token expires (and before a pool switches to
 * a member whose token already expired), the daemon refreshes it itself at the credential's token URL, so
 * failover never waits for the agent to notice. Refreshes of one credential are single-flight: concurrent
 * callers share one request, because a rotating refresh token can be spent only once.
 */
import https from 'node:https';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { ResolveOverride } from '../config.js';
import type { Logger } from '../log.js';
import { AUTH_COOLDOWN_MS } from '../pool/failover-classifier.js';
import type { PoolService } from '../pool/pool-service.js';
import { connectTarget, type UpstreamAgents } from '../proxy/upstream-agents.js';
import type { CredentialVault } from '../vault/credential-vault.js';
import type { TokenExchange } from './token-exchange.js';
import { bodyCoding, decodeWhole } from '../proxy/content-coding.js';

/** Largest token answer read. */
const MAX_ANSWER = 1024 * 1024;

/** Refresh this long before expiry. */
export const REFRESH_AHEAD_MS = 5 * 60_000;
const CHECK_EVERY_MS = 30_000;

/** What the refresher needs. */
export interface TokenRefresherDeps {
  vault: CredentialVault;
  exchange: TokenExchange;
  pools: PoolService;
  audit: AuditLog;
  agents: UpstreamAgents;
  overrides: readonly ResolveOverride[];
  clock: Clock;
  log: Logger;
}

/** Refreshes OAuth credentials ahead of expiry; single-flight per credential. */
export class TokenRefresher {
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly d: TokenRefresherDeps) {}

  /** Starts the periodic check. */
  start(): void {
    this.timer = setInterval(() => void this.refreshDue(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  /** Stops the periodic check. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Refreshes every OAuth credential that expires within {@link REFRESH_AHEAD_MS}. */
  async refreshDue(): Promise<void> {
    const now = this.d.clock.now();
    const due = this.d.vault.list().filter((r) => {
      if (r.kind !== 'oauth' || !r.token_url) return false;
      const exp = this.d.vault.oauthTokens(r.name).expires_at;
      return exp !== null && exp - now < REFRESH_AHEAD_MS;
    });
    await Promise.all(due.map((r) => this.refresh(r.name)));
  }

  /** Refreshes `name` if its access token has expired (used before a pool switches to it). */
  async ensureFresh(name: string): Promise<void> {
    const row = this.d.vault.get(name);
    if (!row || row.kind !== 'oauth') return;
    const exp = this.d.vault.oauthTokens(name).expires_at;
    if (exp !== null && exp <= this.d.clock.now()) await this.refresh(name);
  }

  /** Refreshes `name` now, sharing a refresh already under way. Resolves true on success. */
  refresh(name: string): Promise<boolean> {
    let p = this.inFlight.get(name);
    if (!p) {
      p = this.doRefresh(name).finally(() => this.inFlight.delete(name));
      this.inFlight.set(name, p);
    }
    return p;
  }

  private async doRefresh(name: string): Promise<boolean> {
    const row = this.d.vault.get(name);
    if (!row?.token_url) return false;
    const tokens = this.d.vault.oauthTokens(name);
    const url = new URL(row.token_url);
    if (url.protocol !== 'https:') {
      // A real refresh token never travels in clear text.
      this.d.audit.append({ event: 'oauth_refresh_failed', credential: name, detail: 'token URL is not https: refresh token not sent' });
      this.d.log.warn('refusing to send a refresh token to a token URL that is not https', { credential: name });
      return false;
    }
    const payload: Record<string, string> = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token };
    if (tokens.client_id) payload.client_id = tokens.client_id;
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const target = connectTarget(this.d.overrides, url.hostname, port);
    const res = await post({
      host: target.host,
      port: target.port,
      servername: target.servername,
      path: url.pathname + url.search,
      // Only what sluice can parse: an answer it cannot read would lose the rotated refresh token.
      headers: { host: url.host, 'content-type': 'application/json', accept: 'application/json', 'accept-encoding': 'identity' },
      agent: this.d.agents.https,
    }, JSON.stringify(payload)).catch((err: NodeJS.ErrnoException) => ({ status: 0, body: '', error: err.code ?? 'error' }));
    if (res.status >= 200 && res.status < 300) {
      try {
        if (res.body === null) throw new Error('undecodable');
        this.d.exchange.save(name, JSON.parse(res.body) as Parameters<TokenExchange['save']>[1]);
        this.d.audit.append({ event: 'oauth_refreshed', credential: name, status: res.status, detail: 'proactive refresh' });
        return true;
      } catch {
        this.d.log.warn('token endpoint answered with an unreadable body', { credential: name });
        this.d.audit.append({ event: 'oauth_refresh_failed', credential: name, status: res.status, detail: 'unreadable token answer' });
        return false;
      }
    }
    this.d.audit.append({ event: 'oauth_refresh_failed', credential: name, status: res.status || null, detail: 'error' in res ? res.error : null });
    this.d.log.warn('proactive oauth refresh failed', { credential: name, status: res.status });
    if (/invalid_grant|invalid_token/.test(res.body ?? '') || res.status === 401) {
      const pool = this.d.pools.poolOf(name);
      if (pool) this.d.pools.failover(pool, name, 'auth_failed', this.d.clock.now() + AUTH_COOLDOWN_MS);
    }
    return false;
  }
}

/** POSTs `body` over TLS; the answer's body is decoded (gzip, deflate, br), or null when it cannot be. */
function post(opts: https.RequestOptions, body: string): Promise<{ status: number; body: string | null }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ ...opts, method: 'POST', headers: { ...opts.headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_ANSWER) chunks.push(c);
      });
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const c = bodyCoding(res.headers['content-encoding']);
        let text: string | null = null;
        if (c.kind === 'identity') text = raw.toString('utf8');
        else if (c.kind === 'decode') {
          try {
            text = decodeWhole(raw, c.coding, MAX_ANSWER).toString('utf8');
          } catch {
            text = null;
          }
        }
        resolve({ status: res.statusCode ?? 0, body: text });
      });
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}
