/**
 * `sluicectl cred add|list|update|remove`. The secret is read from stdin or a no-echo prompt and goes only
 * into the `cred.add` / `cred.update` params; it is never taken from argv and never printed. `update`
 * sends a secret only when `--secret-stdin` asks for it, so changing hosts cannot blank a secret by accident.
 */
import fs from 'node:fs';
import type { Argv } from 'yargs';
import type { CredentialInfo } from '../../shared/protocol/entities.js';
import { capProblem, queueTimeoutProblem } from '../../shared/protocol/limits.js';
import { parseInjectList, type InjectSite } from '../../shared/protocol/inject-sites.js';
import type { ParamsIn } from '../../shared/protocol/params.js';
import { action } from '../command-action.js';
import { callDaemon, checkParams, type GlobalArgs } from '../daemon-call.js';
import { UsageError } from '../exit-codes.js';
import { allValues, definedEntry, intOption, lastNumber, lastString } from '../option-values.js';
import { formatTable } from '../output-table.js';
import { printResult } from '../print-result.js';
import { readSecret } from '../read-secret.js';

const KINDS = ['api-key', 'oauth'] as const;

/** Registers the `cred` command group. */
export function credCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('cred', 'manage credentials (secrets are read from stdin)', (c) =>
    c
      .command(
        'add <name>',
        'add a credential; the secret is read from stdin, the phantom is printed',
        (a) =>
          a
            .positional('name', { type: 'string', demandOption: true, describe: 'credential name' })
            .option('host', { type: 'string', demandOption: true, coerce: allValues, describe: 'host glob it may be sent to (repeatable)' })
            .option('header', { type: 'string', coerce: lastString, describe: 'header to inject when a request has none' })
            .option('format', { type: 'string', coerce: lastString, describe: "header value format, e.g. 'Bearer {}'" })
            .option('max-concurrent', { type: 'number', coerce: lastNumber, describe: 'in-flight cap (1-256, default 8)' })
            .option('queue-timeout-ms', { type: 'number', coerce: lastNumber, describe: 'wait this long for a slot before 429 (0 = refuse at once)' })
            .option('kind', {
              choices: KINDS,
              default: 'api-key' as (typeof KINDS)[number],
              describe: 'api-key (a static secret) or oauth (access + refresh token)',
            })
            .option('token-url', { type: 'string', coerce: lastString, describe: 'oauth: the token endpoint refreshes go to' })
            .option('inject', {
              type: 'string',
              coerce: lastString,
              describe: 'where the phantom is swapped for the secret: header (default), or any of header,query,body,path',
            })
            .option('from-file', {
              type: 'string',
              coerce: lastString,
              describe: 'oauth: read the tokens from a file (Codex auth.json, Claude Code credentials, or {access_token, refresh_token, …}) instead of stdin',
            })
            .example(`printf '%s' "$ANTHROPIC_API_KEY" | $0 cred add anthropic --host api.anthropic.com --header x-api-key`, 'store a key; prints its phantom')
            .example('$0 cred add work --kind oauth --host api.openai.com --token-url URL --from-file ~/.codex/auth.json', 'an OAuth account'),
        action(addCredential),
      )
      .command(
        'list',
        'list credentials (never their secrets)',
        (l) => l.example('$0 cred list', 'name, kind, hosts, header, in-flight/cap, phantom'),
        action(async (args) => {
          printResult(args, await callDaemon(args, 'cred.list'), (r) => credTable(r.credentials));
        }),
      )
      .command(
        'update <name>',
        'change a credential; --secret-stdin replaces its secret',
        (u) =>
          u
            .positional('name', { type: 'string', demandOption: true, describe: 'credential name' })
            .option('host', { type: 'string', coerce: allValues, describe: 'replace the host list (repeatable)' })
            .option('header', { type: 'string', coerce: lastString, describe: "header to inject ('' clears it)" })
            .option('format', { type: 'string', coerce: lastString, describe: "header value format ('' clears it)" })
            .option('max-concurrent', { type: 'number', coerce: lastNumber, describe: 'in-flight cap (1-256)' })
            .option('queue-timeout-ms', { type: 'number', coerce: lastNumber, describe: 'wait this long for a slot before 429 (0 = refuse at once)' })
            .option('inject', { type: 'string', coerce: lastString, describe: 'replace the injection sites: any of header,query,body,path' })
            .option('secret-stdin', { type: 'boolean', default: false, describe: 'read a new secret from stdin' })
            .example(`printf '%s' "$NEW_KEY" | $0 cred update anthropic --secret-stdin`, 'replace the secret (the phantom stays)')
            .example('$0 cred update anthropic --host api.anthropic.com --host claude.ai', 'replace the host list'),
        action(updateCredential),
      )
      .command(
        'remove <name>',
        'remove a credential (not while it is a pool member)',
        (r) =>
          r
            .positional('name', { type: 'string', demandOption: true, describe: 'credential name' })
            .example('$0 cred remove anthropic', 'remove it (take it out of its pool first)'),
        action(async (args) => {
          printResult(args, await callDaemon(args, 'cred.remove', { name: args.name }), (r) => `removed ${r.removed}`);
        }),
      )
      .demandCommand(1, 'cred needs a subcommand: add, list, update or remove')
      .example('$0 cred list', 'every credential and its phantom'),
  );
}

