/**
 * Proactive OAuth refresh: shortly before a member's access token expires (and before a pool switches to
 * a member whose token already expired), the daemon refreshes it itself at the credential's token URL, so
 * failover never waits for the agent to notice. Refreshes of one credential are single-flight (shared with
 * agents' refreshes through the proxy, see {@link RefreshFlights}): a rotating refresh token can be spent
 * only once.
 *
 * A failing credential is retried with exponential backoff (30 s, 60 s, … up to 1 h) rather than every
 * check; after `invalid_grant` it is not retried at all until its refresh token changes (`cred update` with
 * a new secret, or an agent's successful refresh), and it reads as `needs login` meanwhile. That mark is
 * kept across restarts (as a hash of the refused refresh token, through {@link NeedsLoginStore}), so a
 * restarted daemon neither sends the dead token once more nor shows the account as fine until it does.
 */
import crypto from 'node:crypto';
import https from 'node:https';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { ResolveOverride } from '../config.js';
import type { Logger } from '../log.js';
import { AUTH_COOLDOWN_MS } from '../pool/failover-classifier.js';
import type { PoolService } from '../pool/pool-service.js';
import { connectTarget, type UpstreamAgents } from '../proxy/upstream-agents.js';
import type { CredentialVault } from '../vault/credential-vault.js';
import { RefreshFlights } from './refresh-flights.js';
import type { TokenExchange } from './token-exchange.js';
import { bodyCoding, decodeWhole } from '../proxy/content-coding.js';

/** Largest token answer read. */
const MAX_ANSWER = 1024 * 1024;

/** Refresh this long before expiry. */
export const REFRESH_AHEAD_MS = 5 * 60_000;
const CHECK_EVERY_MS = 30_000;
/** First retry delay after a failed refresh; doubles per failure. */
export const BACKOFF_BASE_MS = 30_000;
/** Longest retry delay. */
export const BACKOFF_MAX_MS = 3_600_000;

/** Why a credential is not being refreshed now. */
interface FailureState {
  failures: number;
  /** No proactive attempt before this time (epoch ms). */
  nextAttemptAt: number;
  /** Hash of the refresh token that failed (the state applies only while it is current). */
  token: string | null;
  /** True after `invalid_grant`: no retry at all while that token is current. */
  dead: boolean;
}

/**
 * Where `needs login` marks survive a restart: credential name → SHA-256 of the refresh token that was
 * refused (never the token). A mark whose token is no longer the credential's is dropped when read.
 */
export interface NeedsLoginStore {
  load(): { name: string; token_sha256: string }[];
  save(name: string, tokenSha256: string | null): void;
}

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
  /** Shared with the proxy's refresh grants; a private one when absent. */
  flights?: RefreshFlights;
  /** Told when a credential starts or stops needing a login (for `cred.changed`). */
  onNeedsLoginChanged?: (name: string) => void;
  /** Keeps `needs login` marks across restarts (none kept when absent). */
  needsLoginStore?: NeedsLoginStore;
}

