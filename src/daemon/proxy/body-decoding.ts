/**
 * Decoding a request before it is searched for phantoms. An agent (or a library acting for it) may send a
 * phantom gzip-compressed, percent-encoded or as JSON `\uXXXX` escapes; the leak scan must see through all
 * of these, or a phantom bound elsewhere slips past it. Only decoding lives here; what a phantom found in
 * a decoded form means is the credential stage's business.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const inflateRaw = promisify(zlib.inflateRaw);
const brotli = promisify(zlib.brotliDecompress);

/** Why a body could not be decoded: an encoding sluice does not know, or bytes that do not decode within the limit. */
export type DecodeFailure = { failed: 'unsupported'; encoding: string } | { failed: 'corrupt' | 'too_large'; encoding: string };

/**
 * The identity bytes of a body sent with `content-encoding: encoding` (a comma list, applied left to right,
 * so undone right to left), at most `limit` bytes of it. Null when there is nothing to undo (absent or
 * `identity`). Never throws; the work runs on the thread pool, not the event loop.
 */
export async function decodeContent(body: Buffer, encoding: string | undefined, limit: number): Promise<Buffer | null | DecodeFailure> {
  if (!encoding) return null;
  const codings = encoding
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c && c !== 'identity');
  if (codings.length === 0) return null;
  let out = body;
  for (const c of codings.reverse()) {
    const opts = { maxOutputLength: limit };
    try {
      if (c === 'gzip' || c === 'x-gzip') out = await gunzip(out, opts);
      else if (c === 'br') out = await brotli(out, opts);
      else if (c === 'deflate') {
        // "deflate" is zlib-wrapped by the spec, raw in some clients: accept both, as browsers do.
        out = await inflate(out, opts).catch(() => inflateRaw(out, opts));
      } else return { failed: 'unsupported', encoding: c };
    } catch (err) {
      const tooLarge = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError;
      return { failed: tooLarge ? 'too_large' : 'corrupt', encoding: c };
    }
  }
  return out;
}

const JSON_ESCAPE_RE = /\\u([0-9a-fA-F]{4})/g;
const PERCENT_RE = /%([0-9a-fA-F]{2})/g;

function unescapeJson(text: string): string {
  return text.replace(JSON_ESCAPE_RE, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function percentDecode(text: string): string {
  return text.replace(PERCENT_RE, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * The forms of `text` a phantom could hide in besides the literal one: JSON escapes undone, percent
 * encoding undone, and both in either order. Empty when `text` has neither (the common case costs two
 * `includes`). Each form is as long as `text` at most.
 */
export function hiddenForms(text: string): string[] {
  const json = text.includes('\\u');
  const pct = text.includes('%');
  if (!json && !pct) return [];
  const out: string[] = [];
  if (json) out.push(unescapeJson(text));
  if (pct) out.push(percentDecode(text));
  if (json && pct) out.push(percentDecode(unescapeJson(text)), unescapeJson(percentDecode(text)));
  return out;
}

const JSON_ESCAPE_NEEDLE = Buffer.from('\\u');
const PERCENT = 0x25;

/** True when a body may hold an escaped or encoded phantom (cheap byte checks before any decoding). */
export function mayHideForms(body: Buffer): boolean {
  // Needles made once: Buffer#includes with a string argument builds a Buffer from it on every call.
  return body.indexOf(PERCENT) !== -1 || body.indexOf(JSON_ESCAPE_NEEDLE) !== -1;
}
