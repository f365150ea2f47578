/**
 * The checks behind `sluicectl doctor`, as pure functions over an environment and what the daemon reports,
 * so they can be tested without a daemon. No check ever includes a proxy URL in its detail: the URL
 * carries the proxy access token.
 */
import { pathToFileURL } from 'node:url';
import type { DaemonStatus } from '../shared/protocol/entities.js';
import type { ProxyEnv } from '../shared/protocol/results.js';

/** One doctor line: `ok` or not, with a short reason a user can act on. */
export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** What the checks need to know about the daemon and the CA. */
export interface DoctorFacts {
  status: DaemonStatus;
  proxyEnv: ProxyEnv;
  /** Hosts credentials are bound to (globs as stored). */
  boundHosts: string[];
  /** Reads a file's text, or returns null when it cannot be read. */
  readText: (path: string) => string | null;
}

/**
 * What kind of program a command is, as far as its network stack goes; decides which variables it needs
 * beyond the common ones. `node` programs need the fetch bootstrap in NODE_OPTIONS (Node 20's fetch
 * ignores HTTPS_PROXY); curl, git and Python's requests read their own CA variables, not SSL_CERT_FILE;
 * Codex (Rust, rustls) reads CODEX_CA_CERTIFICATE, else SSL_CERT_FILE.
 */
export type CommandKind = 'node' | 'curl' | 'git' | 'python' | 'codex' | 'other';

/** Runs every check against `env` (the environment an agent would have), plus those `command` needs. */
export function runDoctorChecks(env: NodeJS.ProcessEnv, facts: DoctorFacts, command?: CommandKind): DoctorCheck[] {
  const caPem = facts.readText(facts.proxyEnv.ca_path);
  const checks = [
    proxyCheck('HTTPS_PROXY', env, facts),
    proxyCheck('HTTP_PROXY', env, facts),
    // curl and Python read the lower-case spelling first: a stale one there wins over a good upper-case one.
    ...(['https_proxy', 'http_proxy'] as const)
      .filter((lower) => env[lower] !== undefined && env[lower] !== env[lower.toUpperCase()])
      .map((lower) => proxyCheck(lower, env, facts, true)),
    caCheck('NODE_EXTRA_CA_CERTS', env, facts, caPem),
    caCheck('SSL_CERT_FILE', env, facts, caPem),
  ];
  // Tool-specific CA variables: one that is set overrides SSL_CERT_FILE for its tool, so it must hold the
  // sluice CA too; one that is unset only matters for the tool that needs it.
  // (Codex falls back to SSL_CERT_FILE, so an unset CODEX_CA_CERTIFICATE is fine.)
  const toolCa: [string, CommandKind | null][] = [
    ['REQUESTS_CA_BUNDLE', 'python'],
    ['CURL_CA_BUNDLE', 'curl'],
    ['GIT_SSL_CAINFO', 'git'],
    ['CODEX_CA_CERTIFICATE', null],
  ];
  for (const [name, neededBy] of toolCa) {
    if (env[name] !== undefined || (neededBy !== null && command === neededBy)) checks.push(caCheck(name, env, facts, caPem));
  }
  if (env.NODE_OPTIONS !== undefined || command === 'node') checks.push(nodeOptionsCheck(env, facts));
  checks.push(noProxyCheck(env, facts.boundHosts));
  return checks;
}

/**
 * The checks that can run when no daemon answers: one failed `daemon` check, then each variable checked
 * for presence and shape only (is it set, is it a URL, can the file be read, does NODE_OPTIONS preload a
 * sluice bootstrap), so a user sees everything that is wrong in one run instead of only the first thing.
 * Nothing here claims a variable is right: what it must match is known only to a running daemon.
 */
export function runOfflineChecks(env: NodeJS.ProcessEnv, readText: (path: string) => string | null, command?: CommandKind): DoctorCheck[] {
  const unverified = '(not compared: daemon not running)';
  const checks: DoctorCheck[] = [{ name: 'daemon', ok: false, detail: 'daemon not running (start it with sluicectl daemon start, or open sluice)' }];
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY']) {
    const value = envValue(env, name);
    if (!value) checks.push({ name, ok: false, detail: `${name} is not set (eval "$(sluicectl env)")` });
    else if (!isUrl(value)) checks.push({ name, ok: false, detail: `${name} is not a URL` });
    else checks.push({ name, ok: true, detail: `${name} is set ${unverified}` });
  }
  const caNames = ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE'];
  const toolCa: [string, CommandKind][] = [
    ['REQUESTS_CA_BUNDLE', 'python'],
    ['CURL_CA_BUNDLE', 'curl'],
    ['GIT_SSL_CAINFO', 'git'],
  ];
  for (const [name, neededBy] of toolCa) if (env[name] !== undefined || command === neededBy) caNames.push(name);
  if (env.CODEX_CA_CERTIFICATE !== undefined) caNames.push('CODEX_CA_CERTIFICATE');
  for (const name of caNames) {
    const file = env[name];
    if (!file) checks.push({ name, ok: false, detail: `${name} is not set${CA_WHY[name] ?? ''}` });
    else if (readText(file) === null) checks.push({ name, ok: false, detail: `${name} (${file}) cannot be read` });
    else checks.push({ name, ok: true, detail: `${name} is a readable file ${unverified}` });
  }
  if (env.NODE_OPTIONS !== undefined || command === 'node') {
    const name = 'NODE_OPTIONS';
    checks.push(
      /node-proxy\.js/.test(env.NODE_OPTIONS ?? '')
        ? { name, ok: true, detail: `${name} preloads a sluice fetch bootstrap ${unverified}` }
        : { name, ok: false, detail: `${name} does not preload the sluice fetch bootstrap: Node's built-in fetch ignores HTTPS_PROXY` },
    );
  }
  checks.push({ name: 'NO_PROXY', ok: true, detail: `NO_PROXY not compared with bound hosts: daemon not running` });
  return checks;
}

