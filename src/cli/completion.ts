/**
 * `sluicectl completion bash|zsh|fish`: the completion script is yargs' own (nothing hand-written here).
 * yargs picks the script and the answer format from $SHELL when the parser is built, so the shell asked
 * for on the command line (or, when a script asks for completions, the shell that script was written for)
 * is put into $SHELL first. On top of yargs' commands and options, credential, pool and rule names come
 * from the daemon when it answers within a short time; without a daemon completion still works.
 */
import path from 'node:path';
import { connectDaemon } from '../shared/rpc/client.js';
import { resolveSocketPath } from '../shared/rpc/paths.js';

/** Shells `sluicectl completion` writes scripts for. */
export const COMPLETION_SHELLS = ['bash', 'zsh', 'fish'] as const;

/** The flag yargs' scripts call sluicectl with to ask for completions. */
export const COMPLETIONS_FLAG = '--get-yargs-completions';

/**
 * The shell a completion request must be answered for, or null when `argv` is not one (then $SHELL is
 * left alone). A request from yargs' zsh script carries COMP_LINE (its bash
 * script does not), and fish is told apart by $SHELL, so a bash script run by a zsh user still gets
 * bash answers.
 */
export function completionShell(argv: readonly string[], env: NodeJS.ProcessEnv): string | null {
  if (!argv.includes(COMPLETIONS_FLAG)) return null;
  if (env.COMP_LINE !== undefined) return 'zsh';
  return env.SHELL?.includes('fish') ? 'fish' : 'bash';
}

/** Which daemon names complete the word being typed after `words` (the command words so far). */
export function nameKind(words: readonly string[], previous: string | undefined): 'cred' | 'pool' | 'rule' | 'approval' | null {
  if (previous === '--cred' || previous === '--member') return 'cred';
  const [group, sub, ...rest] = words;
  if (group === 'cred' && (sub === 'remove' || sub === 'update') && rest.length === 0) return 'cred';
  if (group === 'pool' && ['status', 'update', 'rotate', 'reset', 'remove', 'add-member', 'remove-member'].includes(sub ?? '')) {
    if (rest.length === 0) return 'pool';
    if (rest.length === 1 && (sub === 'add-member' || sub === 'remove-member')) return 'cred';
  }
  if (group === 'rule' && sub === 'remove' && rest.length === 0) return 'rule';
  if (group === 'approval' && (sub === 'allow' || sub === 'deny') && rest.length === 0) return 'approval';
  return null;
}

/** Names of `kind` from the daemon on `socketPath`, or [] when none answers within `timeoutMs`. */
export async function daemonNames(kind: 'cred' | 'pool' | 'rule' | 'approval', socketPath: string, timeoutMs = 700): Promise<string[]> {
  try {
    const client = await connectDaemon({ socketPath, timeoutMs, connectTimeoutMs: timeoutMs });
    try {
      if (kind === 'cred') return (await client.call('cred.list', {})).credentials.map((c) => c.name);
      if (kind === 'pool') return (await client.call('pool.list', {})).pools.map((p) => p.name);
      if (kind === 'rule') return (await client.call('rule.list', {})).rules.map((r) => String(r.id));
      return (await client.call('approval.list', {})).approvals.map((a) => a.id);
    } finally {
      client.close();
    }
  } catch {
    return [];
  }
}

/**
 * The yargs completion function: yargs' default completions plus daemon names where a name is expected.
 * `argv._` holds the words typed so far (the program name first when the shell passes it).
 */
export function completeWithNames(scriptName: string) {
  return (
    current: string,
    argv: { _: (string | number)[]; socket?: unknown },
    defaults: (done: (err: Error | null, completions: string[] | undefined) => void) => void,
    done: (completions: string[]) => void,
  ): void => {
    defaults((_err, base) => {
      const typed = argv._.map(String);
      if (typed[0] !== undefined && path.basename(typed[0]) === scriptName) typed.shift();
      // The last word is the one being completed.
      const words = typed.slice(0, current === '' || typed.at(-1) === current ? -1 : undefined).filter((w) => !w.startsWith('-'));
      const raw = process.argv;
      const previous = raw[raw.length - 2];
      const kind = nameKind(words, previous);
      if (kind === null) return done(base ?? []);
      const socket = typeof argv.socket === 'string' ? path.resolve(argv.socket) : resolveSocketPath();
      void daemonNames(kind, socket).then((names) =>
        done([...(base ?? []).filter((c) => !c.startsWith('-') || current.startsWith('-')), ...names.filter((n) => n.startsWith(current))]),
      );
    });
  };
}
