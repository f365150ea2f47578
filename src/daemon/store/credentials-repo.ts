/**
 * Rows of the `credentials` table. Holds ciphertext only: encryption and decryption are the vault's job,
 * so nothing in this module ever sees a plaintext secret.
 */
import type { CredentialKind } from '../../shared/protocol/entities.js';
import { canonicalSites, DEFAULT_INJECT, isInjectSite, type InjectSite } from '../../shared/protocol/inject-sites.js';
import type { Db } from './database.js';

/** Encrypted secret as stored: AES-256-GCM iv, ciphertext and auth tag. */
export interface SealedSecret {
  iv: Buffer;
  ct: Buffer;
  tag: Buffer;
}

/** A credential row as the daemon uses it. */
export interface CredentialRow {
  id: number;
  name: string;
  kind: CredentialKind;
  hosts: string[];
  header: string | null;
  format: string | null;
  phantom: string;
  /** OAuth only: the phantom the agent holds for the refresh token. */
  phantom_refresh: string | null;
  /** OAuth only: where refresh requests go. */
  token_url: string | null;
  /** Where the phantom may be swapped for the secret (canonical order, never empty). */
  inject: InjectSite[];
  sealed: SealedSecret;
  max_concurrent: number;
  queue_timeout_ms: number;
  created_at: string;
  updated_at: string;
}

/** Fields a caller may change on update; `undefined` leaves a field as it is. */
export interface CredentialPatch {
  hosts?: string[];
  header?: string | null;
  format?: string | null;
  sealed?: SealedSecret;
  max_concurrent?: number;
  queue_timeout_ms?: number;
  token_url?: string | null;
  inject?: InjectSite[];
}

interface RawRow {
  id: number;
  name: string;
  kind: CredentialKind;
  hosts: string;
  header: string | null;
  format: string | null;
  phantom: string;
  phantom_refresh: string | null;
  token_url: string | null;
  inject: string;
  secret_iv: Buffer;
  secret_ct: Buffer;
  secret_tag: Buffer;
  max_concurrent: number;
  queue_timeout_ms: number;
  created_at: string;
  updated_at: string;
}

function fromRaw(r: RawRow): CredentialRow {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    hosts: JSON.parse(r.hosts) as string[],
    header: r.header,
    format: r.format,
    phantom: r.phantom,
    phantom_refresh: r.phantom_refresh,
    token_url: r.token_url,
    inject: parseSites(r.inject),
    sealed: { iv: r.secret_iv, ct: r.secret_ct, tag: r.secret_tag },
    max_concurrent: r.max_concurrent,
    queue_timeout_ms: r.queue_timeout_ms,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

/** The stored comma list as sites; the CHECK constraint guarantees the form, this only guards against a hand edit. */
function parseSites(stored: string): InjectSite[] {
  const sites = stored.split(',').filter(isInjectSite);
  return sites.length > 0 ? canonicalSites(sites) : [...DEFAULT_INJECT];
}

/** CRUD over credential rows with prepared statements. */
export class CredentialsRepo {
  private readonly selectAll;
  private readonly selectByName;
  private readonly insertStmt;
  private readonly deleteStmt;

  constructor(private readonly db: Db) {
    this.selectAll = db.prepare<[], RawRow>('SELECT * FROM credentials ORDER BY name');
    this.selectByName = db.prepare<[string], RawRow>('SELECT * FROM credentials WHERE name = ?');
    this.insertStmt = db.prepare(
      `INSERT INTO credentials (name, kind, hosts, header, format, phantom, phantom_refresh, token_url, inject, secret_iv, secret_ct, secret_tag,
         max_concurrent, queue_timeout_ms, created_at, updated_at)
       VALUES (@name, @kind, @hosts, @header, @format, @phantom, @phantom_refresh, @token_url, @inject, @iv, @ct, @tag, @max_concurrent, @queue_timeout_ms, @now, @now)`,
    );
    this.deleteStmt = db.prepare<[string]>('DELETE FROM credentials WHERE name = ?');
  }

  /** All credentials, by name. */
  list(): CredentialRow[] {
    return this.selectAll.all().map(fromRaw);
  }

  /** One credential, or undefined. */
  get(name: string): CredentialRow | undefined {
    const r = this.selectByName.get(name);
    return r ? fromRaw(r) : undefined;
  }

  /** Inserts a credential; throws SQLITE_CONSTRAINT_UNIQUE on a duplicate name or phantom. */
  insert(row: Omit<CredentialRow, 'id' | 'created_at' | 'updated_at'>, now: string): CredentialRow {
    this.insertStmt.run({
      name: row.name,
      kind: row.kind,
      hosts: JSON.stringify(row.hosts),
      header: row.header,
      format: row.format,
      phantom: row.phantom,
      phantom_refresh: row.phantom_refresh,
      token_url: row.token_url,
      inject: canonicalSites(row.inject).join(','),
      iv: row.sealed.iv,
      ct: row.sealed.ct,
      tag: row.sealed.tag,
      max_concurrent: row.max_concurrent,
      queue_timeout_ms: row.queue_timeout_ms,
      now,
    });
    return this.get(row.name)!;
  }

  /** Applies `patch` to the named credential; returns the new row or undefined when it does not exist. */
  update(name: string, patch: CredentialPatch, now: string): CredentialRow | undefined {
    const sets: string[] = [];
    const params: Record<string, unknown> = { name, now };
    if (patch.hosts !== undefined) (sets.push('hosts = @hosts'), (params.hosts = JSON.stringify(patch.hosts)));
    if (patch.header !== undefined) (sets.push('header = @header'), (params.header = patch.header));
    if (patch.format !== undefined) (sets.push('format = @format'), (params.format = patch.format));
    if (patch.max_concurrent !== undefined) (sets.push('max_concurrent = @mc'), (params.mc = patch.max_concurrent));
    if (patch.queue_timeout_ms !== undefined) (sets.push('queue_timeout_ms = @qt'), (params.qt = patch.queue_timeout_ms));
    if (patch.token_url !== undefined) (sets.push('token_url = @token_url'), (params.token_url = patch.token_url));
    if (patch.inject !== undefined) (sets.push('inject = @inject'), (params.inject = canonicalSites(patch.inject).join(',')));
    if (patch.sealed !== undefined) {
      sets.push('secret_iv = @iv', 'secret_ct = @ct', 'secret_tag = @tag');
      Object.assign(params, { iv: patch.sealed.iv, ct: patch.sealed.ct, tag: patch.sealed.tag });
    }
    sets.push('updated_at = @now');
    const info = this.db.prepare(`UPDATE credentials SET ${sets.join(', ')} WHERE name = @name`).run(params);
    return info.changes === 0 ? undefined : this.get(name);
  }

  /** Deletes the named credential (secret included); returns whether a row went. */
  remove(name: string): boolean {
    return this.deleteStmt.run(name).changes > 0;
  }

  /** Number of stored credentials. */
  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM credentials').get() as { n: number }).n;
  }
}
