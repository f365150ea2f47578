/**
 * Response-side containment: replaces every real secret in bytes flowing back to the agent with the
 * phantom the agent holds for it. Pure (no I/O, no clock); the pair list comes from the vault (see
 * mask-pairs.ts).
 *
 * A stream may split a secret across chunks at any byte, so a {@link StreamMasker} holds back the tail of
 * a chunk, but only when that tail is a possible start of a secret: at most (longest secret − 1) bytes, and
 * nothing at all for the usual chunk (an SSE event ends in `\n\n`, which starts no secret), so events are
 * never delayed. Per chunk the work is one native `indexOf` per secret plus a suffix check that starts from the
 * chunk's last byte (one table lookup when no secret contains it); a chunk
 * with nothing to mask and nothing to hold is returned as the same Buffer (no copy).
 */

/** One real secret and the phantom that replaces it. */
export interface MaskPair {
  /** The credential the secret belongs to (reported, never the secret itself). */
  credential: string;
  secret: string;
  phantom: string;
}

/** Secrets shorter than this are not masked: they would match ordinary text and corrupt bodies. */
export const MIN_MASKED_SECRET = 8;

interface Entry {
  credential: string;
  secret: Buffer;
  phantom: Buffer;
  /** For each byte value, the offsets (descending) where it occurs in `secret`, last offset excluded. */
  offsets: (Int32Array | undefined)[];
  /** `secret` and `phantom` as latin1 strings of their UTF-8 bytes (how Node hands out header values). */
  secretText: string;
  phantomText: string;
  /** `secretText` in lower case: header names reach sluice lower-cased, so a secret there is lower-cased too. */
  lowerText: string;
}

/** A match found in a buffer. */
interface Match {
  at: number;
  entry: Entry;
}

/**
 * An immutable set of secret→phantom pairs. Guarantees: every occurrence of every secret (≥
 * {@link MIN_MASKED_SECRET} bytes) in what it is given is replaced; where secrets overlap, the leftmost and
 * then longest wins; identical secrets listed twice use the first pair.
 */
export class SecretMasker {
  private readonly entries: Entry[];
  /** 1 for each byte value that can end a proper prefix of some secret. */
  private readonly lastByteSeen = new Uint8Array(256);
  /** Longest secret in bytes (0 when there is none). */
  readonly maxLen: number;

  constructor(pairs: readonly MaskPair[]) {
    const seen = new Set<string>();
    const entries: Entry[] = [];
    for (const p of pairs) {
      const secret = Buffer.from(p.secret, 'utf8');
      if (secret.length < MIN_MASKED_SECRET || seen.has(p.secret) || p.secret === p.phantom) continue;
      seen.add(p.secret);
      const phantom = Buffer.from(p.phantom, 'utf8');
      entries.push({
        credential: p.credential,
        secret,
        phantom,
        offsets: offsetsOf(secret),
        secretText: secret.toString('latin1'),
        phantomText: phantom.toString('latin1'),
        lowerText: secret.toString('latin1').toLowerCase(),
      });
    }
    // Longest first, so among matches at one position the first found is the longest.
    entries.sort((a, b) => b.secret.length - a.secret.length);
    this.entries = entries;
    for (const e of entries) for (let b = 0; b < 256; b++) if (e.offsets[b]) this.lastByteSeen[b] = 1;
    this.maxLen = entries.length > 0 ? entries[0]!.secret.length : 0;
  }

  /** True when there is nothing to mask (every call is then a no-op). */
  get empty(): boolean {
    return this.entries.length === 0;
  }

  /** A new stream masker using these pairs. */
  stream(): StreamMasker {
    return new StreamMasker(this);
  }

  /**
   * Masks one whole buffer (a complete body or WebSocket message). Returns `data` itself when nothing
   * matched; adds the credentials it masked to `found`.
   */
  maskBuffer(data: Buffer, found?: Set<string>): Buffer {
    if (this.entries.length === 0) return data;
    const { out } = this.scan(data, false, found);
    return out;
  }

  /**
   * Masks a header value, reason phrase or other latin1 string (Node decodes header bytes as latin1, so
   * the secrets are compared as the latin1 text of their UTF-8 bytes). Returns `text` itself when nothing matched.
   */
  maskText(text: string, found?: Set<string>): string {
    let out = text;
    for (const e of this.entries) {
      if (!out.includes(e.secretText)) continue;
      out = out.split(e.secretText).join(e.phantomText);
      found?.add(e.credential);
    }
    return out;
  }

  /**
   * The credential whose secret a header name contains, ignoring case (Node lower-cases response header
   * names, so a reflected secret arrives there lower-cased: still most of the secret). Null when none.
   */
  secretInName(name: string): string | null {
    if (name.length < MIN_MASKED_SECRET) return null;
    const lower = name.toLowerCase();
    for (const e of this.entries) if (lower.includes(e.lowerText)) return e.credential;
    return null;
  }

