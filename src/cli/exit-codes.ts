/**
 * sluicectl's exit codes (DESIGN §1) and the two error classes the CLI raises itself. Scripts branch on
 * these numbers, so they are never renumbered: 0 ok, 1 the daemon said no, 2 bad usage, 3 no daemon.
 */
import { RpcError } from '../shared/rpc/client.js';

/** Process exit codes. */
export const EXIT = {
  ok: 0,
  daemonError: 1,
  usage: 2,
  unreachable: 3,
} as const;

/** A bad command line or value, caught before anything reached the daemon. Always exits {@link EXIT.usage}. */
export class UsageError extends Error {
  readonly code = 'usage';

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * A failure the CLI detected on its own (a child that could not start, nothing pending, a daemon that
 * would not stop). Carries a stable string code for `--json` and the exit code to use.
 */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: number = EXIT.daemonError,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The exit code for `err`: usage → 2, daemon unreachable → 3, anything else from the daemon or the CLI → 1. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof RpcError && err.code === 'daemon_unreachable') return EXIT.unreachable;
  return EXIT.daemonError;
}
