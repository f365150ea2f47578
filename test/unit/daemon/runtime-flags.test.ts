/** The daemon's Node flags reach a foreground `sluiced` too: its shebang carries the same list. */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DAEMON_NODE_FLAGS } from '../../../src/daemon/runtime-flags.js';

describe('DAEMON_NODE_FLAGS', () => {
  it('the sluiced shebang passes exactly these flags to node', () => {
    const first = fs.readFileSync(new URL('../../../src/daemon/main.ts', import.meta.url), 'utf8').split('\n')[0]!;
    expect(first).toBe(`#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`);
  });
});
