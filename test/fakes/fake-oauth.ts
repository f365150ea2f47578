/**
 * A fake OAuth token endpoint (HTTPS, test CA) standing in for auth.openai.com: accounts with rotating,
 * single-use refresh tokens and real HMAC-signed JWT access tokens. `POST /oauth/token` with
 * `grant_type=refresh_token` (JSON or form) rotates the account's tokens; a spent or unknown refresh token
 * gets 400 `invalid_grant`; other grant types get a fixed device-code style answer. Every request is
 * recorded so tests can see which real refresh token arrived. A request whose `accept` asks for
 * `application/x-www-form-urlencoded` gets its answer form-encoded; `delayMs` holds every answer back;
 * `issued` lists every token ever handed out.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { listenOnLoopback } from './loopback-server.js';
import { REPO_ROOT } from './repo-root.js';

const TLS_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'tls');
const SIGNING_KEY = 'fake-oauth-signing-key';

/** One account's current tokens. */
export interface FakeAccount {
  id: string;
  access_token: string;
  refresh_token: string;
  id_token: string;
  refreshes: number;
}

/** A running fake token endpoint. */
export interface FakeOAuth {
  port: number;
  accounts: Map<string, FakeAccount>;
  seen: { grant_type: string | null; refresh_token: string | null; contentType: string; body: string; method?: string; path?: string }[];
  /** Adds an account and returns its first tokens. */
  addAccount(id: string): FakeAccount;
  /** Every token ever issued (access, refresh and id tokens of every account), for "never leaked" checks. */
  issued: string[];
  /** Milliseconds to wait before answering any request (0 = answer at once); lets tests overlap refreshes. */
  delayMs: number;
  /**
   * When set, asked about every request once it is recorded in `seen` (with the refresh token it carries, or
   * null): a promise returned holds that request, unanswered and its token unspent, until it settles.
   */
  hold: ((refreshToken: string | null) => Promise<void> | null) | null;
  /**
   * Spends an account's current refresh token as if another client had used it: the account gets a new
   * refresh token nobody holds, so the old one answers `invalid_grant`. Returns the spent token.
   */
  spendRefresh(id: string): string;
  close(): Promise<void>;
}

/** An HS256 JWT with the claims an agent (Codex) reads. */
export function signJwt(claims: Record<string, unknown>): string {
  const h = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const p = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const sig = crypto.createHmac('sha256', SIGNING_KEY).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${sig}`;
}

function issue(id: string, n: number): Pick<FakeAccount, 'access_token' | 'refresh_token' | 'id_token'> {
  const now = Math.floor(Date.now() / 1000);
  const auth = { 'https://api.openai.com/auth': { chatgpt_account_id: id } };
  return {
    access_token: signJwt({ sub: id, n, iat: now, exp: now + 3600, ...auth }),
    refresh_token: `rt_${id}_${n}_${crypto.randomBytes(8).toString('hex')}`,
    id_token: signJwt({ sub: id, email: `${id}@example.test`, ...auth }),
  };
}

/** Starts the fake token endpoint on 127.0.0.1. */
export async function startFakeOAuth(): Promise<FakeOAuth> {
  const accounts = new Map<string, FakeAccount>();
  const seen: FakeOAuth['seen'] = [];
  const issued: string[] = [];
  const record = <T extends Pick<FakeAccount, 'access_token' | 'refresh_token' | 'id_token'>>(t: T): T => {
    issued.push(t.access_token, t.refresh_token, t.id_token);
    return t;
  };
  // Mutable options shared with the returned object (see `delayMs`).
  const opts: { delayMs: number; hold: FakeOAuth['hold'] } = { delayMs: 0, hold: null };
  const server = https.createServer(
    { key: fs.readFileSync(path.join(TLS_DIR, 'upstream-key.pem')), cert: fs.readFileSync(path.join(TLS_DIR, 'upstream-cert.pem')) },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const ct = String(req.headers['content-type'] ?? '');
        let fields: Record<string, string> = {};
        try {
          fields = ct.includes('json') ? (JSON.parse(body) as Record<string, string>) : Object.fromEntries(new URLSearchParams(body));
        } catch {
          fields = {};
        }
        seen.push({
          grant_type: fields.grant_type ?? null,
          refresh_token: fields.refresh_token ?? null,
          contentType: ct,
          body,
          method: req.method ?? '',
          path: req.url ?? '',
        });
        const held = opts.hold?.(fields.refresh_token ?? null);
        if (held) void held.then(() => answer(fields));
        else answer(fields);
      });
      const answer = (fields: Record<string, string>) => {
        // A client that accepts only form encoding (as GitHub's token endpoint answers by default) gets a form body.
        const asForm = String(req.headers.accept ?? '').includes('application/x-www-form-urlencoded');
        const send = (status: number, obj: Record<string, unknown>) => {
          const text = asForm ? new URLSearchParams(Object.entries(obj).map(([k, v]) => [k, String(v)])).toString() : JSON.stringify(obj);
          const type = asForm ? 'application/x-www-form-urlencoded' : 'application/json';
          const write = () => {
            res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
            res.end(text);
          };
          if (opts.delayMs > 0) setTimeout(write, opts.delayMs);
          else write();
        };
        if (req.url?.split('?')[0] !== '/oauth/token') return send(404, { error: 'not_found' });
        if (fields.grant_type !== 'refresh_token') return send(200, { device_code: 'dev-123', user_code: 'ABCD-EFGH', echo_grant: fields.grant_type ?? null });
        const acct = [...accounts.values()].find((a) => a.refresh_token === fields.refresh_token);
        if (!acct) return send(400, { error: 'invalid_grant', error_description: 'refresh token is invalid or already used' });
        acct.refreshes++;
        Object.assign(acct, record(issue(acct.id, acct.refreshes)));
        send(200, { access_token: acct.access_token, refresh_token: acct.refresh_token, id_token: acct.id_token, expires_in: 3600, token_type: 'Bearer' });
      };
    },
  );
  const listening = await listenOnLoopback(server);
  return {
    port: listening.port,
    accounts,
    seen,
    issued,
    get delayMs() {
      return opts.delayMs;
    },
    set delayMs(ms: number) {
      opts.delayMs = ms;
    },
    get hold() {
      return opts.hold;
    },
    set hold(fn: FakeOAuth['hold']) {
      opts.hold = fn;
    },
    addAccount(id) {
      const a: FakeAccount = { id, refreshes: 0, ...record(issue(id, 0)) };
      accounts.set(id, a);
      return a;
    },
    spendRefresh(id) {
      const a = accounts.get(id);
      if (!a) throw new Error(`no fake account ${id}`);
      const spent = a.refresh_token;
      a.refresh_token = `rt_${id}_elsewhere_${crypto.randomBytes(8).toString('hex')}`;
      issued.push(a.refresh_token);
      return spent;
    },
    close: listening.close,
  };
}