  /**
   * Masks `data`. With `holdTail`, a tail of `data` that may be the start of a secret is not emitted but
   * returned as `held` (at most maxLen − 1 bytes).
   * @internal used by {@link StreamMasker}
   */
  scan(data: Buffer, holdTail: boolean, found?: Set<string>): { out: Buffer; held: Buffer | null } {
    const matches = this.findMatches(data);
    const len = data.length;
    // Where the emitted part ends: the whole buffer, or the start of a tail that may still grow into a secret.
    let end = len;
    if (holdTail) {
      const last = matches.length > 0 ? matches[matches.length - 1]! : null;
      end = this.heldFrom(data, last ? last.at + last.entry.secret.length : 0);
      // A complete match that is also the start of a longer secret still arriving is held, not replaced.
      if (last && this.isProperPrefix(data, last.at)) end = last.at;
    }
    // A match at or past `end` is a complete secret that is also the start of a longer one still arriving.
    let n = matches.length;
    while (n > 0 && matches[n - 1]!.at >= end) n--;
    const held = end < len ? Buffer.from(data.subarray(end)) : null;
    if (n === 0) return { out: end === len ? data : data.subarray(0, end), held };
    const parts: Buffer[] = [];
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const m = matches[i]!;
      if (m.at > pos) parts.push(data.subarray(pos, m.at));
      parts.push(m.entry.phantom);
      found?.add(m.entry.credential);
      pos = m.at + m.entry.secret.length;
    }
    if (end > pos) parts.push(data.subarray(pos, end));
    return { out: Buffer.concat(parts), held };
  }

  /** Non-overlapping matches, leftmost first, longest at a position. */
  private findMatches(data: Buffer): Match[] {
    let all: Match[] | null = null;
    for (const e of this.entries) {
      let i = data.indexOf(e.secret);
      while (i !== -1) {
        (all ??= []).push({ at: i, entry: e });
        i = data.indexOf(e.secret, i + 1);
      }
    }
    if (!all) return [];
    if (all.length === 1) return all;
    // Stable sort: at one position the longer secret (earlier entry) comes first.
    all.sort((a, b) => a.at - b.at);
    const out: Match[] = [];
    let pos = 0;
    for (const m of all) {
      if (m.at < pos) continue;
      out.push(m);
      pos = m.at + m.entry.secret.length;
    }
    return out;
  }

  /**
   * The earliest position ≥ `from` (and within the last maxLen − 1 bytes) where the rest of `data` is a
   * proper prefix of some secret, or `data.length` when there is none. Works from the chunk's last byte: a
   * tail can only be a prefix of a secret that contains that byte, at a known offset, so a chunk ending in a
   * byte no secret contains (an SSE event's `\n`, a JSON `}`) costs one table lookup.
   */
  private heldFrom(data: Buffer, from: number): number {
    const len = data.length;
    if (len === from) return len;
    const last = data[len - 1]!;
    if (!this.lastByteSeen[last]) return len;
    let best = len;
    for (const e of this.entries) {
      const at = e.offsets[last];
      if (!at) continue;
      const first = e.secret[0]!;
      // Offsets descend: the first that fits is the longest tail, i.e. the earliest position.
      for (const i of at) {
        const k = i + 1;
        const p = len - k;
        if (p < from) continue;
        if (p >= best) break;
        if (data[p] === first && e.secret.compare(data, p, len, 0, k) === 0) {
          best = p;
          break;
        }
      }
    }
    return best;
  }

  /** True when `data` from `at` to its end is a proper prefix of some secret. */
  private isProperPrefix(data: Buffer, at: number): boolean {
    const rest = data.length - at;
    for (const e of this.entries) {
      if (e.secret.length <= rest) break;
      if (e.secret.compare(data, at, data.length, 0, rest) === 0) return true;
    }
    return false;
  }
}

/**
 * Masks one stream of chunks. `write` returns what may be sent now (possibly an empty buffer when all of
 * a chunk is held); `end` returns what is left. Holds at most maxLen − 1 bytes between calls.
 */
export class StreamMasker {
  private held: Buffer | null = null;
  /** Credentials whose secret was masked in this stream. */
  readonly found = new Set<string>();

  constructor(private readonly masker: SecretMasker) {}

  /** Bytes held back right now (for tests and metrics). */
  get heldBytes(): number {
    return this.held ? this.held.length : 0;
  }

  /** Masks the next chunk; the result is `chunk` itself when nothing matched and nothing was held. */
  write(chunk: Buffer): Buffer {
    if (this.masker.empty) return chunk;
    const data = this.held ? Buffer.concat([this.held, chunk]) : chunk;
    const { out, held } = this.masker.scan(data, true, this.found);
    this.held = held;
    return out;
  }

  /** Flushes what was held (masked: it can only be a partial secret, which is emitted as is). */
  end(): Buffer | null {
    const h = this.held;
    this.held = null;
    if (!h) return null;
    return this.masker.maskBuffer(h, this.found);
  }
}

/** Per byte value, the offsets where it occurs in `secret` (all but the last byte), highest first. */
function offsetsOf(secret: Buffer): (Int32Array | undefined)[] {
  const lists: number[][] = [];
  for (let i = secret.length - 2; i >= 0; i--) (lists[secret[i]!] ??= []).push(i);
  const out: (Int32Array | undefined)[] = new Array(256);
  for (let b = 0; b < 256; b++) if (lists[b]) out[b] = Int32Array.from(lists[b]!);
  return out;
}
