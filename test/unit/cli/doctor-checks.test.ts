/** `sluicectl doctor` checks, run as pure functions over an environment and what the daemon reports. */
import { describe, expect, it } from 'vitest';
import { runDoctorChecks, type DoctorFacts } from '../../../src/cli/doctor-checks.js';
import { PROXY_ENV, STATUS } from './fixtures.js';

const CA = '-----BEGIN CERTIFICATE-----\nSLUICE\n-----END CERTIFICATE-----\n';
const files: Record<string, string> = {
  [PROXY_ENV.ca_path]: CA,
  '/tmp/bundle.pem': `ROOTS\n${CA}`,
  '/tmp/other.pem': 'ROOTS ONLY\n',
};
const facts: DoctorFacts = {
  status: STATUS,
  proxyEnv: PROXY_ENV,
  boundHosts: ['api.openai.com', '*.anthropic.com'],
  readText: (p) => files[p] ?? null,
};
const good = {
  HTTPS_PROXY: PROXY_ENV.vars.HTTPS_PROXY,
  HTTP_PROXY: PROXY_ENV.vars.HTTPS_PROXY,
  NODE_EXTRA_CA_CERTS: PROXY_ENV.ca_path,
  SSL_CERT_FILE: '/tmp/bundle.pem',
  NO_PROXY: 'localhost,127.0.0.1',
};
const failing = (env: NodeJS.ProcessEnv) =>
  runDoctorChecks(env, facts)
    .filter((c) => !c.ok)
    .map((c) => c.name);

describe('doctor checks', () => {
  it('passes an environment set up by sluicectl env', () => {
    expect(failing(good)).toEqual([]);
  });

  it('flags missing proxy and CA variables', () => {
    expect(failing({})).toEqual(['HTTPS_PROXY', 'HTTP_PROXY', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE']);
  });

  it('flags a proxy on another port and a stale access token, without printing the token', () => {
    const checks = runDoctorChecks({ ...good, HTTPS_PROXY: 'http://sluice:tok@127.0.0.1:9999', HTTP_PROXY: 'http://sluice:old@127.0.0.1:8787' }, facts);
    expect(checks.filter((c) => !c.ok).map((c) => c.detail)).toEqual([
      'HTTPS_PROXY points at 127.0.0.1:9999, the proxy listens on 127.0.0.1:8787',
      'HTTP_PROXY carries an old access token; re-read sluicectl env',
    ]);
    expect(JSON.stringify(checks)).not.toContain('old@');
  });

  it('flags a CA file that does not include the sluice CA', () => {
    expect(failing({ ...good, SSL_CERT_FILE: '/tmp/other.pem' })).toEqual(['SSL_CERT_FILE']);
  });

  it('flags NO_PROXY entries that cover a bound host', () => {
    expect(failing({ ...good, NO_PROXY: 'localhost,.anthropic.com' })).toEqual(['NO_PROXY']);
    expect(failing({ ...good, no_proxy: '*' })).toEqual(['NO_PROXY']);
  });
});
