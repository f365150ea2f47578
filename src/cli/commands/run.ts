/**
 * `sluicectl run -- CMD [ARGS…]`: runs CMD with the proxy environment merged over ours, terminal attached,
 * and ends with CMD's own exit status (128+N when a signal N killed it), so it can wrap any agent in a
 * script. SIGINT/SIGTERM/SIGHUP sent to sluicectl are passed on to CMD rather than killing the wrapper.
 * Each run gets its own proxy token from the daemon (`agents.register`), so every request, prompt and audit
 * row names the agent; the token is revoked when the run ends. `--isolate` fences CMD with bubblewrap.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import type { Argv } from 'yargs';
import { action } from '../command-action.js';
import { checkParams, openClient, type GlobalArgs } from '../daemon-call.js';
import { probeIsolation } from '../isolation/isolation-probe.js';
import { runIsolated } from '../isolation/isolated-run.js';
import { CliError, UsageError } from '../exit-codes.js';
import { withNoProxy } from '../no-proxy.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The command words given after `run` (before or after `--`). */
export function commandWords(args: { cmd?: unknown; '--'?: unknown }): string[] {
  const before = Array.isArray(args.cmd) ? args.cmd.map(String) : [];
  const after = Array.isArray(args['--']) ? args['--'].map(String) : [];
  return [...before, ...after];
}

/**
 * The environment `run` gives a command: ours with the proxy variables on top. NODE_OPTIONS and NO_PROXY
 * are merged rather than replaced: the user's own options (`--max-old-space-size=…`, another `--import`)
 * are kept after the sluice bootstrap, which is not added twice; the user's NO_PROXY entries are kept and
 * loopback (`localhost,127.0.0.1,::1`) is added, so local servers never wait for an approval.
 */
export function agentEnvFor(base: NodeJS.ProcessEnv, vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ...withNoProxy(vars, base) };
  const ours = vars.NODE_OPTIONS;
  const theirs = base.NODE_OPTIONS?.trim();
  if (ours && theirs) env.NODE_OPTIONS = theirs.includes(ours) ? theirs : `${ours} ${theirs}`;
  return env;
}

/** The agent name `run` uses when `--name` is not given: the command's basename, in the characters names allow. */
export function defaultAgentName(words: string[]): string {
  const base = (words[0] ?? 'agent').split('/').pop() || 'agent';
  return (
    base
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, 64) || 'agent'
  );
}

/** Registers `run [--isolate] [--name NAME] -- CMD [ARGS…]`. */
export function runCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'run [cmd..]',
    'run a command through the proxy with a per-run token naming it: sluicectl run --isolate -- claude',
    (c) =>
      c
        .positional('cmd', { describe: 'command and arguments (put them after --)', type: 'string', array: true })
        .option('isolate', {
          type: 'boolean',
          default: false,
          describe: "fence the command (Linux, bubblewrap): no network but the proxy, no access to sluice's state or socket",
        })
        .option('name', { type: 'string', describe: "the agent's name in audit rows, prompts and `sluicectl agents` (default: the command's name)" })
        .example('$0 run -- claude -p "hello"', 'run Claude Code through the proxy')
        .example('$0 run --isolate --name reviewer -- codex exec "review"', 'run Codex fenced, named "reviewer"')
        .example('$0 run -- curl -sS https://api.anthropic.com/v1/models', 'options after -- belong to the command'),
    action(async (args) => {
      const words = commandWords(args as { cmd?: unknown; '--'?: unknown });
      if (words.length === 0) throw new UsageError('run needs a command: sluicectl run -- CMD [ARGS…]');
      const name = typeof args.name === 'string' ? args.name : defaultAgentName(words);
      checkParams('agents.register', { name });
      let bwrap: string | null = null;
      if (args.isolate) {
        const support = probeIsolation();
        // Nothing runs unfenced by surprise: without a working sandbox the command does not start at all.
        if (!support.ok) throw new UsageError(support.reason);
        bwrap = support.bwrap;
      }
      // The connection stays open for the whole run: the daemon revokes the run's token when it closes, so a
      // run that is killed still leaves no live token behind.
      const client = await openClient(args);
      try {
        const reg = await client.call('agents.register', { name });
        const env = agentEnvFor(process.env, reg.env.vars);
        process.exitCode = bwrap
          ? await runIsolated(words, { bwrap, env, proxyUrl: reg.env.proxy_url, proxySocket: reg.proxy_socket, fence: reg.fence })
          : await runWithEnv(words, env);
      } finally {
        client.close();
      }
    }),
  );
}

/** Spawns `words` with `env` and inherited stdio; resolves with the exit status sluicectl should end with. */
export function runWithEnv(words: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [file, ...rest] = words as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, rest, { stdio: 'inherit', env });
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    for (const s of FORWARDED) process.on(s, forward);
    const cleanup = (): void => {
      for (const s of FORWARDED) process.off(s, forward);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      cleanup();
      // Shell conventions: 127 = command not found, 126 = found but not runnable.
      if (err.code === 'ENOENT') reject(new CliError('command_not_found', `${file}: command not found`, 127));
      else reject(new CliError('command_failed', `cannot run ${file}: ${err.code ?? err.message}`, 126));
    });
    child.once('exit', (code, signal) => {
      cleanup();
      if (code !== null) resolve(code);
      else resolve(128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
    });
  });
}
