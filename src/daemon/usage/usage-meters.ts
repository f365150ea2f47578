/**
 * Streaming usage parsers. Each one *observes* the decoded bytes of a response as they go to the client:
 * it is fed a chunk after the relay already has it, never returns bytes, never delays or alters one. Memory
 * is bounded: an SSE line or event over {@link MAX_SSE_EVENT_BYTES}, a JSON body over
 * {@link MAX_JSON_BODY_BYTES} or a WebSocket message over {@link MAX_SSE_EVENT_BYTES} is not parsed (the
 * request still counts, with no tokens).
 */
import { emptyRaw, hasTokens, mergeUsage, normalise, type ParsedUsage, type RawUsage } from './usage-fields.js';

/** Longest SSE line, SSE event (its data lines together) or WebSocket message that is parsed. */
export const MAX_SSE_EVENT_BYTES = 1024 * 1024;
/** Largest JSON body that is parsed. */
export const MAX_JSON_BODY_BYTES = 4 * 1024 * 1024;

/** Sees a response body chunk by chunk; answers what usage it reported. */
export interface UsageMeter {
  /** Observes the next decoded body chunk. Never throws; keeps no more than the limits allow. */
  feed(chunk: Buffer): void;
  /** The usage the body reported so far (all of it once the body ended), or null when it reported none. */
  result(): ParsedUsage | null;
}

const LF = 0x0a;
const USAGE = '"usage"';

/** Parses `text` as JSON into `raw`; false when it is not JSON or carried no usage. */
function mergeJsonText(raw: RawUsage, text: string): boolean {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return false;
  }
  return mergeUsage(raw, v);
}

/**
 * `text/event-stream`: Anthropic `message_start` / `message_delta`, OpenAI Chat chunks (the last carries
 * `usage` when the client asked for `stream_options.include_usage`; `[DONE]` is skipped), OpenAI Responses
 * `response.completed`. Only events whose data mentions `"usage"` are parsed as JSON (text deltas are not).
 */
export class SseUsageMeter implements UsageMeter {
  private readonly raw = emptyRaw();
  /** The start of a line that has not ended yet (copied: the chunk it came from belongs to the relay). */
  private partial: Buffer | null = null;
  /** True while skipping the rest of an over-long line. */
  private skipLine = false;
  /** The data lines of the current event. */
  private data: string[] = [];
  private dataBytes = 0;
  /** True when the current event grew past the limit: it is dropped at its end. */
  private skipEvent = false;

  feed(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(LF, start);
      if (nl === -1) return this.keep(chunk.subarray(start));
      let line = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.skipLine) {
        this.skipLine = false;
        this.partial = null;
        this.skipEvent = true;
        continue;
      }
      if (this.partial) {
        if (this.partial.length + line.length > MAX_SSE_EVENT_BYTES) {
          this.partial = null;
          this.skipEvent = true;
          continue;
        }
        line = Buffer.concat([this.partial, line]);
        this.partial = null;
      }
      this.line(line);
    }
  }

  private keep(rest: Buffer): void {
    if (this.skipLine) return;
    const len = (this.partial?.length ?? 0) + rest.length;
    if (len > MAX_SSE_EVENT_BYTES) {
      this.partial = null;
      this.skipLine = true;
      return;
    }
    this.partial = this.partial ? Buffer.concat([this.partial, rest]) : Buffer.from(rest);
  }

  private line(line: Buffer): void {
    let end = line.length;
    if (end > 0 && line[end - 1] === 0x0d) end--;
    if (end === 0) return this.dispatch();
    // `data:` (5 bytes), with one optional space after the colon.
    if (end < 5 || line[0] !== 0x64 || line[1] !== 0x61 || line[2] !== 0x74 || line[3] !== 0x61 || line[4] !== 0x3a) return;
    if (this.skipEvent) return;
    const from = line[5] === 0x20 ? 6 : 5;
    this.dataBytes += end - from + 1;
    if (this.dataBytes > MAX_SSE_EVENT_BYTES) {
      this.skipEvent = true;
      this.data = [];
      return;
    }
    this.data.push(line.toString('utf8', from, end));
  }

  private dispatch(): void {
    if (!this.skipEvent && this.data.length > 0) {
      const text = this.data.length === 1 ? this.data[0]! : this.data.join('\n');
      if (text.includes(USAGE)) mergeJsonText(this.raw, text);
    }
    this.data = [];
    this.dataBytes = 0;
    this.skipEvent = false;
  }

  result(): ParsedUsage | null {
    // A stream that ended without the blank line after its last event: that event still counts.
    if (this.partial && !this.skipLine) {
      const p = this.partial;
      this.partial = null;
      this.line(p);
    }
    this.dispatch();
    return hasTokens(this.raw) ? normalise(this.raw) : null;
  }
}

/** `application/json`: the whole body, parsed once at the end, when it stays within the limit. */
export class JsonUsageMeter implements UsageMeter {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private over = false;
  private parsed: ParsedUsage | null | undefined;

  feed(chunk: Buffer): void {
    if (this.over) return;
    this.bytes += chunk.length;
    if (this.bytes > MAX_JSON_BODY_BYTES) {
      this.over = true;
      this.chunks = [];
      return;
    }
    // Chunks are never written to after the relay handed them on, so a reference is as good as a copy.
    this.chunks.push(chunk);
  }

  result(): ParsedUsage | null {
    if (this.parsed !== undefined) return this.parsed;
    if (this.over || this.chunks.length === 0) return null;
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    // A byte search first: most answers of the busy paths (errors, other JSON) carry no usage to parse.
    if (body.indexOf(USAGE) === -1) return (this.parsed = null);
    const raw = emptyRaw();
    this.parsed = mergeJsonText(raw, body.toString('utf8')) && hasTokens(raw) ? normalise(raw) : null;
    return this.parsed;
  }
}

/** API paths whose answers carry usage (matched at the end, so a gateway's path prefix still matches). */
const USAGE_PATHS = ['/messages', '/chat/completions', '/completions', '/responses'];

/** True when `path` (no query string) is one of the model APIs whose answers report usage. */
export function isUsagePath(path: string): boolean {
  const p = path.endsWith('/') ? path.slice(0, -1) : path;
  return USAGE_PATHS.some((s) => p.endsWith(s));
}

/**
 * The meter for a response: by content type (`text/event-stream`, `application/json`) on a model API path.
 * Null for anything else (the request counts, no tokens), and for a JSON body declared over the limit.
 */
export function meterFor(path: string, contentType: string | undefined, contentLength: string | undefined): UsageMeter | null {
  if (!contentType || !isUsagePath(path)) return null;
  const ct = contentType.toLowerCase();
  if (ct.includes('text/event-stream')) return new SseUsageMeter();
  if (ct.includes('json')) {
    if (contentLength !== undefined && Number(contentLength) > MAX_JSON_BODY_BYTES) return null;
    return new JsonUsageMeter();
  }
  return null;
}

/**
 * One WebSocket text message (the Responses API over WebSocket sends one JSON event per message): the
 * usage it reports (`response.completed`), or null. Messages over the limit are not parsed.
 */
export function usageOfMessage(text: Buffer): ParsedUsage | null {
  if (text.length > MAX_SSE_EVENT_BYTES) return null;
  // A cheap byte search first: almost every message is a delta without usage.
  if (text.indexOf(USAGE) === -1) return null;
  const raw = emptyRaw();
  return mergeJsonText(raw, text.toString('utf8')) && hasTokens(raw) ? normalise(raw) : null;
}
