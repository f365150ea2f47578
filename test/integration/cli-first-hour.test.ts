/**
 * Issue 23 ("the first hour") through the built sluicectl against a fake daemon: NO_PROXY for loopback,
 * env shells, doctor without a daemon, limits alone, help and error wording, colour, rule input forms,
 * completion and the login service files.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildParser } from '../../src/cli/parser.js';
import { runCli, startFakeDaemon, type FakeDaemon } from '../unit/cli/fake-daemon.js';
import { credential, PROXY_ENV, REGISTERED, STATUS } from '../unit/cli/fixtures.js';

const LOOPBACK = 'localhost,127.0.0.1,::1';
const NONE = { NO_PROXY: undefined, no_proxy: undefined, NO_COLOR: undefined, FORCE_COLOR: undefined };

let daemon: FakeDaemon;
beforeAll(async () => {
  daemon = await startFakeDaemon({
    'daemon.status': () => STATUS,
    'proxy.env': () => PROXY_ENV,
    'agents.register': () => REGISTERED,
    'cred.list': () => ({ credentials: [credential('openai'), credential('anthropic-work', { hosts: ['api.anthropic.com'] })] }),
    'pool.list': () => ({ pools: [] }),
    'limits.get': () => ({ global: 32, credentials: [{ name: 'openai', max_concurrent: 8, in_flight: 1, queued: 0, queue_timeout_ms: 0 }] }),
    'rule.add': (p) => ({ id: 9, port: null, method: null, path: null, source: 'user', created_at: 'x', coalesce: true, ...p }),
  });
});
afterAll(() => daemon.close());
const cli = (args: string[], env: Record<string, string | undefined> = {}) => runCli(['--socket', daemon.socketPath, ...args], { env: { ...NONE, ...env } });

describe('NO_PROXY for loopback', () => {
  it('env adds localhost,127.0.0.1,::1 after the user’s own entries, in both spellings', async () => {
    const run = await cli(['env', '--json'], { NO_PROXY: 'corp.internal,localhost', no_proxy: '.lan' });
    const vars = JSON.parse(run.stdout) as Record<string, string>;
    expect(vars.NO_PROXY).toBe('corp.internal,localhost,.lan,127.0.0.1,::1');
    expect(vars.no_proxy).toBe(vars.NO_PROXY);
  });

  it('run gives the command the merged NO_PROXY', async () => {
    const run = await runCli(
      ['--socket', daemon.socketPath, 'run', '--', process.execPath, '-e', 'console.log(process.env.NO_PROXY + "|" + process.env.no_proxy)'],
      {
        env: { ...NONE, NO_PROXY: 'my.host' },
      },
    );
    expect(run.stdout.trim()).toBe(`my.host,${LOOPBACK}|my.host,${LOOPBACK}`);
  });

  it('doctor -- CMD still flags a user NO_PROXY entry that covers a bound host', async () => {
    const run = await cli(['doctor', '--', 'curl'], { NO_PROXY: '.anthropic.com' });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('MISSING  NO_PROXY bypasses the proxy for bound hosts: api.anthropic.com');
  });
});

describe('env --shell', () => {
  it.each(['bash', 'zsh', 'sh'])('%s gets export lines', async (shell) => {
    const run = await cli(['env', '--shell', shell]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("export HTTPS_PROXY='http://sluice:tok@127.0.0.1:8787'\n");
    expect(run.stdout).toContain(`export NO_PROXY='${LOOPBACK}'\n`);
  });
});

describe('doctor without a daemon', () => {
  it('reports "daemon not running" as one failed check among the others and exits 1', async () => {
    const gone = path.join(os.tmpdir(), `sluice-none-${process.pid}.sock`);
    const run = await runCli(['--socket', gone, 'doctor'], {
      env: {
        ...NONE,
        HTTPS_PROXY: 'http://sluice:t@127.0.0.1:8787',
        HTTP_PROXY: undefined,
        http_proxy: undefined,
        https_proxy: undefined,
        SSL_CERT_FILE: undefined,
      },
    });
    expect(run.code).toBe(1);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^MISSING\s+daemon not running/);
    expect(lines.some((l) => /^ok\s+HTTPS_PROXY is set/.test(l))).toBe(true);
    expect(lines.some((l) => /^MISSING\s+HTTP_PROXY is not set/.test(l))).toBe(true);
    expect(lines.some((l) => /^MISSING\s+SSL_CERT_FILE is not set/.test(l))).toBe(true);
  });
});

describe('limits', () => {
  it('alone shows the current limits', async () => {
    const before = daemon.callsTo('limits.get').length;
    const run = await cli(['limits']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('global cap: 32');
    expect(run.stdout).toMatch(/openai\s+1\/8/);
    expect(daemon.callsTo('limits.get').length).toBe(before + 1);
  });
});

/** Every command path, for the help checks (audit belongs to another issue and is checked there). */
const COMMANDS = [
  [],
  ['status'],
  ['daemon'],
  ['daemon', 'start'],
  ['daemon', 'stop'],
  ['daemon', 'install'],
  ['daemon', 'uninstall'],
  ['env'],
  ['run'],
  ['cred'],
  ['cred', 'add'],
  ['cred', 'list'],
  ['cred', 'update'],
  ['cred', 'remove'],
  ['pool'],
  ['pool', 'create'],
  ['pool', 'list'],
  ['pool', 'status'],
  ['pool', 'add-member'],
  ['pool', 'remove-member'],
  ['pool', 'rotate'],
  ['pool', 'reset'],
  ['pool', 'remove'],
  ['rule'],
  ['rule', 'add'],
  ['rule', 'list'],
  ['rule', 'remove'],
  ['approval'],
  ['approval', 'list'],
  ['approval', 'allow'],
  ['approval', 'deny'],
  ['limits'],
  ['limits', 'get'],
  ['limits', 'set'],
  ['stats'],
  ['token'],
  ['token', 'rotate'],
  ['watch'],
  ['rpc'],
  ['doctor'],
];

