/**
 * Step 3 of the pipeline: find phantoms in a request's headers, URL and body and swap them for real
 * secrets where the credential is bound to the destination host. Phantoms bound elsewhere are reported as
 * leaks (the caller blocks the request); unknown phantom-shaped tokens are stripped. A credential bound to
 * the host may inject its header when the request carries no phantom and no such header, but only when it
 * is the single credential bound to that host (never guess between accounts).
 */
import type { CredentialRow } from '../store/credentials-repo.js';
import type { PoolService } from '../pool/pool-service.js';
import type { CredentialVault } from '../vault/credential-vault.js';
import { newReport, rewritePhantoms, type PhantomLookup, type PhantomTarget, type RewriteReport } from './phantom-rewriter.js';

/** The rewritten request parts and what was found. */
export interface CredentialResult {
  headers: Record<string, string | string[]>;
  path: string;
  body: Buffer | null;
  report: RewriteReport;
  /** The credential whose permits apply (first used), or null. */
  credential: string | null;
  /** The pool that credential was chosen from, or null. */
  pool: string | null;
}

/** Headers never scanned or forwarded as-is: they describe the hop, not the request. */
const SKIP_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);

/** Resolves phantoms for one destination host. */
export class CredentialStage {
  constructor(
    private readonly vault: CredentialVault,
    private readonly pools: PoolService | null = null,
  ) {}

  /** The plaintext secret of credential `name` (for rewriting on the forward path only). */
  secretOf(name: string): string {
    return this.vault.secret(name);
  }

  /** A lookup bound to `host`. */
  lookupFor(host: string): PhantomLookup {
    return (core: string): PhantomTarget | undefined => {
      const cred = this.vault.byCore(core);
      if (cred) return { credential: cred.name, phantom: cred.phantom, bound: this.vault.isBoundTo(cred, host), label: cred.name };
      const pool = this.pools?.byCore(core);
      if (!pool || pool.members.length === 0) return undefined;
      const member = this.vault.get(this.pools!.activeMember(pool));
      if (!member) return undefined;
      return { credential: member.name, phantom: pool.phantom, bound: this.vault.isBoundTo(member, host), label: `${pool.name}/${member.name}`, pool: pool.name };
    };
  }

  /** Rewrites headers, path and body for a request to `host`. */
  apply(host: string, headers: Record<string, string | string[] | undefined>, path: string, body: Buffer | null): CredentialResult {
    const report = newReport();
    const lookup = this.lookupFor(host);
    const secretOf = (t: PhantomTarget) => this.vault.secret(t.credential);
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      if (SKIP_HEADERS.has(name)) {
        if (name === 'host') out[name] = value;
        continue;
      }
      out[name] = Array.isArray(value) ? value.map((v) => rewritePhantoms(v, lookup, secretOf, report)) : rewritePhantoms(value, lookup, secretOf, report);
    }
    const newPath = rewritePhantoms(path, lookup, secretOf, report);
    let newBody = body;
    if (body && body.includes('SLUICE')) {
      newBody = Buffer.from(rewritePhantoms(body.toString('latin1'), lookup, (t) => Buffer.from(secretOf(t), 'utf8').toString('latin1'), report), 'latin1');
    }
    if (report.used.size === 0 && report.leaked.length === 0) this.maybeInject(host, out, report);
    const first = report.used.values().next();
    return { headers: out, path: newPath, body: newBody, report, credential: first.done ? null : first.value.credential, pool: first.done ? null : (first.value.pool ?? null) };
  }

  /**
   * Replaces any real secret in `text` with the phantom the agent holds for it (the pool's phantom for a
   * pool member). Defence in depth for text flowing back to the agent.
   */
  maskSecrets(text: string): string {
    let out = text;
    for (const cred of this.vault.list()) {
      const secret = this.vault.secret(cred.name);
      if (secret.length < 8 || !out.includes(secret)) continue;
      const pool = this.pools?.poolOf(cred.name);
      const phantom = pool ? this.pools!.get(pool).phantom : cred.phantom;
      out = out.split(secret).join(phantom);
    }
    return out;
  }

  private maybeInject(host: string, headers: Record<string, string | string[]>, report: RewriteReport): void {
    const bound = this.vault.boundTo(host);
    if (bound.length !== 1) return;
    const cred: CredentialRow = bound[0]!;
    if (!cred.header) return;
    const h = cred.header.toLowerCase();
    if (headers[h] !== undefined) return;
    headers[h] = (cred.format ?? '{}').replace('{}', this.vault.secret(cred.name));
    report.used.set(cred.name, { credential: cred.name, phantom: cred.phantom, bound: true, label: cred.name });
  }
}
