/**
 * Turns yargs' and zod's wording into messages a user can act on: the missing positional by name
 * (`cred add needs NAME`), flags as typed (`--max-concurrent`, not `max_concurrent` or `hosts.0`), the
 * subcommand whose `--help` to read, and `--` for `run`/`doctor` when the command's own options were
 * taken for sluicectl's. Pure: argv and a message in, a message out.
 */

/** Commands, with the subcommands of the groups (a unit test checks it against the parser's help). */
export const COMMANDS: Record<string, string[]> = {
  status: [],
  daemon: ['start', 'stop', 'install', 'uninstall'],
  env: [],
  run: [],
  cred: ['add', 'list', 'update', 'remove'],
  pool: ['create', 'update', 'list', 'status', 'add-member', 'remove-member', 'rotate', 'reset', 'remove'],
  rule: ['add', 'list', 'remove'],
  approval: ['list', 'allow', 'deny'],
  limits: ['get', 'set'],
  stats: [],
  agents: [],
  usage: [],
  token: ['rotate'],
  audit: ['tail', 'verify'],
  watch: [],
  rpc: [],
  doctor: [],
  completion: [],
};

/** Required positionals per command path, as shown in usage lines. */
const POSITIONALS: Record<string, string[]> = {
  'cred add': ['NAME'],
  'cred update': ['NAME'],
  'cred remove': ['NAME'],
  'pool create': ['NAME'],
  'pool update': ['NAME'],
  'pool rotate': ['NAME'],
  'pool reset': ['NAME'],
  'pool remove': ['NAME'],
  'pool add-member': ['POOL', 'CRED'],
  'pool remove-member': ['POOL', 'CRED'],
  'rule add': ['VERDICT', 'HOST'],
  'rule remove': ['ID'],
  rpc: ['METHOD'],
};

/** RPC param names whose option is spelled differently on the command line. */
const PARAM_FLAGS: Record<string, string> = {
  hosts: '--host',
  members: '--member',
  member: 'CRED',
  name: 'NAME',
  global: '--global',
  verdict: 'VERDICT',
  host: 'HOST',
};

/** Global options that take a value (skipped when finding the command words). */
const VALUE_OPTIONS = new Set(['--socket', '--timeout']);

/** Every option sluicectl knows before a command word. */
const GLOBAL_OPTIONS = new Set([...VALUE_OPTIONS, '--json', '--no-json', '--help', '-h', '--version']);

/** The command words of `argv` (`['cred', 'add']`), skipping global options, at most group + subcommand. */
export function commandPath(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (VALUE_OPTIONS.has(a)) i++;
      continue;
    }
    if (words.length === 0 && !Object.prototype.hasOwnProperty.call(COMMANDS, a)) break;
    if (words.length === 1 && !COMMANDS[words[0]!]!.includes(a)) break;
    words.push(a);
  }
  return words;
}

/** `see sluicectl cred add --help` for the command `argv` names (or the top-level help). */
export function helpHint(path: readonly string[]): string {
  return `see sluicectl ${path.length > 0 ? `${path.join(' ')} ` : ''}--help`;
}

/** A param path from a schema issue (`hosts.0`, `max_concurrent`) as the user typed it (`--host`, `--max-concurrent`). */
export function flagFor(param: string): string {
  const key = param.split('.')[0] ?? param;
  return PARAM_FLAGS[key] ?? `--${key.replace(/_/g, '-')}`;
}

/** zod's default messages, which name types and counts the user never typed, in plain words. */
export function plainSchemaMessage(message: string): string {
  return message
    .replace(/^String must contain at least 1 character\(s\)$/, 'must not be empty')
    .replace(/^String must contain at least (\d+) character\(s\)$/, 'must be at least $1 characters')
    .replace(/^String must contain at most (\d+) character\(s\)$/, 'must be at most $1 characters')
    .replace(/^Array must contain at least (\d+) element\(s\)$/, 'needs at least $1 value(s)')
    .replace(/^Array must contain at most (\d+) element\(s\)$/, 'takes at most $1 values')
    .replace(/^Expected (\w+), received (\w+)$/, 'must be a $1')
    .replace(/^Number must be greater than or equal to (\d+)$/, 'must be at least $1')
    .replace(/^Number must be less than or equal to (\d+)$/, 'must be at most $1')
    .replace(/^Invalid url$/, 'must be a URL')
    .replace(/^Required$/, 'is required');
}

/**
 * One schema issue as a user message: `--host must not be empty`, `--max-concurrent must be between 1
 * and 256`. A message that starts with the param's own name has that name replaced by the flag.
 */
export function schemaIssueMessage(path: readonly (string | number)[], message: string): string {
  if (path.length === 0) return plainSchemaMessage(message).replace(/\b([a-z]+(?:_[a-z]+)+)\b/g, (m) => flagFor(m));
  const param = String(path[0]);
  const flag = flagFor(param);
  const text = plainSchemaMessage(message);
  if (text.startsWith(`${param} `)) return `${flag} ${text.slice(param.length + 1)}`;
  return `${flag} ${/^(must|needs|takes|is) /.test(text) ? text : `: ${text}`}`.replace(' : ', ': ');
}

