/**
 * Reads a credential secret without it ever touching argv, the shell history or the screen: all of stdin
 * when it is piped (trailing newlines trimmed), or a no-echo prompt on a terminal. An empty secret is a
 * usage error. The secret is returned to the caller only; nothing here prints it.
 */
import { CliError, UsageError } from './exit-codes.js';

/** The longest secret accepted; matches the RPC schema so an oversized paste fails before sending. */
export const MAX_SECRET_BYTES = 64 * 1024;

/** Returns the secret for `name`, from piped stdin or a raw-mode terminal prompt. Never empty. */
export async function readSecret(name: string, stdin: NodeJS.ReadStream = process.stdin): Promise<string> {
  const raw = stdin.isTTY ? await promptHidden(`Secret for ${name}: `, stdin) : await readAll(stdin);
  const secret = raw.replace(/[\r\n]+$/, '');
  if (secret.length === 0) throw new UsageError('the secret is empty: pipe it on stdin or type it at the prompt');
  if (Buffer.byteLength(secret) > MAX_SECRET_BYTES) {
    throw new UsageError(`the secret is longer than ${MAX_SECRET_BYTES} bytes`);
  }
  return secret;
}

async function readAll(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    // Stop holding data once it cannot be a valid secret; the rest of the stream is drained unread.
    if (size > MAX_SECRET_BYTES + 2) throw new UsageError(`the secret is longer than ${MAX_SECRET_BYTES} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads one line from a terminal in raw mode so the typed characters are not echoed. */
function promptHidden(prompt: string, stdin: NodeJS.ReadStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chars: string[] = [];
    let inEscape = false;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    const finish = (err?: Error): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(chars.join(''));
    };
    const onData = (data: string): void => {
      for (const ch of data) {
        if (inEscape) {
          // Cursor keys arrive as ESC [ X; skip the whole sequence instead of storing its letters.
          if (/[A-Za-z~]/.test(ch)) inEscape = false;
          continue;
        }
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new CliError('cancelled', 'cancelled', 130));
        if (ch === '\u001b') inEscape = true;
        else if (ch === '\u007f' || ch === '\b') chars.pop();
        else if (ch >= ' ') chars.push(ch);
      }
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}