/** Options of `cred add` after parsing. */
interface AddArgs extends GlobalArgs {
  name: string;
  kind: (typeof KINDS)[number];
  host: string[];
  header?: string | undefined;
  format?: string | undefined;
  maxConcurrent?: number | undefined;
  queueTimeoutMs?: number | undefined;
  tokenUrl?: string | undefined;
  fromFile?: string | undefined;
  inject?: string | undefined;
}

async function addCredential(args: AddArgs): Promise<void> {
  const params: ParamsIn<'cred.add'> = {
    name: args.name,
    kind: args.kind,
    hosts: args.host,
    ...definedEntry('header', args.header),
    ...definedEntry('format', args.format),
    ...definedEntry('max_concurrent', intOption('max-concurrent', args.maxConcurrent, capProblem)),
    ...definedEntry('queue_timeout_ms', intOption('queue-timeout-ms', args.queueTimeoutMs, queueTimeoutProblem)),
    ...definedEntry('token_url', args.tokenUrl),
    ...definedEntry('inject', injectOption(args.inject)),
    secret: 'stand-in',
  };
  if (args.fromFile !== undefined && args.kind !== 'oauth') throw new UsageError('--from-file is for --kind oauth');
  // Check everything with a stand-in secret first, so a typo in an option never costs the user a prompt.
  checkParams('cred.add', params);
  params.secret = args.fromFile !== undefined ? readTokenFile(args.fromFile) : await readSecret(args.name);
  const cred = await callDaemon(args, 'cred.add', params);
  printResult(args, cred, (r) =>
    r.phantom_refresh
      ? `added ${r.name}; access token phantom: ${r.phantom}\nrefresh token phantom: ${r.phantom_refresh}`
      : `added ${r.name}; phantom: ${r.phantom}`,
  );
}

/** Options of `cred update` after parsing. */
interface UpdateArgs extends Omit<AddArgs, 'kind' | 'host'> {
  host?: string[] | undefined;
  secretStdin: boolean;
}

async function updateCredential(args: UpdateArgs): Promise<void> {
  const params: ParamsIn<'cred.update'> = {
    name: args.name,
    ...definedEntry('hosts', args.host && args.host.length > 0 ? args.host : undefined),
    ...definedEntry('header', clearable(args.header)),
    ...definedEntry('format', clearable(args.format)),
    ...definedEntry('max_concurrent', intOption('max-concurrent', args.maxConcurrent, capProblem)),
    ...definedEntry('queue_timeout_ms', intOption('queue-timeout-ms', args.queueTimeoutMs, queueTimeoutProblem)),
    ...definedEntry('inject', injectOption(args.inject)),
  };
  if (Object.keys(params).length === 1 && !args.secretStdin) {
    throw new UsageError('nothing to update: give --host, --header, --format, --max-concurrent, --queue-timeout-ms, --inject or --secret-stdin');
  }
  checkParams('cred.update', params);
  if (args.secretStdin) params.secret = await readSecret(args.name);
  const cred = await callDaemon(args, 'cred.update', params);
  printResult(args, cred, (r) => `updated ${r.name}`);
}

/** The `cred list` table. */
export function credTable(creds: CredentialInfo[]): string[] {
  return formatTable(
    ['NAME', 'KIND', 'HOSTS', 'HEADER', 'INJECT', 'IN-FLIGHT', 'QUEUED', 'PHANTOM'],
    creds.map((c) => [
      c.name,
      c.needs_login ? `${c.kind} (needs login)` : c.kind,
      c.hosts.join(','),
      c.header,
      (c.inject ?? ['header']).join(','),
      `${c.in_flight}/${c.max_concurrent}`,
      c.queued,
      c.phantom,
    ]),
    '(no credentials)',
  );
}

/** `--inject header,query` as sites; a bad site is a usage error naming it. */
function injectOption(value: string | undefined): InjectSite[] | undefined {
  if (value === undefined) return undefined;
  const r = parseInjectList(value);
  if ('problem' in r) throw new UsageError(r.problem);
  return r;
}

/** `''` means "clear this field" (null in the params). */
function clearable(value: string | undefined): string | null | undefined {
  if (value === undefined) return undefined;
  return value === '' ? null : value;
}

/** Reads an agent's token file; the daemon parses it (Codex auth.json, Claude Code credentials, plain JSON). */
function readTokenFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}
