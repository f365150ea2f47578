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

/**
 * Daemon error codes that mean "the arguments were invalid" (the daemon validated what the CLI could not,
 * e.g. a glob). They exit 2 like any other usage error, so scripts see one code for bad input.
 */
const INVALID_INPUT_CODES = new Set(['invalid_params', 'invalid_glob', 'cap_out_of_range']);

/** The exit code for `err`: usage (ours or the daemon's validation) → 2, daemon unreachable → 3, else 1. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof RpcError && err.code === 'daemon_unreachable') return EXIT.unreachable;
  if (err instanceof RpcError && INVALID_INPUT_CODES.has(err.code)) return EXIT.usage;
  return EXIT.daemonError;
}
