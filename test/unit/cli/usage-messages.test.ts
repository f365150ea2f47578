import { describe, expect, it } from 'vitest';
import { buildParser } from '../../../src/cli/parser.js';
import { COMMANDS, usageMessage } from '../../../src/cli/usage-messages.js';

/** The command words a help text lists (`sluicectl pool add-member <pool>` → `add-member` under `pool`). */
async function listed(words: string[]): Promise<string[]> {
  const help = await buildParser([...words, '--help'])
    .exitProcess(false)
    .getHelp();
  const section = help.split(/\n\s*\n/).find((p) => p.startsWith('Commands:')) ?? '';
  const prefix = ['sluicectl', ...words].join(' ') + ' ';
  return (
    section
      .split('\n')
      // Command lines are indented two spaces; wrapped descriptions (which may quote a command) far more.
      .filter((l) => l.startsWith('  ' + prefix))
      .map((l) => l.slice(2 + prefix.length).split(/\s/)[0]!)
  );
}

describe('usage messages', () => {
  it('know every command and subcommand the parser has (a new command cannot be forgotten here)', async () => {
    const top = await listed([]);
    expect(Object.keys(COMMANDS).sort()).toEqual(top.sort());
    for (const group of top) {
      const subs = group === 'completion' ? [] : await listed([group]);
      expect({ group, subs: [...(COMMANDS[group] ?? [])].sort() }).toEqual({ group, subs: subs.sort() });
    }
  });

  it('name an unknown command, an unknown subcommand and an option before the command', () => {
    expect(usageMessage('Unknown argument: bogus', ['bogus'])).toMatch(/^unknown command bogus; commands: status, /);
    expect(usageMessage('Unknown argument: bogus', ['cred', 'bogus'])).toBe('unknown cred command bogus; cred commands: add, list, update, remove');
    expect(usageMessage('give a command', ['--bogus', 'status'])).toBe('unknown option --bogus; options go after the command (sluicectl status --json)');
    expect(usageMessage('give a command', ['--json'])).toMatch(/^give a command: status, /);
    expect(usageMessage('Unknown argument: bogus', ['status', 'bogus'])).toMatch(/^status takes no more arguments \(got bogus\)/);
  });
});
