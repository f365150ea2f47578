/**
 * JSON-lines logging to stderr and `sluiced.log`. Every line passes through a redactor that replaces any
 * known secret (and the proxy access token) with `[REDACTED]`, so a secret that reaches a log call by
 * mistake still never reaches disk or a terminal.
 */
import fs from 'node:fs';

/** Log levels in increasing severity. */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Structured logger. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Writes JSON lines to stderr and a file, redacting secrets supplied by `secrets()`. */
export class JsonLogger implements Logger {
  private fd: number | null = null;
  private readonly min: number;
  private readonly sources: (() => readonly string[])[] = [];

  constructor(
    file: string | null,
    level: Level = (process.env.SLUICE_LOG_LEVEL as Level | undefined) ?? 'info',
    private readonly toStderr = true,
  ) {
    this.min = RANK[level] ?? RANK.info;
    if (file) this.fd = fs.openSync(file, 'a', 0o600);
  }

  private write(level: Level, msg: string, fields?: Record<string, unknown>): void {
    if (RANK[level] < this.min) return;
    let line = JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields }, errorReplacer);
    for (const src of this.sources) {
      for (const s of safeSecrets(src)) if (s.length >= 4 && line.includes(s)) line = line.split(s).join('[REDACTED]');
    }
    line += '\n';
    if (this.toStderr) process.stderr.write(line);
    if (this.fd !== null) {
      try {
        fs.writeSync(this.fd, line);
      } catch {
        // A full disk must not take the proxy down; stderr still has the line.
      }
    }
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.write('debug', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.write('error', msg, fields);
  }

  /** Adds a source of strings that must never appear in a log line. */
  addSecretSource(source: () => readonly string[]): void {
    this.sources.push(source);
  }

  /** Closes the log file. */
  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

function safeSecrets(src: () => readonly string[]): readonly string[] {
  try {
    return src();
  } catch {
    return [];
  }
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as NodeJS.ErrnoException).code };
  return value;
}