/** Refreshes OAuth credentials ahead of expiry; single-flight per credential. */
export class TokenRefresher {
  private readonly flights: RefreshFlights;
  private readonly failing = new Map<string, FailureState>();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly d: TokenRefresherDeps) {
    this.flights = d.flights ?? new RefreshFlights(d.vault, d.exchange);
    for (const m of d.needsLoginStore?.load() ?? []) {
      // Only while that token is still the credential's: a login since (or a removed credential) clears it.
      if (m.token_sha256 === this.tokenHash(m.name)) this.failing.set(m.name, { failures: 1, nextAttemptAt: 0, token: m.token_sha256, dead: true });
      else d.needsLoginStore!.save(m.name, null);
    }
  }

  /**
   * True when `name`'s refresh token was refused with `invalid_grant` and has not changed since: the
   * account needs a new login (`cred update` with a new secret).
   */
  needsLogin(name: string): boolean {
    const f = this.failing.get(name);
    return f !== undefined && f.dead && f.token === this.tokenHash(name);
  }

  /**
   * True when a proactive refresh of `name` may be attempted now: not backing off and not needing a login.
   * A new refresh token (an updated credential, or an agent's refresh) starts over.
   */
  private mayAttempt(name: string): boolean {
    const f = this.failing.get(name);
    if (!f) return true;
    if (f.token !== this.tokenHash(name)) {
      this.failing.delete(name);
      if (f.dead) this.loginChanged(name, null);
      return true;
    }
    return !f.dead && this.d.clock.now() >= f.nextAttemptAt;
  }

  /** A credential started (`token` = the refused token's hash) or stopped (null) needing a login. */
  private loginChanged(name: string, token: string | null): void {
    this.d.needsLoginStore?.save(name, token);
    this.d.onNeedsLoginChanged?.(name);
  }

  private tokenHash(name: string): string | null {
    try {
      const rt = this.d.vault.oauthTokens(name).refresh_token;
      return crypto.createHash('sha256').update(rt).digest('hex');
    } catch {
      return null;
    }
  }

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
      return exp !== null && exp - now < REFRESH_AHEAD_MS && this.mayAttempt(r.name);
    });
    await Promise.all(due.map((r) => this.refresh(r.name)));
  }

  /** Refreshes `name` if its access token has expired (used before a pool switches to it). */
  async ensureFresh(name: string): Promise<void> {
    const row = this.d.vault.get(name);
    if (!row || row.kind !== 'oauth') return;
    const exp = this.d.vault.oauthTokens(name).expires_at;
    if (exp !== null && exp <= this.d.clock.now() && this.mayAttempt(name)) await this.refresh(name);
  }

  /** Refreshes `name` now, sharing a refresh already under way (the daemon's or an agent's). Resolves true on success. */
  refresh(name: string): Promise<boolean> {
    return this.flights.run(name, () => this.doRefresh(name));
  }

  /** Records a failed refresh: back off, or (after `invalid_grant` for the current token) stop until it changes. */
  private failed(name: string, dead: boolean): void {
    const prev = this.failing.get(name);
    const failures = (prev?.failures ?? 0) + 1;
    const delay = Math.min(BACKOFF_BASE_MS * 2 ** Math.min(failures - 1, 20), BACKOFF_MAX_MS);
    this.failing.set(name, { failures, nextAttemptAt: this.d.clock.now() + delay, token: this.tokenHash(name), dead });
    if (dead) {
      this.d.log.warn('oauth credential needs a new login: its refresh token was refused (invalid_grant); not retrying until it is updated', {
        credential: name,
      });
      if (!prev?.dead) this.loginChanged(name, this.failing.get(name)!.token);
    } else {
      this.d.log.info('will retry the oauth refresh later', { credential: name, retry_in_s: delay / 1000 });
    }
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
    const res = await post(
      {
        host: target.host,
        port: target.port,
        servername: target.servername,
        path: url.pathname + url.search,
        // Only what sluice can parse: an answer it cannot read would lose the rotated refresh token.
        headers: { host: url.host, 'content-type': 'application/json', accept: 'application/json', 'accept-encoding': 'identity' },
        agent: this.d.agents.https,
      },
      JSON.stringify(payload),
    ).catch((err: NodeJS.ErrnoException) => ({ status: 0, body: '', error: err.code ?? 'error' }));
    if (res.status >= 200 && res.status < 300) {
      try {
        if (res.body === null) throw new Error('undecodable');
        this.d.exchange.save(name, JSON.parse(res.body) as Parameters<TokenExchange['save']>[1]);
        this.d.audit.append({ event: 'oauth_refreshed', credential: name, status: res.status, detail: 'proactive refresh' });
        const was = this.failing.get(name);
        this.failing.delete(name);
        if (was?.dead) this.loginChanged(name, null);
        return true;
      } catch {
        this.d.log.warn('token endpoint answered with an unreadable body', { credential: name });
        this.d.audit.append({ event: 'oauth_refresh_failed', credential: name, status: res.status, detail: 'unreadable token answer' });
        this.failed(name, false);
        return false;
      }
    }
    this.d.audit.append({ event: 'oauth_refresh_failed', credential: name, status: res.status || null, detail: 'error' in res ? res.error : null });
    this.d.log.warn('proactive oauth refresh failed', { credential: name, status: res.status });
    // A refusal of a token that is no longer the current one (the credential changed meanwhile) says
    // nothing about the credential: it cools nothing and marks nothing.
    const stillCurrent = this.d.vault.get(name) !== undefined && this.d.vault.oauthTokens(name).refresh_token === tokens.refresh_token;
    if (stillCurrent && (/invalid_grant|invalid_token/.test(res.body ?? '') || res.status === 401)) {
      const pool = this.d.pools.poolOf(name);
      if (pool) this.d.pools.failover(pool, name, 'auth_failed', this.d.clock.now() + AUTH_COOLDOWN_MS);
    }
    if (stillCurrent) this.failed(name, /invalid_grant/.test(res.body ?? ''));
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
    // Kept as an errno-shaped error on purpose: the refresh outcome records `err.code`, and an idle socket
    // timing out is exactly what ETIMEDOUT means (this is the refresher's own request, not the proxy's).
    req.setTimeout(30_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}