function isUrl(value: string): boolean {
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

/** Guesses a command's {@link CommandKind} from its name and, for scripts, its `#!` line. */
export function commandKind(file: string, firstLine: string | null): CommandKind {
  const base = file.split('/').pop()!.toLowerCase();
  if (base === 'curl') return 'curl';
  if (base === 'git') return 'git';
  if (base === 'codex') return 'codex';
  if (/^(python[0-9.]*|pip[0-9.]*|httpx|http)$/.test(base)) return 'python';
  if (/^(node|nodejs|npm|npx|pnpm|yarn|tsx|ts-node)$/.test(base)) return 'node';
  if (firstLine?.startsWith('#!')) {
    if (/\bnode\b/.test(firstLine)) return 'node';
    if (/\bpython[0-9.]*\b/.test(firstLine)) return 'python';
  }
  return 'other';
}

function nodeOptionsCheck(env: NodeJS.ProcessEnv, facts: DoctorFacts): DoctorCheck {
  const name = 'NODE_OPTIONS';
  const value = env.NODE_OPTIONS ?? '';
  const bootstrap = facts.proxyEnv.bootstrap_path;
  if (value.includes(bootstrap) || value.includes(pathToFileURL(bootstrap).href))
    return { name, ok: true, detail: `${name} preloads the sluice fetch bootstrap` };
  const why = "Node's built-in fetch ignores HTTPS_PROXY, so SDK scripts would bypass sluice";
  return value.trim() === ''
    ? { name, ok: false, detail: `${name} is not set: ${why}` }
    : { name, ok: false, detail: `${name} does not preload the sluice fetch bootstrap: ${why}` };
}

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  return env[name] ?? env[name.toLowerCase()];
}

function proxyCheck(name: string, env: NodeJS.ProcessEnv, facts: DoctorFacts, exact = false): DoctorCheck {
  const value = exact ? env[name] : envValue(env, name);
  if (!value) return { name, ok: false, detail: `${name} is not set (eval "$(sluicectl env)")` };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { name, ok: false, detail: `${name} is not a URL` };
  }
  const listen = facts.status.proxy.listen;
  if (!sameAddress(url, listen)) return { name, ok: false, detail: `${name} points at ${url.host}, the proxy listens on ${listen}` };
  if (facts.status.proxy.auth === 'on' && url.password !== currentToken(facts.proxyEnv)) {
    return { name, ok: false, detail: `${name} carries an old access token; re-read sluicectl env` };
  }
  return { name, ok: true, detail: `${name} points at the proxy on ${listen}` };
}

function currentToken(proxyEnv: ProxyEnv): string | null {
  try {
    return new URL(proxyEnv.proxy_url).password;
  } catch {
    return null;
  }
}

function sameAddress(url: URL, listen: string): boolean {
  const loopback = (h: string): string => (h === 'localhost' || h === '[::1]' ? '127.0.0.1' : h);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const sep = listen.lastIndexOf(':');
  return loopback(url.hostname) === loopback(listen.slice(0, sep)) && port === listen.slice(sep + 1);
}

/** Why a CA variable matters, for the "is not set" line of a variable only some tools read. */
const CA_WHY: Record<string, string> = {
  REQUESTS_CA_BUNDLE: ': Python requests will not trust the sluice CA',
  CURL_CA_BUNDLE: ': curl will not trust the sluice CA',
  GIT_SSL_CAINFO: ': git will not trust the sluice CA',
};

function caCheck(name: string, env: NodeJS.ProcessEnv, facts: DoctorFacts, caPem: string | null): DoctorCheck {
  const file = env[name];
  if (!file) return { name, ok: false, detail: `${name} is not set${CA_WHY[name] ?? ''}` };
  const text = facts.readText(file);
  if (text !== null && caPem !== null) {
    return text.includes(caPem.trim())
      ? { name, ok: true, detail: `${name} includes the sluice CA` }
      : { name, ok: false, detail: `${name} (${file}) does not include the sluice CA` };
  }
  // Without readable files fall back to the paths the daemon hands out.
  const known = [facts.proxyEnv.ca_path, facts.proxyEnv.ca_bundle_path];
  return known.includes(file)
    ? { name, ok: true, detail: `${name} is the sluice CA file` }
    : { name, ok: false, detail: `${name} (${file}) is not the sluice CA or bundle` };
}

function noProxyCheck(env: NodeJS.ProcessEnv, boundHosts: string[]): DoctorCheck {
  const name = 'NO_PROXY';
  // Tools disagree on which spelling wins, so an entry in either one counts.
  const entries = [env.NO_PROXY ?? '', env.no_proxy ?? '']
    .join(',')
    .split(',')
    .map((e) =>
      e
        .trim()
        .toLowerCase()
        .replace(/:\d+$/, '')
        .replace(/^\*?\./, ''),
    )
    .filter((e) => e !== '');
  const covered = boundHosts.filter((glob) => {
    const host = glob.toLowerCase().replace(/^\*\./, '');
    return entries.some((e) => e === '*' || host === e || host.endsWith(`.${e}`));
  });
  if (covered.length > 0) {
    return { name, ok: false, detail: `${name} bypasses the proxy for bound hosts: ${covered.join(', ')}` };
  }
  return { name, ok: true, detail: `${name} covers no bound host` };
}