/** `--name: max_concurrent must be …` from a shared bound check, as `--name must be …`. */
export function boundMessage(flag: string, reason: string): string {
  const m = /^(?:[a-z_]+|global cap) (must .*)$/.exec(reason);
  return m ? `${flag} ${m[1]}` : `${flag}: ${reason}`;
}

/**
 * yargs' validation message for `argv`, reworded. Unknown messages pass through unchanged (yargs' other
 * messages already name the option as typed).
 */
export function usageMessage(message: string, argv: readonly string[]): string {
  const path = commandPath(argv);
  const where = path.join(' ') || 'sluicectl';
  const text = message.replace(/\s*\n\s*/g, ' ').trim();
  if (text === 'give a command') {
    // `sluicectl --bogus status`: yargs took `status` as the unknown option's value, so no command is left.
    const before = argv.slice(0, argv.indexOf('--') < 0 ? argv.length : argv.indexOf('--'));
    const unknown = before.filter((a) => a.startsWith('-') && !GLOBAL_OPTIONS.has(a.split('=')[0]!));
    if (unknown.length > 0) return `unknown option ${unknown.map((a) => a.split('=')[0]).join(', ')}; options go after the command (sluicectl status --json)`;
    return `give a command: ${Object.keys(COMMANDS).join(', ')}`;
  }
  let m = /^Not enough non-option arguments: got (\d+), need at least (\d+)/.exec(text);
  if (m) {
    const names = POSITIONALS[where];
    if (names) return `${where} needs ${names.slice(Number(m[1])).join(' ')}`;
    return `${where} needs more arguments`;
  }
  m = /^Missing required arguments?: (.+)$/.exec(text);
  if (m)
    return `${where} needs ${m[1]!
      .split(', ')
      .map((o) => `--${o}`)
      .join(' and ')}`;
  m = /^Not enough arguments following: (.+)$/.exec(text);
  if (m) return `--${m[1]} needs a value`;
  m = /^Invalid values: Argument: ([\w-]+), Given: (".*?"|\S+), Choices: (.+)$/.exec(text);
  if (m) {
    const isPositional = (POSITIONALS[where] ?? []).includes(m[1]!.toUpperCase());
    const name = isPositional ? m[1]!.toUpperCase() : `--${m[1]}`;
    return `${name} must be one of ${m[3]!.replace(/"/g, '')} (got ${m[2]})`;
  }
  m = /^Unknown arguments?: (.+)$/.exec(text);
  if (m) {
    if ((path[0] === 'run' || path[0] === 'doctor') && !argv.includes('--')) {
      const rest = argv.slice(argv.indexOf(path[0]) + 1).join(' ');
      return `the command's options were read as sluicectl's; put the command after --: sluicectl ${path[0]} -- ${rest}`;
    }
    const keys = m[1]!.split(', ');
    const first = firstWord(argv);
    if (path.length === 0 && first !== undefined && keys.includes(first)) return `unknown command ${first}; commands: ${Object.keys(COMMANDS).join(', ')}`;
    const sub = path.length === 1 ? argv[argv.indexOf(path[0]!) + 1] : undefined;
    if (sub !== undefined && COMMANDS[path[0]!]!.length > 0 && keys.includes(sub))
      return `unknown ${path[0]} command ${sub}; ${path[0]} commands: ${COMMANDS[path[0]!]!.join(', ')}`;
    const extra = keys.filter((k) => argv.includes(k) && !k.startsWith('-'));
    if (extra.length > 0 && extra.length === keys.filter((k) => !/[A-Z]/.test(k) || argv.includes(k)).length) {
      return `${where} takes no more arguments (got ${extra.join(' ')}); quote globs such as '*'`;
    }
    return `unknown option ${typedOptions(keys, argv).join(', ')}`;
  }
  return text;
}

/** The first word of `argv` that is not an option or an option's value. */
function firstWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (!a.startsWith('-')) return a;
    if (VALUE_OPTIONS.has(a)) i++;
  }
  return undefined;
}

/** yargs lists an unknown `--foo-bar` as `foo-bar, fooBar` and `-sS` as `s, S`: show them as typed. */
function typedOptions(keys: string[], argv: readonly string[]): string[] {
  const out: string[] = [];
  for (const k of keys) {
    const typed =
      argv.find((a) => a === `--${k}` || a.startsWith(`--${k}=`) || a === `--no-${k}`) ??
      (k.length === 1 ? argv.find((a) => /^-[^-]/.test(a) && a.includes(k)) : undefined);
    if (typed === undefined) continue; // the camelCase twin yargs adds
    const shown = typed.split('=')[0]!;
    if (!out.includes(shown)) out.push(shown);
  }
  return out.length > 0 ? out : keys.map((k) => (k.length === 1 ? `-${k}` : `--${k}`));
}
