/**
 * NDJSON framing with a size limit. Splits a byte stream into lines; a line longer than `maxBytes` is
 * reported once through `onOverflow` and skipped up to its newline, so one oversized message never
 * grows memory without bound nor desynchronises the stream.
 */
export class LineDecoder {
  private parts: Buffer[] = [];
  private size = 0;
  private discarding = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: () => void,
  ) {}

  /** Feeds a chunk; calls `onLine` for each complete line (without its newline). */
  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) {
        this.append(chunk.subarray(start));
        return;
      }
      this.append(chunk.subarray(start, nl));
      this.flushLine();
      start = nl + 1;
    }
  }

  private append(piece: Buffer): void {
    if (piece.length === 0 || this.discarding) return;
    if (this.size + piece.length > this.maxBytes) {
      this.parts = [];
      this.size = 0;
      this.discarding = true;
      this.onOverflow();
      return;
    }
    this.parts.push(piece);
    this.size += piece.length;
  }

  private flushLine(): void {
    if (this.discarding) {
      this.discarding = false;
      return;
    }
    const line = this.parts.length === 1 ? this.parts[0]!.toString('utf8') : Buffer.concat(this.parts).toString('utf8');
    this.parts = [];
    this.size = 0;
    if (line.trim().length > 0) this.onLine(line);
  }
}
