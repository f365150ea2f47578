/**
 * The one place sluicectl turns an error into output and an exit code. Errors go to stderr as a single
 * line (`sluicectl: …`) or, with `--json`, as `{"error":{"code","message"}}`, so stdout only ever holds
 * results. Messages come from the daemon's catalogue or from the CLI itself and never contain a secret.
 */
import { RpcError } from '../shared/rpc/client.js';
import { CliError, EXIT, UsageError, exitCodeFor } from './exit-codes.js';

const HELP_HINT = 'see sluicectl --help';

/** Writes `err` to stderr in the chosen format and returns the exit code the process should end with. */
export function reportError(err: unknown, json: boolean): number {
  const exit = exitCodeFor(err);
  const code = errorCode(err);
  const message = oneLine(err instanceof Error ? err.message : String(err));
  if (json) {
    process.stderr.write(JSON.stringify({ error: { code, message } }) + '\n');
  } else if (exit === EXIT.usage) {
    process.stderr.write(`sluicectl: ${message} (${HELP_HINT})\n`);
  } else if (err instanceof RpcError && exit === EXIT.daemonError) {
    process.stderr.write(`sluicectl: ${message} [${code}]\n`);
  } else {
    process.stderr.write(`sluicectl: ${message}\n`);
  }
  return exit;
}

function errorCode(err: unknown): string {
  if (err instanceof UsageError || err instanceof CliError || err instanceof RpcError) return err.code;
  return 'internal';
}

// A multi-line message would break the "one line per error" contract that scripts grep on.
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
