/**
 * Turning option values into what the RPC params need. yargs parses `--n abc` as NaN and collects repeated
 * options into arrays; these helpers make "last one wins" for scalars, "every one counts" for lists, and
 * reject anything that is not a whole number with a usage error that names the option.
 */
import { rotateBelowProblem } from '../shared/protocol/limits.js';
import { UsageError } from './exit-codes.js';
import { boundMessage } from './usage-messages.js';

/** yargs `coerce` for string options: a repeated option keeps its last value (never an array). */
export function lastString(value: string | string[]): string {
  return Array.isArray(value) ? String(value[value.length - 1]) : value;
}

/** yargs `coerce` for number options: a repeated option keeps its last value; junk stays NaN for {@link intOption}. */
export function lastNumber(value: number | number[]): number {
  return Array.isArray(value) ? Number(value[value.length - 1]) : value;
}

/** yargs `coerce` for repeatable options: always an array of strings, in the order given. */
export function allValues(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/**
 * Returns `value` as an integer, or undefined when the option was not given. Throws a usage error naming
 * `option` when it is not a whole number, or when `problem` (one of the shared bound checks) objects.
 */
export function intOption(option: string, value: number | undefined, problem?: (n: number) => string | null): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new UsageError(`--${option} must be a whole number`);
  }
  const reason = problem?.(value);
  if (reason) throw new UsageError(boundMessage(`--${option}`, reason));
  return value;
}

/** `--global N|none`: an integer cap, `null` for "unlimited", undefined when absent. */
export function capOrNone(option: string, value: string | undefined): number | null | undefined {
  if (value === undefined) return undefined;
  const text = value.trim().toLowerCase();
  if (text === 'none' || text === 'unlimited') return null;
  if (!/^-?\d+$/.test(text)) throw new UsageError(`--${option} must be a whole number or "none"`);
  return Number(text);
}

/** `{[key]: value}` when `value` is defined, else `{}`: absent options stay out of the RPC params. */
export function definedEntry<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: V });
}

/** `--rotate-below PCT|off`: a whole percentage 1..99 (a trailing % is allowed), null for off, undefined when absent. */
export function rotateBelowOption(value: string | undefined): number | null | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim().toLowerCase().replace(/%$/, '');
  if (text === 'off' || text === 'none') return null;
  const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
  const reason = Number.isNaN(n) ? 'x' : rotateBelowProblem(n);
  if (reason) throw new UsageError('--rotate-below must be a whole percentage between 1 and 99, or off');
  return n;
}
