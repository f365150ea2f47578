/**
 * The one place sluicectl turns an error into output and an exit code. Errors go to stderr as a single
 * line (`sluicectl: …`) or, with `--json`, as `{"error":{"code","message"}}`, so stdout only ever holds
 * results. Messages come from the daemon's catalogue or from the CLI itself and never contain a secret.
 */
import { RpcError } from '../shared/rpc/client.js';
import { colours } from './colour.js';
import { CliError, EXIT, UsageError, exitCodeFor } from './exit-codes.js';
import { helpHint, schemaIssueMessage } from './usage-messages.js';

let commandWords: readonly string[] = [];

/** Remembers which command is running (`['cred', 'add']`), so usage errors point to its own `--help`. */
export function setCommandPath(words: readonly string[]): void {
  commandWords = words;
}

/** Writes `err` to stderr in the chosen format and returns the exit code the process should end with. */
export function reportError(err: unknown, json: boolean): number {
  const exit = exitCodeFor(err);
  const code = errorCode(err);
  let message = oneLine(err instanceof Error ? err.message : String(err));
  if (err instanceof RpcError && code === 'invalid_params') message = plainDaemonParams(message);
  if (json) {
    process.stderr.write(JSON.stringify({ error: { code, message } }) + '\n');
    return exit;
  }
  const c = colours(process.stderr, false);
  const prefix = c.error('sluicectl:');
  if (exit === EXIT.usage) {
    process.stderr.write(`${prefix} ${message} ${c.dim(`(${helpHint(commandWords)})`)}\n`);
  } else if (err instanceof RpcError && exit === EXIT.daemonError) {
    process.stderr.write(`${prefix} ${message} ${c.dim(`[${code}]`)}\n`);
  } else {
    process.stderr.write(`${prefix} ${message}\n`);
  }
  return exit;
}

/**
 * The daemon's `invalid params: hosts.0: String must …; name: …` (schema text, for any RPC client) in
 * the CLI's words: each `path: message` part becomes `--flag message`.
 */
function plainDaemonParams(message: string): string {
  const body = message.replace(/^invalid params:\s*/, '');
  return body
    .split('; ')
    .map((part) => {
      const m = /^([A-Za-z_]+(?:\.\w+)*): (.*)$/.exec(part);
      return m ? schemaIssueMessage(m[1]!.split('.'), m[2]!) : schemaIssueMessage([], part);
    })
    .join('; ');
}

function errorCode(err: unknown): string {
  if (err instanceof UsageError || err instanceof CliError || err instanceof RpcError) return err.code;
  return 'internal';
}

// A multi-line message would break the "one line per error" contract that scripts grep on.
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
