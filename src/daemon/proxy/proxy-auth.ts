/**
 * The proxy access token: only clients that present it (`Proxy-Authorization: Basic sluice:TOKEN`) may use
 * the proxy. Created on first start (0600), compared in constant time, never logged.
 *
 * Besides the long-lived token, `sluicectl run` gets a per-run token that names its agent: every request
 * made with it is attributed to that agent (audit rows, prompts, the dashboard), and it stops working when
 * the run ends, so one that leaks is worthless afterwards.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';

/** A running agent's identity, as `agents.list` shows it (never its token). */
export interface RunAgent {
  id: string;
  name: string;
  /** ms since the epoch. */
  startedAt: number;
}

/** What a presented credential is: refused, the user's own token (agent null) or a run's token. */
export type Identity = { ok: false } | { ok: true; agent: RunAgent | null };

const REFUSED: Identity = { ok: false };
const OWNER: Identity = { ok: true, agent: null };

/** Holds the current token and the per-run tokens, and checks presented credentials. */
export class ProxyAuth {
  private token: string;
  private readonly runs = new Map<string, { agent: RunAgent; token: Buffer }>();

  constructor(
    private readonly file: string,
    readonly enabled: boolean,
  ) {
    this.token = ProxyAuth.loadOrCreate(file);
  }

  private static loadOrCreate(file: string): string {
    if (fs.existsSync(file)) {
      const t = fs.readFileSync(file, 'utf8').trim();
      if (/^[A-Za-z0-9_-]{32,128}$/.test(t)) return t;
    }
    const t = crypto.randomBytes(32).toString('base64url');
    fs.writeFileSync(file, t + '\n', { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    return t;
  }

  /** The current token (for `proxy.env`; never logged). */
  current(): string {
    return this.token;
  }

  /** Replaces the token; agents holding the old one get 407 from now on. */
  rotate(): void {
    const t = crypto.randomBytes(32).toString('base64url');
    const tmp = this.file + '.tmp';
    fs.writeFileSync(tmp, t + '\n', { mode: 0o600 });
    fs.renameSync(tmp, this.file);
    this.token = t;
  }

  /** True when auth is off or `header` carries the right token (any user name is accepted). */
  check(header: string | string[] | undefined): boolean {
    return this.identify(header).ok;
  }

  /**
   * Who `header` is: a run's agent when it carries a live per-run token (even with auth off, so runs are
   * still named), the owner for the main token (or any request when auth is off), else refused. Every
   * comparison is constant-time.
   */
  identify(header: string | string[] | undefined): Identity {
    const given = presentedToken(header);
    if (given) {
      for (const r of this.runs.values()) if (given.length === r.token.length && crypto.timingSafeEqual(given, r.token)) return { ok: true, agent: r.agent };
      const want = Buffer.from(this.token);
      if (given.length === want.length && crypto.timingSafeEqual(given, want)) return OWNER;
    }
    return this.enabled ? REFUSED : OWNER;
  }

  /** Issues a per-run token for agent `name`; valid until {@link revoke}. */
  issue(name: string, now: number): { agent: RunAgent; token: string } {
    const token = crypto.randomBytes(32).toString('base64url');
    const agent: RunAgent = { id: crypto.randomBytes(6).toString('hex'), name, startedAt: now };
    this.runs.set(agent.id, { agent, token: Buffer.from(token) });
    return { agent, token };
  }

  /** Ends a run: its token is refused from now on. Unknown ids are ignored (revoking twice is harmless). */
  revoke(id: string): boolean {
    return this.runs.delete(id);
  }

  /** True while run `id` has not been revoked. */
  isLive(id: string): boolean {
    return this.runs.has(id);
  }

  /** The running agents, oldest first. */
  agents(): RunAgent[] {
    return [...this.runs.values()].map((r) => r.agent);
  }
}

/** The token in a `Basic user:TOKEN` proxy credential, or null. */
function presentedToken(header: string | string[] | undefined): Buffer | null {
  if (typeof header !== 'string') return null;
  const m = /^\s*Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? null : Buffer.from(decoded.slice(colon + 1));
}
