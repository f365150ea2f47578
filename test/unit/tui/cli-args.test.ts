import { describe, expect, it } from 'vitest';
import { parseTuiArgs } from '../../../src/tui/cli-args.js';

describe('parseTuiArgs', () => {
  it('defaults', () => {
    expect(parseTuiArgs([])).toEqual({ ok: true, options: { noStart: false, socketPath: undefined, help: false } });
  });

  it('reads --no-start, --socket PATH, --socket=PATH and --help', () => {
    expect(parseTuiArgs(['--no-start', '--socket', '/tmp/s.sock'])).toEqual({
      ok: true,
      options: { noStart: true, socketPath: '/tmp/s.sock', help: false },
    });
    expect(parseTuiArgs(['--socket=/x.sock'])).toMatchObject({ options: { socketPath: '/x.sock' } });
    expect(parseTuiArgs(['-h'])).toMatchObject({ options: { help: true } });
  });

  it('rejects unknown arguments and a missing socket path', () => {
    expect(parseTuiArgs(['--nope'])).toEqual({ ok: false, error: 'unknown argument: --nope' });
    expect(parseTuiArgs(['--socket'])).toEqual({ ok: false, error: '--socket needs a path' });
    expect(parseTuiArgs(['--socket', '--no-start'])).toEqual({ ok: false, error: '--socket needs a path' });
  });
});