/** `sluicectl WORDS --help` as the built binary would print it, captured in-process. */
function helpText(words: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    buildParser([...words, '--help'])
      .exitProcess(false)
      .parse([...words, '--help'], {}, (err, _argv, output) => (err ? reject(err) : resolve(output)));
  });
}

describe('help', () => {
  it('every command has an example and every flag a description', async () => {
    const problems: string[] = [];
    // In-process (the same parser the binary builds): forty CLI starts are too slow on a busy machine.
    const runs = await Promise.all(COMMANDS.map(async (words) => ({ words, stdout: await helpText(words) })));
    for (const { words, stdout } of runs) {
      if (!stdout.includes('Examples:')) problems.push(`${words.join(' ')}: no example`);
      // Only the Options sections: wrapped example lines can also start with a flag.
      for (const line of stdout.split('Examples:')[0]!.split('\n')) {
        // An option line: flags, then at least two spaces and a description before yargs' [type] hints.
        const m = /^\s+(?:-\w, )?(--[\w-]+)(.*)$/.exec(line);
        if (m && !/^\s{2,}[^\s[]/.test(m[2]!)) problems.push(`${words.join(' ')}: ${m[1]} has no description`);
      }
    }
    expect(problems).toEqual([]);
    // And the binary prints the same text.
    expect((await runCli(['rule', 'add', '--help'], { env: NONE })).stdout).toContain('--method');
  });
});

describe('usage errors', () => {
  const usage = async (args: string[], stdin?: string) => {
    const run = await runCli(['--socket', daemon.socketPath, ...args], { env: NONE, ...(stdin === undefined ? {} : { stdin }) });
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    return run.stderr;
  };

  it('name the missing positional and point to the subcommand’s help', async () => {
    expect(await usage(['cred', 'add'])).toBe('sluicectl: cred add needs NAME (see sluicectl cred add --help)\n');
    expect(await usage(['pool', 'add-member', 'p'])).toContain('pool add-member needs CRED (see sluicectl pool add-member --help)');
  });

  it('name the flag as typed and never show schema internals', async () => {
    expect(await usage(['cred', 'add', 'x', '--host', 'h', '--max-concurrent', '999'], 'sk')).toContain('--max-concurrent must be between 1 and 256');
    const empty = await usage(['cred', 'add', 'x', '--host', ''], 'sk');
    expect(empty).toContain('--host must not be empty');
    expect(empty).not.toMatch(/hosts\.0|String must contain|character\(s\)/);
  });

  it('run with the command’s options before -- suggests --', async () => {
    expect(await usage(['run', 'curl', '-sS', 'https://x.test'])).toContain('put the command after --: sluicectl run -- curl -sS https://x.test');
  });
});

describe('colour', () => {
  it('colours errors when asked (FORCE_COLOR) and never with NO_COLOR or --json', async () => {
    const coloured = await cli(['cred', 'add'], { FORCE_COLOR: '1' });
    expect(coloured.stderr).toContain('\u001b[31msluicectl:\u001b[39m');
    const noColor = await cli(['cred', 'add'], { FORCE_COLOR: '1', NO_COLOR: '1' });
    expect(noColor.stderr).not.toContain('\u001b[');
    const json = await cli(['--json', 'cred', 'add'], { FORCE_COLOR: '1' });
    expect(json.stderr).not.toContain('\u001b[');
    const table = await cli(['cred', 'list'], { FORCE_COLOR: '1' });
    expect(table.stdout.split('\n')[0]).toMatch(/^\u001b\[1mNAME +KIND/);
    expect((await cli(['cred', 'list'])).stdout).not.toContain('\u001b[');
  });
});

describe('rule add', () => {
  it("refuses allow '*' without --yes and sends it with --yes", async () => {
    const before = daemon.callsTo('rule.add').length;
    const run = await cli(['rule', 'add', 'allow', '*']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('add --yes');
    expect(daemon.callsTo('rule.add').length).toBe(before);
    expect((await cli(['rule', 'add', 'allow', '*', '--yes'])).code).toBe(0);
    expect(daemon.callsTo('rule.add').at(-1)).toMatchObject({ verdict: 'allow', host: '*' });
  });

  it('reads https://host/ and host:port as host + --port', async () => {
    for (const form of ['https://api.openai.com/', 'api.openai.com:443']) {
      const run = await cli(['rule', 'add', 'allow', form]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(`read ${form} as api.openai.com --port 443`);
      expect(daemon.callsTo('rule.add').at(-1)).toMatchObject({ host: 'api.openai.com', port: 443 });
    }
  });

  it('refuses a URL with a path with the exact form to type, and validates --method', async () => {
    const withPath = await cli(['rule', 'add', 'allow', 'https://api.openai.com/v1/chat']);
    expect(withPath.code).toBe(2);
    expect(withPath.stderr).toContain("type sluicectl rule add allow api.openai.com --port 443 --path '/v1/chat*'");
    const bad = await cli(['rule', 'add', 'ask', 'api.openai.com', '--method', 'FETCH']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--method must be one of GET, HEAD, POST');
    expect((await cli(['rule', 'add', 'ask', 'api.openai.com', '--method', 'post'])).code).toBe(0);
    expect(daemon.callsTo('rule.add').at(-1)).toMatchObject({ method: 'POST' });
  });
});

describe('completion', () => {
  it('prints yargs’ script for bash, zsh and fish, and refuses other shells', async () => {
    expect((await cli(['completion', 'bash'])).stdout).toContain('complete -o bashdefault -o default -F _sluicectl_yargs_completions sluicectl');
    expect((await cli(['completion', 'zsh'])).stdout).toContain('#compdef sluicectl');
    expect((await cli(['completion', 'fish'])).stdout).toContain("complete -f -c sluicectl -a '(sluicectl --get-yargs-completions");
    expect((await cli(['completion', 'tcsh'])).code).toBe(2);
  });

  it('completes subcommands, and credential names from the daemon', async () => {
    const env = { ...NONE, SLUICE_SOCKET: daemon.socketPath, SHELL: '/bin/bash' };
    const subs = await runCli(['--get-yargs-completions', 'sluicectl', 'pool', ''], { env });
    expect(subs.stdout.split('\n')).toEqual(expect.arrayContaining(['add-member', 'remove-member', 'rotate']));
    const names = await runCli(['--get-yargs-completions', 'sluicectl', 'cred', 'remove', ''], { env });
    expect(names.stdout.split('\n')).toEqual(expect.arrayContaining(['openai', 'anthropic-work']));
    const prefixed = await runCli(['--get-yargs-completions', 'sluicectl', 'limits', 'set', '--cred', 'anth'], { env });
    expect(prefixed.stdout.split('\n')).toContain('anthropic-work');
    expect(prefixed.stdout.split('\n')).not.toContain('openai');
  });
});

describe('daemon install / uninstall', () => {
  it('--print shows a systemd user unit (linux) and a launchd plist (darwin), writing nothing', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'svc-'));
    const env = { ...NONE, HOME: home, XDG_CONFIG_HOME: undefined, SLUICE_HOME: '/tmp/sluice home' };
    const unit = await runCli(['daemon', 'install', '--print', '--platform', 'linux'], { env });
    expect(unit.code, unit.stderr).toBe(0);
    expect(unit.stdout).toMatch(/^ExecStart=\S*node \S+\/dist\/daemon\/main\.js$/m);
    expect(unit.stdout).toContain('Environment="SLUICE_HOME=/tmp/sluice home"');
    expect(unit.stdout).toContain('WantedBy=default.target');
    const plist = await runCli(['daemon', 'install', '--print', '--platform', 'darwin'], { env });
    expect(plist.stdout).toContain('<string>dev.sluice.sluiced</string>');
    expect(plist.stdout).toMatch(/<string>\S+\/dist\/daemon\/main\.js<\/string>/);
    expect(plist.stdout).toContain('<key>RunAtLoad</key>');
    expect(fs.readdirSync(home)).toEqual([]);
  });

  it('install writes the unit and enables it through systemctl --user; uninstall disables and removes it', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'svc-'));
    const log = path.join(home, 'systemctl.log');
    const fake = path.join(home, 'fake-systemctl');
    fs.writeFileSync(fake, `#!/bin/sh\necho "$@" >> '${log}'\n`, { mode: 0o755 });
    const env = { ...NONE, HOME: home, XDG_CONFIG_HOME: path.join(home, 'cfg'), SLUICE_SYSTEMCTL: fake };
    const unitPath = path.join(home, 'cfg', 'systemd', 'user', 'sluiced.service');
    const install = await runCli(['daemon', 'install', '--platform', 'linux'], { env });
    expect(install.code, install.stderr).toBe(0);
    expect(fs.readFileSync(unitPath, 'utf8')).toContain('[Service]');
    expect(fs.readFileSync(log, 'utf8')).toBe('--user daemon-reload\n--user enable --now sluiced.service\n');
    const uninstall = await runCli(['daemon', 'uninstall', '--platform', 'linux'], { env });
    expect(uninstall.code, uninstall.stderr).toBe(0);
    expect(fs.existsSync(unitPath)).toBe(false);
    expect(fs.readFileSync(log, 'utf8')).toContain('--user disable --now sluiced.service\n');
  });
});

describe('--version', () => {
  it('sluicectl, sluiced and sluice print the package version', () => {
    const version = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    for (const bin of ['cli', 'daemon', 'tui']) {
      const file = fileURLToPathCompat(new URL(`../../dist/${bin}/main.js`, import.meta.url));
      expect(execFileSync(process.execPath, [file, '--version'], { encoding: 'utf8' }).trim()).toBe(version);
    }
  });
});

function fileURLToPathCompat(u: URL): string {
  return decodeURIComponent(u.pathname);
}
