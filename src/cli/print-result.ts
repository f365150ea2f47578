/**
 * Result output. With `--json` stdout gets exactly the RPC result (snake_case, unchanged) so scripts can
 * rely on the shapes in DESIGN §8; otherwise it gets the human rendering the command supplies.
 */
import type { GlobalArgs } from './daemon-call.js';

/** Prints `result` as JSON when `--json` is set, else the lines `human` renders from it. */
export function printResult<T>(args: GlobalArgs, result: T, human: (result: T) => string | string[]): void {
  if (args.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return;
  }
  const out = human(result);
  const lines = Array.isArray(out) ? out : [out];
  if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
}

/** Prints human lines only; used where `--json` output is handled separately by the command. */
export function printLines(lines: string | string[]): void {
  const all = Array.isArray(lines) ? lines : [lines];
  if (all.length > 0) process.stdout.write(all.join('\n') + '\n');
}
