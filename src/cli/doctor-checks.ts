/**
 * The checks behind `sluicectl doctor`, as pure functions over an environment and what the daemon reports,
 * so they can be tested without a daemon. No check ever includes a proxy URL in its detail: the URL
 * carries the proxy access token.
 */
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

/** Runs every check against `env` (the environment an agent would have). */
export function runDoctorChecks(env: NodeJS.ProcessEnv, facts: DoctorFacts): DoctorCheck[] {
  const caPem = facts.readText(facts.proxyEnv.ca_path);
  return [
    proxyCheck('HTTPS_PROXY', env, facts),
    proxyCheck('HTTP_PROXY', env, facts),
    caCheck('NODE_EXTRA_CA_CERTS', env, facts, caPem),
    caCheck('SSL_CERT_FILE', env, facts, caPem),
    noProxyCheck(env, facts.boundHosts),
  ];
}

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  return env[name] ?? env[name.toLowerCase()];
}

function proxyCheck(name: string, env: NodeJS.ProcessEnv, facts: DoctorFacts): DoctorCheck {
  const value = envValue(env, name);
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

function caCheck(name: string, env: NodeJS.ProcessEnv, facts: DoctorFacts, caPem: string | null): DoctorCheck {
  const file = env[name];
  if (!file) return { name, ok: false, detail: `${name} is not set` };
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
    .map((e) => e.trim().toLowerCase().replace(/:\d+$/, '').replace(/^\*?\./, ''))
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
