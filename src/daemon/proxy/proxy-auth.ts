/**
 * The proxy access token: only clients that present it (`Proxy-Authorization: Basic sluice:TOKEN`) may use
 * the proxy. Created on first start (0600), compared in constant time, never logged.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';

/** Holds the current token and checks presented credentials. */
export class ProxyAuth {
  private token: string;

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
    if (!this.enabled) return true;
    if (typeof header !== 'string') return false;
    const m = /^\s*Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!m) return false;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) return false;
    const given = Buffer.from(decoded.slice(colon + 1));
    const want = Buffer.from(this.token);
    return given.length === want.length && crypto.timingSafeEqual(given, want);
  }
}
