/**
 * Wraps a command handler so that every failure is reported once, in the agreed format, and becomes the
 * process exit code. Handlers therefore just throw; none of them prints errors or calls `process.exit`.
 */
import type { GlobalArgs } from './daemon-call.js';
import { reportError } from './report-error.js';

/** Returns a yargs handler that runs `fn` and maps a thrown error to stderr output plus `process.exitCode`. */
export function action<A extends GlobalArgs>(fn: (args: A) => Promise<void>): (args: A) => Promise<void> {
  return async (args: A) => {
    try {
      await fn(args);
    } catch (err) {
      process.exitCode = reportError(err, args.json === true);
    }
  };
}
