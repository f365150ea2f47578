/**
 * Result output. With `--json` stdout gets exactly the RPC result (snake_case, unchanged) so scripts can
 * rely on the shapes in DESIGN §8; otherwise it gets the human rendering the command supplies.
 */
import { colours } from './colour.js';
import type { GlobalArgs } from './daemon-call.js';

/** Prints `result` as JSON when `--json` is set, else the lines `human` renders from it. */
export function printResult<T>(args: GlobalArgs, result: T, human: (result: T) => string | string[]): void {
  if (args.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return;
  }
  const out = human(result);
  const lines = Array.isArray(out) ? out : [out];
  if (lines.length > 0) process.stdout.write(styled(lines).join('\n') + '\n');
}

// A table header is a line of upper-case column names (`NAME  KIND  IN-FLIGHT`); data rows never are.
const TABLE_HEADER = /^[A-Z][A-Z0-9-]*(?: +[A-Z][A-Z0-9-]*)+$/;

/** On a colour terminal, table headers in bold and `MISSING`/`ok` doctor marks in red/green. */
function styled(lines: string[]): string[] {
  const c = colours(process.stdout, false);
  if (!c.enabled) return lines;
  return lines.map((l) => {
    if (TABLE_HEADER.test(l)) return c.bold(l);
    if (l.startsWith('MISSING  ')) return c.error('MISSING') + l.slice('MISSING'.length);
    if (l.startsWith('ok       ')) return c.ok('ok') + l.slice(2);
    return l;
  });
}

/** Prints human lines only; used where `--json` output is handled separately by the command. */
export function printLines(lines: string | string[]): void {
  const all = Array.isArray(lines) ? lines : [lines];
  if (all.length > 0) process.stdout.write(styled(all).join('\n') + '\n');
}
